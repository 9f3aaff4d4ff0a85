"""IBKR's clock: the published restart windows by region, the weekend window and the
weekly token reset, as data, and pure questions about them.

IBKR restarts its servers every night by region (its System Status page); the gateway's
session drops then, and reauthenticating during a window is what gets an IP blocked. This
module owns the table (:data:`IBKR`, the one place to update when IBKR changes it) and
answers "is this moment inside a window, until when?", "when is the next one?", "when
do the security tokens reset?", plus the region a computer most likely uses and the words
shown for all of it. It does no I/O, reads no clock and starts no threads: every moment
arrives as an aware ``datetime``, every answer is in UTC, and zones come from ``zoneinfo``
by name, so daylight saving is right in every region.

Rules, pinned by the tests:

- A window contains its start and not its end (``start <= at < end``).
- A daily window starts on each local date, in its own zone, whose weekday is Sunday to
  Friday; the weekend window (Friday 23:00 – Saturday 03:00 ET) applies to every region.
- Windows that overlap or touch merge into one span; the span ends where its last window
  ends, and that window gives the span its kind, zone and words.
- A wall time that happens twice (autumn, clocks go back) starts a window at its first
  occurrence and ends one at its last, so the window covers every moment a local clock
  shows inside it; a wall time that does not exist (spring) is read with the offset in
  force before the change. IBKR's table has one such case: the North American window on
  the US autumn change night lasts 00:15 EDT – 01:45 EST.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

UTC = timezone.utc
MON, TUE, WED, THU, FRI, SAT, SUN = range(7)  # date.weekday()
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

REGIONS: dict[str, str] = {"na": "North America", "eu": "Europe", "ap": "Asia-Pacific"}
Kind = Literal["daily", "weekend"]


@dataclass(frozen=True)
class Daily:
    """A window that starts every day named in :attr:`Schedule.daily_days`, local time."""

    zone: str
    start: time
    end: time  # at or before ``start``: ends on the next local date


@dataclass(frozen=True)
class Weekly:
    """A window from one weekday and time to another, local time."""

    zone: str
    start_day: int
    start: time
    end_day: int
    end: time


@dataclass(frozen=True, eq=False)  # compared and cached by identity
class Schedule:
    """A whole timetable. :data:`IBKR` is the real one; tests build others."""

    daily: Mapping[str, tuple[Daily, ...]]  # by region
    daily_days: frozenset[int]
    weekend: tuple[Weekly, ...]  # for every region
    token_reset: tuple[str, int, time]  # zone, weekday, local time


NEW_YORK, ZURICH, HONG_KONG = "America/New_York", "Europe/Zurich", "Asia/Hong_Kong"

# IBKR's published schedule (System Status page; "Auto Restart Considerations" for the
# token reset). The one place to change when IBKR changes it.
IBKR = Schedule(
    daily={
        "na": (Daily(NEW_YORK, time(0, 15), time(1, 45)),),
        "eu": (Daily(ZURICH, time(6, 25), time(7, 45)),),
        "ap": (
            Daily(HONG_KONG, time(4, 45), time(6, 5)),
            Daily(HONG_KONG, time(20, 15), time(21, 15)),
        ),
    },
    daily_days=frozenset({SUN, MON, TUE, WED, THU, FRI}),
    weekend=(Weekly(NEW_YORK, FRI, time(23, 0), SAT, time(3, 0)),),
    token_reset=(NEW_YORK, SUN, time(1, 0)),
)

# Short zone names as IBKR writes them; any other zone shows its own abbreviation
# (Zurich: CET or CEST, Hong Kong: HKT).
SHORT_NAMES = {NEW_YORK: "ET"}

# "auto" region from the computer's UTC offset, in hours: [low, high) bands.
AUTO_BANDS: tuple[tuple[float, float, str], ...] = (
    (-math.inf, -2.0, "na"),
    (-2.0, 4.0, "eu"),
    (4.0, math.inf, "ap"),
)

# The deprecated ``reset_timezone`` setting, read as a region.
ZONE_REGIONS = {NEW_YORK: "na", ZURICH: "eu", HONG_KONG: "ap"}

_SEARCH = timedelta(days=15)  # the weekend window comes every 7 days: plenty


# ------------------------------------------------------------------------------ windows


@dataclass(frozen=True)
class Window:
    """One (merged) restart window: UTC bounds, and the zone its times are told in."""

    start: datetime
    end: datetime
    kind: Kind
    zone: str

    def __contains__(self, at: datetime) -> bool:
        return self.start <= at < self.end

    @property
    def label(self) -> str:
        """E.g. "IBKR nightly restart until 01:45 ET"."""
        if self.kind == "weekend":
            return f"IBKR weekend maintenance until {clock_text(self.end, self.zone, day=True)}"
        return f"IBKR nightly restart until {clock_text(self.end, self.zone)}"


def _utc(day: date, at: time, zone: ZoneInfo, last: bool = False) -> datetime:
    """A local wall time as UTC: its first occurrence, or with ``last`` its last one."""
    naive = datetime.combine(day, at)
    first = naive.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if not last:
        return first
    return max(first, naive.replace(tzinfo=zone, fold=1).astimezone(UTC))


def _local_days(lo: datetime, hi: datetime, zone: ZoneInfo) -> list[date]:
    first, last = lo.astimezone(zone).date(), hi.astimezone(zone).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def _raw(region: str, first: date, last: date, schedule: Schedule) -> list[Window]:
    """Every window of ``region`` that can touch the UTC dates [first, last], unmerged."""
    if region not in schedule.daily:
        raise ValueError(f"unknown region {region!r}; expected one of {', '.join(REGIONS)}")
    lo = datetime.combine(first, time(), UTC)
    hi = datetime.combine(last + timedelta(days=1), time(), UTC)
    out: list[Window] = []
    for spec in schedule.daily[region]:
        zone = ZoneInfo(spec.zone)
        for day in _local_days(lo - timedelta(days=2), hi + timedelta(days=1), zone):
            if day.weekday() not in schedule.daily_days:
                continue
            end_day = day + timedelta(days=1) if spec.end <= spec.start else day
            start, end = _utc(day, spec.start, zone), _utc(end_day, spec.end, zone, last=True)
            out.append(Window(start, end, "daily", spec.zone))
    for week in schedule.weekend:
        zone = ZoneInfo(week.zone)
        for day in _local_days(lo - timedelta(days=8), hi + timedelta(days=1), zone):
            if day.weekday() != week.start_day:
                continue
            days = (week.end_day - week.start_day) % 7
            if days == 0 and week.end <= week.start:
                days = 7
            start = _utc(day, week.start, zone)
            end = _utc(day + timedelta(days=days), week.end, zone, last=True)
            out.append(Window(start, end, "weekend", week.zone))
    return out


@lru_cache(maxsize=512)  # a poller asks about the same day again and again
def _merged(region: str, first: date, last: date, schedule: Schedule) -> tuple[Window, ...]:
    merged: list[Window] = []
    for w in sorted(_raw(region, first, last, schedule), key=lambda w: (w.start, w.end)):
        if merged and w.start <= merged[-1].end:  # overlaps or touches: one span
            span = merged[-1]
            if w.end > span.end:
                merged[-1] = Window(span.start, w.end, w.kind, w.zone)
        else:
            merged.append(w)
    return tuple(merged)


def windows(region: str, lo: datetime, hi: datetime, schedule: Schedule = IBKR) -> list[Window]:
    """The merged windows of ``region`` that overlap [lo, hi), in order."""
    first, last = _as_utc(lo).date(), _as_utc(hi).date()
    return [w for w in _merged(region, first, last, schedule) if w.end > lo and w.start < hi]


def window_at(region: str, at: datetime, schedule: Schedule = IBKR) -> Window | None:
    """The merged window containing ``at``, or None."""
    at = _as_utc(at)
    for w in windows(region, at, at + timedelta(microseconds=1), schedule):
        if at in w:
            return w
    return None


def next_window(region: str, at: datetime, schedule: Schedule = IBKR) -> Window:
    """The first merged window that starts after ``at`` (strictly), weekend included."""
    at = _as_utc(at)
    for ahead in (timedelta(days=2), _SEARCH):  # IBKR: always within two days
        for w in windows(region, at, at + ahead, schedule):
            if w.start > at:
                return w
    raise ValueError(f"no IBKR restart window for region {region!r} within {_SEARCH.days} days")


def next_daily_window(region: str, at: datetime, schedule: Schedule = IBKR) -> Window:
    """The first nightly (not weekend) window that starts after ``at``."""
    window = next_window(region, at, schedule)
    while window.kind != "daily":
        window = next_window(region, window.start, schedule)
    return window


def maintenance_until(region: str, at: datetime, schedule: Schedule = IBKR) -> datetime | None:
    """UTC end of the merged window containing ``at``; None outside every window."""
    w = window_at(region, at, schedule)
    return None if w is None else w.end


def next_maintenance(region: str, at: datetime, schedule: Schedule = IBKR) -> datetime:
    """UTC start of the first window that begins after ``at``, weekend window included."""
    return next_window(region, at, schedule).start


def next_token_reset(at: datetime, schedule: Schedule = IBKR) -> datetime:
    """UTC time of the first weekly token reset after ``at`` (strictly)."""
    at = _as_utc(at)
    name, weekday, wall = schedule.token_reset
    zone = ZoneInfo(name)
    day = at.astimezone(zone).date() - timedelta(days=1)
    while True:
        if day.weekday() == weekday and (moment := _utc(day, wall, zone)) > at:
            return moment
        day += timedelta(days=1)


def _as_utc(at: datetime) -> datetime:
    """``at`` in UTC, where adding a timedelta is real time (in a zone with daylight
    saving it is wall-clock time, and a repeated hour loses its fold)."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{at!r} has no time zone: IBKR's clock needs aware times")
    return at.astimezone(UTC)


# ------------------------------------------------------------------------------ words


def clock_text(moment: datetime, zone: str, day: bool = False) -> str:
    """``moment`` on the wall clock of ``zone``: "01:45 ET", with ``day`` "Sat 03:00 ET"."""
    local = moment.astimezone(ZoneInfo(zone))
    short = SHORT_NAMES.get(zone) or local.tzname() or zone
    weekday = f"{DAY_NAMES[local.weekday()]} " if day else ""  # not %a: GTK sets the locale
    return f"{weekday}{local:%H:%M} {short}"


def duration_text(span: timedelta) -> str:
    """A wait in whole minutes, rounded up: "45 min", "2 h 10 min", "1 d 3 h"."""
    minutes = max(1, math.ceil(span.total_seconds() / 60))
    hours, mins = divmod(minutes, 60)
    if hours == 0:
        return f"{mins} min"
    if hours < 24:
        return f"{hours} h" if mins == 0 else f"{hours} h {mins} min"
    days, hours = divmod(hours, 24)
    return f"{days} d" if hours == 0 else f"{days} d {hours} h"


def restart_text(window: Window, at: datetime) -> str:
    """ "IBKR restart in 2 h 10 min (00:15 ET)"; the weekday is told when it is not
    within a day, and for the weekend window."""
    left = window.start - _as_utc(at)
    day = window.kind == "weekend" or left >= timedelta(days=1)
    what = "IBKR weekend maintenance" if window.kind == "weekend" else "IBKR restart"
    return f"{what} in {duration_text(left)} ({clock_text(window.start, window.zone, day)})"


def token_reset_text(
    at: datetime, within: timedelta = timedelta(days=1), schedule: Schedule = IBKR
) -> str | None:
    """During the ``within`` before the weekly token reset: "Full login with your phone
    needed after Sun 01:00 ET"; else None."""
    reset = next_token_reset(at, schedule)
    if reset - _as_utc(at) > within:
        return None
    when = clock_text(reset, schedule.token_reset[0], day=True)
    return f"Full login with your phone needed after {when}"


# ------------------------------------------------------------------------------ region


@dataclass(frozen=True)
class RegionChoice:
    """The region in use and how it was chosen."""

    region: str  # "na", "eu" or "ap"
    assumed: bool  # chosen from the computer's UTC offset ("auto")
    hint: bool  # the computer is on UTC, which says nothing: the user should set the region

    @property
    def name(self) -> str:
        return REGIONS[self.region]

    @property
    def text(self) -> str:
        """For the menu: "IBKR region: Europe (assumed from this computer's time zone)"."""
        if self.hint:
            why = " (assumed: this computer is on UTC — set region = na, eu or ap)"
        elif self.assumed:
            why = " (assumed from this computer's time zone)"
        else:
            why = ""
        return f"IBKR region: {self.name}{why}"


def resolve_region(setting: str, utc_offset: timedelta) -> RegionChoice:
    """The region for a ``region`` setting; ``"auto"`` reads the computer's UTC offset:
    below −2 h → na, −2 h up to (not including) +4 h → eu, +4 h and above → ap."""
    if setting in REGIONS:
        return RegionChoice(setting, assumed=False, hint=False)
    if setting != "auto":
        raise ValueError(f"unknown region {setting!r}; expected auto, {', '.join(REGIONS)}")
    hours = utc_offset.total_seconds() / 3600
    region = next(name for low, high, name in AUTO_BANDS if low <= hours < high)
    return RegionChoice(region, assumed=True, hint=utc_offset == timedelta(0))


def region_from_reset_timezone(zone: str) -> str:
    """The deprecated ``reset_timezone`` setting as a ``region`` setting."""
    return ZONE_REGIONS.get(zone, "auto")
