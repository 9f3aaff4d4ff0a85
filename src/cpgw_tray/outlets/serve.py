"""The health endpoint (``--serve``): liveness, readiness, the status JSON and metrics.

It only reports what the watcher already knows; it never sends anything to the gateway,
so a probe hammering it cannot cost a rate-limit breach. Everything it says comes from a
``view()`` callable (the current :class:`Status`, already shown as ``unknown`` when stale,
and whether the watcher runs; a list of them, one per gateway, when several are watched)
and a :class:`Metrics` object fed by the watcher. With several gateways ``/livez`` and
``/readyz`` hold for every one, ``/livez/NAME``, ``/readyz/NAME`` and ``/status/NAME`` for
one, ``/status`` is a JSON array, and every series carries a ``gateway`` label.

The server is a :class:`~cpgw_tray.outlets.httpd.BoundedServer`: one selector loop on a daemon
thread, a capped number of connections with deadlines, so a flood of clients can slow it
but never change a verdict; it costs nothing while idle and stops at once.
``prometheus_client`` is imported only when metrics are made, never by the CLI at start.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from http import HTTPStatus
from typing import TYPE_CHECKING, NamedTuple

from ..model.status import State, Status
from ..redaction import redact
from ..settings.values import Addr
from .httpd import DEFAULT_LIMITS, BoundedServer, Limits, Reply, Request

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

log = logging.getLogger(__name__)


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

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        gateways: Sequence[str | None] = (None,),
    ) -> None:
        """``gateways``: the names watched (None: unnamed), each series labelled with one
        (``gateway=""`` when unnamed, which PromQL reads as no label)."""
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, State] = {}  # by gateway label
        self._changed: dict[str, float] = {}
        self._started = clock()
        self._shown: list[Status] = []
        self.registry = CollectorRegistry()
        self._duration = Histogram(
            "cpgw_tray_check_duration_seconds",
            "How long a status check took",
            ["gateway"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self._requests = Counter(
            "cpgw_tray_requests",
            "Requests sent to the gateway, by API endpoint and HTTP status or failure",
            ["gateway", "endpoint", "code"],
            registry=self.registry,
        )
        self._rate_limited = Counter(
            "cpgw_tray_rate_limited",
            "HTTP 429 replies from the gateway",
            ["gateway"],
            registry=self.registry,
        )
        self._bulletins = Counter(
            "cpgw_tray_bulletins",
            "IBKR bulletins received on the websocket and shown (each id once)",
            ["gateway"],
            registry=self.registry,
        )
        for name in gateways:  # a zero from the start, as without labels
            self._rate_limited.labels(gateway=name or "")
            self._bulletins.labels(gateway=name or "")
        self.registry.register(_StatusCollector(self))

    def bulletin(self, gateway: str | None = None) -> None:
        """A new IBKR bulletin of ``gateway`` was shown."""
        self._bulletins.labels(gateway=gateway or "").inc()

    def observe(self, status: Status, duration_s: float) -> None:
        """A check finished with ``status`` after ``duration_s`` seconds."""
        self._duration.labels(gateway=status.gateway or "").observe(duration_s)
        with self._lock:
            self._note(status)

    def request(self, endpoint: str, code: int | str, gateway: str | None = None) -> None:
        """The gateway client sent a request to ``endpoint`` (e.g. ``"tickle"``) and got
        HTTP ``code``, or failed with ``code`` naming the failure (e.g. ``"refused"``)."""
        label = gateway or ""
        self._requests.labels(gateway=label, endpoint=endpoint, code=str(code)).inc()
        if code == 429:
            self._rate_limited.labels(gateway=label).inc()

    def render(self, shown: Status | Sequence[Status]) -> tuple[bytes, str]:
        """The text exposition with ``shown`` as the states shown (one per gateway);
        (body, content type)."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        statuses = [shown] if isinstance(shown, Status) else list(shown)
        with self._lock:
            for status in statuses:
                self._note(status)
            self._shown = statuses
            return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _note(self, status: Status) -> None:
        label = status.gateway or ""
        if status.state is not self._state.get(label):
            self._state[label], self._changed[label] = status.state, self._clock()

    def collect_status(self) -> Iterator[Metric]:
        """The gauges read from the shown statuses (called by the registry, under the lock)."""
        from prometheus_client.core import GaugeMetricFamily

        states = GaugeMetricFamily(
            "cpgw_tray_state",
            "1 for the state shown now, 0 for the others",
            labels=["gateway", "state"],
        )
        since = GaugeMetricFamily(
            "cpgw_tray_seconds_since_change",
            "Seconds since the shown state last changed (or since start)",
            labels=["gateway"],
        )
        gauges = [
            GaugeMetricFamily(name, text, labels=["gateway"]) for name, text, _ in STATUS_GAUGES
        ]
        every: list[Status | None] = [*self._shown] or [None]  # before the first scrape
        for shown in every:
            label = shown.gateway or "" if shown is not None else ""
            for state in State:
                current = shown is not None and shown.state is state
                states.add_metric([label, state.value], 1.0 if current else 0.0)
            changed = self._changed.get(label, self._started)
            since.add_metric([label], self._clock() - changed)
            for gauge, (_, _, read) in zip(gauges, STATUS_GAUGES, strict=True):
                value = None if shown is None else read(shown)
                if value is not None:
                    gauge.add_metric([label], value)
        yield states
        yield since
        yield from (gauge for gauge in gauges if gauge.samples)


class _StatusCollector:
    """Hands the registry the gauges that are read from the shown status."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self._metrics.collect_status()


class ServeError(Exception):
    """The health endpoint cannot listen; the message is one line for the user."""


LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
ROUTES = ("/livez", "/readyz", "/status", "/metrics")
NAMED_ROUTES = ("/livez", "/readyz", "/status")  # also /ROUTE/NAME: one gateway


class HealthServer:
    """The health endpoint on its own daemon thread (a :class:`BoundedServer`).
    ``start()`` serves; ``stop()`` returns at once. On a loopback bind only requests for
    a loopback name, the bound address or a name in ``hosts`` (``serve_hosts``) are
    answered (against DNS rebinding); on any other bind account ids are left out and
    every text passes the redactor."""

    def __init__(
        self,
        addr: Addr,
        view: Callable[[], View | Sequence[View]],
        metrics: Metrics,
        hosts: Iterable[str] = (),
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        self.view = view
        self.metrics = metrics
        try:
            self._httpd = BoundedServer(addr.host, addr.port, self.answer, self.host_ok, limits)
        except OSError as exc:
            reason = exc.strerror or str(exc)
            hint = " (another program, or another cpgw-tray, uses it)" if _in_use(exc) else ""
            raise ServeError(f"cannot listen on {addr} for --serve: {reason}{hint}") from None
        bound = self._httpd.address
        self.addr = Addr(str(bound[0]), int(bound[1]))
        self.exposed = not ipaddress.ip_address(self.addr.host).is_loopback
        own = f"[{self.addr.host}]" if ":" in self.addr.host else self.addr.host
        self.hosts = frozenset({*LOOPBACK_NAMES, own, *(h.lower() for h in hosts)})

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.addr.host == "0.0.0.0" else self.addr.host
        host = "::1" if host == "::" else host
        return f"http://{Addr(host, self.addr.port)}"

    @property
    def thread(self) -> threading.Thread:
        """The worker thread (a watcher checks that it still runs)."""
        return self._httpd.thread

    def start(self) -> None:
        if self.exposed:
            log.warning(
                "health endpoint on %s is exposed beyond this machine (not loopback): "
                "anyone who can reach it sees the session state; account ids are left out",
                self.addr,
            )
        else:
            log.info("health endpoint on %s", self.url)
        self._httpd.start()

    def stop(self) -> None:
        """Stop listening now and drop every connection."""
        self._httpd.stop()

    def host_ok(self, value: str) -> bool:
        """Whether a ``Host`` header names this endpoint: on a loopback bind a loopback
        name, the bound address or a ``serve_hosts`` name, with or without a port."""
        if self.exposed:
            return True
        name = value.strip().lower()
        if name.startswith("["):
            inside, sep, port = name.partition("]")
            name, port = inside + sep, port.removeprefix(":") if port else ""
        else:
            name, _, port = name.partition(":")
        return name in self.hosts and (port == "" or port.isdigit()) and name != ""

    def answer(self, request: Request) -> Reply:
        """GET-only routes; anything else 404, other methods 405, errors 500 and a log line."""
        if request.method != "GET":
            said = f"method {request.method} not allowed; use GET\n".encode()
            return Reply(HTTPStatus.METHOD_NOT_ALLOWED, said, headers=(("Allow", "GET"),))
        path = request.path.partition("?")[0]
        route, slash, name = path.partition("/")[2].partition("/")
        route = "/" + route
        if route not in ROUTES or (slash and (route not in NAMED_ROUTES or not name)):
            return Reply(HTTPStatus.NOT_FOUND, f"not found; try {', '.join(ROUTES)}\n".encode())
        try:
            got = self.view()
            views = [got] if isinstance(got, View) else list(got)
            if route == "/metrics":
                body, kind = self.metrics.render([view.status for view in views])
                return Reply(HTTPStatus.OK, body, kind)
            if slash:
                views = [view for view in views if view.status.gateway == name]
                if not views:
                    return Reply(HTTPStatus.NOT_FOUND, f"no gateway named {name!r}\n".encode())
            check = {"/livez": is_live, "/readyz": is_ready}.get(route, lambda v: True)
            ok = all(check(view) for view in views)
            code = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
            body = self.reply_json(*(view.status for view in views))
            return Reply(code, body, "application/json")
        except Exception:
            log.exception("health endpoint: GET %s failed", path)
            return Reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error; see the log\n")

    def reply_json(self, *statuses: Status) -> bytes:
        """One status's JSON object; several gateways' statuses: a JSON array of them."""
        objects = []
        for status in statuses:
            data = status.to_json()
            if self.exposed:  # account ids and the gateway's words never leave the machine
                data["account"] = None
                data = {k: redact(v) if isinstance(v, str) else v for k, v in data.items()}
            objects.append(data)
        return (json.dumps(objects[0] if len(objects) == 1 else objects) + "\n").encode()


def _in_use(exc: OSError) -> bool:
    import errno

    return exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1))
