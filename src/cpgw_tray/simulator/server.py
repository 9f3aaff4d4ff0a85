"""The simulator's HTTPS server: real TLS on 127.0.0.1, the gateway's paths, a small
login page, and the ``/sim/`` control API (documented in the package)."""

from __future__ import annotations

import contextlib
import html
import json
import logging
import selectors
import socket
import ssl
import struct
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .certs import make_certificate
from .clock import SimClock
from .model import SimulatedGateway
from .push import PushHub, is_upgrade
from .push import serve as serve_push

log = logging.getLogger(__name__)
# SO_LINGER on, 0 s: closing resets the connection (struct linger: u_short on Windows)
LINGER_0 = struct.pack("HH" if sys.platform == "win32" else "ii", 1, 0)


class Simulator(SimulatedGateway):
    """The simulated gateway on a socket. ``start()`` serves in a background thread;
    ``stop()`` ends every connection at once, hung ones included."""

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
        wall: SimClock | None = None,
        region: str = "na",
    ) -> None:
        super().__init__(
            scenario=scenario,
            session_timeout=session_timeout,
            rate_limit=rate_limit,
            penalty=penalty,
            clock=clock,
            wall=wall,
            region=region,
        )
        self.requested_port = port
        self.push = PushHub()  # the websocket's open sockets, heartbeat and bulletins
        self.stopping = threading.Event()
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
        self._port = port
        self._up_down = threading.Lock()  # go_down / come_up / stop, one at a time

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Simulator:
        self._wake_r, self._wake_w = socket.socketpair()
        self._listen(self.requested_port)
        log.info("simulated gateway on %s", self.url)
        return self

    def _listen(self, port: int) -> None:
        self._server = _Server(("127.0.0.1", port), _Handler, self)
        self._port = int(self._server.server_address[1])
        self._thread = threading.Thread(target=self._serve, name="simulator", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Accept loop with no timeout: idle means asleep, and a wake ends it at once."""
        server = self._server
        assert server is not None
        with selectors.DefaultSelector() as selector:
            selector.register(server, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is self._wake_r:
                        self._wake_r.recv(1)
                        return
                    # socketserver's own loop step (serve_forever calls it)
                    server._handle_request_noblock()  # type: ignore[attr-defined]

    def _close(self) -> None:
        """Stop listening and drop every open connection (hung requests too)."""
        with self._up_down:
            if self._server is not None and self._thread is not None:
                self._wake_w.send(b"x")
                self._thread.join(timeout=5)
                self._server.server_close()
                self._server = self._thread = None
            with self.lock:
                for conn in list(self._connections):
                    _reset(conn)
                self._connections.clear()

    @property
    def listening(self) -> bool:
        """False between :meth:`go_down` and :meth:`come_up`."""
        return self._server is not None

    def go_down(self) -> None:
        """A gateway that is not running: stop listening and drop every connection, so
        new ones are refused, until :meth:`come_up` (the scenario is kept)."""
        self.released.set()  # hung requests end with their connections
        self._close()
        log.info("simulated gateway down: port %d closed", self._port)

    def come_up(self) -> None:
        """Listen again on the same port after :meth:`go_down`. OSError if another
        program took the port meanwhile."""
        with self._up_down:
            if self._server is not None or self.stopping.is_set():
                return
            if self.session.fault == "hang":
                self.released.clear()
            self._listen(self._port)
        log.info("simulated gateway up again on %s", self.url)

    def stop(self) -> None:
        """Stop listening and drop every open connection (hung requests too)."""
        self.stopping.set()
        self.released.set()
        if not hasattr(self, "_wake_r"):
            return  # never started
        self._close()
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert hasattr(self, "_wake_r"), "start() first"
        return self._port

    @property
    def url(self) -> str:
        """The gateway root URL, as the tray's ``--url`` takes it."""
        return f"{'https' if self._context else 'http'}://127.0.0.1:{self.port}"


def _reset(conn: socket.socket) -> None:
    """End a connection with a reset (no TIME_WAIT left on the port), waking a thread
    that reads it."""
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_0)
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)
    conn.close()


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
    # A taken port must fail, as it does for the real gateway. Linux's SO_REUSEADDR never
    # lets a bind pass a listener, only the TIME_WAIT of connections the server closed,
    # which come_up meets (it is inherited by the accepted sockets: set from the start).
    # Elsewhere it would let a second listener share the port: off, and come_up may then
    # wait out those (go_down's own drops are resets and leave none).
    allow_reuse_address = sys.platform == "linux"

    def __init__(self, address: tuple[str, int], handler: type, sim: Simulator) -> None:
        self.sim = sim
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the connection's own thread, so a slow or
        # plain-HTTP client never blocks the accept loop.
        sim = self.sim
        with sim.lock:
            if sim._server is not self:  # accepted as go_down closed the port: not served
                _reset(request)
                return
            sim._connections.add(request)
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if sim._context is not None:
                request.settimeout(10)
                raw = request
                try:
                    request = sim._context.wrap_socket(
                        raw, server_side=True, do_handshake_on_connect=False
                    )
                    with sim.lock:  # the TLS socket owns the connection now: go_down ends
                        sim._connections.discard(raw)  # it, even mid-handshake
                        sim._connections.add(request)
                    request.do_handshake()
                except (ssl.SSLError, OSError) as exc:
                    log.debug("TLS handshake from %s failed: %s", client_address, exc)
                    return
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
        # Headers and body in one write: two small writes on a kept-alive connection
        # stall ~40 ms (Nagle's algorithm meets the client's delayed ACK).
        self._headers_buffer.append(b"\r\n")  # type: ignore[attr-defined]
        if self.command != "HEAD":
            self._headers_buffer.append(data)  # type: ignore[attr-defined]
        self.flush_headers()

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
        path = urlsplit(self.path).path
        if self.command == "GET" and is_upgrade(path, self.headers):
            sim.record(self.command, path, 101, self.client_address, None)
            serve_push(sim, sim.push, self, sim.stopping)
            return
        has_length, body = self._read_body()
        if path.startswith("/sim"):
            self._control(path, body)
            return
        status, reply, headers = self._answer(path, has_length, body)
        # Logged before the reply goes out: a client holding its reply finds it logged.
        sim.record(self.command, path, status, self.client_address, body)
        if status is None:
            self._hang()
        else:
            self._send(status, reply, headers)

    def _answer(
        self, path: str, has_length: bool, body: Any
    ) -> tuple[int | None, Any, dict[str, str]]:
        """The reply to a gateway path or page; status None: keep the request open."""
        sim = self.server.sim
        for prefix in ("/v1/api/", "/v1/portal/"):
            if path.startswith(prefix):
                if self.command == "POST" and not has_length:
                    return 411, "Length Required", {}
                endpoint = path[len(prefix) :].strip("/")
                return sim.answer(self.command, endpoint, body, self.client_address[0])
        return self._pages(path)

    def _hang(self) -> None:
        """Keep the request open with no reply, like the real gateway without IBKR."""
        sim = self.server.sim
        sim.released.wait(timeout=600)
        self.close_connection = True

    def _pages(self, path: str) -> tuple[int, Any, dict[str, str]]:
        sim = self.server.sim
        html_page = {"Content-Type": "text/html;charset=utf-8"}
        if sim.session.fault == "access_denied":
            return 404, "Access Denied", {}
        if path == "/" and self.command == "GET":
            return 302, "", {"Location": "/sso/Login?forwardTo=22&RL=1&ip2loc=US"}
        if path == "/sso/Login" and self.command == "GET":
            note = "Log in to start a simulated session (any username and password work)."
            page = LOGIN_PAGE.format(note=note, scenario=html.escape(sim.session.scenario))
            return 200, page, html_page
        if path == "/sso/Login" and self.command == "POST":
            sim.login()
            return 200, "<!doctype html><p>Client login succeeds</p>", html_page
        return 404, {"error": "Not Found", "statusCode": 404}, {}

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
            elif route == ("GET", "/sim/clock"):
                self._send(200, sim.clock_state())
            elif route == ("POST", "/sim/clock"):
                body = body or {}
                at = body.get("at")
                self._send(200, sim.set_clock(None if at is None else str(at), body.get("region")))
            elif route == ("POST", "/sim/bulletin"):
                body = body or {}
                sent = sim.push.bulletin(body["id"], str(body.get("message", "")))
                self._send(200, {"sockets": sent})
            elif route == ("POST", "/sim/push"):
                sim.push.heartbeat = float((body or {})["heartbeat"])
                self._send(200, {"heartbeat": sim.push.heartbeat, "sockets": sim.push.clients})
            elif route == ("POST", "/sim/release"):
                sim.released.set()
                self._send(200, {"released": True})
            else:
                self._send(404, {"error": f"no control endpoint {self.command} {path}"})
        except (ValueError, TypeError, KeyError) as exc:
            self._send(400, {"error": f"bad request: {exc}"})
