"""IBKR's clock in words and regions: the menu's phrases from times, and the region a
computer most likely uses (its UTC offset's band, boundaries pinned) or its old setting."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cpgw_tray.model.ibkr_clock import (
    REGIONS,
    duration_text,
    next_window,
    region_from_reset_timezone,
    resolve_region,
    restart_text,
    token_reset_text,
)

NY, HK = ZoneInfo("America/New_York"), ZoneInfo("Asia/Hong_Kong")
UTC = timezone.utc


# ------------------------------------------------------------------ words


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "1 min"),
        (30, "1 min"),
        (60, "1 min"),
        (61, "2 min"),
        (59 * 60, "59 min"),
        (3600, "1 h"),
        (2 * 3600 + 10 * 60, "2 h 10 min"),
        (2 * 3600 + 9 * 60 + 1, "2 h 10 min"),
        (24 * 3600, "1 d"),
        (27 * 3600 + 60, "1 d 3 h"),
    ],
)
def test_duration_text(seconds: int, text: str) -> None:
    assert duration_text(timedelta(seconds=seconds)) == text


def test_restart_text() -> None:
    at = datetime(2026, 1, 13, 22, 5, tzinfo=NY)
    assert restart_text(next_window("na", at), at) == "IBKR restart in 2 h 10 min (00:15 ET)"
    friday = datetime(2026, 1, 16, 20, 0, tzinfo=NY)
    assert restart_text(next_window("eu", friday), friday) == (
        "IBKR weekend maintenance in 3 h (Fri 23:00 ET)"
    )
    evening = datetime(2026, 1, 14, 19, 30, tzinfo=HK)
    assert restart_text(next_window("ap", evening), evening) == (
        "IBKR restart in 45 min (20:15 HKT)"
    )


@pytest.mark.parametrize(
    ("at", "shown"),
    [
        (datetime(2026, 1, 17, 0, 59, tzinfo=NY), False),  # Saturday, more than a day before
        (datetime(2026, 1, 17, 1, 0, tzinfo=NY), True),  # exactly a day before
        (datetime(2026, 1, 18, 0, 59, tzinfo=NY), True),
        (datetime(2026, 1, 18, 1, 0, tzinfo=NY), False),  # it happened: next week's is far
        (datetime(2026, 1, 14, 12, 0, tzinfo=NY), False),
    ],
)
def test_token_reset_text(at: datetime, shown: bool) -> None:
    text = token_reset_text(at)
    assert (text == "Full login with your phone needed after Sun 01:00 ET") is shown
    assert shown or text is None


# ------------------------------------------------------------------ region


def hours(h: float) -> timedelta:
    return timedelta(hours=h)


@pytest.mark.parametrize(
    ("offset", "region"),
    [
        (hours(-12), "na"),
        (hours(-11), "na"),
        (hours(-5), "na"),
        (hours(-3.5), "na"),  # Newfoundland
        (hours(-2) - timedelta(minutes=1), "na"),
        (hours(-2), "eu"),  # boundary: -2 h is Europe's
        (hours(-1), "eu"),
        (hours(1), "eu"),
        (hours(3.5), "eu"),  # Iran
        (hours(4) - timedelta(minutes=1), "eu"),
        (hours(4), "ap"),  # boundary: +4 h is Asia-Pacific's
        (hours(5.5), "ap"),  # India
        (hours(8), "ap"),
        (hours(14), "ap"),
    ],
)
def test_auto_region_from_the_utc_offset(offset: timedelta, region: str) -> None:
    choice = resolve_region("auto", offset)
    assert (choice.region, choice.assumed, choice.hint) == (region, True, False)
    assert choice.text == f"IBKR region: {REGIONS[region]} (assumed from this computer's time zone)"


def test_a_computer_on_utc_gets_europe_with_a_hint() -> None:
    choice = resolve_region("auto", timedelta(0))
    assert (choice.region, choice.assumed, choice.hint) == ("eu", True, True)
    assert "on UTC" in choice.text and "set region" in choice.text


@pytest.mark.parametrize("region", list(REGIONS))
def test_a_set_region_wins_over_the_offset(region: str) -> None:
    choice = resolve_region(region, timedelta(0))
    assert (choice.region, choice.assumed, choice.hint) == (region, False, False)
    assert choice.text == f"IBKR region: {REGIONS[region]}"


def test_unknown_region_setting() -> None:
    with pytest.raises(ValueError, match="unknown region 'emea'"):
        resolve_region("emea", timedelta(0))


@pytest.mark.parametrize(
    ("zone", "region"),
    [
        ("America/New_York", "na"),
        ("Europe/Zurich", "eu"),
        ("Asia/Hong_Kong", "ap"),
        ("America/Chicago", "auto"),
        ("UTC", "auto"),
    ],
)
def test_old_reset_timezone_as_a_region(zone: str, region: str) -> None:
    assert region_from_reset_timezone(zone) == region
