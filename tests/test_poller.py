"""The poller's schedule, driven by a fake clock: no test here sleeps."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime, timezone

from cpgw_tray.poller import Poller
from cpgw_tray.status import LOOKS, State, Status

from .test_gateway import FakeClock


def make(state: State) -> Status:
    return Status(state, LOOKS[state].label, "d", checked_at=datetime.now(timezone.utc))


class Gateway:
    """Counts calls; answers with whatever state it is set to."""

    def __init__(self, clock: FakeClock, state: State = State.READY) -> None:
        self.clock, self.state = clock, state
        self.calls: list[tuple[str, float]] = []

    def check(self) -> Status:
        self.calls.append(("check", self.clock.now))
        return make(self.state)

    def tickle(self) -> Status:
        self.calls.append(("tickle", self.clock.now))
        return make(self.state)


def setup(interval: float = 15, keepalive: float = 60, state: State = State.READY):  # type: ignore[no-untyped-def]
    clock = FakeClock()
    gw = Gateway(clock, state)
    seen: list[Status] = []
    poller = Poller(
        gw.check, seen.append, interval=interval, tickle=gw.tickle, keepalive=keepalive, clock=clock
    )
    return clock, gw, seen, poller


def run_for(clock: FakeClock, poller: Poller, seconds: float) -> None:
    """Advance the fake clock, stepping the poller whenever it says something is due."""
    end = clock.now + seconds
    while True:
        wait = poller.step()
        if clock.now + wait > end:
            clock.now = end
            return
        clock.now += wait


def test_first_check_at_once_then_every_interval() -> None:
    clock, gw, seen, poller = setup(interval=15, keepalive=0)
    assert poller.step() == 15
    run_for(clock, poller, 60)
    assert [t - 1000 for _, t in gw.calls] == [0, 15, 30, 45, 60]
    assert all(kind == "check" for kind, _ in gw.calls) and len(seen) == 5


def test_keepalive_tickles_instead_of_checking() -> None:
    clock, gw, _, poller = setup(interval=15, keepalive=60)
    run_for(clock, poller, 125)
    kinds = [kind for kind, _ in gw.calls]
    assert kinds.count("tickle") == 2 and kinds.count("check") == 7
    # a tickle replaces the check that was due: never more requests than the interval asks
    times = [t for _, t in gw.calls]
    assert all(b - a >= 15 for a, b in itertools.pairwise(times))


def test_fast_keepalive_keeps_session_between_slow_checks() -> None:
    clock, gw, _, poller = setup(interval=30, keepalive=2)
    run_for(clock, poller, 60)
    tickles = [t for kind, t in gw.calls if kind == "tickle"]
    assert len(tickles) == 30 and all(b - a == 2 for a, b in itertools.pairwise(tickles))


def test_no_tickle_without_a_session() -> None:
    clock, gw, _, poller = setup(interval=15, keepalive=2, state=State.LOGGED_OUT)
    run_for(clock, poller, 60)
    assert {kind for kind, _ in gw.calls} == {"check"}


def test_check_now_wakes_and_coalesces() -> None:
    clock, gw, _, poller = setup(interval=15, keepalive=0)
    poller.step()
    clock.now += 3
    assert poller.check_now() is True
    assert poller.check_now() is False  # already requested: a second click adds nothing
    assert poller.step() == 15
    assert len(gw.calls) == 2 and gw.calls[1][1] == 1003


def test_click_during_a_check_does_not_queue_another() -> None:
    clock = FakeClock()
    clicks: list[bool] = []

    def check() -> Status:
        clicks.append(poller.check_now())  # the user clicks while the check runs
        return make(State.READY)

    poller = Poller(check, lambda s: None, interval=15, clock=clock)
    poller.step()
    assert clicks == [False]
    assert poller.due() == (None, 15)


def test_a_change_during_a_check_gets_a_fresh_check() -> None:
    clock = FakeClock()
    answers: list[bool] = []

    def check() -> Status:
        if not answers:  # the gateway changes while this first check runs
            answers.append(poller.check_now(fresh=True))
            answers.append(poller.check_now(fresh=True))  # once is enough
        return make(State.READY)

    poller = Poller(check, lambda s: None, interval=15, clock=clock)
    assert poller.step() == 0  # one more check is due at once
    assert answers == [True, False]
    poller.step()
    assert poller.due() == (None, 15)


def test_a_failing_check_does_not_kill_the_loop() -> None:
    clock = FakeClock()

    def check() -> Status:
        raise RuntimeError("bug")

    poller = Poller(check, lambda s: None, interval=15, clock=clock)
    assert poller.step() == 15


def test_stop_returns_at_once_while_a_check_hangs() -> None:
    entered, release = threading.Event(), threading.Event()
    results: list[Status] = []

    def hung() -> Status:
        entered.set()
        release.wait(30)
        return make(State.READY)

    poller = Poller(hung, results.append, interval=15)
    poller.start()
    assert entered.wait(5)
    poller.stop()  # does not wait for the hung request
    assert poller.stopped
    release.set()
    assert poller._thread is not None
    poller._thread.join(5)
    assert not poller._thread.is_alive()
    assert results == []  # a result that arrives after stop is dropped
