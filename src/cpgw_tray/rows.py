"""The words of the menu's information rows: the explanation on a fixed number of rows,
and the countdowns ("Login expires in 23 h 59 min", "Next check in 42 s", "IBKR restart
in 2 h 10 min"), each a function of the shown verdict or IBKR's clock and the time now,
so a backend can redraw it in place.
"""

from __future__ import annotations

import re
import textwrap
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from .ibkr_clock import (
    clock_text,
    next_token_reset,
    next_window,
    restart_text,
    token_reset_text,
    window_at,
)
from .status import State, Status
from .wording import duration

if TYPE_CHECKING:
    from .maintenance import IbkrClock

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


def restart_row(clock: IbkrClock, now: datetime, after_this: bool = False) -> str:
    """The IBKR restart window now ("IBKR nightly restart until 01:45 ET"), else the
    next one ("IBKR restart in 2 h 10 min (00:15 ET)"); ``after_this``: the one after
    the window now (the menu's head already tells that one)."""
    window = window_at(clock.region, now, clock.schedule)
    if window is None:
        return restart_text(next_window(clock.region, now, clock.schedule), now)
    if after_this:
        return restart_text(next_window(clock.region, window.end, clock.schedule), now)
    return window.label


def token_row(clock: IbkrClock, now: datetime) -> str:
    """The weekly token reset: a warning the day before ("Full login with your phone
    needed after Sun 01:00 ET"), else when it is ("Weekly login reset: Sun 01:00 ET")."""
    warning = token_reset_text(now, schedule=clock.schedule)
    if warning:
        return warning
    reset = next_token_reset(now, clock.schedule)
    return f"Weekly login reset: {clock_text(reset, clock.schedule.token_reset[0], day=True)}"


def next_check(status: Status, now: datetime) -> str:
    """After a 429: ``Next check in 42 s, at 12:01:00``."""
    if status.retry_after_s is None or status.checked_at is None:
        return "Next check: time not known"
    left = status.retry_after_s - _elapsed(status, now)
    if left < 0.5:
        return "Next check: due now"
    at = (status.checked_at + timedelta(seconds=status.retry_after_s)).astimezone()
    return f"Next check in {duration(left, with_seconds=True)}, at {at:%H:%M:%S}"
