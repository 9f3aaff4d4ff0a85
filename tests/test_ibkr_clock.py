"""IBKR's clock: the restart windows of every region at their edges, in summer and winter
time, across each daylight-saving change, against IBKR's published table written out
again here (not read from the module), plus invariants over any moment (hypothesis).

Windows contain their start and not their end: ``start <= at < end``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpgw_tray.model.ibkr_clock import (
    FRI,
    IBKR,
    MON,
    REGIONS,
    SAT,
    SUN,
    THU,
    TUE,
    WED,
    Daily,
    Schedule,
    Weekly,
    maintenance_until,
    next_maintenance,
    next_token_reset,
    next_window,
    window_at,
)

UTC = timezone.utc
NY, ZURICH, HK = ZoneInfo("America/New_York"), ZoneInfo("Europe/Zurich"), ZoneInfo("Asia/Hong_Kong")
TICK = timedelta(microseconds=1)
STEP = timedelta(minutes=5)  # every window edge of IBKR's table falls on this grid in UTC


def utc(text: str) -> datetime:
    """ "2026-01-14 05:15" as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# ------------------------------------------------------------------ acceptance


def test_na_weekday_night_and_noon() -> None:
    night = datetime(2026, 1, 14, 0, 30, tzinfo=NY)  # a Wednesday, winter time
    assert maintenance_until("na", night) == utc("2026-01-14 06:45")  # 01:45 ET
    noon = datetime(2026, 1, 14, 12, 0, tzinfo=NY)
    assert maintenance_until("na", noon) is None
    assert next_maintenance("na", noon) == utc("2026-01-15 05:15")  # Thursday 00:15 ET
    assert next_maintenance("na", noon) == datetime(2026, 1, 15, 0, 15, tzinfo=NY)


def test_the_repeated_hour_is_told_apart_by_fold() -> None:
    # 2026-11-01, clocks go back at 02:00 EDT: 01:30 happens twice, both inside the window
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    second = first.replace(fold=1)
    assert (
        maintenance_until("na", first) == maintenance_until("na", second) == utc("2026-11-01 06:45")
    )
    assert maintenance_until("na", datetime(2026, 11, 1, 1, 50, tzinfo=NY, fold=1)) is None
    assert next_token_reset(datetime(2026, 11, 1, 1, 0, tzinfo=NY)) == utc("2026-11-08 06:00")
    assert next_token_reset(datetime(2026, 11, 1, 0, 59, tzinfo=NY)) == utc("2026-11-01 05:00")


def test_answers_are_utc() -> None:
    at = datetime(2026, 7, 15, 0, 30, tzinfo=NY)
    until, upcoming = maintenance_until("na", at), next_maintenance("na", at)
    assert until is not None and until.utcoffset() == timedelta(0)
    assert upcoming.utcoffset() == timedelta(0) and next_token_reset(at).utcoffset() == timedelta(0)


# ------------------------------------------------------------------ edges, by hand

# (region, what, start UTC, end UTC), worked out by hand from the published table:
# ET is UTC-5 (EST) / UTC-4 (EDT); Zurich UTC+1 / +2; Hong Kong UTC+8 all year.
EDGES = [
    ("na", "winter Wednesday", "2026-01-14 05:15", "2026-01-14 06:45"),
    ("na", "summer Wednesday", "2026-07-15 04:15", "2026-07-15 05:45"),
    ("na", "Friday", "2026-01-16 05:15", "2026-01-16 06:45"),
    ("na", "Sunday", "2026-01-18 05:15", "2026-01-18 06:45"),
    ("na", "US summer time, Europe not yet", "2026-03-18 04:15", "2026-03-18 05:45"),
    ("na", "US spring-forward night", "2026-03-08 05:15", "2026-03-08 06:45"),
    # clocks go back at 02:00 EDT: 00:15 EDT to the last 01:45, which is EST
    ("na", "US fall-back night", "2026-11-01 04:15", "2026-11-01 06:45"),
    ("eu", "winter Wednesday", "2026-01-14 05:25", "2026-01-14 06:45"),
    ("eu", "summer Wednesday", "2026-07-15 04:25", "2026-07-15 05:45"),
    ("eu", "Europe still winter time, US summer", "2026-03-18 05:25", "2026-03-18 06:45"),
    ("eu", "EU spring-forward morning", "2026-03-29 04:25", "2026-03-29 05:45"),
    ("eu", "EU fall-back morning", "2026-10-25 05:25", "2026-10-25 06:45"),
    ("eu", "Europe back to winter time, US still summer", "2026-10-28 05:25", "2026-10-28 06:45"),
    ("ap", "morning, local Wednesday", "2026-01-13 20:45", "2026-01-13 22:05"),
    ("ap", "evening, local Wednesday", "2026-01-14 12:15", "2026-01-14 13:15"),
    ("ap", "morning in July: no daylight saving", "2026-07-14 20:45", "2026-07-14 22:05"),
    ("ap", "evening in July", "2026-07-15 12:15", "2026-07-15 13:15"),
    ("ap", "Sunday morning, local", "2026-01-17 20:45", "2026-01-17 22:05"),
    ("ap", "Friday evening, local", "2026-01-16 12:15", "2026-01-16 13:15"),
] + [
    (region, f"weekend window, {season}", start, end)
    for region in REGIONS
    for season, start, end in [
        ("winter", "2026-01-17 04:00", "2026-01-17 08:00"),
        ("summer", "2026-07-18 03:00", "2026-07-18 07:00"),
        ("US summer, Europe winter", "2026-03-14 03:00", "2026-03-14 07:00"),
    ]
]


@pytest.mark.parametrize(
    ("region", "what", "start", "end"), EDGES, ids=[e[1] + "-" + e[0] for e in EDGES]
)
def test_window_edges(region: str, what: str, start: str, end: str) -> None:
    begin, finish = utc(start), utc(end)
    # just before: outside, and this window is the next one
    assert maintenance_until(region, begin - TICK) is None
    assert next_maintenance(region, begin - TICK) == begin
    # the start is inside (inclusive) ...
    assert maintenance_until(region, begin) == finish
    assert maintenance_until(region, finish - TICK) == finish
    # ... the end is not (exclusive)
    assert maintenance_until(region, finish) is None
    # inside, the next window starts after this one ends
    assert next_maintenance(region, begin) > finish
    assert next_maintenance(region, finish - TICK) == next_maintenance(region, finish)


@pytest.mark.parametrize("region", list(REGIONS))
def test_weekend_window_in_every_region(region: str) -> None:
    saturday = datetime(2026, 1, 17, 1, 0, tzinfo=NY)
    window = window_at(region, saturday)
    assert window is not None and window.kind == "weekend"
    assert window.end == datetime(2026, 1, 17, 3, 0, tzinfo=NY)
    assert window.start == datetime(2026, 1, 16, 23, 0, tzinfo=NY)
    assert window.label == "IBKR weekend maintenance until Sat 03:00 ET"


def test_no_daily_window_starts_on_a_local_saturday() -> None:
    # Hong Kong's Saturday windows would fall outside the weekend window: they do not exist
    assert maintenance_until("ap", datetime(2026, 1, 17, 5, 0, tzinfo=HK)) is None
    assert maintenance_until("ap", datetime(2026, 1, 17, 20, 30, tzinfo=HK)) is None
    # Sunday's do
    assert maintenance_until("ap", datetime(2026, 1, 18, 5, 0, tzinfo=HK)) == datetime(
        2026, 1, 18, 6, 5, tzinfo=HK
    )


def test_labels_tell_the_end_in_the_window_zone() -> None:
    def label(region: str, at: datetime) -> str:
        window = window_at(region, at)
        assert window is not None
        return window.label

    assert label("na", utc("2026-01-14 05:30")) == "IBKR nightly restart until 01:45 ET"
    assert label("eu", utc("2026-01-14 05:30")) == "IBKR nightly restart until 07:45 CET"
    assert label("eu", utc("2026-07-15 04:30")) == "IBKR nightly restart until 07:45 CEST"
    assert label("ap", utc("2026-01-14 12:30")) == "IBKR nightly restart until 21:15 HKT"
    assert label("ap", utc("2026-01-13 21:00")) == "IBKR nightly restart until 06:05 HKT"


# Every window of a winter week, Monday 00:00 UTC to the next Monday, by hand.
WEEK = {
    "na": [f"{d} 05:15-06:45" for d in ("12", "13", "14", "15", "16")]
    + ["17 04:00-08:00", "18 05:15-06:45"],
    "eu": [f"{d} 05:25-06:45" for d in ("12", "13", "14", "15", "16")]
    + ["17 04:00-08:00", "18 05:25-06:45"],
    "ap": [
        "12 12:15-13:15", "12 20:45-22:05", "13 12:15-13:15", "13 20:45-22:05",
        "14 12:15-13:15", "14 20:45-22:05", "15 12:15-13:15", "15 20:45-22:05",
        "16 12:15-13:15", "17 04:00-08:00", "17 20:45-22:05", "18 12:15-13:15",
        "18 20:45-22:05",
    ],
}  # fmt: skip


@pytest.mark.parametrize("region", list(REGIONS))
def test_a_winter_week_window_by_window(region: str) -> None:
    seen = []
    at = utc("2026-01-12 00:00")
    while (window := next_window(region, at)).start < utc("2026-01-19 00:00"):
        seen.append(f"{window.start:%d %H:%M}-{window.end:%H:%M}")
        at = window.start
    assert seen == WEEK[region]


# ------------------------------------------------------------------ a week, every 5 minutes

# IBKR's published table, written out again for an independent reading: a moment is inside
# a window when a wall clock in the window's zone shows a time inside it.
FACTS = {
    "na": [(NY, (0, 15), (1, 45))],
    "eu": [(ZURICH, (6, 25), (7, 45))],
    "ap": [(HK, (4, 45), (6, 5)), (HK, (20, 15), (21, 15))],
}
SUNDAY_TO_FRIDAY = {SUN, MON, TUE, WED, THU, FRI}


def showing(region: str, at: datetime) -> set[tuple[object, ...]]:
    """Which windows (by zone, start, and the local date they began) a wall clock says
    ``at`` is in."""
    keys: set[tuple[object, ...]] = set()
    for zone, start, end in FACTS[region]:
        local = at.astimezone(zone)
        if local.weekday() in SUNDAY_TO_FRIDAY and start <= (local.hour, local.minute) < end:
            keys.add((zone.key, start, local.date()))
    et = at.astimezone(NY)
    if et.weekday() == FRI and et.hour >= 23:
        keys.add(("weekend", et.date()))
    if et.weekday() == SAT and et.hour < 3:
        keys.add(("weekend", et.date() - timedelta(days=1)))
    return keys


def grid(lo: datetime, hi: datetime) -> list[datetime]:
    return [lo + n * STEP for n in range(int((hi - lo) / STEP))]


def expected_spans(region: str, lo: datetime, hi: datetime) -> list[tuple[datetime, datetime]]:
    """Each window from the first to the last moment a clock shows it (on the night clocks
    go back, 01:00-01:45 ET shows twice: one window), overlapping ones merged."""
    first: dict[tuple[object, ...], datetime] = {}
    last: dict[tuple[object, ...], datetime] = {}
    for at in grid(lo, hi):
        for key in showing(region, at):
            first.setdefault(key, at)
            last[key] = at
    spans: list[tuple[datetime, datetime]] = []
    for start, end in sorted((first[k], last[k] + STEP) for k in first):
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(end, spans[-1][1]))
        else:
            spans.append((start, end))
    return spans


def expected_token_resets(lo: datetime, hi: datetime) -> list[datetime]:
    firsts: dict[date, datetime] = {}
    for at in grid(lo, hi):
        et = at.astimezone(NY)
        if et.weekday() == SUN and (et.hour, et.minute) == (1, 0):
            firsts.setdefault(et.date(), at)
    return sorted(firsts.values())


# Weeks holding each daylight-saving change of 2026; the US and Europe change on
# different dates (Hong Kong never does).
WEEKS = {
    "US spring forward (Sun 8 Mar)": "2026-03-05 00:00",
    "EU spring forward (Sun 29 Mar)": "2026-03-26 00:00",
    "EU fall back (Sun 25 Oct)": "2026-10-22 00:00",
    "US fall back (Sun 1 Nov)": "2026-10-29 00:00",
}


@pytest.mark.parametrize("region", list(REGIONS))
@pytest.mark.parametrize("week", list(WEEKS))
def test_a_fake_clock_walks_a_week(region: str, week: str) -> None:
    lo = utc(WEEKS[week])
    hi = lo + timedelta(days=7)
    spans = expected_spans(region, lo - timedelta(days=2), hi + timedelta(days=3))
    resets = expected_token_resets(lo, hi + timedelta(days=8))
    assert len(resets) >= 1 and len(spans) >= 7
    inside = 0
    for at in grid(lo, hi):
        holding = [end for start, end in spans if start <= at < end]
        want_until = holding[0] if holding else None
        want_next = min(start for start, _ in spans if start > at)
        assert maintenance_until(region, at) == want_until, at
        assert next_maintenance(region, at) == want_next, at
        assert next_token_reset(at) == min(r for r in resets if r > at), at
        inside += bool(holding)
    assert 7 * 12 <= inside <= 7 * 12 * 3  # 1 h 20 min or more a day, and not all day


# ------------------------------------------------------------------ merging


def schedule(daily: list[Daily], weekend: list[Weekly] | None = None) -> Schedule:
    return Schedule(
        daily={"na": tuple(daily), "eu": (), "ap": ()},
        daily_days=IBKR.daily_days,
        weekend=tuple(IBKR.weekend if weekend is None else weekend),
        token_reset=IBKR.token_reset,
    )


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=NY)


NY_KEY = "America/New_York"


@pytest.mark.parametrize(
    ("daily", "what"),
    [
        (
            [Daily(NY_KEY, time(0, 15), time(1, 45)), Daily(NY_KEY, time(1, 30), time(2, 30))],
            "overlap",
        ),
        (
            [Daily(NY_KEY, time(0, 15), time(1, 45)), Daily(NY_KEY, time(1, 45), time(2, 30))],
            "touch",
        ),
        (
            [Daily(NY_KEY, time(0, 15), time(2, 30)), Daily(NY_KEY, time(1, 0), time(2, 0))],
            "inside",
        ),
    ],
)
def test_overlapping_windows_merge(daily: list[Daily], what: str) -> None:
    table = schedule(daily)
    for at in (ny(14, 0, 15), ny(14, 1, 40), ny(14, 1, 45), ny(14, 2, 29)):
        assert maintenance_until("na", at, table) == ny(14, 2, 30), (what, at)
    assert maintenance_until("na", ny(14, 2, 30), table) is None
    # the inner window's start is not "the next window": the merged span is one
    assert next_maintenance("na", ny(14, 0, 15), table) == ny(15, 0, 15)
    assert next_maintenance("na", ny(14, 0, 0), table) == ny(14, 0, 15)


def test_a_daily_window_running_into_the_weekend_one_merges_with_it() -> None:
    table = schedule([Daily(NY_KEY, time(22, 0), time(23, 30))])
    window = window_at("na", ny(16, 22, 30), table)  # Friday
    assert window is not None
    assert (window.start, window.end, window.kind) == (ny(16, 22), ny(17, 3), "weekend")
    assert window.label == "IBKR weekend maintenance until Sat 03:00 ET"
    assert next_maintenance("na", ny(16, 21), table) == ny(16, 22)


def test_a_window_across_midnight() -> None:
    table = schedule([Daily(NY_KEY, time(23, 45), time(1, 0))], weekend=[])
    assert maintenance_until("na", ny(14, 23, 45), table) == ny(15, 1)
    assert maintenance_until("na", ny(15, 0, 30), table) == ny(15, 1)
    # it starts on Sunday to Friday only: none from Saturday night into Sunday
    assert maintenance_until("na", ny(18, 0, 30), table) is None
    assert maintenance_until("na", ny(19, 0, 30), table) == ny(19, 1)


def test_a_schedule_without_windows_says_so() -> None:
    with pytest.raises(ValueError, match="no IBKR restart window"):
        next_maintenance("na", ny(14, 12), schedule([], weekend=[]))


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown region 'us'"):
        maintenance_until("us", ny(14, 12))
    with pytest.raises(ValueError, match="no time zone"):
        next_maintenance("na", datetime(2026, 1, 14, 12))


# ------------------------------------------------------------------ invariants

moments = st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2040, 12, 31),
    timezones=st.sampled_from([UTC, NY, ZURICH, HK, ZoneInfo("Asia/Kolkata")]),
    allow_imaginary=False,
)
regions = st.sampled_from(list(REGIONS))


@settings(max_examples=400, deadline=None)
@given(regions, moments)
def test_invariants(region: str, at: datetime) -> None:
    at = at.astimezone(UTC)  # so that adding time below is real time, not wall-clock time
    until = maintenance_until(region, at)
    upcoming = next_window(region, at)
    assert upcoming.start > at
    assert upcoming.start - (until or at) < timedelta(days=1)  # the longest gap: Saturday
    assert timedelta(hours=1) <= upcoming.end - upcoming.start <= timedelta(hours=4, minutes=30)
    # the next window's start is inside it; its end is not
    assert maintenance_until(region, upcoming.start) == upcoming.end
    assert maintenance_until(region, upcoming.end) is None
    if until is None:
        # nothing starts between now and the next window
        assert maintenance_until(region, at + (upcoming.start - at) / 2) is None
        assert maintenance_until(region, upcoming.start - TICK) is None
    else:
        assert at < until < upcoming.start  # inside: the next window starts after the end
        assert maintenance_until(region, until - TICK) == until
        window = window_at(region, at)
        assert window is not None and at in window and window.end == until


@settings(max_examples=200, deadline=None)
@given(moments)
def test_token_reset_is_the_next_sunday_one_am_in_new_york(at: datetime) -> None:
    reset = next_token_reset(at)
    # a week is 7 days, one hour more across the autumn change (01:00 ET comes twice that
    # Sunday: the reset is the first, so one at that very moment is next week's)
    assert at < reset <= at.astimezone(UTC) + timedelta(days=7, hours=1)
    local = reset.astimezone(NY)
    assert (local.weekday(), local.hour, local.minute) == (SUN, 1, 0)
