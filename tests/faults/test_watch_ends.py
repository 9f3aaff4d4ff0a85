"""How `watch` ends: 0 only for a closed pipe, SIGINT or SIGTERM; 74 with one line for an
output it cannot write; 70, logged, for a failure outside its check loop. A reader that
goes away is noticed within an interval even while nothing changes."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cpgw_tray.care.poller import Poller
from cpgw_tray.cli import watch
from cpgw_tray.constants import EXIT_IOERR, EXIT_SOFTWARE

from ..conftest import run_cli
from .conftest import cli, reap
from .hostile import Hostile


@pytest.mark.e2e  # a real watch process
@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_watch_into_a_full_disk_exits_74_with_one_line(hostile: Hostile) -> None:
    with open("/dev/full", "w") as full:
        proc = cli(
            "--url", hostile.url, "--timeout", "1", "watch", "--interval", "1",
            stdout=full, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            _, err = proc.communicate(timeout=20)
        finally:
            reap(proc)
    assert proc.returncode == EXIT_IOERR
    assert err.splitlines() == ["cpgw-tray: cannot write the output: No space left on device"]


@pytest.mark.e2e  # a real watch process, a real interval
def test_watch_into_head_ends_within_an_interval_while_nothing_changes(hostile: Hostile) -> None:
    """`watch --json | head -1` against a steady gateway: no change to print, yet watch
    ends (it used to keep running, and tickling, until the next change)."""
    watcher = cli(
        "--url", hostile.url, "--timeout", "1", "watch", "--json", "--interval", "1",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    head = subprocess.Popen(["head", "-1"], stdin=watcher.stdout, stdout=subprocess.PIPE, text=True)
    assert watcher.stdout is not None
    watcher.stdout.close()  # only head reads it now, as in a shell pipeline
    try:
        out, _ = head.communicate(timeout=15)
        assert json.loads(out)["state"] == "ready"
        assert watcher.wait(timeout=5) == 0
        assert watcher.stderr is not None and watcher.stderr.read() == ""
    finally:
        reap(watcher)
        head.kill()
        head.wait()


def test_a_failure_while_printing_exits_70_after_logging(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(status: object, named: bool = False) -> str:
        raise RuntimeError("printing broke")

    monkeypatch.setattr(watch, "human", broken)
    code, _ = run_cli("--url", hostile.url, "--timeout", "1", "watch", "--interval", "1")
    assert code == EXIT_SOFTWARE
    err = capsys.readouterr().err
    assert "RuntimeError: printing broke" in err and "see the log" in err


def test_a_worker_thread_that_dies_exits_70(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def dies(self: Poller) -> None:
        raise RuntimeError("the watchdog broke")

    monkeypatch.setattr(Poller, "_watchdog", dies)
    code, _ = run_cli("--url", hostile.url, "--timeout", "1", "watch", "--interval", "1")
    assert code == EXIT_SOFTWARE
    assert "the poller-watchdog thread stopped" in capsys.readouterr().err


def test_a_failure_at_start_up_exits_70(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cpgw_tray.client import api as gateway

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no client today")

    monkeypatch.setattr(gateway, "client_for", broken)
    code, _ = run_cli("--url", hostile.url, "watch")
    assert code == EXIT_SOFTWARE
    assert "internal error in watch" in capsys.readouterr().err


def test_the_hangup_probe_is_quiet_while_the_reader_reads() -> None:
    from cpgw_tray.lifecycle import hangup_probe

    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "w") as out:
        gone = hangup_probe(out)
        assert gone is not None and gone() is False
        os.close(read_end)
        assert gone() is True
    with open(os.devnull, "w") as plain:
        assert hangup_probe(plain) is None  # not a pipe: a write tells
