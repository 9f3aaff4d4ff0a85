"""The tray through a whole week in every region, a check every 5 minutes on a fake
clock, across each daylight-saving change: the restart look exactly inside each window
(its start included, its end not), no notification for a drop the window explains, and
exactly one, 5 minutes after the window, when the session has not come back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from cpgw_tray.care import maintenance
from cpgw_tray.client.api import GatewayClient
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.settings.config import load
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.tray_app import TrayApp

from .test_ibkr_clock import REGIONS, WEEKS, expected_spans, grid, utc
from .test_tray import IdlePoller

Walk = tuple[list[tuple[datetime, datetime]], list[tuple[datetime, str]]]


def walk(region: str, week: str, back_after: timedelta) -> Walk:
    """Check every 5 minutes for a week: logged out from each window's start until
    ``back_after`` past its end, ready otherwise. Returns the windows that lie within
    the week (read from the published table independently) and the notifications."""
    lo = utc(WEEKS[week])
    hi = lo + timedelta(days=7)
    spans = expected_spans(region, lo - timedelta(days=2), hi + timedelta(days=1))
    now = [lo]
    config = load({"region": region}, env={})
    client = GatewayClient(config.url, verify=False)
    tray = TrayApp(config, client, poller=IdlePoller(), now=lambda: now[0])
    backend = DummyBackend()
    tray.start(backend)
    notified: list[tuple[datetime, str]] = []
    for at in grid(lo, hi):
        now[0] = at
        down = any(start <= at < end + back_after for start, end in spans)
        state = State.LOGGED_OUT if down else State.READY
        status = tray.ibkr.stamp(Status(state, LOOKS[state].label, "d", checked_at=at))
        seen = len(backend.calls)
        tray.apply(status)
        icon = backend.icon
        inside = any(start <= at < end for start, end in spans)
        assert (icon == maintenance.ICON) is inside, (region, at)
        notified += [(at, v) for k, v in backend.calls[seen:] if k == "notify"]
    client.close()
    return [(s, e) for s, e in spans if lo <= s and e + back_after < hi], notified


@pytest.mark.parametrize("region", list(REGIONS))
@pytest.mark.parametrize("week", list(WEEKS))
def test_a_drop_inside_each_window_that_comes_back_is_silent(region: str, week: str) -> None:
    windows, notified = walk(region, week, back_after=timedelta(minutes=3))
    assert len(windows) >= 7 and notified == []


@pytest.mark.parametrize("region", list(REGIONS))
@pytest.mark.parametrize("week", list(WEEKS))
def test_a_session_not_back_5_minutes_after_a_window_notifies_once(region: str, week: str) -> None:
    back_after = timedelta(minutes=15)
    windows, notified = walk(region, week, back_after)
    first, last = windows[0][0], windows[-1][1] + back_after
    seen = [(at, text.split(":")[0]) for at, text in notified if first <= at <= last]
    # per window: one "not back" 5 minutes after its end, then "Ready" when it is back
    expected = [
        (at, text)
        for _, end in windows
        for at, text in (
            (end + timedelta(minutes=5), "Not back after IBKR's restart"),
            (end + back_after, "Ready. d"),
        )
    ]
    assert seen == expected
