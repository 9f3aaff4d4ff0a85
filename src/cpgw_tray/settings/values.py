"""The shapes setting values take, parsed once for the settings' checks and for the
parts that use them: an address to listen on and host names (the health endpoint), a
command line (hooks), phone and chat URLs, event kinds and quiet hours. Each raises
ValueError with one line."""

from __future__ import annotations

import ipaddress
import re
import shlex
from datetime import time
from typing import Any, NamedTuple

from ..model.person import KINDS
from ..redaction import redact_url

ADDR_FORMS = "give PORT, HOST:PORT or [IPV6]:PORT, e.g. 5001 or 127.0.0.1:5001"
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")


_SPAN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Addr(NamedTuple):
    """Where to listen."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_addr(text: str) -> Addr:
    """``PORT`` (loopback), ``HOST:PORT`` or ``[IPV6]:PORT``. Raises ValueError, one line."""
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise ValueError(f"empty address; {ADDR_FORMS}")
    if value.isdigit():
        host, port_text = "127.0.0.1", value
    elif value.startswith("["):
        inside, sep, rest = value[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(f"{value!r} is not [IPV6]:PORT; {ADDR_FORMS}")
        try:
            host = str(ipaddress.IPv6Address(inside))
        except ValueError:
            raise ValueError(f"{inside!r} is not an IPv6 address") from None
        port_text = rest[1:]
    else:
        host, sep, port_text = value.rpartition(":")
        if not sep or not host:
            raise ValueError(f"{value!r} has no port or no host; {ADDR_FORMS}")
        if ":" in host:
            raise ValueError(f"put an IPv6 address in brackets: [{host}]:{port_text}")
        if not _HOST_NAME.match(host):
            raise ValueError(f"{host!r} is not a host name or address")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"{port_text!r} is not a port number (0-65535)")
    return Addr(host, int(port_text))


def parse_host_names(value: object) -> tuple[str, ...]:
    """``serve_hosts``: a list of host names (or one string of names separated by commas
    or spaces), lower-cased. Raises ValueError, one line."""
    if isinstance(value, str):
        names = [n for n in re.split(r"[\s,]+", value) if n]
    elif isinstance(value, (list, tuple)) and all(isinstance(n, str) for n in value):
        names = [n.strip() for n in value]
    else:
        raise ValueError('expected a list of host names, e.g. ["health.example.lan"]')
    for name in names:
        if not _HOST_NAME.match(name):
            raise ValueError(f"{name!r} is not a host name or address (give no port)")
    return tuple(dict.fromkeys(n.lower() for n in names))


def parse_command(value: Any) -> list[str]:
    """A hook command from a string (split like a shell would) or a list of strings.
    Raises ValueError with one line."""
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split {value!r} into words: {exc}") from None
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        argv = list(value)
    else:
        raise ValueError("expected a command: a string or a list of strings")
    if not argv or not argv[0]:
        raise ValueError("empty command")
    return argv


def parse_quiet(text: str) -> tuple[time, time]:
    """``"23:00-07:00"`` as its start and end; ValueError with one line."""
    match = _SPAN.match(text)
    if match is None:
        raise ValueError('expected local hours such as "23:00-07:00"')
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{text.strip()!r} is not a time of day span (00:00 to 23:59)")
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{text.strip()!r} starts and ends at the same time")
    return time(h1, m1), time(h2, m2)


def _words(value: Any, what: str, commas: bool) -> list[str]:
    """A list of strings, or one string split at white space (and commas)."""
    if isinstance(value, str):
        return [word for word in re.split(r"[\s,]+" if commas else r"\s+", value) if word]
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value if v.strip()]
    raise ValueError(f"expected a list of {what}")


def check_urls(value: Any) -> tuple[str, ...]:
    """``notify_urls``: Apprise URLs, never shown whole in an error."""
    urls = _words(value, "Apprise URLs", commas=False)
    for url in urls:
        if not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://.", url):
            raise ValueError(f"not an Apprise URL (service://…): {redact_url(url)}")
    return tuple(dict.fromkeys(urls))


def check_kinds(value: Any) -> tuple[str, ...]:
    """``notify_on``: event kinds, or ``all``."""
    kinds = [kind.lower() for kind in _words(value, "event kinds", commas=True)]
    for kind in kinds:
        if kind not in (*KINDS, "all"):
            raise ValueError(f"unknown event kind {kind!r}; expected {', '.join(KINDS)} or all")
    return tuple(dict.fromkeys(kinds))


def check_quiet(value: Any) -> str:
    """``notify_quiet``: ``"HH:MM-HH:MM"``, written back in that form."""
    if not isinstance(value, str):
        raise ValueError('expected local hours such as "23:00-07:00"')
    start, end = parse_quiet(value)
    return f"{start:%H:%M}-{end:%H:%M}"
