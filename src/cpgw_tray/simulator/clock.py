"""The simulator's wall clock: real time, or real time shifted to a chosen moment.

Set ("injected") by ``cpgw-tray sim --clock ISO``, by ``POST /sim/clock`` and by the demo,
whose tray and simulator share one, it lets IBKR's restart windows and weekly token reset
be played at any hour. The simulated gateway plays them only while the clock is injected,
so a simulator on real time never drops a session because of the time of day.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from ..care.maintenance import QUIET_AFTER
from ..model.ibkr_clock import Window, next_token_reset, next_window, window_at
from ..model.status import iso_utc


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def parse_moment(text: str) -> datetime:
    """An ISO 8601 moment with its UTC offset (``2026-11-26T00:30-05:00``, ``…Z``), or
    ``now``; ValueError otherwise."""
    if text.strip().lower() == "now":
        return _utc_now()
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time like 2026-11-26T00:30-05:00") from None
    if moment.utcoffset() is None:
        raise ValueError(f"{text!r} has no UTC offset: add one, e.g. -05:00 or Z")
    return moment.astimezone(timezone.utc)


class SimClock:
    """A wall clock (aware UTC) that runs at real speed from wherever it was set."""

    def __init__(self, real: Callable[[], datetime] = _utc_now) -> None:
        self._real = real
        self._offset: timedelta | None = None
        self._lock = threading.Lock()
        self.left_scenario = "ready"  # the demo's: the scenario before a jump, for the way back

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return self._real() + (offset or timedelta(0))

    @property
    def injected(self) -> bool:
        return self._offset is not None

    def set(self, at: datetime | None) -> None:
        """From now on the clock reads ``at`` and runs on; None: back to real time."""
        with self._lock:
            self._offset = None if at is None else at - self._real()


def reset_moment(region: str, now: datetime) -> datetime:
    """Where the demo's *weekly reset* puts the clock: 30 s before IBKR's next weekly token
    reset, unless that falls inside the region's restart window (North America's and
    Europe's nightly windows hold Sunday 01:00 ET) or the quiet minutes after it; then 30 s
    after those, the reset just passed. Either way the tray shows the reset's own effect,
    not the restart's look."""
    reset = next_token_reset(now)
    before = reset - timedelta(seconds=30)
    window = window_at(region, before) or window_at(region, before - QUIET_AFTER)
    return before if window is None else window.end + QUIET_AFTER + timedelta(seconds=30)


def describe(clock: SimClock, region: str) -> dict[str, Any]:
    """The clock and IBKR's timetable at its time, for ``GET /sim/clock``."""
    at = clock.now()

    def window(w: Window | None) -> dict[str, str] | None:
        if w is None:
            return None
        return {"start": iso_utc(w.start), "end": iso_utc(w.end), "kind": w.kind, "label": w.label}

    return {
        "now": iso_utc(at),
        "injected": clock.injected,
        "region": region,
        "window": window(window_at(region, at)),
        "next_window": window(next_window(region, at)),
        "next_token_reset": iso_utc(next_token_reset(at)),
    }
