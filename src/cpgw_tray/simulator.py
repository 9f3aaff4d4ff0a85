"""A Client Portal Gateway simulator: real HTTPS on 127.0.0.1, real reply shapes.

It answers ``/v1/api/...`` (and the ``/v1/portal/...`` alias) the way the real gateway
does in each state of the status model, serves a small login page at ``/``, enforces
the gateway's rate limits (429 and a penalty box), times idle sessions out, and can hang
requests the way the real gateway does when IBKR is unreachable.

A control API under ``/sim/`` (never rate-limited, never logged) switches the scenario
and reads the request log::

    GET    /sim/state                 the simulated session, as JSON
    POST   /sim/state     {"scenario": "ready", "fail": "...", "message": "...",
                           "paper": true}
    POST   /sim/config    {"session_timeout": 360, "max_session": 86400,
                           "rate_limit": true, "penalty": 900, "paper": true}
    GET    /sim/requests              the request log (gateway paths only)
    DELETE /sim/requests              clear it
    POST   /sim/release               let hung requests go (they get no reply)

From tests: ``with Simulator(port=0) as sim: sim.url ...``.
"""

from __future__ import annotations

import contextlib
import html
import json
import logging
import selectors
import socket
import ssl
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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
}
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


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A fresh self-signed certificate for 127.0.0.1/localhost (like the gateway's own)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Logged:
    """One request the simulator answered (or kept open)."""

    t: float
    method: str
    path: str
    status: int | None
    client: str
    peer_port: int  # the client's source port: equal ports mean a reused connection


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


class Simulator:
    """The simulated gateway. ``start()`` serves in a background thread; ``stop()`` ends
    every connection at once, hung ones included."""

    def __init__(
        self,
        port: int = 0,
        *,
        scenario: str = "logged_out",
        session_timeout: float = 360.0,
        rate_limit: bool = True,
        penalty: float = 900.0,
        certfile: str | None = None,
        keyfile: str | None = None,
        tls: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.requested_port = port
        self.clock = clock
        self.lock = threading.RLock()
        self.session = Session(
            session_timeout=session_timeout, rate_limit=rate_limit, penalty=penalty
        )
        self.log: list[Logged] = []
        self.released = threading.Event()
        self.stopping = threading.Event()
        self._recent: dict[str, deque[float]] = {}
        self._last_hit: dict[tuple[str, str], float] = {}
        self._connections: set[socket.socket] = set()
        self._context: ssl.SSLContext | None = None
        if tls:
            self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            if certfile:
                self._context.load_cert_chain(certfile, keyfile)
            else:
                with tempfile.TemporaryDirectory(prefix="cpgw-sim-") as tmp:
                    cert, key = make_certificate(Path(tmp))
                    self._context.load_cert_chain(cert, key)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.set_scenario(scenario)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        self._server = _Server(("127.0.0.1", self.requested_port), _Handler, self)
        self._wake_r, self._wake_w = socket.socketpair()
        self._thread = threading.Thread(target=self._serve, name="simulator", daemon=True)
        self._thread.start()
        log.info("simulated gateway on %s", self.url)
        return self

    def _serve(self) -> None:
        """Accept loop with no timeout: idle means asleep, and stop() wakes it at once."""
        assert self._server is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._server, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self.stopping.is_set():
                for key, _ in selector.select():
                    if key.fileobj is self._server and not self.stopping.is_set():
                        # socketserver's own loop step (serve_forever calls it)
                        self._server._handle_request_noblock()  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop listening and drop every open connection (hung requests too)."""
        self.stopping.set()
        self.released.set()
        if self._server is not None and self._thread is not None:
            self._wake_w.send(b"x")
            self._thread.join(timeout=5)
            self._server.server_close()
            self._wake_r.close()
            self._wake_w.close()
            self._thread = None
        with self.lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() first"
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The gateway root URL, as the tray's ``--url`` takes it."""
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"

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
        if endpoint == "iserver/auth/status":
            if not s.logged_in:
                return 401, "", {}
            if s.fault == "no_bridge":
                return 400, {"error": "Bad Request: no bridge", "statusCode": 400}, {}
            return 200, self._auth_status(), {}
        if endpoint == "tickle" and method == "POST":
            if not s.logged_in:
                return 401, {"error": "no session"}, {}
            return 200, self._tickle(), {}
        if endpoint == "iserver/auth/ssodh/init" and method == "POST":
            if not s.logged_in:
                return 401, "", {}
            if not (isinstance(body, dict) and body.get("publish") is True):
                return 500, {"error": "publish must be true", "statusCode": 500}, {}
            if s.competing and body.get("compete") is not True:
                return 200, {"passed": False, **self._flags()}, {}
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
        return {
            "session": "9fe1c272dc44e023a3aefe52b71d42bd",
            "ssoExpires": int(max(0.0, left) * 1000),
            "collission": False,
            "userId": 132329622,
            "hmds": {"error": "no bridge"},
            "iserver": {"authStatus": self._auth_status()},
        }

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

    def record(self, method: str, path: str, status: int | None, peer: tuple[str, int]) -> None:
        with self.lock:
            self.log.append(Logged(time.time(), method, path, status, peer[0], peer[1]))
            if len(self.log) > 10000:
                del self.log[:5000]

    def login(self) -> None:
        """What the login page does: a person logged in and the brokerage session started."""
        self.set_scenario("ready")


def _too_many() -> dict[str, Any]:
    return {"error": "Too Many Requests", "statusCode": 429}


LOGIN_PAGE = """<!doctype html><html><head><meta charset="utf-8">
<title>Client Portal (simulated)</title>
<style>body{{font-family:sans-serif;max-width:30em;margin:4em auto}}</style></head><body>
<h1>Client Portal Gateway — simulator</h1><p>{note}</p>
<form method="post" action="/sso/Login"><label>Username <input name="user" value="simuser"></label>
<label>Password <input type="password" name="password" value="demo"></label>
<button type="submit">Log in</button></form>
<p>Scenario now: <b>{scenario}</b>. Control API: <a href="/sim/state">/sim/state</a>.</p>
</body></html>"""


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hung request must never keep the process alive
    allow_reuse_address = False  # a taken port must fail, as it does for the real gateway

    def __init__(self, address: tuple[str, int], handler: type, sim: Simulator) -> None:
        self.sim = sim
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow or
        # plain-HTTP client never blocks the accept loop.
        sim = self.sim
        with sim.lock:
            sim._connections.add(request)
        try:
            if sim._context is not None:
                request.settimeout(10)
                try:
                    request = sim._context.wrap_socket(request, server_side=True)
                except (ssl.SSLError, OSError) as exc:
                    log.debug("TLS handshake from %s failed: %s", client_address, exc)
                    return
                with sim.lock:
                    sim._connections.add(request)
            self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]
        finally:
            with sim.lock:
                sim._connections.discard(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    timeout = 120  # idle keep-alive connections end after this

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # One entry point for every verb.
    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        headers = dict(headers or {})
        if isinstance(body, (dict, list)):
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json;charset=utf-8")
        else:
            data = str(body).encode()
            if data and status != 404:
                headers.setdefault("Content-Type", "text/plain;charset=utf-8")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _read_body(self) -> tuple[bool, Any]:
        """(whether a length was given, the body as JSON or None)."""
        length = self.headers.get("Content-Length")
        if length is None:
            return False, None
        raw = self.rfile.read(int(length)) if int(length) > 0 else b""
        try:
            return True, json.loads(raw) if raw else None
        except ValueError:
            return True, None

    def _dispatch(self) -> None:
        sim = self.server.sim
        parts = urlsplit(self.path)
        path = parts.path
        client = self.client_address[0]
        has_length, body = self._read_body()
        if path.startswith("/sim"):
            self._control(path, body)
            return
        status: int | None = None
        try:
            for prefix in ("/v1/api/", "/v1/portal/"):
                if path.startswith(prefix):
                    endpoint = path[len(prefix) :].strip("/")
                    if self.command == "POST" and not has_length:
                        status = 411
                        self._send(411, "Length Required")
                        return
                    status, reply, headers = sim.answer(self.command, endpoint, body, client)
                    if status is None:
                        self._hang()
                    else:
                        self._send(status, reply, headers)
                    return
            status = self._pages(path)
        finally:
            if not path.startswith("/sim"):
                sim.record(self.command, path, status, self.client_address)

    def _hang(self) -> None:
        """Keep the request open with no reply, like the real gateway without IBKR."""
        sim = self.server.sim
        sim.released.wait(timeout=600)
        self.close_connection = True

    def _pages(self, path: str) -> int:
        sim = self.server.sim
        if sim.session.fault == "access_denied":
            self._send(404, "Access Denied")
            return 404
        if path == "/" and self.command == "GET":
            self._send(302, "", {"Location": "/sso/Login?forwardTo=22&RL=1&ip2loc=US"})
            return 302
        if path == "/sso/Login" and self.command == "GET":
            note = "Log in to start a simulated session (any username and password work)."
            page = LOGIN_PAGE.format(note=note, scenario=html.escape(sim.session.scenario))
            self._send(200, page, {"Content-Type": "text/html;charset=utf-8"})
            return 200
        if path == "/sso/Login" and self.command == "POST":
            sim.login()
            self._send(
                200,
                "<!doctype html><p>Client login succeeds</p>",
                {"Content-Type": "text/html;charset=utf-8"},
            )
            return 200
        self._send(404, {"error": "Not Found", "statusCode": 404})
        return 404

    def _control(self, path: str, body: Any) -> None:
        sim = self.server.sim
        route = (self.command, path.rstrip("/"))
        try:
            if route == ("GET", "/sim/state") or route == ("GET", "/sim"):
                self._send(200, sim.state())
            elif route == ("POST", "/sim/state"):
                body = body or {}
                if "paper" in body:
                    sim.configure(paper=body["paper"])
                sim.set_scenario(
                    str(body.get("scenario", sim.session.scenario)),
                    fail=str(body.get("fail", "")),
                    message=str(body.get("message", "")),
                )
                self._send(200, sim.state())
            elif route == ("POST", "/sim/config"):
                sim.configure(**(body or {}))
                self._send(200, sim.state())
            elif route == ("GET", "/sim/requests"):
                self._send(200, {"requests": [asdict(r) for r in sim.requests()]})
            elif route == ("DELETE", "/sim/requests"):
                sim.clear_requests()
                self._send(200, {"cleared": True})
            elif route == ("POST", "/sim/release"):
                sim.released.set()
                self._send(200, {"released": True})
            else:
                self._send(404, {"error": f"no control endpoint {self.command} {path}"})
        except (ValueError, TypeError) as exc:
            self._send(400, {"error": str(exc)})


RUN_SH = """\
#!/bin/bash
# Simulated Client Portal Gateway, written by `cpgw-tray sim --make-gateway-dir`.
# Same layout and behaviour as IBKR's clientportal.gw: run it from this folder as
# `bash bin/run.sh root/conf.yaml`; it starts the server as a child (no exec).
config_file=${{1:-root/conf.yaml}}
echo "running"
echo " runtime path : simulator"
echo " config file  : $config_file"
"{python}" -m cpgw_tray sim --conf "$config_file" --main-class {main_class}
"""

RUN_BAT = """\
@echo off
rem Simulated Client Portal Gateway, written by cpgw-tray sim --make-gateway-dir.
set config_file=%1
if "%config_file%"=="" set config_file=root\\conf.yaml
echo running
"{python}" -m cpgw_tray sim --conf "%config_file%" --main-class {main_class}
"""

CONF_YAML = """\
    ip2loc: "US"
    proxyRemoteSsl: true
    proxyRemoteHost: "https://api.ibkr.com"
    listenPort: {port}
    listenSsl: true
    svcEnvironment: "v1"
    sslCert: "vertx.jks"
    sslPwd: "mywebapi"
    authDelay: 3000
    portalBaseURL: ""
    serverOptions:
        blockedThreadCheckInterval: 1000000
        eventLoopPoolSize: 20
        workerPoolSize: 20
        maxWorkerExecuteTime: 100
        internalBlockingPoolSize: 20
    cors:
        origin.allowed: "*"
        allowCredentials: false
    webApps:
        - name: "demo"
          index: "index.html"
    ips:
        allow:
            - 192.*
            - 131.216.*
            - 127.0.0.1
        deny:
            - 212.90.324.10
"""


def make_gateway_dir(path: Path, port: int = 5000) -> Path:
    """Write a ``clientportal.gw``-shaped folder whose ``bin/run.sh`` starts this
    simulator as a child, like IBKR's script starts java. ``run.sh`` gets no execute
    bit, as in IBKR's download."""
    import sys

    from .launcher import MAIN_CLASS

    (path / "bin").mkdir(parents=True, exist_ok=True)
    (path / "root").mkdir(parents=True, exist_ok=True)
    (path / "logs").mkdir(exist_ok=True)
    values = {"python": sys.executable, "main_class": MAIN_CLASS}
    run_sh = path / "bin" / "run.sh"
    run_sh.write_text(RUN_SH.format(**values))
    run_sh.chmod(0o644)
    (path / "bin" / "run.bat").write_text(RUN_BAT.format(**values).replace("\n", "\r\n"))
    (path / "root" / "conf.yaml").write_text(CONF_YAML.format(port=port))
    return path
