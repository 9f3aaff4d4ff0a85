"""cpgw-tray as a real process against a hostile gateway: `status` answers in time and in
little memory, `watch` goes on to the next verdict, and nothing is left running.

Bounds are generous (timeout + 2 s, 60 MB); exact figures belong in the benchmark.
Real processes and real time: marked e2e.
"""

from __future__ import annotations

import json
import queue
import subprocess
import threading

import pytest

from .conftest import cli, reap, run_measured
from .hostile import (
    Behaviour,
    Hostile,
    compressed,
    endless_chunked,
    reply,
    trickle_body,
    trickle_headers,
)

pytestmark = pytest.mark.e2e

PEAK_MB = 60.0


@pytest.mark.parametrize("behaviour", [trickle_body(), trickle_headers()], ids=["body", "headers"])
def test_status_answers_within_its_timeout_against_trickling(
    hostile: Hostile, behaviour: Behaviour
) -> None:
    hostile.set(behaviour)
    code, out, seconds, _peak = run_measured(
        ["--url", hostile.url, "status", "--json", "--timeout", "0.5"], timeout=15
    )
    data = json.loads(out)
    print(f"status --timeout 0.5 against trickling: {seconds:.2f} s")
    assert data["state"] in ("not_responding", "error") and code in (2, 3)
    assert seconds < 2.5  # the timeout + 2 s for the process


@pytest.mark.parametrize("kind", ["endless-chunked", "gzip-bomb"])
def test_status_stays_small_against_endless_and_compressed_bodies(
    hostile: Hostile, bomb: bytes, kind: str
) -> None:
    hostile.set(endless_chunked() if kind == "endless-chunked" else compressed(bomb))
    code, out, seconds, peak = run_measured(
        ["--url", hostile.url, "status", "--json", "--timeout", "2"], timeout=15
    )
    data = json.loads(out)
    print(f"status against {kind}: peak RSS {peak:.1f} MB, {seconds:.2f} s")
    assert data["state"] == "error" and "reply too large" in data["detail"] and code == 3
    assert peak < PEAK_MB


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[dict[str, object]]:
    found: queue.Queue[dict[str, object]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            data = json.loads(line)
            if "state" in data:  # status lines; event lines (login_needed …) are the person's
                found.put(data)

    threading.Thread(target=pump, daemon=True).start()
    return found


def next_state(found: queue.Queue[dict[str, object]], wanted: str, within: float = 10) -> list[str]:
    """States printed until ``wanted`` (inclusive)."""
    seen: list[str] = []
    while not seen or seen[-1] != wanted:
        seen.append(str(found.get(timeout=within)["state"]))
    return seen


@pytest.mark.parametrize(
    ("bad", "shown"),
    [(trickle_body(), "not_responding"), (reply(200, "[" * 60_000), "error")],
    ids=["trickling", "nested-json"],
)
def test_watch_goes_on_to_the_next_verdict(hostile: Hostile, bad: Behaviour, shown: str) -> None:
    proc = cli(
        "--url", hostile.url, "--timeout", "1", "watch", "--json", "--interval", "1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        found = lines_of(proc)
        assert next_state(found, "ready") == ["ready"]
        hostile.set(bad)
        assert next_state(found, shown) == [shown]
        hostile.set(reply(401, ""))
        assert next_state(found, "logged_out") == ["logged_out"]
        assert proc.poll() is None  # still watching
    finally:
        reap(proc)
    assert proc.returncode is not None


def test_watch_into_head_leaves_nothing_behind(hostile: Hostile) -> None:
    watch = cli(
        "--url", hostile.url, "--timeout", "1", "watch", "--json", "--interval", "1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    head = subprocess.Popen(["head", "-1"], stdin=watch.stdout, stdout=subprocess.PIPE, text=True)
    assert watch.stdout is not None
    watch.stdout.close()  # only head reads it now, as in a shell pipeline
    try:
        out, _ = head.communicate(timeout=10)
        assert json.loads(out)["state"] == "ready"
        hostile.set(reply(401, ""))  # a change: watch writes into the closed pipe
        assert watch.wait(timeout=5) == 0
        assert watch.stderr is not None and watch.stderr.read() == ""
    finally:
        reap(watch)
        head.kill()
        head.wait()
