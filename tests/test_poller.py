"""The poller's schedule, driven by a fake clock: no test here sleeps."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest

from cpgw_tray.care.poller import Poller
from cpgw_tray.client.api import Deferred
from cpgw_tray.model.status import LOOKS, State, Status, fresh_until, stale_view

from .conftest import wait_for
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
    for thread in poller.threads:
        thread.join(5)
        assert not thread.is_alive()
    assert results == []  # a result that arrives after stop is dropped


# ------------------------------------------------------------------ a watcher that cannot die

LOG = "/var/log/cpgw-tray/cpgw-tray.log"


class Clocks:
    """A monotonic and a wall clock that advance together; a suspend moves the wall only
    (the monotonic clock stands still while the machine sleeps)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.wall_at = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)

    def mono(self) -> float:
        return self.now

    def wall(self) -> datetime:
        return self.wall_at

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.wall_at += timedelta(seconds=seconds)

    def suspend(self, seconds: float) -> None:
        self.wall_at += timedelta(seconds=seconds)


class Wired:
    """A poller on fake clocks with a gateway that answers (or raises) what it is told."""

    def __init__(
        self,
        *,
        interval: float = 15,
        keepalive: float = 0,
        timeout: float = 10,
        on_status: Callable[[Status], None] | None = None,
    ) -> None:
        self.clocks = Clocks()
        self.answers: list[Status | BaseException] = []  # next answers, in order
        self.state = State.READY
        self.calls: list[tuple[str, float]] = []
        self.seen: list[Status] = []
        self.poller = Poller(
            lambda: self._answer("check"),
            on_status or self.seen.append,
            interval=interval,
            tickle=(lambda: self._answer("tickle")) if keepalive else None,
            keepalive=keepalive,
            timeout=timeout,
            clock=self.clocks.mono,
            wall=self.clocks.wall,
            log_path=LOG,
            url="https://127.0.0.1:5000",
        )

    def _answer(self, kind: str) -> Status:
        self.calls.append((kind, self.clocks.now))
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        if answer is not None:
            return answer
        return Status(self.state, LOOKS[self.state].label, "d", checked_at=self.clocks.wall())

    def run_for(self, seconds: float) -> None:
        """Step the poller whenever it says something is due, until ``seconds`` passed."""
        end = self.clocks.now + seconds
        while True:
            wait = self.poller.step()
            if self.clocks.now + wait > end:
                self.clocks.advance(end - self.clocks.now)
                return
            self.clocks.advance(wait)


def test_on_status_raising_once_is_published_and_checks_and_tickles_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Status] = []
    broke: list[bool] = []

    def on_status(status: Status) -> None:
        if not broke:  # e.g. `watch --json | head -1`, or a process rescan that raises
            broke.append(True)
            raise BrokenPipeError(32, "Broken pipe")
        seen.append(status)

    w = Wired(interval=15, keepalive=60, on_status=on_status)
    with caplog.at_level(logging.ERROR):
        w.run_for(125)
    assert seen[0].state is State.ERROR
    assert seen[0].detail == f"cpgw-tray internal error — see the log at {LOG}."
    assert seen[0].checked_at == datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
    assert {s.state for s in seen[1:]} == {State.READY}
    kinds = [kind for kind, _ in w.calls]
    assert kinds.count("tickle") == 2 and kinds.count("check") == 7  # as without the error
    assert any(r.exc_info and r.exc_info[0] is BrokenPipeError for r in caplog.records)


def test_a_check_that_raises_is_an_internal_error_and_checks_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    w = Wired(interval=15)
    w.answers = [RecursionError("maximum recursion depth exceeded")]
    with caplog.at_level(logging.ERROR):
        assert w.poller.step() == 15
    assert [s.state for s in w.seen] == [State.ERROR]
    assert "internal error — see the log at " + LOG in w.seen[0].detail
    assert w.poller.view(w.clocks.wall()).state is State.ERROR
    assert any(r.exc_info and r.exc_info[0] is RecursionError for r in caplog.records)
    w.run_for(15)
    assert [s.state for s in w.seen] == [State.ERROR, State.READY]


def test_when_publishing_the_error_fails_too_it_is_logged_and_checks_go_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def on_status(status: Status) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    w = Wired(interval=15, on_status=on_status)
    with caplog.at_level(logging.ERROR):
        w.run_for(60)
    assert [t - 1000 for _, t in w.calls] == [0, 15, 30, 45, 60]
    assert len([r for r in caplog.records if r.exc_info]) == 10  # the status, then the error


def test_the_thread_survives_a_failing_receiver() -> None:
    got = threading.Event()
    seen: list[Status] = []

    def on_status(status: Status) -> None:
        seen.append(status)
        if len(seen) == 1:
            raise RuntimeError("a rescan that raises")
        got.set()

    poller = Poller(lambda: make(State.READY), on_status, interval=3600, log_path=LOG)
    poller.start()
    try:
        assert got.wait(5)  # the error itself was published
        got.clear()
        # and the thread still checks: asked until it takes the request (a click while
        # it is still publishing the error coalesces with that check)
        assert wait_for(poller.check_now, timeout=5)
        assert got.wait(5)
    finally:
        poller.stop()
    assert [s.state for s in seen] == [State.READY, State.ERROR, State.READY]


def test_a_broken_clock_does_not_spin_the_thread() -> None:
    calls: list[int] = []

    def clock() -> float:
        calls.append(1)
        raise OSError("clock")

    published = threading.Event()
    poller = Poller(lambda: make(State.READY), lambda s: published.set(), interval=15, clock=clock)
    poller.start()
    assert published.wait(5)  # the internal error was shown
    poller.stop()
    for thread in poller.threads:
        thread.join(5)
        assert not thread.is_alive()
    assert len(calls) < 20  # it waited between attempts


# ------------------------------------------------------------------ freshness


def test_stale_view_rule() -> None:
    done = datetime(2026, 11, 29, 12, 0, 7, tzinfo=timezone.utc)
    latest = Status(State.READY, "Ready", "d", checked_at=done, url="u", account="DU1")
    until = fresh_until(done, next_due_s=15, timeout_s=10)
    assert until == done + timedelta(seconds=30)
    assert stale_view(latest, until, until) is None
    stale = stale_view(latest, until, until + timedelta(seconds=1))
    assert stale is not None and stale.state is State.UNKNOWN
    assert stale.checked_at == done and stale.url == "u" and stale.account is None
    since = done.astimezone().strftime("%H:%M:%S")
    assert f"no check finished since {since}" in stale.detail


def test_a_wedged_check_is_shown_stale_after_interval_timeout_and_grace() -> None:
    w = Wired(interval=15, timeout=10)
    w.poller.step()
    first = w.seen[0]
    w.clocks.advance(29.9)  # the next check is stuck: step is not called again
    assert w.poller.check_freshness() > 0
    assert w.seen == [first] and w.poller.view(w.clocks.wall()) == first
    w.clocks.advance(0.2)
    w.poller.check_freshness()
    w.clocks.advance(60)
    w.poller.check_freshness()  # published once, not again
    assert len(w.seen) == 2
    stale = w.seen[1]
    assert stale.state is State.UNKNOWN and stale.checked_at == first.checked_at
    assert "no check finished since " in stale.detail
    assert w.poller.view(w.clocks.wall()) == stale


def test_the_watchdog_thread_shows_a_wedged_check_as_stale() -> None:
    clocks = Clocks()
    release, entered = threading.Event(), threading.Event()
    ready, stale = threading.Event(), threading.Event()
    seen: list[Status] = []

    def check() -> Status:
        if seen:  # the second check hangs
            entered.set()
            release.wait(30)
        return Status(State.READY, "Ready", "d", checked_at=clocks.wall())

    def on_status(status: Status) -> None:
        seen.append(status)
        (stale if status.state is State.UNKNOWN else ready).set()

    poller = Poller(
        check,
        on_status,
        interval=15,
        timeout=10,
        clock=clocks.mono,
        wall=clocks.wall,
        look_every=0.01,
    )
    poller.start()
    try:
        assert ready.wait(5)
        clocks.advance(15)  # the next check is due; the poller notices within a slice
        assert entered.wait(5)
        assert not stale.is_set()
        clocks.advance(16)
        assert stale.wait(5)
    finally:
        poller.stop()
        release.set()
    assert [s.state for s in seen] == [State.READY, State.UNKNOWN]


def test_after_a_resume_a_check_runs_at_once() -> None:
    w = Wired(interval=15)
    w.poller.step()
    w.clocks.advance(5)
    assert w.poller.step() == 10
    w.clocks.suspend(3600)  # the laptop slept an hour; the monotonic clock did not move
    w.poller.check_freshness()
    assert w.seen[-1].state is State.UNKNOWN  # the verdict is an hour old
    w.poller.step()
    assert [t - 1000 for _, t in w.calls] == [0, 5]
    assert w.seen[-1].state is State.READY
    assert w.poller.step() == 15  # and the schedule goes on from there


def test_a_backoff_after_429_is_not_stale_before_it_ends() -> None:
    w = Wired(interval=15, timeout=10)
    w.answers = [
        Status(
            State.RATE_LIMITED, "Rate limited", "d", retry_after_s=900, checked_at=w.clocks.wall()
        )
    ]
    assert w.poller.step() == 900
    w.clocks.advance(900 + 10 + 4.9)
    w.poller.check_freshness()
    assert [s.state for s in w.seen] == [State.RATE_LIMITED]
    w.clocks.advance(0.2)
    w.poller.check_freshness()
    assert [s.state for s in w.seen] == [State.RATE_LIMITED, State.UNKNOWN]


# ------------------------------------------------------------------ honest pacing


def test_a_request_held_back_publishes_nothing_new_and_waits() -> None:
    w = Wired(interval=15, timeout=10)
    w.poller.step()
    w.clocks.advance(15)
    w.answers = [Deferred(120)]
    assert w.poller.step() == 120
    assert [s.state for s in w.seen] == [State.READY, State.READY]  # the same verdict
    at = (w.clocks.wall() + timedelta(seconds=120)).astimezone().strftime("%H:%M:%S")
    assert w.seen[1].detail == f"d Next check at {at}."
    assert w.seen[1].checked_at == w.seen[0].checked_at  # no check finished
    assert w.seen[1].http_status is None and w.seen[1].retry_after_s is None
    w.clocks.advance(119.9)
    assert w.poller.step() == pytest.approx(0.1)  # no attempt before the hold ends
    w.clocks.advance(10 + 5)  # the freshness deadline moved with the pacing
    w.poller.check_freshness()
    assert len(w.seen) == 2
    w.poller.step()
    assert [round(t - 1000, 1) for _, t in w.calls] == [0, 15, 149.9]
    assert w.seen[-1].detail == "d"


def test_a_held_back_request_replaces_the_next_check_note() -> None:
    w = Wired(interval=15)
    note = "Too many requests. Next check in 60 s, at 12:01:00."
    w.answers = [Status(State.RATE_LIMITED, "Rate limited", note, retry_after_s=60)]
    w.poller.step()
    w.clocks.advance(60)
    w.answers = [Deferred(30)]
    w.poller.step()
    at = (w.clocks.wall() + timedelta(seconds=30)).astimezone().strftime("%H:%M:%S")
    assert w.seen[-1].detail == f"Too many requests. Next check at {at}."
    assert w.seen[-1].state is State.RATE_LIMITED and w.seen[-1].retry_after_s == 60


def test_held_back_before_any_verdict_publishes_nothing() -> None:
    w = Wired(interval=15)
    w.answers = [Deferred(40)]
    assert w.poller.step() == 40
    assert w.seen == []
    assert w.poller.view(w.clocks.wall()).state is State.UNKNOWN


def test_a_held_back_tickle_waits_too() -> None:
    w = Wired(interval=15, keepalive=60)
    w.poller.step()  # a check: a session exists
    w.clocks.advance(60)
    w.answers = [Deferred(300)]
    assert w.poller.step() == 300  # neither the tickle nor a check goes before the hold ends
    w.run_for(299)
    assert w.calls == [("check", 1000), ("tickle", 1060)]
    w.run_for(1)
    assert w.calls[-1] == ("tickle", 1360)


def test_a_held_back_verdict_that_is_already_stale_stays_stale() -> None:
    w = Wired(interval=15, timeout=10)
    w.poller.step()
    w.clocks.suspend(600)
    w.poller.check_freshness()
    w.answers = [Deferred(120)]
    w.poller.step()
    assert [s.state for s in w.seen] == [State.READY, State.UNKNOWN]
    assert w.poller.view(w.clocks.wall()).state is State.UNKNOWN


def test_stop_ends_both_threads_at_once() -> None:
    poller = Poller(lambda: make(State.READY), lambda s: None, interval=15)
    poller.start()
    poller.stop()
    for thread in poller.threads:
        thread.join(5)
        assert not thread.is_alive()


def test_a_wall_clock_set_back_does_not_keep_a_verdict_fresh() -> None:
    w = Wired(interval=15, timeout=10)
    w.poller.step()
    w.clocks.suspend(-3600)  # someone sets the clock back an hour; the check then wedges
    w.clocks.advance(29.9)
    w.poller.check_freshness()
    assert len(w.seen) == 1
    w.clocks.advance(0.2)
    w.poller.check_freshness()
    assert [s.state for s in w.seen] == [State.READY, State.UNKNOWN]
