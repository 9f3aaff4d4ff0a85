"""The health endpoint (``--serve``): liveness, readiness, the status JSON and metrics.

It only reports what the watcher already knows; it never sends anything to the gateway,
so a probe hammering it cannot cost a rate-limit breach. Everything it says comes from a
``view()`` callable (the current :class:`Status`, already shown as ``unknown`` when stale,
and whether the watcher runs) and a :class:`Metrics` object fed by the watcher.

The server is the standard library's ``ThreadingHTTPServer`` driven by our own loop on a
daemon thread: it waits on the listening socket and a wake-up socket with no timeout,
so it costs nothing while idle and stops at once. ``prometheus_client`` is imported
only when metrics are made, never by the CLI at start.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import selectors
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple, cast
from urllib.parse import urlsplit

from .status import State, Status

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)

ADDR_FORMS = "give PORT, HOST:PORT or [IPV6]:PORT, e.g. 5001 or 127.0.0.1:5001"
_HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
REQUEST_TIMEOUT = 10.0  # seconds a client may take to send its request line and headers


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


class View(NamedTuple):
    """What the watcher shows now: its status (``unknown`` when stale) and whether it runs."""

    status: Status
    running: bool


def is_live(view: View) -> bool:
    """The watcher runs and has a fresh verdict. A back-off or a maintenance window is a
    fresh verdict (the poller paces itself and stays fresh), so neither fails this."""
    return view.running and view.status.state is not State.UNKNOWN


def is_ready(view: View) -> bool:
    """Logged in, connected, no competing session — and the watcher runs."""
    return view.running and view.status.state is State.READY


# Gauges read from the shown status at each scrape: (name, help, value or None to omit).
# A new one is one entry here.
STATUS_GAUGES: tuple[tuple[str, str, Callable[[Status], float | None]], ...] = (
    (
        "cpgw_tray_login_expires_seconds",
        "Seconds left on the gateway login, from the last keep-alive (absent when unknown)",
        lambda s: s.sso_expires_s,
    ),
    (
        "cpgw_tray_push_connected",
        "1 while the gateway's websocket is connected, else 0 (absent when push is off)",
        lambda s: None if s.push is None else float(s.push == "connected"),
    ),
    (
        "cpgw_tray_maintenance",
        "1 while the last check fell in an IBKR restart window, else 0",
        lambda s: float(s.maintenance_until is not None),
    ),
)


class Metrics:
    """Prometheus metrics in a private registry. Thread-safe.

    Fed by the watcher: :meth:`observe` after every finished check (any thread), and
    :meth:`request` after every request the gateway client sent (its endpoint path and
    the HTTP status, or the transport failure's name such as ``"timeout"``)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self._clock = clock
        self._lock = threading.Lock()
        self._state: State | None = None
        self._changed = clock()
        self._shown: Status | None = None
        self.registry = CollectorRegistry()
        self._duration = Histogram(
            "cpgw_tray_check_duration_seconds",
            "How long a status check took",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self._requests = Counter(
            "cpgw_tray_requests",
            "Requests sent to the gateway, by API endpoint and HTTP status or failure",
            ["endpoint", "code"],
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "cpgw_tray_rate_limited",
            "HTTP 429 replies from the gateway",
            registry=self.registry,
        )
        self._bulletins = Counter(
            "cpgw_tray_bulletins",
            "IBKR bulletins received on the websocket and shown (each id once)",
            registry=self.registry,
        )
        self.registry.register(_StatusCollector(self))

    def bulletin(self) -> None:
        """A new IBKR bulletin was shown."""
        self._bulletins.inc()

    def observe(self, status: Status, duration_s: float) -> None:
        """A check finished with ``status`` after ``duration_s`` seconds."""
        self._duration.observe(duration_s)
        with self._lock:
            self._note(status.state)

    def request(self, endpoint: str, code: int | str) -> None:
        """The gateway client sent a request to ``endpoint`` (e.g. ``"tickle"``) and got
        HTTP ``code``, or failed with ``code`` naming the failure (e.g. ``"refused"``)."""
        self._requests.labels(endpoint=endpoint, code=str(code)).inc()
        if code == 429:
            self._rate_limited.inc()

    def render(self, status: Status) -> tuple[bytes, str]:
        """The text exposition with ``status`` as the shown state; (body, content type)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        with self._lock:
            self._note(status.state)
            self._shown = status
            return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _note(self, state: State) -> None:
        if state is not self._state:
            self._state, self._changed = state, self._clock()

    def collect_status(self) -> Iterator[Metric]:
        """The gauges read from the shown status (called by the registry, under the lock)."""
        from prometheus_client.core import GaugeMetricFamily

        shown = self._shown
        states = GaugeMetricFamily(
            "cpgw_tray_state", "1 for the state shown now, 0 for the others", labels=["state"]
        )
        for state in State:
            current = shown is not None and shown.state is state
            states.add_metric([state.value], 1.0 if current else 0.0)
        yield states
        yield GaugeMetricFamily(
            "cpgw_tray_seconds_since_change",
            "Seconds since the shown state last changed (or since start)",
            value=self._clock() - self._changed,
        )
        for name, text, read in STATUS_GAUGES:
            value = None if shown is None else read(shown)
            if value is not None:
                yield GaugeMetricFamily(name, text, value=value)


class _StatusCollector:
    """Hands the registry the gauges that are read from the shown status."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.collect_status()


class ServeError(Exception):
    """The health endpoint cannot listen; the message is one line for the user."""


class _Server(ThreadingHTTPServer):
    """The standard library's threading server, IPv4 or IPv6, knowing its endpoint."""

    daemon_threads = True  # a slow client never holds up quitting
    block_on_close = False

    def __init__(self, addr: Addr, health: HealthServer) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr.host else socket.AF_INET
        self.health = health
        super().__init__((addr.host, addr.port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Logged, never printed; a client that hung up or stalled is not our error.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            log.debug("health endpoint: %s went away", client_address[0])
        else:
            log.exception("health endpoint: error serving %s", client_address[0])


class HealthServer:
    """The health endpoint on its own daemon thread. ``start()`` listens (raising
    :class:`ServeError` when it cannot); ``stop()`` returns at once."""

    def __init__(self, addr: Addr, view: Callable[[], View], metrics: Metrics) -> None:
        self.view = view
        self.metrics = metrics
        try:
            self._httpd = _Server(addr, self)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            hint = " (another program, or another cpgw-tray, uses it)" if _in_use(exc) else ""
            raise ServeError(f"cannot listen on {addr} for --serve: {reason}{hint}") from None
        bound = self._httpd.server_address
        self.addr = Addr(str(bound[0]), int(bound[1]))
        self.exposed = not ipaddress.ip_address(self.addr.host).is_loopback
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr.host == "0.0.0.0" else self.addr.host
        host = "::1" if host == "::" else host
        return f"http://{Addr(host, self.addr.port)}"

    def start(self) -> None:
        if self.exposed:
            log.warning(
                "health endpoint on %s is exposed beyond this machine (not loopback): "
                "anyone who can reach it sees the session state; account ids are left out",
                self.addr,
            )
        else:
            log.info("health endpoint on %s", self.url)
        self._thread.start()

    def stop(self) -> None:
        """Stop listening now; requests being answered finish on their daemon threads."""
        if self._stopping:
            return
        self._stopping = True
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._httpd.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def _run(self) -> None:
        # Wait on the listening socket and the wake-up socket, with no timeout.
        self._httpd.timeout = 0  # handle_request() never waits: we only call it when ready
        with selectors.DefaultSelector() as selector:
            selector.register(self._httpd.fileno(), selectors.EVENT_READ, "accept")
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stopping:
                try:
                    for key, _ in selector.select():
                        if key.data == "accept" and not self._stopping:
                            self._httpd.handle_request()
                except Exception:  # keep serving; a broken loop would be a silent stop
                    log.exception("health endpoint loop failed")

    def reply_json(self, status: Status) -> bytes:
        data = status.to_json()
        if self.exposed:
            data["account"] = None  # account ids never leave the machine
        return (json.dumps(data) + "\n").encode()


def _in_use(exc: OSError) -> bool:
    import errno

    return exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1))


class _Handler(BaseHTTPRequestHandler):
    """GET-only routes; anything else 404, other methods 405, errors 500 and a log line."""

    server_version = "cpgw-tray"
    sys_version = ""
    timeout = REQUEST_TIMEOUT
    ROUTES = ("/livez", "/readyz", "/status", "/metrics")

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        if self.command != "GET":
            body = f"method {self.command} not allowed; use GET\n".encode()
            self._send(HTTPStatus.METHOD_NOT_ALLOWED, body, "text/plain", {"Allow": "GET"})
            return False
        return True

    def do_GET(self) -> None:
        health = cast(_Server, self.server).health
        path = urlsplit(self.path).path
        try:
            if path not in self.ROUTES:
                routes = ", ".join(self.ROUTES)
                self._send(HTTPStatus.NOT_FOUND, f"not found; try {routes}\n".encode())
                return
            view = health.view()
            if path == "/metrics":
                body, kind = health.metrics.render(view.status)
                self._send(HTTPStatus.OK, body, kind)
                return
            ok = {"/livez": is_live, "/readyz": is_ready}.get(path, lambda v: True)(view)
            code = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            self._send(code, health.reply_json(view.status), "application/json")
        except Exception:
            log.exception("health endpoint: GET %s failed", path)
            self._send(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error; see the log\n")

    def _send(
        self,
        code: HTTPStatus,
        body: bytes,
        kind: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # Malformed requests (bad request line, too-long headers): a plain one-liner,
        # with a status line even when the request line was too broken to tell a version.
        self.close_connection = True
        self.request_version = "HTTP/1.0"
        self._send(HTTPStatus(code), f"{message or HTTPStatus(code).phrase}\n".encode())

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("health endpoint: %s " + format, self.address_string(), *args)
