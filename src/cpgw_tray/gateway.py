"""HTTP client for the Client Portal Gateway.

One ``requests.Session`` (keep-alive: a check costs a round trip, not a TLS handshake),
explicit (connect, read) timeouts, ``verify`` passed on every request (requests ignores
``Session.verify = False`` when ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` is set), and
a :class:`RateGovernor` that every request passes through. No retries: callers decide.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import requests
import urllib3

from .status import Endpoint, Failure, Meta, Status, classify_failure, classify_reply

log = logging.getLogger(__name__)

API_PREFIX = "/v1/api/"
AUTH_STATUS = "iserver/auth/status"
TICKLE = "tickle"
MAX_BODY = 64 * 1024  # a gateway reply is small; keep no more of a stranger's page


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


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class RateGovernor:
    """Paces requests: at most one per ``spacing`` seconds to each endpoint and at most
    ``per_second`` overall. Thread-safe; :meth:`reserve` books a slot and says how long
    to wait for it, so concurrent callers queue instead of bursting.
    """

    def __init__(
        self,
        spacing: float = 1.1,  # the gateway allows 1/s; a margin absorbs network jitter
        per_second: int = 10,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spacing = spacing
        self.per_second = per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._recent: deque[float] = deque()

    def reserve(self, endpoint: str) -> float:
        """Book the earliest allowed slot for ``endpoint``; return seconds until it."""
        with self._lock:
            now = self._clock()
            at = now
            last = self._last.get(endpoint)
            if last is not None:
                at = max(at, last + self.spacing)
            while self._recent and self._recent[0] <= at - 1.0:
                self._recent.popleft()
            if len(self._recent) >= self.per_second:
                at = max(at, self._recent[-self.per_second] + 1.0 + 0.01)
            self._last[endpoint] = at
            self._recent.append(at)
            return at - now


@dataclass(frozen=True)
class Reply:
    """An HTTP reply, undecoded beyond text."""

    http_status: int
    text: str
    headers: dict[str, str]
    meta: Meta

    def json(self) -> Any:
        import json

        return json.loads(self.text)


class Unreachable(Exception):
    """No HTTP reply: the transport failed."""

    def __init__(self, failure: Failure, reason: str, meta: Meta) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.meta = meta


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is anywhere in the exception's chain or urllib3 ``reason``."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return True
        stack.extend([item.__cause__, item.__context__, getattr(item, "reason", None)])
        stack.extend(a for a in item.args if isinstance(a, BaseException))
    return False


def sort_failure(exc: requests.RequestException) -> tuple[Failure, str]:
    """Map a requests exception to a transport failure kind and a short reason."""
    text = str(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            detail = text.split("certificate verify failed:")[-1].strip(" ')\"")
            return Failure.TLS_CERT, detail or "certificate verify failed"
        plain = (
            "WRONG_VERSION_NUMBER",
            "wrong version number",
            "record layer failure",
            "packet length too long",
            "http request",
        )
        if any(marker in text for marker in plain):
            return Failure.TLS_PLAINTEXT, "the port answered without TLS"
        return Failure.TLS, text
    if isinstance(exc, requests.exceptions.Timeout):
        return Failure.TIMEOUT, "timed out"
    if _caused_by(exc, ConnectionRefusedError) or "Connection refused" in text:
        return Failure.REFUSED, "connection refused"
    return Failure.CONNECTION, text


class GatewayClient:
    """Talks to one gateway. Safe to share between threads (requests are serialised per
    endpoint by the governor; the pooled connection is reused)."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        verify: bool | str = True,
        governor: RateGovernor | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ) -> None:
        self.root_url = url.rstrip("/") + "/"
        self.base = api_base(url)
        self.timeout = (timeout, timeout)  # (connect, read)
        self.verify = verify
        self.governor = governor or RateGovernor()
        self._sleep = sleep
        self._now = now
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "cpgw-tray"
        if is_loopback(url):
            # Our own machine is never reached through a proxy from the environment.
            self.session.trust_env = False
            if verify is False:
                # The gateway's stock certificate is self-signed; the unverified hop is
                # loopback only. Silence the warning for loopback hosts and no others.
                warnings.filterwarnings(
                    "ignore",
                    message=r"Unverified HTTPS request is being made to host "
                    r"'(localhost|127\.[\d.]+|::1|\[::1\])'",
                    category=urllib3.exceptions.InsecureRequestWarning,
                )

    def url_for(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def call(self, method: str, path: str, body: Any = None) -> Reply:
        """One request, paced by the governor. Raises :class:`Unreachable` on transport
        failure; HTTP errors are replies, not exceptions."""
        url = self.url_for(path)
        wait = self.governor.reserve(path)
        if wait > 0:
            self._sleep(wait)
        started = time.perf_counter()
        checked_at = self._now()
        try:
            response = self.session.request(
                method,
                url,
                json=body,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )
            raw = response.content[:MAX_BODY]
        except requests.RequestException as exc:
            meta = Meta(url, checked_at, (time.perf_counter() - started) * 1000)
            failure, reason = sort_failure(exc)
            if failure is Failure.TIMEOUT:
                reason = f"no reply within {self.timeout[1]:g} s"
            log.debug("%s %s failed: %s (%s)", method, url, failure.value, exc)
            raise Unreachable(failure, reason, meta) from exc
        meta = Meta(url, checked_at, (time.perf_counter() - started) * 1000)
        text = raw.decode("utf-8", errors="replace")
        log.debug("%s %s -> %s in %.1f ms", method, url, response.status_code, meta.latency_ms)
        return Reply(response.status_code, text, dict(response.headers), meta)

    def _check(self, endpoint: Endpoint, path: str) -> Status:
        try:
            reply = self.call("POST", path, {})
        except Unreachable as exc:
            return classify_failure(exc.failure, exc.reason, exc.meta)
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        return classify_reply(endpoint, reply.http_status, reply.text, reply.meta, retry_after)

    def auth_status(self) -> Status:
        """``POST /iserver/auth/status`` with ``{}``, classified."""
        return self._check(Endpoint.AUTH_STATUS, AUTH_STATUS)

    def tickle(self) -> Status:
        """``POST /tickle`` (keep-alive), classified from its ``iserver.authStatus``."""
        return self._check(Endpoint.TICKLE, TICKLE)

    def close(self) -> None:
        self.session.close()
