"""How a foreground command waits and ends: interruptible waits (Ctrl-C reaches a
Windows process only between waits), stop on signals, quiet stdout after a closed pipe."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from cpgw_tray.lifecycle import stop_on_signals, wait_until


class CountingEvent(threading.Event):
    """An event that counts its waits and is set after ``n`` of them (no real time)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.n, self.waits, self.timeouts = n, 0, []

    def wait(self, timeout: float | None = None) -> bool:
        self.timeouts.append(timeout)
        self.waits += 1
        if self.waits >= self.n:
            self.set()
        return self.is_set()


def test_wait_until_waits_in_short_slices_never_for_good() -> None:
    stop = CountingEvent(5)
    wait_until(stop, slice_s=0.5)
    assert stop.waits == 5 and stop.timeouts == [0.5] * 5  # never wait(None)


def test_slices_only_on_windows() -> None:
    """Elsewhere a signal interrupts the wait: an idle watch never wakes up."""
    import sys

    from cpgw_tray import lifecycle

    assert (0.5 if sys.platform == "win32" else None) == lifecycle.SLICE


def test_wait_until_lets_a_pending_interrupt_through() -> None:
    """Between two slices Python runs its signal handlers: a KeyboardInterrupt raised
    there ends the wait (on Windows, a wait without timeout would swallow Ctrl-C)."""

    class Interrupting(CountingEvent):
        def wait(self, timeout: float | None = None) -> bool:
            if super().wait(timeout) or self.waits == 3:
                raise KeyboardInterrupt
            return False

    with pytest.raises(KeyboardInterrupt):
        wait_until(Interrupting(10), slice_s=0.01)


def test_sigterm_and_sigint_set_the_stop_event_and_handlers_come_back() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.wait(2)
        stop.clear()
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.wait(2)
    finally:
        restore()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_off_the_main_thread_nothing_is_installed() -> None:
    results: list[object] = []

    def run() -> None:
        restore = stop_on_signals(threading.Event())
        results.append(signal.getsignal(signal.SIGTERM))
        restore()

    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    assert results == [before]


def test_logging_set_up_twice_logs_each_line_once(tmp_path: object) -> None:
    import io
    import logging
    from pathlib import Path

    from cpgw_tray import logs

    stream = io.StringIO()
    path = Path(str(tmp_path)) / "x.log"
    for _ in range(3):
        logs.to_stderr(0, stream)
        logs.to_file("INFO", path)
    logging.getLogger("cpgw_tray.test").warning("once")
    assert stream.getvalue().count("once") == 1
    assert path.read_text().count("once") == 1
