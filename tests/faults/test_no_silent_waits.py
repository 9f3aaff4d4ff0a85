"""No silent waits: against a gateway that hangs, a person at a terminal is told at once
what is being asked (on stderr; stdout stays for scripts), and the doctor prints each
verdict as it comes."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from cpgw_tray.cli.main import main
from cpgw_tray.simulator import make_gateway_dir

from ..conftest import wait_for
from .hostile import Hostile, silence


class Terminal(io.StringIO):
    """stderr as a person's terminal."""

    def isatty(self) -> bool:
        return True


class Lines(io.StringIO):
    """stdout that can be read while the command still runs."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()

    def write(self, text: str) -> int:
        with self.lock:
            return super().write(text)

    def text(self) -> str:
        with self.lock:
            return self.getvalue()


def run_in_thread(argv: list[str], out: io.StringIO) -> threading.Thread:
    codes: list[int] = []
    thread = threading.Thread(target=lambda: codes.append(main(argv, out=out)), daemon=True)
    thread.start()
    return thread


@pytest.mark.e2e  # waits out a real 3 s timeout
def test_status_says_at_once_what_it_asks_on_a_terminal(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile.set(silence())
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    out = Lines()
    thread = run_in_thread(["--url", hostile.url, "--timeout", "3", "status"], out)
    wait_for(lambda: hostile.seen)  # the request hangs now
    assert f"asking {hostile.url} … up to 3 s\n" in terminal.getvalue()
    assert out.text() == ""  # stdout: only the verdict, for scripts
    thread.join(timeout=30)
    assert "asking" not in out.getvalue()


def test_status_says_nothing_extra_when_stderr_is_no_terminal(
    hostile: Hostile, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipe = io.StringIO()
    monkeypatch.setattr("sys.stderr", pipe)
    main(["--url", hostile.url, "status"], out=io.StringIO())
    assert "asking" not in pipe.getvalue()


@pytest.mark.e2e  # waits out a real 2 s timeout
def test_doctor_prints_each_verdict_as_it_comes(
    hostile: Hostile, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hostile.set(silence())
    monkeypatch.setattr("sys.stderr", Terminal())
    folder = make_gateway_dir(tmp_path / "gw", port=hostile.port)
    out = Lines()
    argv = ["--url", hostile.url, "--timeout", "2", "doctor", "--dir", str(folder)]
    thread = run_in_thread(argv, out)
    wait_for(lambda: hostile.seen)  # the gateway's check hangs now
    shown = out.text()
    assert f"Checking {hostile.url} (from command line); gateway folder: {folder}" in shown
    assert "] Java:" in shown and f"] Port {hostile.port}:" in shown
    thread.join(timeout=30)
    said = out.getvalue()
    # TLS answers, HTTP hangs: that is not "nothing answers"
    assert f"[FAIL] Gateway: answers at {hostile.url} but hangs" in said, said
    assert "nothing answers" not in said
