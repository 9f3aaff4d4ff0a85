"""Hiding the secrets of notification (Apprise) URLs wherever they could show: logs,
``config`` output, ``watch`` output, errors, the diagnostics bundle.

An Apprise URL carries its secrets in any part — ``tgram://BOTTOKEN/CHATID``,
``pover://USER@TOKEN``, ``json://user:pass@host/path`` — so only the scheme, a host that
looks like a host name or an address, and its port are kept; the user, password, path
and query become ``***``. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable

HIDDEN = "***"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
_HOST_NAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def redact_url(url: str) -> str:
    """``url`` with its secrets replaced: ``json://***@127.0.0.1:8080/***``,
    ``tgram://***/***``. Anything that is not a URL is hidden whole."""
    match = _URL.match(url.strip())
    if match is None:
        return HIDDEN
    scheme, rest = match["scheme"], match["rest"]
    where = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(where) :]
    user, at, hostport = where.rpartition("@")
    shown = f"{scheme}://" + (f"{HIDDEN}@" if at and user else "") + _host(hostport)
    if tail.strip("/"):
        shown += "/" + HIDDEN
    return shown


def _host(hostport: str) -> str:
    """The host and port when they look like them, else ``***``."""
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else ("", "", "")
    if not colon or not _PORT.match(port):
        host, port = hostport, ""
    if not _is_host(host):
        return HIDDEN
    return host + (f":{port}" if port else "")


def _is_host(host: str) -> bool:
    if host == "localhost" or _HOST_NAME.match(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def redact_text(text: str, urls: Iterable[str]) -> str:
    """``text`` with each of ``urls`` (as given, and their parts that could be secret)
    replaced by its redacted form."""
    for url in sorted(urls, key=len, reverse=True):
        if url:
            text = text.replace(url, redact_url(url))
            for secret in _secrets(url):
                text = text.replace(secret, HIDDEN)
    return text


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` a library might print alone (tokens, passwords, users), the
    longest first; short words are left alone so that ordinary text stays readable."""
    match = _URL.match(url.strip())
    if match is None:
        return []
    shown = redact_url(url)
    parts = re.split(r"[/?#&=@:]", match["rest"])
    found = {part for part in parts if len(part) >= 6 and part not in shown}
    return sorted(found, key=len, reverse=True)


_ANY_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>\]\[,]+")
KEPT_SCHEMES = ("http", "https")  # the gateway's own URLs stay readable


def redact_notify_urls_in(text: str) -> str:
    """Every URL in ``text`` whose scheme is not http(s) — an Apprise URL — redacted
    (for text that may hold URLs nobody listed: settings files, old logs)."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme = url.split("://", 1)[0].lower()
        return url if scheme in KEPT_SCHEMES else redact_url(url)

    return _ANY_URL.sub(one, text)
