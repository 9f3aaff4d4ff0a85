"""One time zone in the menu's words: every time on this computer's clock with its zone;
IBKR's region clock only in brackets, and only where it reads otherwise."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from cpgw_tray.care.maintenance import IbkrClock
from cpgw_tray.model.ibkr_clock import RegionChoice, window_at
from cpgw_tray.model.status import State
from cpgw_tray.tray.rows import restart_row, since_row, token_row, window_row

ZURICH = ZoneInfo("Europe/Zurich")


@pytest.fixture
def local_zone() -> Iterator[Callable[[str], None]]:
    """Set this process's local time zone (as the desktop's would be)."""
    before = os.environ.get("TZ")

    def use(name: str) -> None:
        os.environ["TZ"] = name
        time.tzset()

    yield use
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


def europe() -> IbkrClock:
    return IbkrClock(RegionChoice("eu", assumed=False, hint=False))


def test_in_london_the_times_are_london_s_with_ibkr_s_in_brackets(
    local_zone: Callable[[str], None],
) -> None:
    local_zone("Europe/London")
    now = datetime(2026, 1, 14, 8, 14, tzinfo=ZURICH)  # Wednesday, 07:14 in London
    assert restart_row(europe(), now) == "IBKR restart in 22 h 11 min, at 05:25 GMT (06:25 CET)"
    assert token_row(europe(), now) == "Weekly login reset: Sun 06:00 GMT (01:00 ET)"
    assert since_row(State.READY, now, State.LOGGED_OUT) == "Authenticated since 07:14 GMT"
    window = window_at("eu", datetime(2026, 1, 15, 6, 30, tzinfo=ZURICH))
    assert window is not None
    assert window_row(window) == "IBKR nightly restart until 06:45 GMT (07:45 CET)"


def test_in_zurich_nothing_is_said_twice(local_zone: Callable[[str], None]) -> None:
    local_zone("Europe/Zurich")
    now = datetime(2026, 1, 14, 8, 14, tzinfo=ZURICH)
    assert restart_row(europe(), now) == "IBKR restart in 22 h 11 min, at 06:25 CET"
    assert token_row(europe(), now) == "Weekly login reset: Sun 07:00 CET (01:00 ET)"
    saturday = datetime(2026, 1, 17, 12, 0, tzinfo=ZURICH)
    assert token_row(europe(), saturday) == (
        "Full login with your phone needed after Sun 07:00 CET (01:00 ET)"
    )


@pytest.mark.parametrize(
    ("came_from", "words"),
    [
        (State.LOGGED_OUT, "Authenticated since"),  # the tray saw the login
        (State.NOT_AUTHENTICATED, "Authenticated since"),
        (State.UNKNOWN, "Seen ready since"),  # ready at the first check: login time unknown
        (None, "Seen ready since"),
        (State.NOT_RESPONDING, "Seen ready since"),  # a hiccup: the session may be older
    ],
)
def test_authenticated_since_only_when_the_login_was_seen(
    came_from: State | None, words: str
) -> None:
    at = datetime(2026, 1, 14, 7, 14, tzinfo=timezone.utc)
    assert since_row(State.READY, at, came_from).startswith(f"{words} ")
    assert since_row(State.LOGGED_OUT, at, State.READY).startswith("Since ")


def test_the_tray_says_authenticated_since_after_a_login_it_saw() -> None:
    from cpgw_tray.client.api import GatewayClient
    from cpgw_tray.settings.config import load
    from cpgw_tray.tray.backends.dummy import DummyBackend
    from cpgw_tray.tray.tray_app import TrayApp

    from .test_tray import IdlePoller, snapshot

    config = load({"url": "https://127.0.0.1:5000"}, env={})
    tray = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())
    backend = DummyBackend()
    tray.start(backend)
    tray.apply(snapshot(State.READY))  # ready at the first check
    assert any(e.text.startswith("Seen ready since ") for e in backend.menu)
    tray.apply(snapshot(State.LOGGED_OUT))
    tray.apply(snapshot(State.READY))  # a login seen
    assert any(e.text.startswith("Authenticated since ") for e in backend.menu)
    tray.client.close()
