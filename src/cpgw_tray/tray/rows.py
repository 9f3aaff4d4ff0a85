"""The words of the menu's information rows: the explanation on a fixed number of rows,
and the countdowns ("Login expires in 23 h 59 min", "Next check in 42 s", "IBKR restart
in 2 h 10 min"), each a function of the shown verdict or IBKR's clock and the time now,
so a backend can redraw it in place.

Every time is told on this computer's clock with its zone ("07:25 GMT"); IBKR's times
add the region's own clock in brackets where it reads otherwise ("07:25 GMT (08:25 CET)"),
so the menu never mixes zones without saying which.
"""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from ..model.ibkr_clock import (
    DAY_NAMES,
    Window,
    clock_text,
    duration_text,
    next_token_reset,
    next_window,
    window_at,
)
from ..model.status import State, Status
from ..model.wording import duration

if TYPE_CHECKING:
    from ..care.maintenance import IbkrClock

# The states before a "ready" that mean the tray saw the login happen (else the session
# may be older than the tray's view of it: "seen ready since").
AFTER_LOGIN = frozenset(
    {State.LOGGED_OUT, State.NOT_AUTHENTICATED, State.COMPETING, State.DISCONNECTED}
) | {State.GATEWAY_DOWN}  # a gateway started afresh holds no session
DETAIL_ROWS = 3  # rows for the explanation in every state but ready
DETAIL_WIDTH = 60  # characters a row
# the classification's and the poller's words for when the next check is
_NEXT_CHECK_NOTE = re.compile(r"\s*Next check (?:in \d+ s, )?at \d\d:\d\d:\d\d\.")


def detail_rows(status: Status) -> list[str]:
    """The explanation on a fixed number of rows, wrapped on word boundaries, cut with
    "…" or padded with blank rows. After a 429 the countdown has a live row of its own."""
    detail = status.detail
    if status.state is State.RATE_LIMITED and status.retry_after_s is not None:
        detail = _NEXT_CHECK_NOTE.sub("", detail)
    rows = 2 if status.state is State.READY else DETAIL_ROWS
    wrap = textwrap.TextWrapper(DETAIL_WIDTH, break_long_words=False, break_on_hyphens=False)
    lines = wrap.wrap(detail)
    if len(lines) > rows:
        rest = " ".join(lines[rows - 1 :])
        lines = [*lines[: rows - 1], textwrap.shorten(rest, DETAIL_WIDTH, placeholder=" …")]
    return lines + [" "] * (rows - len(lines))


def _elapsed(status: Status, now: datetime) -> float:
    """Seconds since ``status``'s check finished."""
    at = status.checked_at
    return 0.0 if at is None else max(0.0, (now - at).total_seconds())


def login_left(status: Status, now: datetime) -> str:
    """``Login expires in 23 h 59 min``, from the last tickle's ``ssoExpires``."""
    left = status.sso_expires_s
    if left is None:
        return "Login expires: unknown"
    left -= _elapsed(status, now)
    return "Login expired" if left <= 0 else f"Login expires in {duration(left)}"


def local_clock(
    moment: datetime, zone: str | None = None, day: bool = False, seconds: bool = False
) -> str:
    """``moment`` on this computer's clock with its zone ("07:25 GMT"; ``day``: "Sun
    06:00 GMT"); ``zone``: IBKR's region clock follows in brackets where it reads
    otherwise ("07:25 GMT (08:25 CET)")."""
    local = moment.astimezone()
    weekday = f"{DAY_NAMES[local.weekday()]} " if day else ""  # not %a: GTK sets the locale
    text = f"{weekday}{local:%H:%M:%S}" if seconds else f"{weekday}{local:%H:%M}"
    text += f" {local.tzname()}" if local.tzname() else ""
    if zone is not None:
        theirs = moment.astimezone(ZoneInfo(zone))
        if theirs.utcoffset() != local.utcoffset():
            other_day = day and theirs.date() != local.date()
            text += f" ({clock_text(moment, zone, other_day)})"
    return text


def window_row(window: Window) -> str:
    """The window now: "IBKR nightly restart until 06:45 GMT (01:45 ET)"."""
    if window.kind == "weekend":
        return f"IBKR weekend maintenance until {local_clock(window.end, window.zone, True)}"
    return f"IBKR nightly restart until {local_clock(window.end, window.zone)}"


def _coming(window: Window, now: datetime) -> str:
    """ "IBKR restart in 2 h 10 min, at 05:15 GMT (00:15 ET)"; the weekday is told when
    it is not within a day, and for the weekend window."""
    left = window.start - now
    day = window.kind == "weekend" or left >= timedelta(days=1)
    what = "IBKR weekend maintenance" if window.kind == "weekend" else "IBKR restart"
    return f"{what} in {duration_text(left)}, at {local_clock(window.start, window.zone, day)}"


def restart_row(clock: IbkrClock, now: datetime, after_this: bool = False) -> str:
    """The IBKR restart window now ("IBKR nightly restart until 06:45 GMT (01:45 ET)"),
    else the next one ("IBKR restart in 2 h 10 min, at 05:15 GMT (00:15 ET)");
    ``after_this``: the one after the window now (the menu's head already tells that)."""
    window = window_at(clock.region, now, clock.schedule)
    if window is None:
        return _coming(next_window(clock.region, now, clock.schedule), now)
    if after_this:
        return _coming(next_window(clock.region, window.end, clock.schedule), now)
    return window_row(window)


def token_row(clock: IbkrClock, now: datetime) -> str:
    """The weekly token reset: a warning the day before ("Full login with your phone
    needed after Sun 06:00 GMT (01:00 ET)"), else when it is ("Weekly login reset: …")."""
    reset = next_token_reset(now, clock.schedule)
    when = local_clock(reset, clock.schedule.token_reset[0], day=True)
    if reset - now <= timedelta(days=1):
        return f"Full login with your phone needed after {when}"
    return f"Weekly login reset: {when}"


def since_row(state: State, since: datetime, came_from: State | None) -> str:
    """Since when the state holds: "Authenticated since 07:14 GMT" when the tray saw the
    login (``came_from``: the state before), "Seen ready since …" when it did not (the
    session may be older), "Since …" in the other states."""
    at = local_clock(since)
    if state is not State.READY:
        return f"Since {at}"
    return f"Authenticated since {at}" if came_from in AFTER_LOGIN else f"Seen ready since {at}"


def next_check(status: Status, now: datetime) -> str:
    """After a 429: ``Next check in 42 s, at 12:01:00``."""
    if status.retry_after_s is None or status.checked_at is None:
        return "Next check: time not known"
    left = status.retry_after_s - _elapsed(status, now)
    if left < 0.5:
        return "Next check: due now"
    at = local_clock(status.checked_at + timedelta(seconds=status.retry_after_s), seconds=True)
    return f"Next check in {duration(left, with_seconds=True)}, at {at}"
