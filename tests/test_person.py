"""The person policy with an injected clock: reminders, not nagging; each competing
policy as named; at most one takeover per 5 minutes, never in a window; pauses."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from cpgw_tray.model.person import MAX_REMINDERS, PersonPolicy, needs_login
from cpgw_tray.model.status import LOOKS, State, Status

T0 = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)  # a Wednesday afternoon


def st(state: State, connected: bool | None = None) -> Status:
    return Status(state, LOOKS[state].label, "d", connected=connected)


def walk(
    policy: PersonPolicy,
    state: State,
    start: datetime,
    minutes: float,
    step_s: float = 15,
    in_window: bool = False,
) -> list[tuple[float, str]]:
    """Feed one verdict every ``step_s`` for ``minutes``; (minutes since start, kind)."""
    events = []
    t = 0.0
    while t <= minutes * 60:
        for event in policy.observe(st(state), start + timedelta(seconds=t), in_window=in_window):
            events.append((t / 60, event.kind))
        t += step_s
    return events


def test_logged_out_after_ready_notifies_at_once_then_every_reminder_at_most_six() -> None:
    policy = PersonPolicy(login_reminder=600)
    walk(policy, State.READY, T0, 1)
    events = walk(policy, State.LOGGED_OUT, T0 + timedelta(minutes=2), 180)
    assert events[0] == (0, "login_needed")
    # the drop comes after what to do about it
    assert [k for _, k in events] == ["login_needed", "dropped"] + ["login_reminder"] * (
        MAX_REMINDERS - 1
    )
    assert [round(m) for m, _ in events] == [0, 0, 10, 20, 30, 40, 50]


def test_no_reminder_without_having_been_ready_unless_after_the_token_reset() -> None:
    policy = PersonPolicy()
    assert walk(policy, State.LOGGED_OUT, T0, 30) == []  # a gateway never logged into
    first = policy.observe(st(State.LOGGED_OUT), T0, in_window=False, after_token_reset=True)
    assert [e.kind for e in first] == ["login_needed"]


def test_snooze_stops_reminders_for_an_hour() -> None:
    policy = PersonPolicy(login_reminder=600)
    walk(policy, State.READY, T0, 0)
    assert walk(policy, State.LOGGED_OUT, T0, 1)[0][1] == "login_needed"
    policy.snooze(T0 + timedelta(minutes=1))
    events = walk(policy, State.LOGGED_OUT, T0 + timedelta(minutes=1), 90)
    assert events and all(m >= 60 for m, _ in events)  # nothing for the hour


def test_no_reminders_inside_a_window_and_a_window_ends_the_episode() -> None:
    policy = PersonPolicy(login_reminder=600)
    walk(policy, State.READY, T0, 0)
    walk(policy, State.LOGGED_OUT, T0, 25)  # three announcements
    assert walk(policy, State.LOGGED_OUT, T0 + timedelta(minutes=30), 90, in_window=True) == []
    after = walk(policy, State.LOGGED_OUT, T0 + timedelta(minutes=121), 1)
    assert after[0] == (0, "login_needed")  # a new episode, counted afresh


def test_reminders_off_with_zero() -> None:
    policy = PersonPolicy(login_reminder=0)
    walk(policy, State.READY, T0, 0)
    assert [k for _, k in walk(policy, State.LOGGED_OUT, T0, 120)] == ["login_needed", "dropped"]


def test_login_ends_the_episode() -> None:
    policy = PersonPolicy(login_reminder=600)
    walk(policy, State.READY, T0, 0)
    walk(policy, State.LOGGED_OUT, T0, 15)
    back = policy.observe(st(State.READY), T0 + timedelta(minutes=16), in_window=False)
    assert [e.kind for e in back] == ["logged_in"] and policy.reminders == 0


def test_needs_login() -> None:
    assert needs_login(st(State.LOGGED_OUT))
    assert needs_login(st(State.NOT_AUTHENTICATED, connected=False))
    assert not needs_login(st(State.NOT_AUTHENTICATED, connected=True))  # reauth fixes it
    assert not needs_login(st(State.GATEWAY_DOWN)) and not needs_login(st(State.COMPETING))


def test_leave_notifies_and_never_takes_over() -> None:
    policy = PersonPolicy(on_competing="leave")
    events = walk(policy, State.COMPETING, T0, 120)
    assert [k for _, k in events] == ["competing"]


def test_take_back_at_once_and_never_twice_within_five_minutes() -> None:
    policy = PersonPolicy(on_competing="take_back")
    events = walk(policy, State.COMPETING, T0, 12)
    takeovers = [m for m, k in events if k == "take_over"]
    assert events[0] == (0, "competing") and takeovers[0] == 0
    assert takeovers == [0, 5, 10]


def test_take_back_after_waits_and_leave_it_this_time() -> None:
    policy = PersonPolicy(on_competing="take_back_after", compete_after=900)
    events = walk(policy, State.COMPETING, T0, 20)
    assert [(round(m), k) for m, k in events] == [(0, "competing"), (15, "take_over")]
    other = PersonPolicy(on_competing="take_back_after", compete_after=900)
    walk(other, State.COMPETING, T0, 5)
    assert other.take_over_at == T0 + timedelta(minutes=15)  # the menu's countdown
    other.leave_this_time()
    assert walk(other, State.COMPETING, T0 + timedelta(minutes=5), 30) == []


def test_never_takes_over_inside_a_window_or_a_pause() -> None:
    policy = PersonPolicy(on_competing="take_back")
    events = walk(policy, State.COMPETING, T0, 10, in_window=True)
    assert "take_over" not in [k for _, k in events]
    paused = PersonPolicy(on_competing="take_back")
    paused.pause(T0)
    assert "take_over" not in [k for _, k in walk(paused, State.COMPETING, T0, 59)]
    assert paused.paused(T0 + timedelta(minutes=59))
    assert not paused.paused(T0 + timedelta(minutes=61))
    later = walk(paused, State.COMPETING, T0 + timedelta(minutes=61), 1)
    assert [k for _, k in later] == ["take_over"]


def test_unknown_policy_refused() -> None:
    with pytest.raises(ValueError, match="on_competing"):
        PersonPolicy(on_competing="always")


def test_choosing_another_policy_applies_to_a_competing_session_under_way() -> None:
    policy = PersonPolicy(on_competing="leave", compete_after=900)
    walk(policy, State.COMPETING, T0, 5)
    policy.choose("take_back_after", T0 + timedelta(minutes=5))
    assert policy.take_over_at == T0 + timedelta(minutes=20)
    events = walk(policy, State.COMPETING, T0 + timedelta(minutes=6), 20)
    assert [(round(m), k) for m, k in events] == [(14, "take_over")]  # at T0 + 20 min
    policy.choose("leave", T0 + timedelta(minutes=30))
    assert policy.take_over_at is None
    with pytest.raises(ValueError, match="on_competing"):
        policy.choose("sometimes", T0)
