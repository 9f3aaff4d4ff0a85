"""IBKR's restart windows applied to the checks: each status stamped with its region and
window fields, and the rules that follow from them — no automatic reauthentication inside
a window, checks paced to one a minute there while not ``ready``, an expected drop shown
with its own look and without notifications (the menu's words on what is coming are
:mod:`cpgw_tray.tray.rows`').

The table and its arithmetic are :mod:`cpgw_tray.model.ibkr_clock`'s; this module only reads
the computer's UTC offset (once, for ``region = "auto"``) and the status fields.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..model.ibkr_clock import (
    IBKR,
    RegionChoice,
    Schedule,
    Window,
    next_window,
    resolve_region,
    restart_text,
    window_at,
)
from ..model.status import Glyph, Look, State, Status

if TYPE_CHECKING:
    from ..settings.config import Config

log = logging.getLogger(__name__)

PACE = 60.0  # seconds between checks inside a window while not ready
QUIET_AFTER = timedelta(minutes=5)  # no notification until this long after a window ends
BLUE = (52, 101, 164)
LOOK = Look(BLUE, Glyph.CLOCK, None, "IBKR restart")
ICON = "maintenance"  # the icon's name beside the states' (see icons.py)

# States an IBKR restart explains; the others (gateway down, access denied, competing,
# rate limited) are not IBKR's doing and keep their own look. ``error`` counts only as
# a 5xx reply ("HTTP 500 loops after an IBKR server restart; 503 while IBKR is not ready").
EXPLAINED = frozenset(
    {State.LOGGED_OUT, State.NOT_AUTHENTICATED, State.DISCONNECTED, State.NOT_RESPONDING}
)


def in_window(status: Status) -> bool:
    """The check fell inside an IBKR restart window (whatever its state)."""
    return status.maintenance_until is not None


def expected_drop(status: Status) -> bool:
    """A state the restart window the check fell in explains: shown with :data:`LOOK`."""
    if not in_window(status):
        return False
    if status.state is State.ERROR:
        return status.http_status is not None and status.http_status >= 500
    return status.state in EXPLAINED


def pace(status: Status) -> float:
    """Seconds the next check (and tickle) must wait at least: :data:`PACE` inside a
    window while not ready, else 0. While ready, keep-alive goes on as usual: a wrong
    region must never let a live session time out."""
    return PACE if in_window(status) and status.state is not State.READY else 0.0


def note(status: Status) -> str:
    """For a line of ``watch``: " [IBKR nightly restart until 01:45 ET]" inside a window,
    " [IBKR restart in 2 h 10 min (00:15 ET)]" outside; "" without the fields."""
    at, region = status.checked_at, status.region
    if at is None or region is None or status.next_maintenance is None:
        return ""
    current = window_at(region, at) if in_window(status) else None
    return f" [{current.label if current else restart_text(next_window(region, at), at)}]"


def local_utc_offset(now: datetime | None = None) -> timedelta:
    """This computer's UTC offset now (daylight saving included)."""
    return (now or datetime.now()).astimezone().utcoffset() or timedelta(0)


class IbkrClock:
    """The region in use, and what IBKR's clock says about a check or a moment. With
    ``enabled`` false (setting ``restart_windows = false``) no moment is in a window."""

    def __init__(
        self, choice: RegionChoice, schedule: Schedule = IBKR, *, enabled: bool = True
    ) -> None:
        self.choice = choice
        self.region = choice.region
        self.schedule = schedule
        self.enabled = enabled

    @classmethod
    def from_config(cls, config: Config, utc_offset: timedelta | None = None) -> IbkrClock:
        """The region the settings ask for; ``auto`` reads this computer's UTC offset."""
        if config.reset_timezone is not None:
            log.warning(
                "config: reset_timezone is deprecated (IBKR restarts by region, not at "
                'midnight): set region = "na", "eu" or "ap" instead; using region %s',
                config.region,
            )
        offset = local_utc_offset() if utc_offset is None else utc_offset
        choice = resolve_region(config.region, offset)
        log.info("%s; restart windows %s", choice.text, "on" if config.restart_windows else "off")
        return cls(choice, enabled=config.restart_windows)

    def stamp(self, status: Status) -> Status:
        """The status with its region and, from its ``checked_at``, the window fields."""
        at = status.checked_at
        if at is None or not self.enabled:
            return replace(status, region=self.region)
        current = window_at(self.region, at, self.schedule)
        upcoming = next_window(self.region, at, self.schedule)
        return replace(
            status,
            region=self.region,
            maintenance_until=current.end if current else None,
            next_maintenance=upcoming.start,
        )

    def inside(self, status: Status) -> bool:
        """The check fell inside a window (from its ``checked_at``, stamped or not)."""
        return self.window(status) is not None

    def window(self, status: Status) -> Window | None:
        """The window the check fell in, if any."""
        at = status.checked_at
        if at is None or not self.enabled:
            return None
        return window_at(self.region, at, self.schedule)

    def quiet(self, status: Status) -> bool:
        """No notifications for this check: it fell inside a window, or less than
        :data:`QUIET_AFTER` after one ended (the session gets time to come back)."""
        at = status.checked_at
        if at is None or not self.enabled:
            return False
        after = window_at(self.region, at - QUIET_AFTER, self.schedule)
        return in_window(status) or after is not None
