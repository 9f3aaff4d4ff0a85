"""The simulated gateway's brain: its session, its scenarios, its rate limits and the
reply to each API request, with no sockets (the HTTPS server is :mod:`.server`). At an
injected time (:mod:`.clock`) it also plays IBKR's clock: a restart window ends the
brokerage session (and nothing restarts it until the window ends), the weekly token
reset ends the login."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from ..model.ibkr_clock import REGIONS, next_token_reset, window_at
from .clock import SimClock, describe, parse_moment

log = logging.getLogger(__name__)

# Scenario name -> what it simulates. State names of the model are accepted as aliases.
SCENARIOS: dict[str, str] = {
    "ready": "logged in, brokerage session authenticated",
    "competing": "another session for this username is open",
    "disconnected": "authenticated, but the link to IBKR is down",
    "not_authenticated": "logged in, brokerage session not started",
    "no_bridge": "logged in, brokerage session not started (400 'no bridge')",
    "logged_out": "no session (401)",
    "access_denied": "127.0.0.1 not in ips.allow (404 'Access Denied')",
    "rate_limited": "every gateway request answered 429",
    "server_error": "HTTP 500, as after an IBKR server restart",
    "unavailable": "HTTP 503, IBKR not ready",
    "not_json": "a reply that is not the gateway's (HTML)",
    "hang": "requests kept open, as when IBKR is unreachable",
    # IBKR's 2025-2026 reply shapes (gateway-facts): the tickle disagrees or says nothing
    "half_open": "auth/status: not authenticated; tickle: 200 'no session' (Nov 2025 builds)",
    "tickle_bare": "ready, but the tickle has no iserver.authStatus",
    "tickle_nan": "ready, but the tickle's ssoExpires is NaN (not JSON)",
}
# Scenarios whose session is that of another scenario; only the tickle's reply differs.
SHAPES = {"half_open": "not_authenticated", "tickle_bare": "ready", "tickle_nan": "ready"}
ALIASES = {"not_responding": "hang", "error": "server_error"}
FAULTS = {
    "no_bridge",
    "access_denied",
    "rate_limited",
    "server_error",
    "unavailable",
    "not_json",
    "hang",
}
LIMITED = ("iserver/auth/status", "tickle")  # 1 request/s each
MAC = "F4:03:43:CD:BD:C0"
HALF_OPEN_FAIL = "Repeatedly reauthenticating failed"


@dataclass
class Logged:
    """One request the simulator answered (or kept open)."""

    t: float
    method: str
    path: str
    status: int | None
    client: str
    peer_port: int  # the client's source port: equal ports mean a reused connection
    body: Any = None  # the JSON body sent, if any (``compete: true`` shows here)


@dataclass
class Session:
    """The simulated gateway's session, as its endpoints report it."""

    scenario: str = "logged_out"
    logged_in: bool = False
    authenticated: bool = False
    connected: bool = False
    competing: bool = False
    fail: str = ""
    message: str = ""
    fault: str | None = None
    paper: bool = True
    session_timeout: float = 360.0  # the real gateway: about 6 minutes without requests
    max_session: float = 86400.0  # the daily reset: a login lasts at most 24 hours
    rate_limit: bool = True
    penalty: float = 900.0  # the real penalty box: 15 minutes
    penalty_until: float = 0.0
    last_request: float = 0.0
    login_at: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class SimulatedGateway:
    """The gateway's behaviour in each scenario; thread-safe (one lock)."""

    def __init__(
        self,
        *,
        scenario: str = "logged_out",
        session_timeout: float = 360.0,
        rate_limit: bool = True,
        penalty: float = 900.0,
        clock: Callable[[], float] = time.monotonic,
        wall: SimClock | None = None,
        region: str = "na",
    ) -> None:
        self.clock = clock
        self.wall = wall or SimClock()
        self.region = region
        self._played: datetime | None = None  # the start of the last restart window played
        self._seen: datetime | None = None  # the wall time of the last request
        self._restarting = False
        self.lock = threading.RLock()
        self.session = Session(
            session_timeout=session_timeout, rate_limit=rate_limit, penalty=penalty
        )
        self.log: list[Logged] = []
        self.released = threading.Event()
        self._recent: dict[str, deque[float]] = {}
        self._last_hit: dict[tuple[str, str], float] = {}
        self.set_scenario(scenario)

    # ------------------------------------------------------------------ control
    def set_scenario(self, name: str, *, fail: str = "", message: str = "") -> None:
        """Switch the simulated gateway into a scenario (see :data:`SCENARIOS`)."""
        name = ALIASES.get(name, name)
        if name not in SCENARIOS:
            raise ValueError(f"unknown scenario {name!r}; one of: {', '.join(SCENARIOS)}")
        with self.lock:
            s = self.session
            s.scenario, s.fail, s.message = name, fail, message
            s.fault = name if name in FAULTS else None
            if name != "hang":
                self.released.set()
            else:
                self.released.clear()
            if name in FAULTS:
                return  # a fault hides the session; it does not change it
            name = SHAPES.get(name, name)
            s.logged_in = name != "logged_out"
            s.authenticated = name in ("ready", "disconnected")
            s.connected = name in ("ready", "competing", "not_authenticated")
            s.competing = name == "competing"
            s.penalty_until = 0.0
            now = self.clock()
            s.last_request = now
            if s.logged_in and s.login_at is None:
                s.login_at = now
            if not s.logged_in:
                s.login_at = None

    def taken_over(self, by: str = "TWS") -> None:
        """Another session for this username (TWS, the phone, the web) logs in: this one
        becomes ``competing`` until it is taken back with ``compete: true``."""
        with self.lock:
            self.set_scenario("competing", message=f"{by} took the session over")
            log.info("simulated takeover by %s", by)

    def configure(self, **settings: Any) -> None:
        """Change ``session_timeout``, ``max_session``, ``rate_limit``, ``penalty`` or
        ``paper``."""
        allowed = {
            "session_timeout": float,
            "max_session": float,
            "rate_limit": bool,
            "penalty": float,
            "paper": bool,
        }
        with self.lock:
            for key, value in settings.items():
                if key not in allowed:
                    raise ValueError(f"unknown setting {key!r}; one of: {', '.join(allowed)}")
                setattr(self.session, key, allowed[key](value))

    def set_clock(self, at: str | None, region: str | None = None) -> dict[str, Any]:
        """Inject the wall time (ISO 8601 or "now"; None: real time again) and the IBKR
        region whose windows are played; returns the clock as ``GET /sim/clock`` does."""
        if region is not None and region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; one of: {', '.join(REGIONS)}")
        moment = None if at is None else parse_moment(at)
        with self.lock:
            self.region = region or self.region
            self.wall.set(moment)
        return self.clock_state()

    def clock_state(self) -> dict[str, Any]:
        return describe(self.wall, self.region)

    def requests(self) -> list[Logged]:
        with self.lock:
            return list(self.log)

    def clear_requests(self) -> None:
        with self.lock:
            self.log.clear()

    def state(self) -> dict[str, Any]:
        with self.lock:
            data = asdict(self.session)
        data.pop("extra")
        data["penalty_left"] = max(0.0, data.pop("penalty_until") - self.clock())
        for key in ("last_request", "login_at"):
            data.pop(key)
        data["scenarios"] = SCENARIOS
        return data

    # ------------------------------------------------------------------ gateway logic
    def _expire(self, now: float) -> None:
        s = self.session
        if not s.logged_in:
            return
        idle = s.session_timeout > 0 and now - s.last_request > s.session_timeout
        reset = s.login_at is not None and s.max_session > 0 and now - s.login_at >= s.max_session
        if idle or reset:
            log.info("simulated session ended: %s", "idle timeout" if idle else "daily reset")
            self._end_session()

    def _play_ibkr_clock(self) -> bool:
        """At an injected time: the weekly token reset passed since the last request ends
        the login; entering a restart window ends the brokerage session, once per window.
        True while inside a window."""
        if not self.wall.injected:
            self._seen = None
            return False
        s, at = self.session, self.wall.now()
        seen, self._seen = self._seen, at
        if seen is not None and seen < at and next_token_reset(seen) <= at and s.logged_in:
            log.info("simulated weekly token reset: the login ends")
            self._end_session()
        window = window_at(self.region, at)
        if window is None:
            return False
        if self._played != window.start:
            self._played = window.start
            if s.logged_in and s.authenticated:
                log.info("simulated %s: the brokerage session ends", window.label)
                s.authenticated, s.connected, s.scenario = False, True, "not_authenticated"
        return True

    def _end_session(self) -> None:
        s = self.session
        s.logged_in = s.authenticated = s.connected = s.competing = False
        s.scenario, s.login_at = "logged_out", None

    def _over_limit(self, client: str, endpoint: str, now: float) -> bool:
        """Record the request; True if it breaks a rate limit."""
        recent = self._recent.setdefault(client, deque())
        while recent and recent[0] <= now - 1.0:
            recent.popleft()
        recent.append(now)
        over = len(recent) > 10
        if endpoint in LIMITED or endpoint == "sso/validate":
            window = 60.0 if endpoint == "sso/validate" else 1.0
            last = self._last_hit.get((client, endpoint))
            over = over or (last is not None and now - last < window)
            self._last_hit[(client, endpoint)] = now
        return over

    def answer(
        self, method: str, endpoint: str, body: Any, client: str
    ) -> tuple[int | None, Any, dict[str, str]]:
        """The reply to a gateway API request: (status, JSON-able body or text, headers);
        status None means "keep the request open". ``endpoint`` follows ``/v1/api/``."""
        with self.lock:
            s = self.session
            now = self.clock()
            self._expire(now)
            self._restarting = self._play_ibkr_clock()
            if s.fault == "access_denied":
                return 404, "Access Denied", {}
            if s.rate_limit:
                if now < s.penalty_until:
                    return 429, _too_many(), {"Retry-After": str(int(s.penalty_until - now) + 1)}
                if self._over_limit(client, endpoint, now):
                    s.penalty_until = now + s.penalty
                    log.info("rate limit broken on %s: penalty box for %g s", endpoint, s.penalty)
                    return 429, _too_many(), {"Retry-After": str(int(s.penalty) or 1)}
            if s.fault == "hang":
                return None, None, {}
            if s.fault == "rate_limited":
                return 429, _too_many(), {"Retry-After": "60"}
            if s.fault == "server_error":
                return 500, {"error": "Internal Server Error", "statusCode": 500}, {}
            if s.fault == "unavailable":
                return 503, {"error": "Service Unavailable", "statusCode": 503}, {}
            if s.fault == "not_json":
                return (
                    200,
                    "<html><body>Welcome to nginx!</body></html>",
                    {"Content-Type": "text/html"},
                )
            if s.logged_in:
                s.last_request = now
            return self._route(method, endpoint, body, now)

    def _route(
        self, method: str, endpoint: str, body: Any, now: float
    ) -> tuple[int, Any, dict[str, str]]:
        s = self.session
        if self._restarting and endpoint in ("iserver/auth/ssodh/init", "iserver/reauthenticate"):
            return 503, {"error": "Service Unavailable", "statusCode": 503}, {}  # IBKR restarts
        if endpoint == "iserver/auth/status":
            if not s.logged_in:
                return 401, "", {}
            if s.fault == "no_bridge":
                return 400, {"error": "Bad Request: no bridge", "statusCode": 400}, {}
            return 200, self._auth_status(), {}
        if endpoint == "tickle" and method == "POST":
            if not s.logged_in or s.scenario == "half_open":
                return (401 if not s.logged_in else 200), {"error": "no session"}, {}
            return 200, self._tickle(), {}
        if endpoint == "iserver/auth/ssodh/init" and method == "POST":
            if not s.logged_in:
                return 401, "", {}
            if not (isinstance(body, dict) and body.get("publish") is True):
                return 500, {"error": "publish must be true", "statusCode": 500}, {}
            if s.competing and body.get("compete") is not True:
                return 200, {"passed": False, **self._flags()}, {}
            if s.scenario == "half_open":  # seen after the Nov 2025 builds' half-open login
                return 200, {"passed": False, **self._flags(), "fail": HALF_OPEN_FAIL}, {}
            self._start_brokerage()
            return 200, {"passed": True, **self._flags(), "hardware_info": f"1c4558e8|{MAC}"}, {}
        if endpoint == "iserver/reauthenticate" and method == "POST":
            if not s.logged_in:
                return 200, {"error": "not logged in"}, {}
            self._start_brokerage()
            return 200, {"message": "triggered"}, {}
        if endpoint == "logout" and method == "POST":
            self._end_session()
            return 200, {"status": True}, {}
        if endpoint == "sso/validate" and method == "GET":
            if not s.logged_in:
                return 401, "", {}
            return 200, self._validate(now), {}
        if endpoint == "iserver/accounts" and method == "GET":
            if not s.logged_in:
                return 401, "", {}
            if not s.authenticated:
                return 400, {"error": "Init session first", "statusCode": 400}, {}
            account = self.account
            return (
                200,
                {
                    "accounts": [account],
                    "selectedAccount": account,
                    "isPaper": s.paper,
                    "aliases": {account: account},
                },
                {},
            )
        return (
            404,
            {"error": f"no such endpoint: {method} /v1/api/{endpoint}", "statusCode": 404},
            {},
        )

    @property
    def account(self) -> str:
        return "DU1234567" if self.session.paper else "U7654321"

    def _flags(self) -> dict[str, Any]:
        s = self.session
        return {
            "authenticated": s.authenticated,
            "connected": s.connected,
            "competing": s.competing,
        }

    def _start_brokerage(self) -> None:
        s = self.session
        s.authenticated = s.connected = True
        s.competing = False
        s.fail = s.message = ""
        s.scenario = "ready"

    def _auth_status(self) -> dict[str, Any]:
        s = self.session
        reply: dict[str, Any] = {**self._flags(), "message": s.message, "MAC": MAC}
        if s.connected:
            reply["serverInfo"] = {
                "serverName": "SimGw01",
                "serverVersion": "Build 10.33.1f, Feb 5, 2025 10:21:09 AM",
            }
            reply["hardware_info"] = f"1c4558e8|{MAC}"
        else:
            reply["serverInfo"] = {"serverName": None, "serverVersion": None}
        if s.fail:
            reply["fail"] = s.fail
        return reply

    def _tickle(self) -> dict[str, Any]:
        s = self.session
        now = self.clock()
        left = s.max_session - (now - s.login_at) if s.login_at is not None else s.max_session
        reply: dict[str, Any] = {
            "session": "9fe1c272dc44e023a3aefe52b71d42bd",
            "ssoExpires": int(max(0.0, left) * 1000),
            "collission": False,
            "userId": 132329622,
            "hmds": {"error": "no bridge"},
            "iserver": {} if s.scenario == "tickle_bare" else {"authStatus": self._auth_status()},
        }
        if s.scenario == "tickle_nan":
            reply["ssoExpires"] = float("nan")  # the server writes it as NaN: not JSON
        return reply

    def _validate(self, now: float) -> dict[str, Any]:
        s = self.session
        return {
            "USER_ID": 132329622,
            "USER_NAME": "simuser",
            "RESULT": True,
            "AUTH_TIME": int(time.time() * 1000),
            "LOGIN_TYPE": 2 if s.paper else 1,
            "SF_ENABLED": False,
            "IS_FREE_TRIAL": False,
            "IP": "127.0.0.1",
            "EXPIRES": int(max(0.0, s.session_timeout) * 1000),
            "LANDING_APP": "PORTAL",
        }

    def record(
        self, method: str, path: str, status: int | None, peer: tuple[str, int], body: Any = None
    ) -> None:
        with self.lock:
            self.log.append(Logged(time.time(), method, path, status, peer[0], peer[1], body))
            if len(self.log) > 10000:
                del self.log[:5000]

    def login(self) -> None:
        """What the login page does: a person logged in and the brokerage session started."""
        self.set_scenario("ready")


def _too_many() -> dict[str, Any]:
    return {"error": "Too Many Requests", "statusCode": 429}
