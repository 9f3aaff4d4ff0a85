"""The checks of the settings' values: each turns a value from the file, the environment
or the command line into the setting, or raises ValueError saying what was expected.
The settings table (:mod:`cpgw_tray.settings.table`) names each key's check.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..model.urls import check_url
from .values import parse_addr, parse_command, parse_host_names


def as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def as_number(
    low: float, high: float | None = None, zero_ok: bool = False
) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a number of seconds")
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            raise ValueError("expected a number of seconds") from None
        if not math.isfinite(number):
            raise ValueError(f"expected a finite number of seconds, not {value!r}")
        if zero_ok and number == 0:
            return 0.0
        if number < low or (high is not None and number > high):
            span = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
            raise ValueError(f"must be {span}" + (" (or 0 to turn it off)" if zero_ok else ""))
        return number

    return check


def as_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a URL string")
    return check_url(value)


def as_file(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a file path")
    path = Path(value).expanduser()
    if not path.is_file():
        raise ValueError(f"file {str(path)!r} does not exist")
    return str(path)


def as_dir(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("expected a folder path")
    return str(Path(value).expanduser())


def as_zone(value: Any) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not isinstance(value, str):
        raise ValueError("expected a time zone name such as America/New_York")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; reset_timezone is deprecated: "
            'set region = "na", "eu" or "ap" instead'
        ) from None
    return value


def as_region(value: Any) -> str:
    from ..model.ibkr_clock import REGIONS

    choices = ("auto", *REGIONS)
    if not isinstance(value, str) or value.strip().lower() not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return value.strip().lower()


def as_competing(value: Any) -> str:
    from ..model.person import POLICIES

    if not isinstance(value, str) or value.strip().lower() not in POLICIES:
        raise ValueError(f"expected one of {', '.join(POLICIES)}")
    return value.strip().lower()


def as_level(value: Any) -> str:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    if not isinstance(value, str) or value.upper() not in levels:
        raise ValueError(f"expected one of {', '.join(levels)}")
    return value.upper()


def as_addr(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected an address string such as 127.0.0.1:5001")
    return str(parse_addr(value))


def as_hosts(value: Any) -> tuple[str, ...]:
    return parse_host_names(value)


def as_command(value: Any) -> tuple[str, ...]:
    return tuple(parse_command(value))
