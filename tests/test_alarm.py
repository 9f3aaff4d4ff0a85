"""The watchdog's alarm (care/alarm.py) and what it buys: a watchdog that does not wake
while checks finish in time."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import pytest

from cpgw_tray.care.alarm import Alarm
from cpgw_tray.care.poller import Poller
from cpgw_tray.model import status
from cpgw_tray.model.status import State, Status


def waiting(alarm: Alarm) -> tuple[threading.Event, list[bool]]:
    """Wait on ``alarm`` on a thread; the event is set when ``wait`` returns."""
    done, result = threading.Event(), []

    def run() -> None:
        result.append(alarm.wait())
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done, result


def test_the_alarm_rings_at_its_last_time_and_stops() -> None:
    alarm = Alarm()
    try:
        alarm.set(0.01)
        assert alarm.wait() is True
        alarm.set(0.02)
        alarm.set(60)  # moved later before it rang: the earlier time is gone
        done, result = waiting(alarm)
        assert not done.wait(0.3)
        alarm.set(0)  # moved earlier: rings at once
        assert done.wait(5) and result == [True]
        alarm.set(None)
        done, result = waiting(alarm)
        alarm.stop()
        assert done.wait(5) and result == [False]
    finally:
        alarm.close()


def voluntary_switches(thread: threading.Thread) -> int:
    status = Path(f"/proc/self/task/{thread.native_id}/status").read_text()
    line = next(x for x in status.splitlines() if x.startswith("voluntary_ctxt_switches"))
    return int(line.split()[1])


@pytest.mark.e2e  # real checks against a real 0.5 s deadline, for 2 s
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_the_watchdog_sleeps_while_checks_finish_in_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forty checks 0.05 s apart, each moving the verdict's deadline (0.55 s on, no
    grace) before it comes: the watchdog thread is not woken by them (it used to look at
    each deadline it had seen, here every 0.55 s)."""
    monkeypatch.setattr(status, "FRESH_GRACE_S", 0.0)
    asleep, checks = threading.Event(), threading.Event()
    seen: list[Status] = []

    def on_status(shown: Status) -> None:
        seen.append(shown)
        if len(seen) == 2:  # the watchdog went to sleep on the first deadline
            asleep.set()
        if len(seen) >= 42:
            checks.set()

    poller = Poller(
        lambda: Status(State.READY, "Ready", "d"), on_status, interval=0.05, timeout=0.5
    )
    poller.start()
    watchdog = poller.threads[1]
    try:
        assert asleep.wait(10)
        before = voluntary_switches(watchdog)
        assert checks.wait(20)
        assert voluntary_switches(watchdog) - before <= 1
    finally:
        poller.stop()
    watchdog.join(5)
    assert not watchdog.is_alive()
