"""HTTP client for the Client Portal Gateway.

One ``requests.Session`` (keep-alive: a check costs a round trip, not a TLS handshake),
explicit (connect, read) timeouts, ``verify`` passed on every request (requests ignores
``Session.verify = False`` when ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` is set), and
a :class:`RateGovernor` that every request passes through. No retries: callers decide.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests
import urllib3

from .status import (
    Account,
    Endpoint,
    Failure,
    Meta,
    Status,
    classify_failure,
    classify_reply,
    parse_account,
)

if TYPE_CHECKING:
    from .config import Config

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


BACKOFF_START = 60.0  # after a 429 without Retry-After
BACKOFF_MAX = 900.0  # the gateway's penalty box lasts 15 minutes
SLOW_ENDPOINTS = {"sso/validate": 61.0}  # documented limit: 1 request a minute


class RateGovernor:
    """The one place every request passes. Paces requests (at most one per ``spacing``
    seconds to each endpoint, slower where the gateway documents it, and ``per_second``
    overall) and, after a 429, holds every request back: ``Retry-After`` if given, else
    60 s doubling up to 15 min, reset by the next good reply.

    Thread-safe; :meth:`reserve` books a slot and says how long to wait for it, so
    concurrent callers queue instead of bursting.
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
        self._blocked_until = 0.0
        self._backoff = 0.0

    def blocked_for(self) -> float:
        """Seconds left in a back-off after a 429 (0 when requests may go)."""
        with self._lock:
            return max(0.0, self._blocked_until - self._clock())

    def rate_limited(self, retry_after: float | None) -> float:
        """Note a 429; return how long every request now waits."""
        with self._lock:
            if retry_after is not None:
                wait = min(max(retry_after, 1.0), BACKOFF_MAX)
            else:
                wait = BACKOFF_START if not self._backoff else min(self._backoff * 2, BACKOFF_MAX)
            self._backoff = wait
            self._blocked_until = self._clock() + wait
            return wait

    def forgive(self) -> None:
        """End a back-off now: for a gateway known to have changed (the demo's simulator)."""
        with self._lock:
            self._blocked_until, self._backoff = 0.0, 0.0

    def answered(self) -> None:
        """A reply that was not a 429: the back-off starts afresh next time."""
        with self._lock:
            self._backoff = 0.0

    def reserve(self, endpoint: str) -> float:
        """Book the earliest allowed slot for ``endpoint``; return seconds until it."""
        with self._lock:
            now = self._clock()
            at = max(now, self._blocked_until)
            last = self._last.get(endpoint)
            if last is not None:
                at = max(at, last + SLOW_ENDPOINTS.get(endpoint, self.spacing))
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
    backoff_s: float | None = None  # after a 429: how long the governor now holds requests


class Deferred(Exception):
    """The governor holds the request back longer than the caller will wait; not sent."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"held back for {wait:.0f} s")
        self.wait = wait


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

    def call(self, method: str, path: str, body: Any = None, max_wait: float = 5.0) -> Reply:
        """One request, paced by the governor. Raises :class:`Deferred` (nothing sent)
        when the governor would hold it longer than ``max_wait``, :class:`Unreachable` on
        transport failure; HTTP errors are replies, not exceptions."""
        url = self.url_for(path)
        blocked = self.governor.blocked_for()
        if blocked > max_wait:
            raise Deferred(blocked)
        wait = self.governor.reserve(path)
        if wait > max_wait:
            raise Deferred(wait)
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
        backoff = None
        if response.status_code == 429:
            asked = parse_retry_after(response.headers.get("Retry-After"))
            backoff = self.governor.rate_limited(asked)
        else:
            self.governor.answered()
        text = raw.decode("utf-8", errors="replace")
        log.debug("%s %s -> %s in %.1f ms", method, url, response.status_code, meta.latency_ms)
        return Reply(response.status_code, text, dict(response.headers), meta, backoff)

    def _check(self, endpoint: Endpoint, path: str) -> Status:
        try:
            reply = self.call("POST", path, {})
        except Deferred as exc:  # still in the back-off after a 429: ask nothing
            meta = Meta(self.url_for(path), self._now())
            return classify_reply(endpoint, 429, "", meta, exc.wait)
        except Unreachable as exc:
            return classify_failure(exc.failure, exc.reason, exc.meta)
        return classify_reply(endpoint, reply.http_status, reply.text, reply.meta, reply.backoff_s)

    def auth_status(self) -> Status:
        """``POST /iserver/auth/status`` with ``{}``, classified."""
        return self._check(Endpoint.AUTH_STATUS, AUTH_STATUS)

    def tickle(self) -> Status:
        """``POST /tickle`` (keep-alive), classified from its ``iserver.authStatus``."""
        return self._check(Endpoint.TICKLE, TICKLE)

    def reauthenticate(self, take_over: bool = False) -> Outcome:
        """Start the brokerage session: ``ssodh/init`` (``publish`` must be true or the
        gateway answers 500), else the older, deprecated ``iserver/reauthenticate``.
        ``compete`` is sent only when asked: it takes the session over from TWS or the
        phone."""
        try:
            body = {"publish": True, "compete": take_over}
            reply = self.call("POST", "iserver/auth/ssodh/init", body)
            if reply.http_status in (404, 405):
                reply = self.call("POST", "iserver/reauthenticate", {})
        except (Deferred, Unreachable) as exc:
            return Outcome(False, f"Reauthenticate failed: {exc}")
        body = _json_or_none(reply.text)
        error = body.get("error") if isinstance(body, dict) else None
        if (
            reply.http_status != 200
            or error
            or (isinstance(body, dict) and body.get("passed") is False)
        ):
            return Outcome(
                False,
                f"Reauthenticate failed: HTTP {reply.http_status} {error or reply.text[:120]}",
            )
        return Outcome(True, "Reauthentication started.")

    def logout(self) -> Outcome:
        """End the session (``POST /logout``)."""
        try:
            reply = self.call("POST", "logout", {})
        except (Deferred, Unreachable) as exc:
            return Outcome(False, f"Log out failed: {exc}")
        body = _json_or_none(reply.text)
        if reply.http_status == 200 and isinstance(body, dict) and body.get("status") is True:
            return Outcome(True, "Logged out.")
        return Outcome(False, f"Log out failed: HTTP {reply.http_status} {reply.text[:120]}")

    def account(self, validate: bool = True) -> Account | None:
        """Account ids and paper/live. ``/sso/validate`` is limited to one request a
        minute: it is asked only if ``validate`` and the governor allows it now."""
        try:
            accounts = self.call("GET", "iserver/accounts")
        except (Deferred, Unreachable):
            return None
        found = _json_or_none(accounts.text) if accounts.http_status == 200 else None
        details = None
        if validate and not (isinstance(found, dict) and isinstance(found.get("isPaper"), bool)):
            try:
                reply = self.call("GET", "sso/validate", max_wait=0.0)
                details = _json_or_none(reply.text) if reply.http_status == 200 else None
            except (Deferred, Unreachable):
                pass
        return parse_account(found, details)

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class Outcome:
    """What an action (reauthenticate, log out) achieved, in words for the user."""

    ok: bool
    message: str


def _json_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def client_for(config: Config, now: Callable[[], datetime] | None = None) -> GatewayClient:
    """The client the settings describe; ``now``: an injected wall clock (the demo's)."""
    if now is None:
        return GatewayClient(config.url, timeout=config.timeout, verify=config.verify)
    return GatewayClient(config.url, timeout=config.timeout, verify=config.verify, now=now)
