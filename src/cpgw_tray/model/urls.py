"""The gateway's URL: the one place it is checked, split and joined.

Pure string work (``urllib3`` is imported only inside :func:`check_url`, which compares
its reading of a URL with ``urllib.parse``'s): what is loopback, the API base, the
login page, and whether a URL given by the user is safe to use at all.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

API_PREFIX = "/v1/api/"
ROOT_PATHS = ("", "/", "/v1/api", "/v1/api/")  # what a gateway URL may end with
_HOST_CHARS = re.compile(r"^[A-Za-z0-9.\-]+$|^\[[0-9A-Fa-f:.]+\]$")


def is_loopback(url: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def api_base(url: str) -> str:
    """The API base for a gateway root URL; tolerates a URL that already has the API path."""
    root = url.rstrip("/")
    for suffix in ("/v1/api", "/v1/portal"):
        if root.endswith(suffix):
            root = root[: -len(suffix)]
    return root + API_PREFIX


def gateway_root(url: str) -> str:
    """``https://127.0.0.1:5000/v1/api/tickle`` -> ``https://127.0.0.1:5000/``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/"


def port_of(url: str) -> str:
    """The URL's port, or the scheme's default."""
    parts = urlsplit(url)
    if parts.port:
        return str(parts.port)
    return "443" if parts.scheme == "https" else "80"


def mask(value: str) -> str:
    """``value`` with any user info (``user:password@``) replaced by ``***@``."""
    return re.sub(r"^([^:/?#\\]*:/*)?.*@", lambda m: (m.group(1) or "") + "***@", value, count=1)


def check_url(value: str) -> str:
    """The normalised root URL (``scheme://host[:port]``) of a gateway URL given by a
    person, or ValueError with a one-line reason that never shows a password.

    Accepted: ``http``/``https``, a host, an optional port, and a path of ``/``,
    ``/v1/api`` or ``/v1/api/`` (or none). Refused: user info, a backslash, any other
    path, a query, a fragment, and a URL whose host ``urllib.parse`` and ``urllib3``
    (which requests connects with) read differently — such a URL could be judged
    loopback (TLS checks off) while the request goes elsewhere.
    """
    text = value.strip()
    shown = repr(mask(text))
    example = "a URL like https://127.0.0.1:5000"
    if "@" in text:
        raise ValueError(f"{shown}: user info (name or password) is not allowed in the URL")
    if "\\" in text:
        raise ValueError(f"{shown}: a backslash is not allowed in the URL")
    if any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise ValueError(f"{shown}: spaces and control characters are not allowed in the URL")
    if "?" in text or "#" in text:
        raise ValueError(f"{shown}: a query or fragment is not allowed; expected {example}")
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise ValueError(f"{shown} has a bad port number") from None
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if scheme not in ("http", "https") or not host:
        raise ValueError(f"{shown} is not {example} (scheme and host)")
    if parts.path not in ROOT_PATHS:
        raise ValueError(f"{shown}: the path must be empty, / or /v1/api; expected {example}")
    netloc = parts.netloc.lower()
    bare, colon, digits = netloc.rpartition(":")
    if not colon or netloc.endswith("]"):  # no port (an IPv6 host has colons of its own)
        bare, digits = netloc, ""
    if digits and not (digits.isascii() and digits.isdigit()):
        raise ValueError(f"{shown} has a bad port number")
    if not _HOST_CHARS.match(bare):
        raise ValueError(f"{shown}: the host {bare!r} has characters a host name cannot have")
    if _urllib3_host(text) != (host, port):
        raise ValueError(f"{shown}: the host is ambiguous (URL parsers disagree on it)")
    return f"{scheme}://{bare}" + (f":{digits}" if digits else "")


def _urllib3_host(text: str) -> tuple[str, int | None] | None:
    """How urllib3 (and so requests) reads the URL's host and port; None if it cannot."""
    from urllib3.exceptions import LocationParseError
    from urllib3.util import parse_url

    try:
        parsed = parse_url(text)
    except (LocationParseError, ValueError):
        return None
    host = (parsed.host or "").lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, parsed.port
