"""The status model: states, their looks, the freshness rule, and a pure classification
of gateway replies.

This module is the contract other tools rely on (state names, exit codes, JSON fields).
It does no I/O, starts no threads and never imports pystray: everything it needs
arrives as arguments, so the same reply always gives the same verdict.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from .strictjson import BadJSON, loads
from .urls import gateway_root, port_of
from .wording import excerpt, http_reply


class State(str, Enum):
    """What the tray shows. The values are the contract's names."""

    READY = "ready"
    COMPETING = "competing"
    DISCONNECTED = "disconnected"
    NOT_AUTHENTICATED = "not_authenticated"
    LOGGED_OUT = "logged_out"
    GATEWAY_DOWN = "gateway_down"
    NOT_RESPONDING = "not_responding"
    ACCESS_DENIED = "access_denied"
    RATE_LIMITED = "rate_limited"
    ERROR = "error"
    UNKNOWN = "unknown"


class Glyph(str, Enum):
    """Glyph classes: each colour group has its own shape, so no state relies on colour."""

    CHECK = "check"
    WARNING = "warning"
    CROSS = "cross"
    QUESTION = "question"
    CLOCK = "clock"  # not a state's: an expected drop during an IBKR restart window
    ARROWS = "arrows"  # competing: two sessions pulling opposite ways
    HOURGLASS = "hourglass"  # rate limited: wait


GREEN = (46, 158, 68)
ORANGE = (245, 124, 0)
YELLOW = (242, 194, 0)
RED = (211, 47, 47)
GREY = (128, 128, 128)


@dataclass(frozen=True)
class Look:
    """How a state is drawn and reported."""

    colour: tuple[int, int, int]
    glyph: Glyph
    exit_code: int | None
    label: str


LOOKS: dict[State, Look] = {
    State.READY: Look(GREEN, Glyph.CHECK, 0, "Ready"),
    State.COMPETING: Look(ORANGE, Glyph.ARROWS, 1, "Competing session"),
    State.DISCONNECTED: Look(YELLOW, Glyph.WARNING, 1, "Disconnected from IBKR"),
    State.NOT_AUTHENTICATED: Look(YELLOW, Glyph.WARNING, 1, "Brokerage session not started"),
    State.LOGGED_OUT: Look(YELLOW, Glyph.WARNING, 1, "Logged out"),
    State.GATEWAY_DOWN: Look(RED, Glyph.CROSS, 2, "Gateway not running"),
    State.NOT_RESPONDING: Look(RED, Glyph.CROSS, 2, "Gateway not responding"),
    State.ACCESS_DENIED: Look(RED, Glyph.CROSS, 3, "Access denied by the gateway"),
    State.RATE_LIMITED: Look(ORANGE, Glyph.HOURGLASS, 3, "Rate limited"),
    State.ERROR: Look(RED, Glyph.CROSS, 3, "Gateway error"),
    State.UNKNOWN: Look(GREY, Glyph.QUESTION, None, "Checking…"),
}


# States in which the gateway holds a login worth keeping alive.
SESSION_STATES = frozenset(
    {State.READY, State.COMPETING, State.DISCONNECTED, State.NOT_AUTHENTICATED}
)


class Endpoint(str, Enum):
    """Which reply shape is being classified."""

    AUTH_STATUS = "auth_status"
    TICKLE = "tickle"


class Failure(str, Enum):
    """Transport failures, as the gateway client sorts them."""

    REFUSED = "refused"  # nothing listens on the port
    TIMEOUT = "timeout"  # connect or read timeout
    TLS_PLAINTEXT = "tls_plaintext"  # the port answers, but not with TLS
    TLS_CERT = "tls_cert"  # certificate did not verify
    TLS = "tls"  # any other TLS failure
    CONNECTION = "connection"  # reset, DNS failure, no route, ...
    BAD_REPLY = "bad_reply"  # a reply came but cannot be used: too large, broken headers


@dataclass(frozen=True)
class Status:
    """One check's outcome: a frozen snapshot handed from workers to the UI and the CLI.

    The fields up to ``url`` are the contract's JSON fields; the rest are additions:
    ``sso_expires_s`` (seconds left on the login, from a tickle), ``retry_after_s``
    (after a 429: seconds until the next request), ``account``, ``paper``, IBKR's clock.
    """

    state: State
    label: str
    detail: str
    authenticated: bool | None = None
    connected: bool | None = None
    competing: bool | None = None
    message: str | None = None
    fail: str | None = None
    server_name: str | None = None
    server_version: str | None = None
    http_status: int | None = None
    latency_ms: float | None = None
    checked_at: datetime | None = None
    url: str = ""
    sso_expires_s: float | None = None
    retry_after_s: float | None = None
    account: str | None = None
    paper: bool | None = None
    region: str | None = None  # IBKR's clock at checked_at (maintenance.py): the region,
    maintenance_until: datetime | None = None  # the end of the restart window it fell in,
    next_maintenance: datetime | None = None  # and the start of the next window
    paused_until: datetime | None = None  # session care paused by the person (person_care.py)
    push: str | None = None  # the websocket (push.py): connected, connecting, off; None: not asked
    gateway: str | None = None  # the [gateways.NAME] it is of; None when none is named

    @property
    def look(self) -> Look:
        return LOOKS[self.state]

    @property
    def exit_code(self) -> int:
        code = self.look.exit_code
        return 3 if code is None else code

    def view_key(self) -> tuple[object, ...]:
        """What a person sees change: the state and the words that explain it."""
        return (self.state, self.label, self.detail)

    def to_json(self) -> dict[str, Any]:
        """The contract's JSON object (every field present, ``null`` where unknown)."""
        data = asdict(self)
        data["state"] = self.state.value
        for key in ("checked_at", "maintenance_until", "next_maintenance", "paused_until"):
            data[key] = iso_utc(data[key]) if data[key] else None
        data["latency_ms"] = None if self.latency_ms is None else round(self.latency_ms, 1)
        return data


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z`` suffix, to the millisecond."""
    text = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class Meta:
    """Facts about a check that are not in the reply: where, when, how long."""

    url: str
    checked_at: datetime
    latency_ms: float | None = None


def unknown(url: str) -> Status:
    """The state before any check has finished."""
    return Status(State.UNKNOWN, LOOKS[State.UNKNOWN].label, "No check has finished yet.", url=url)


# --------------------------------------------------------------------------- freshness

FRESH_GRACE_S = 5.0  # beyond the next check's due time and its timeout


def fresh_until(finished: datetime, next_due_s: float, timeout_s: float) -> datetime:
    """When a verdict that finished at ``finished`` (wall clock) goes stale: the next
    check was due ``next_due_s`` later (the interval, or a pacing in force), plus its
    timeout, plus a grace."""
    return finished + timedelta(seconds=next_due_s + timeout_s + FRESH_GRACE_S)


def stale_view(latest: Status, until: datetime, now: datetime) -> Status | None:
    """The one freshness rule for every view: None while ``latest`` is fresh (show it),
    else the ``unknown`` verdict to show instead, with ``latest``'s ``checked_at``."""
    if now <= until:
        return None
    since = latest.checked_at.astimezone().strftime("%H:%M:%S") if latest.checked_at else "?"
    detail = (
        f"The last verdict ({latest.label}) is out of date: no check finished since {since}. "
        "The gateway may hang, or the computer was asleep; a check is due."
    )
    return Status(
        State.UNKNOWN, "Not checked lately", detail, checked_at=latest.checked_at, url=latest.url
    )


# --------------------------------------------------------------------------- helpers


def _make(state: State, detail: str, meta: Meta, **fields: Any) -> Status:
    return Status(
        state,
        LOOKS[state].label,
        detail,
        url=meta.url,
        checked_at=meta.checked_at,
        latency_ms=meta.latency_ms,
        **fields,
    )


def _with_reason(detail: str, *texts: str | None) -> str:
    """Append the gateway's own ``fail``/``message`` words, which users need to see."""
    said = [t.strip() for t in texts if t and t.strip()]
    return detail if not said else f"{detail} Gateway says: {' / '.join(said)}"


_LOGGED_OUT_WORDS = ("no session", "not logged in")
_NOT_STARTED_WORDS = ("no bridge", "init session")


def _error_text(body: Any) -> str | None:
    """The ``error`` string of a JSON error reply, lower-cased, else None."""
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"]).lower()
    return None


# --------------------------------------------------------------------------- details


def _detail(state: State, url: str) -> str:
    root = gateway_root(url)
    host_port = urlsplit(url).netloc
    return {
        State.READY: "Logged in; trading and market data are available.",
        State.COMPETING: (
            "Another session for this username is open (TWS, the mobile app or the "
            "website). Close it, or reauthenticate here to take the session over."
        ),
        State.DISCONNECTED: (
            "Logged in, but the gateway lost its link to IBKR. It usually comes back by "
            "itself; if not, reauthenticate or restart the gateway."
        ),
        State.NOT_AUTHENTICATED: (
            "The gateway is logged in but the brokerage session is not started. "
            f"Reauthenticate, or log in again at {root}."
        ),
        State.LOGGED_OUT: (
            f"No session. Log in at {root} and approve the prompt on your phone if asked."
        ),
        State.GATEWAY_DOWN: (
            f"Nothing is listening on {host_port}. Start the gateway from its folder: "
            "bin/run.sh root/conf.yaml (bin\\run.bat root\\conf.yaml on Windows)."
        ),
        State.ACCESS_DENIED: (
            "The gateway refused this computer. Add 127.0.0.1 to ips.allow in the "
            "gateway's root/conf.yaml, then restart the gateway."
        ),
    }[state]


# --------------------------------------------------------------------------- classify


def classify_failure(
    failure: Failure, reason: str, meta: Meta, http_status: int | None = None
) -> Status:
    """Classify a request that got no usable HTTP reply (``http_status``: the status
    line of a reply that came but could not be used). ``reason`` may quote the reply's
    own bytes (a status line, a TLS alert): it is cleaned like any gateway text."""
    port = port_of(meta.url)
    reason = excerpt(reason, 200)
    if failure is Failure.REFUSED:
        return _make(State.GATEWAY_DOWN, _detail(State.GATEWAY_DOWN, meta.url), meta)
    if failure is Failure.TIMEOUT:
        detail = (
            f"No reply ({reason}). The gateway hangs like this when it cannot reach IBKR: "
            "check the internet connection, or restart the gateway."
        )
        return _make(State.NOT_RESPONDING, detail, meta)
    if failure is Failure.TLS_PLAINTEXT:
        detail = (
            f"Port {port} answers without TLS, so it is not the gateway's HTTPS port: "
            f"another program may hold port {port} (on macOS, AirPlay Receiver uses 5000). "
            "If the gateway runs with listenSsl: false, use an http:// URL."
        )
        return _make(State.ERROR, detail, meta)
    if failure is Failure.TLS_CERT:
        detail = (
            f"The gateway's certificate did not verify ({reason}). Check the file given "
            "with --ca-bundle, or use --insecure on a trusted network."
        )
        return _make(State.ERROR, detail, meta)
    if failure is Failure.TLS:
        return _make(State.ERROR, f"TLS handshake on port {port} failed ({reason}).", meta)
    if failure is Failure.BAD_REPLY:
        detail = f"The gateway's reply could not be used: {reason}."
        return _make(State.ERROR, detail, meta, http_status=http_status)
    return _make(State.ERROR, f"The connection failed: {reason}.", meta)


def classify_reply(
    endpoint: Endpoint,
    http_status: int,
    body: str,
    meta: Meta,
    retry_after_s: float | None = None,
) -> Status:
    """Classify an HTTP reply from auth/status or tickle, by the contract's rules in order."""
    code = http_status

    def make(state: State, detail: str | None = None, **fields: Any) -> Status:
        text = _detail(state, meta.url) if detail is None else detail
        return _make(state, text, meta, http_status=code, **fields)

    if body.lstrip().startswith("Access Denied"):
        return make(State.ACCESS_DENIED)
    refused: str | None = None  # why JSON-looking text was refused (too deep, NaN, ...)
    try:
        parsed: Any = loads(body) if body.strip() else None
    except BadJSON as exc:
        parsed = None
        refused = None if str(exc) == "not JSON" else str(exc)
    is_json = parsed is not None
    error = _error_text(parsed)

    if code == 401:
        return make(State.LOGGED_OUT)
    if code == 403:
        return make(State.ACCESS_DENIED)
    if code == 429:
        wait = ""
        if retry_after_s is not None:
            at = (meta.checked_at + timedelta(seconds=retry_after_s)).astimezone()
            wait = f" Next check in {retry_after_s:.0f} s, at {at.strftime('%H:%M:%S')}."
        detail = (
            "Too many requests: the gateway answered 429 and may refuse requests for up to "
            f"15 minutes; checks pause until then.{wait}"
        )
        return make(State.RATE_LIMITED, detail, retry_after_s=retry_after_s)
    if error is not None and any(w in error for w in _NOT_STARTED_WORDS) and code in (200, 400):
        return make(State.NOT_AUTHENTICATED)
    if code >= 500:
        hint = (
            "IBKR is not ready yet; wait a few minutes."
            if code == 503
            else "After an IBKR server restart this repeats for a while; "
            "restart the gateway if it persists."
        )
        return make(State.ERROR, f"The gateway answered {http_reply(code, body)}. {hint}")
    if not 200 <= code < 300:  # 400 and the rest: the gateway's own words, summarised
        return make(State.ERROR, f"The gateway answered {http_reply(code, body)}.")
    if refused is not None:
        return make(State.ERROR, f"The gateway's reply could not be used: {refused}.")
    if not is_json:
        port = port_of(meta.url)
        detail = (
            f"The reply is not the gateway's (not JSON): {excerpt(body) or 'empty'}. "
            f"Another program may hold port {port}."
        )
        return make(State.ERROR, detail)
    if error is not None and any(w in error for w in _LOGGED_OUT_WORDS):
        return make(State.LOGGED_OUT)

    sso_expires_s: float | None = None
    auth: Any = parsed
    if endpoint is Endpoint.TICKLE and isinstance(parsed, dict):
        expires = parsed.get("ssoExpires")
        if isinstance(expires, (int, float)) and not isinstance(expires, bool):
            # NaN, infinite or negative is no time left on the login: unknown
            sso_expires_s = expires / 1000.0 if 0 <= expires < math.inf else None
        iserver = parsed.get("iserver")
        auth = iserver.get("authStatus") if isinstance(iserver, dict) else None
    if not isinstance(auth, dict):
        return make(State.ERROR, f"Unexpected reply: {excerpt(body)}")
    return _classify_auth(auth, body, meta, code, sso_expires_s)


def _classify_auth(
    auth: dict[str, Any], body: str, meta: Meta, code: int, sso_expires_s: float | None
) -> Status:
    """Classify an ``authStatus`` object; booleans must be real JSON booleans."""

    def flag(name: str) -> bool | None:
        value = auth.get(name)
        return value if isinstance(value, bool) else None

    def text(source: dict[str, Any], name: str) -> str | None:
        value = source.get(name)
        return value if isinstance(value, str) else None

    server = auth.get("serverInfo")
    server = server if isinstance(server, dict) else {}
    authenticated, connected, competing = (
        flag("authenticated"),
        flag("connected"),
        flag("competing"),
    )
    fields: dict[str, Any] = {
        "authenticated": authenticated,
        "connected": connected,
        "competing": competing,
        "message": text(auth, "message"),
        "fail": text(auth, "fail"),
        "server_name": text(server, "serverName"),
        "server_version": text(server, "serverVersion"),
        "sso_expires_s": sso_expires_s,
        "http_status": code,
    }

    def make(state: State, detail: str | None = None) -> Status:
        words = _detail(state, meta.url) if detail is None else detail
        if detail is None:
            words = _with_reason(words, fields["fail"], fields["message"])
        return _make(state, words, meta, **fields)

    not_bool = [
        name
        for name in ("authenticated", "connected", "competing")
        if name in auth and not isinstance(auth[name], bool)
    ]
    if competing is True:
        return make(State.COMPETING)
    if not_bool or authenticated is None:
        what = ", ".join(not_bool) or "authenticated"
        return make(State.ERROR, f"Unexpected reply ({what} not true/false): {excerpt(body)}")
    if authenticated is False:
        return make(State.NOT_AUTHENTICATED)
    if connected is False:
        return make(State.DISCONNECTED)
    if connected is True and competing is False:
        return make(State.READY)
    return make(State.ERROR, f"Unexpected reply (connected/competing missing): {excerpt(body)}")
