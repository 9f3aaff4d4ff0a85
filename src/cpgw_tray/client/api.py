"""HTTP client for the Client Portal Gateway: its endpoints, one request at a time.

One ``requests.Session`` (keep-alive: a check costs a round trip, not a TLS handshake)
on the bounded transport (:mod:`.transport`: one wall-clock deadline per request,
bodies capped on their decoded size, one TLS context built once), and a
:class:`~.governor.RateGovernor` that every request passes through. No retries: callers
decide. Replies are decoded with :mod:`.strictjson` and classified by :mod:`.status`.
"""

from __future__ import annotations

import logging
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from ..model.accounts import Account, parse_account
from ..model.status import Endpoint, Failure, Meta, Status, classify_failure, classify_reply
from ..model.strictjson import loads_or_none
from ..model.urls import api_base, gateway_root, is_loopback
from ..model.wording import excerpt
from .governor import Deferred, RateGovernor, parse_retry_after
from .transport import (
    ENCODINGS,
    TRANSPORT_ERRORS,
    BadReply,
    BoundedAdapter,
    Deadline,
    build_context,
    read_capped,
    sort_failure,
)

if TYPE_CHECKING:
    from ..settings.config import Config

__all__ = [
    "Deferred",
    "GatewayClient",
    "Outcome",
    "RateGovernor",
    "Unreachable",
]

log = logging.getLogger(__name__)

AUTH_STATUS = "iserver/auth/status"
TICKLE = "tickle"
ACCOUNTS = "iserver/accounts"
MAX_BODY = 64 * 1024  # a status, tickle or action reply is well under 2 KiB
MAX_ACCOUNTS_BODY = 1024 * 1024  # an advisor's account list can be long
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")  # safe inside the websocket's cookie


@dataclass(frozen=True)
class Reply:
    """An HTTP reply, undecoded beyond text."""

    http_status: int
    text: str
    headers: dict[str, str]
    meta: Meta
    backoff_s: float | None = None  # after a 429: how long the governor now holds requests


class Unreachable(Exception):
    """No usable HTTP reply: the transport failed, or the reply could not be read
    (``http_status`` is then its status line's)."""

    def __init__(
        self, failure: Failure, reason: str, meta: Meta, http_status: int | None = None
    ) -> None:
        super().__init__(reason)
        self.failure = failure
        self.reason = reason
        self.meta = meta
        self.http_status = http_status


class GatewayClient:
    """Talks to one gateway. Safe to share between threads (requests are paced by the
    governor; pooled connections are reused; each request has its own deadline)."""

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
        self.timeout = timeout  # one wall-clock budget per request, connect to last byte
        self.verify = verify
        self.governor = governor or RateGovernor()
        # The longest a request waits for its slot; a one-shot command behind other
        # processes' bookings waits longer (see ``cmd_status``).
        self.max_wait = 5.0
        self._sleep = sleep
        self._now = now
        # Told of every request sent: (path, HTTP status or the failure's name); the
        # health endpoint's metrics count them. Never told of a request held back.
        self.on_request: Callable[[str, int | str], None] | None = None
        self.push_session: str | None = None  # the session id of the last tickle reply
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "cpgw-tray"
        self.session.headers["Accept-Encoding"] = ENCODINGS
        loopback = is_loopback(url)
        # Our own machine is never reached through a proxy from the environment.
        self.session.trust_env = not loopback
        self._context_error: str | None = None
        try:
            context = build_context(verify, trust_env=not loopback)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            self._context_error = f"the CA bundle {verify} could not be loaded ({exc})"
            context = build_context(False, trust_env=False)  # never used: calls refuse
        adapter = BoundedAdapter(context)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        if loopback and verify is False:
            # The gateway's stock certificate is self-signed; the unverified hop is
            # loopback only. Silence the warning for loopback hosts and no others.
            warnings.filterwarnings(
                "ignore",
                message=r"Unverified HTTPS request is being made to host "
                r"'(localhost|127\.[\d.]+|::1|\[::1\])'",
                category=urllib3.exceptions.InsecureRequestWarning,
            )

    def reconfigure(self, *, timeout: float) -> None:
        """A saved setting, from the next request."""
        self.timeout = timeout

    def _tell(self, path: str, outcome: int | str) -> None:
        listener = self.on_request
        if listener is not None:
            try:
                listener(path, outcome)
            except Exception:  # counting must never break a check
                log.exception("request listener failed")

    def url_for(self, path: str) -> str:
        return self.base + path.lstrip("/")

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        max_wait: float | None = None,
        cap: int = MAX_BODY,
    ) -> Reply:
        """One request, paced by the governor and bounded by one deadline of
        ``timeout`` seconds. Raises :class:`Deferred` (nothing sent, nothing booked)
        when the governor would hold it longer than ``max_wait`` (None: the client's
        :attr:`max_wait`); :class:`Unreachable`
        when no usable reply came (transport failure, deadline passed, a body over
        ``cap`` bytes once decoded). HTTP errors are replies, not exceptions."""
        url = self.url_for(path)
        wait = self.governor.reserve(path, self.max_wait if max_wait is None else max_wait)
        if wait > 0:
            self._sleep(wait)
        started = time.perf_counter()
        checked_at = self._now()

        def meta() -> Meta:
            return Meta(url, checked_at, (time.perf_counter() - started) * 1000)

        if self._context_error is not None:
            raise Unreachable(Failure.TLS_CERT, self._context_error, meta())
        deadline = Deadline(self.timeout)
        status: int | None = None
        try:
            with deadline.active():
                response = self.session.request(
                    method,
                    url,
                    json=body,
                    timeout=(deadline.left(), deadline.left()),
                    verify=self.verify is not False,
                    allow_redirects=False,
                    stream=True,
                )
                status = response.status_code
                try:
                    raw = read_capped(response, cap, deadline)
                finally:
                    response.close()
        except BadReply as exc:
            log.debug("%s %s -> %s, unusable: %s", method, url, status, exc)
            self._tell(path, Failure.BAD_REPLY.value)
            raise Unreachable(Failure.BAD_REPLY, str(exc), meta(), status) from exc
        except TRANSPORT_ERRORS as exc:
            failure, reason = sort_failure(exc, deadline)
            log.debug("%s %s failed: %s (%r)", method, url, failure.value, exc)
            self._tell(path, failure.value)
            raise Unreachable(failure, reason, meta(), status) from exc
        self._tell(path, response.status_code)
        backoff = None
        if response.status_code == 429:
            asked = parse_retry_after(response.headers.get("Retry-After"))
            backoff = self.governor.rate_limited(asked)
        else:
            self.governor.answered()
        text = raw.decode("utf-8", errors="replace")
        took = meta()
        log.debug("%s %s -> %s in %.1f ms", method, url, response.status_code, took.latency_ms)
        return Reply(response.status_code, text, dict(response.headers), took, backoff)

    def _check(self, endpoint: Endpoint, path: str) -> Status:
        try:
            reply = self.call("POST", path, {})
        except Unreachable as exc:
            return classify_failure(exc.failure, exc.reason, exc.meta, exc.http_status)
        return classify_reply(endpoint, reply.http_status, reply.text, reply.meta, reply.backoff_s)

    def auth_status(self) -> Status:
        """``POST /iserver/auth/status`` with ``{}``, classified.

        Raises :class:`Deferred` when the governor holds the request back (a 429's
        back-off, or pacing): nothing was sent, so there is no new verdict — the caller
        (the poller) keeps the last one and tries again after ``Deferred.wait``."""
        return self._check(Endpoint.AUTH_STATUS, AUTH_STATUS)

    def tickle(self) -> Status:
        """``POST /tickle`` (keep-alive), classified from its ``iserver.authStatus``.
        Raises :class:`Deferred` like :meth:`auth_status`. Its ``session`` id is kept in
        :attr:`push_session` (the websocket's cookie); a reply without one clears it."""
        try:
            reply = self.call("POST", TICKLE, {})
        except Unreachable as exc:
            self.push_session = None
            return classify_failure(exc.failure, exc.reason, exc.meta, exc.http_status)
        parsed = loads_or_none(reply.text) if reply.http_status == 200 else None
        session = parsed.get("session") if isinstance(parsed, dict) else None
        ok = isinstance(session, str) and _SESSION_ID.fullmatch(session) is not None
        self.push_session = session if ok else None
        return classify_reply(
            Endpoint.TICKLE, reply.http_status, reply.text, reply.meta, reply.backoff_s
        )

    def reauthenticate(self, take_over: bool = False) -> Outcome:
        """Start the brokerage session: ``ssodh/init`` (``publish`` must be true or the
        gateway answers 500), else the older, deprecated ``iserver/reauthenticate``.
        ``take_over`` (``compete``) ends a competing session (TWS, the phone): only
        when a person asks for it."""
        body = {"publish": True, "compete": take_over}
        try:
            reply = self.call("POST", "iserver/auth/ssodh/init", body)
            if reply.http_status in (404, 405):
                reply = self.call("POST", "iserver/reauthenticate", {})
        except (Deferred, Unreachable) as exc:
            return Outcome(False, f"Reauthenticate failed: {exc}")
        parsed = loads_or_none(reply.text)
        error = parsed.get("error") if isinstance(parsed, dict) else None
        said = error if isinstance(error, str) and error else excerpt(reply.text, 120)
        if reply.http_status == 401 or said.lower() in ("not logged in", "no session"):
            root = gateway_root(self.base)
            return Outcome(
                False,
                f"Reauthenticate failed: not logged in. Log in at {root} first "
                "(approve the prompt on your phone if asked).",
            )
        if isinstance(parsed, dict) and parsed.get("passed") is False:
            if parsed.get("competing") is True:
                return Outcome(
                    False,
                    "Reauthenticate did not take the session: another session (TWS, the phone "
                    "or the web) holds it. `cpgw-tray reauth --take-over` (the menu's Take the "
                    "session over) ends that one.",
                )
            return Outcome(False, f"Reauthenticate failed: the gateway said {said}")
        if reply.http_status != 200 or error:
            return Outcome(False, f"Reauthenticate failed: HTTP {reply.http_status} {said}".strip())
        return Outcome(True, "Reauthentication started.")

    def logout(self) -> Outcome:
        """End the session (``POST /logout``)."""
        try:
            reply = self.call("POST", "logout", {})
        except (Deferred, Unreachable) as exc:
            return Outcome(False, f"Log out failed: {exc}")
        parsed = loads_or_none(reply.text)
        if reply.http_status == 200 and isinstance(parsed, dict) and parsed.get("status") is True:
            return Outcome(True, "Logged out.")
        return Outcome(
            False, f"Log out failed: HTTP {reply.http_status} {excerpt(reply.text, 120)}".strip()
        )

    def account(self, validate: bool = True) -> Account | None:
        """Account ids and paper/live, or None when not known (a side reply that failed,
        was held back or was bad leaves the facts unknown; it never raises).
        ``/sso/validate`` is limited to one request a minute: it is asked only if
        ``validate`` and the governor allows it now."""
        try:
            accounts = self.call("GET", ACCOUNTS, cap=MAX_ACCOUNTS_BODY)
        except (Deferred, Unreachable):
            return None
        found = loads_or_none(accounts.text) if accounts.http_status == 200 else None
        details = None
        if validate and not (isinstance(found, dict) and isinstance(found.get("isPaper"), bool)):
            try:
                reply = self.call("GET", "sso/validate", max_wait=0.0)
                details = loads_or_none(reply.text) if reply.http_status == 200 else None
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


def client_for(config: Config, now: Callable[[], datetime] | None = None) -> GatewayClient:
    """The client the settings describe, paced with every other cpgw-tray process that
    talks to the same gateway; ``now``: an injected wall clock (the demo's)."""
    from .shared_state import SharedSlots

    governor = RateGovernor(shared=SharedSlots.for_gateway(config.url))
    if now is None:
        return GatewayClient(
            config.url, timeout=config.timeout, verify=config.verify, governor=governor
        )
    return GatewayClient(
        config.url, timeout=config.timeout, verify=config.verify, governor=governor, now=now
    )
