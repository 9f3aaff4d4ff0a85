"""The gateway's words at one boundary, and interim replies: hostile text inside ordinary
replies cannot forge lines, kill the watcher or stop a hook; a ``103 Early Hints`` is
read past. Real sockets (the hostile gateway) and real processes."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cpgw_tray.client.api import GatewayClient
from cpgw_tray.model.status import State

from ..conftest import wait_for
from .conftest import cli, reap
from .hostile import READY, TICKLE_READY, Conn, Hostile, Request, head, reply

FORGERY = "\x1b[2J\x1b]0;owned\x07\nready: Ready \u2014 forged\r\n\x9b31m"


def saying(message: str) -> dict[str, object]:
    return {**READY, "message": message, "fail": message}


def with_interim(*codes: int) -> object:
    """Interim replies, each with a header, then the ready reply, in one write."""
    data = json.dumps(READY).encode()

    def behave(conn: Conn, request: Request) -> bool:
        interim = b"".join(head(code, {"Link": "</style.css>; rel=preload"}) for code in codes)
        conn.send(interim + head(200, {"Content-Length": str(len(data))}) + data)
        return True

    return behave


@pytest.mark.parametrize("codes", [(103,), (102, 103)], ids=["early-hints", "two"])
def test_interim_replies_are_skipped(
    hostile: Hostile, client: GatewayClient, codes: tuple[int, ...]
) -> None:
    hostile.set(with_interim(*codes))  # type: ignore[arg-type]
    status = client.auth_status()
    assert status.state is State.READY and status.http_status == 200, status.detail
    assert client.auth_status().state is State.READY  # the connection is still in step


def test_endless_interim_replies_are_an_error(hostile: Hostile, client: GatewayClient) -> None:
    hostile.set(with_interim(*[103] * 50))  # type: ignore[arg-type]
    assert client.auth_status().state is State.ERROR


@pytest.mark.e2e  # a real status process and its terminal bytes
@pytest.mark.parametrize(
    "message", ["\ud800", FORGERY, "nul\x00byte"], ids=["surrogate", "esc", "nul"]
)
def test_status_prints_one_clean_line_whatever_the_message(hostile: Hostile, message: str) -> None:
    hostile.set(reply(200, saying(message)))
    proc = cli(
        "--url", hostile.url, "--timeout", "1", "status",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=30)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    lines = out.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ready: "), lines
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in lines[0]), repr(lines[0])


@pytest.mark.e2e  # a real watch process
def test_watch_goes_on_after_a_lone_surrogate(hostile: Hostile) -> None:
    """Human lines: an encoding error used to be taken for a closed pipe (exit 0, no
    checks, no keep-alive)."""
    hostile.set(reply(200, saying("\ud800")))
    proc = cli(
        "--url", hostile.url, "--timeout", "1", "watch", "--interval", "1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        assert lines.get(timeout=15).startswith(tuple("0123456789"))
        hostile.set(reply(401, ""))
        while " logged_out: " not in lines.get(timeout=15):  # event lines may come first
            pass
        assert proc.poll() is None
    finally:
        reap(proc)


@pytest.mark.e2e  # a real watch process
def test_a_nul_in_the_message_does_not_stop_the_hook(hostile: Hostile, tmp_path: Path) -> None:
    hostile.set(reply(200, saying("nul\x00byte")))
    out = tmp_path / "hook.txt"
    hook = f"{sys.executable} -c \"import os,sys; open(sys.argv[1],'w').write(os.environ['CPGW_DETAIL'])\" {out}"
    proc = cli(
        "--url", hostile.url, "--timeout", "1", "watch", "--json", "--interval", "1",
        "--exec", hook, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        wait_for(out.exists)
        assert wait_for(lambda: "nul\ufffdbyte" in out.read_text(encoding="utf-8"))
    finally:
        reap(proc)


def test_a_tickle_with_hostile_words_is_clean_too(hostile: Hostile, client: GatewayClient) -> None:
    tickle = {**TICKLE_READY, "iserver": {"authStatus": saying(FORGERY)}}
    hostile.set(reply(200, tickle))
    status = client.tickle()
    assert status.state is State.READY
    for text in (status.detail, status.message or "", status.fail or ""):
        assert "\x1b" not in text and "\n" not in text and "\x9b" not in text
