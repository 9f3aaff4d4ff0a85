"""The health endpoint over real sockets: routes, codes, metrics, exposure, a taken port."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.serve import HealthServer, Metrics, ServeError, View
from cpgw_tray.settings.values import Addr, parse_addr, parse_host_names

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)


def make_status(state: State, **fields: Any) -> Status:
    return Status(
        state,
        LOOKS[state].label,
        f"detail for {state.value}",
        checked_at=NOW,
        url="https://127.0.0.1:5000/v1/api/iserver/auth/status",
        **fields,
    )


class Shown:
    """What the watcher shows; tests change it between requests."""

    def __init__(self, status: Status, running: bool = True) -> None:
        self.status, self.running = status, running

    def __call__(self) -> View:
        return View(self.status, self.running)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path)
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


@pytest.fixture
def shown() -> Shown:
    return Shown(make_status(State.READY, account="U1234567", paper=False, sso_expires_s=540.0))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def metrics(clock: Clock) -> Metrics:
    return Metrics(clock=clock)


@pytest.fixture
def server(shown: Shown, metrics: Metrics) -> Iterator[HealthServer]:
    health = HealthServer(Addr("127.0.0.1", 0), shown, metrics)
    health.start()
    yield health
    health.stop()


def families(body: bytes) -> dict[str, Any]:
    return {f.name: f for f in text_string_to_metric_families(body.decode())}


# ------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5001", Addr("127.0.0.1", 5001)),
        ("0.0.0.0:5001", Addr("0.0.0.0", 5001)),
        ("localhost:8080", Addr("localhost", 8080)),
        ("[::1]:5001", Addr("::1", 5001)),
        ("[::]:0", Addr("::", 0)),
        (" 127.0.0.1:5001 ", Addr("127.0.0.1", 5001)),
    ],
)
def test_parse_addr(text: str, expected: Addr) -> None:
    assert parse_addr(text) == expected


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "empty address"),
        (":5001", "no port or no host"),
        ("host", "no port or no host"),
        ("::1:5001", "brackets"),
        ("[::1]5001", "not [IPV6]:PORT"),
        ("[nope]:5001", "not an IPv6 address"),
        ("127.0.0.1:70000", "not a port number"),
        ("127.0.0.1:http", "not a port number"),
        ("bad host:5001", "not a host name"),
        ("99999", "not a port number"),
    ],
)
def test_parse_addr_errors_are_one_line(text: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)) as info:
        parse_addr(text)
    assert "\n" not in str(info.value)


def test_addr_prints_ipv6_in_brackets() -> None:
    assert str(Addr("::1", 5001)) == "[::1]:5001"
    assert str(Addr("127.0.0.1", 5001)) == "127.0.0.1:5001"


# ------------------------------------------------------------------------- routes


def test_readyz_is_200_in_ready_and_503_otherwise_with_the_status_json(
    server: HealthServer, shown: Shown
) -> None:
    code, headers, body = get(server.addr.port, "/readyz")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    data = json.loads(body)
    assert data["state"] == "ready"
    assert data["account"] == "U1234567"  # loopback: the account is shown
    for state in State:
        if state is State.READY:
            continue
        shown.status = make_status(state)
        code, _, body = get(server.addr.port, "/readyz")
        assert code == 503, state
        assert json.loads(body)["state"] == state.value


def test_readyz_is_503_when_the_watcher_stopped(server: HealthServer, shown: Shown) -> None:
    shown.running = False
    assert get(server.addr.port, "/readyz")[0] == 503


def test_status_is_the_contract_json_at_any_state(server: HealthServer, shown: Shown) -> None:
    shown.status = make_status(State.LOGGED_OUT)
    code, _, body = get(server.addr.port, "/status?pretty=1")
    assert code == 200
    assert json.loads(body) == shown.status.to_json()


def test_livez_is_200_while_fresh_even_in_a_back_off(server: HealthServer, shown: Shown) -> None:
    assert get(server.addr.port, "/livez")[0] == 200
    # A 429 back-off is a fresh verdict: the watcher paces itself, it is not stalled.
    shown.status = make_status(State.RATE_LIMITED, retry_after_s=600.0)
    assert get(server.addr.port, "/livez")[0] == 200
    shown.status = make_status(State.GATEWAY_DOWN)
    assert get(server.addr.port, "/livez")[0] == 200


def test_livez_fails_when_the_verdict_is_stale_or_the_watcher_stopped(
    server: HealthServer, shown: Shown
) -> None:
    # The poller shows a stale verdict as unknown, keeping checked_at.
    shown.status = Status(
        State.UNKNOWN,
        LOOKS[State.UNKNOWN].label,
        "no check finished since 12:00:00",
        checked_at=NOW,
        url="https://127.0.0.1:5000/",
    )
    code, _, body = get(server.addr.port, "/livez")
    assert code == 503
    assert json.loads(body)["detail"] == "no check finished since 12:00:00"
    shown.status = make_status(State.READY)
    shown.running = False
    assert get(server.addr.port, "/livez")[0] == 503


@pytest.mark.parametrize("path", ["/", "/ready", "/metrics/x", "/livez/", "/../status"])
def test_unknown_paths_are_404(server: HealthServer, path: str) -> None:
    code, _, body = get(server.addr.port, path)
    assert code == 404
    assert b"/readyz" in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD", "BREW"])
def test_other_methods_are_405(server: HealthServer, method: str) -> None:
    code, headers, body = get(server.addr.port, "/readyz", method)
    assert code == 405
    assert headers["Allow"] == "GET"
    assert body == (
        b"" if method == "HEAD" else b"method %s not allowed; use GET\n" % method.encode()
    )


def test_a_failing_view_is_a_500_and_a_log_line_not_a_traceback(
    metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> View:
        raise RuntimeError("view broke")

    health = HealthServer(Addr("127.0.0.1", 0), broken, metrics)
    health.start()
    try:
        with caplog.at_level(logging.ERROR, logger="cpgw_tray.outlets.serve"):
            code, _, body = get(health.addr.port, "/readyz")
        assert code == 500
        assert body == b"internal error; see the log\n"
        assert "GET /readyz failed" in caplog.text
        assert "view broke" in caplog.text
        # and it keeps serving
        assert get(health.addr.port, "/nothing")[0] == 404
    finally:
        health.stop()


def test_garbage_on_the_socket_gets_a_one_line_400(server: HealthServer) -> None:
    with socket.create_connection(("127.0.0.1", server.addr.port), timeout=5) as sock:
        sock.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")
        reply = sock.recv(4096)
    assert reply.startswith(b"HTTP/1.0 400")
    assert b"Traceback" not in reply


def test_it_never_calls_the_gateway(shown: Shown, metrics: Metrics) -> None:
    """Only the view is read; answering needs no client at all (none is given)."""
    calls: list[str] = []

    def view() -> View:
        calls.append("view")
        return shown()

    health = HealthServer(Addr("127.0.0.1", 0), view, metrics)
    health.start()
    try:
        for path in ("/livez", "/readyz", "/status", "/metrics"):
            assert get(health.addr.port, path)[0] == 200
    finally:
        health.stop()
    assert calls == ["view"] * 4


# ------------------------------------------------------------------------- metrics


def test_metrics_parse_and_show_the_current_state(
    server: HealthServer, shown: Shown, metrics: Metrics, clock: Clock
) -> None:
    metrics.observe(shown.status, 0.042)
    metrics.request("iserver/auth/status", 200)
    metrics.request("tickle", 200)
    metrics.request("tickle", 429)
    metrics.request("tickle", "timeout")
    clock.now += 12.5
    code, headers, body = get(server.addr.port, "/metrics")
    assert code == 200
    assert headers["Content-Type"].startswith("text/plain; version=")
    found = families(body)
    state = {s.labels["state"]: s.value for s in found["cpgw_tray_state"].samples}
    assert state == {s.value: (1.0 if s is State.READY else 0.0) for s in State}
    assert found["cpgw_tray_seconds_since_change"].samples[0].value == 12.5
    assert found["cpgw_tray_login_expires_seconds"].samples[0].value == 540.0
    requests = {
        (s.labels["endpoint"], s.labels["code"]): s.value
        for s in found["cpgw_tray_requests"].samples
        if s.name == "cpgw_tray_requests_total"
    }
    assert requests == {
        ("iserver/auth/status", "200"): 1.0,
        ("tickle", "200"): 1.0,
        ("tickle", "429"): 1.0,
        ("tickle", "timeout"): 1.0,
    }
    limited = [s for s in found["cpgw_tray_rate_limited"].samples if s.name.endswith("_total")]
    assert limited[0].value == 1.0
    duration = {s.name: s for s in found["cpgw_tray_check_duration_seconds"].samples}
    assert duration["cpgw_tray_check_duration_seconds_count"].value == 1.0
    assert duration["cpgw_tray_check_duration_seconds_sum"].value == pytest.approx(0.042)
    assert b"U1234567" not in body  # no account id in metrics, ever


def test_metrics_follow_the_shown_state_and_time_its_change(
    server: HealthServer, shown: Shown, metrics: Metrics, clock: Clock
) -> None:
    get(server.addr.port, "/metrics")
    clock.now += 30
    shown.status = make_status(State.LOGGED_OUT)  # no login: no expiry gauge
    clock.now += 1
    found = families(get(server.addr.port, "/metrics")[2])
    current = [s.labels["state"] for s in found["cpgw_tray_state"].samples if s.value == 1.0]
    assert current == ["logged_out"]
    assert found["cpgw_tray_seconds_since_change"].samples[0].value == 0.0
    assert "cpgw_tray_login_expires_seconds" not in found
    # a check that finishes in another state moves the change time too
    clock.now += 5
    metrics.observe(make_status(State.READY), 0.01)
    clock.now += 2
    shown.status = make_status(State.READY)
    found = families(get(server.addr.port, "/metrics")[2])
    assert found["cpgw_tray_seconds_since_change"].samples[0].value == 2.0


def test_metrics_say_when_the_check_fell_in_a_restart_window(
    server: HealthServer, shown: Shown
) -> None:
    found = families(get(server.addr.port, "/metrics")[2])
    assert found["cpgw_tray_maintenance"].samples[0].value == 0.0
    until = NOW + timedelta(minutes=40)
    shown.status = make_status(State.NOT_AUTHENTICATED, maintenance_until=until)
    found = families(get(server.addr.port, "/metrics")[2])
    assert found["cpgw_tray_maintenance"].samples[0].value == 1.0


# ------------------------------------------------------------------------- exposure


def test_a_non_loopback_bind_says_so_and_leaves_account_ids_out(
    shown: Shown, metrics: Metrics, caplog: pytest.LogCaptureFixture
) -> None:
    health = HealthServer(parse_addr("0.0.0.0:0"), shown, metrics)
    assert health.exposed
    with caplog.at_level(logging.WARNING, logger="cpgw_tray.outlets.serve"):
        health.start()
    try:
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 1
        assert "exposed" in lines[0]
        assert "account ids are left out" in lines[0]
        for path in ("/readyz", "/status", "/livez", "/metrics"):
            code, _, body = get(health.addr.port, path)
            assert code == 200
            assert b"U1234567" not in body, path
        data = json.loads(get(health.addr.port, "/status")[2])
        assert data["account"] is None
        assert data["paper"] is False  # everything else is kept
    finally:
        health.stop()


def test_a_loopback_bind_is_not_exposed(server: HealthServer) -> None:
    assert not server.exposed
    assert server.url == f"http://127.0.0.1:{server.addr.port}"


def test_a_taken_port_is_a_clear_one_line_error(shown: Shown, metrics: Metrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ServeError) as info:
            HealthServer(Addr("127.0.0.1", port), shown, metrics)
    message = str(info.value)
    assert f"cannot listen on 127.0.0.1:{port} for --serve" in message
    assert "in use" in message
    assert "\n" not in message


def test_stop_is_at_once_and_frees_the_port(shown: Shown, metrics: Metrics) -> None:
    health = HealthServer(Addr("127.0.0.1", 0), shown, metrics)
    health.start()
    port = health.addr.port
    assert get(port, "/livez")[0] == 200
    health.stop()
    assert not health._httpd._thread.is_alive()
    with pytest.raises(ConnectionRefusedError):
        get(port, "/livez")
    health.stop()  # twice is harmless


# ------------------------------------------------------------------------- Host (DNS rebinding)


def raw(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """Send ``data`` and read the whole reply (the server closes or answers once)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and b"Connection: close" not in chunks[0]:
                break
    return b"".join(chunks)


def get_host(port: int, host: str | None, version: str = "HTTP/1.1") -> bytes:
    head = f"GET /status {version}\r\n" + (f"Host: {host}\r\n" if host is not None else "")
    return raw(port, (head + "Connection: close\r\n\r\n").encode())


@pytest.mark.parametrize(
    "host",
    ["localhost", "LOCALHOST:5001", "127.0.0.1", "127.0.0.1:80", "[::1]", "[::1]:5001", None],
)
def test_a_loopback_bind_answers_loopback_names_and_no_host(
    server: HealthServer, host: str | None
) -> None:
    reply = get_host(server.addr.port, host, "HTTP/1.0" if host is None else "HTTP/1.1")
    assert reply.split(b" ", 2)[1] == b"200", reply
    assert b"U1234567" in reply  # loopback: the account is shown


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:5001",
        "localhost.evil.example",
        "127.0.0.1.nip.io",
        "localhost:x",
        "[::1]x",
        "",
        "health.example.lan",  # not listed in serve_hosts here
    ],
)
def test_any_other_host_on_a_loopback_bind_gets_421_and_no_body(
    server: HealthServer, host: str
) -> None:
    reply = get_host(server.addr.port, host)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 421 "), reply
    assert body == b"" and b"Content-Length: 0" in head


def test_two_host_headers_get_421(server: HealthServer) -> None:
    data = b"GET /status HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n\r\n"
    assert raw(server.addr.port, data).startswith(b"HTTP/1.1 421 ")


def test_serve_hosts_and_the_bound_address_are_answered(shown: Shown, metrics: Metrics) -> None:
    health = HealthServer(Addr("127.0.0.2", 0), shown, metrics, hosts=["Health.Example.LAN"])
    health.start()
    try:
        port = health.addr.port
        for host in ("health.example.lan", "health.example.lan:443", "127.0.0.2:1"):
            reply = raw(port, f"GET /livez HTTP/1.1\r\nHost: {host}\r\n\r\n".encode(), "127.0.0.2")
            assert reply.startswith(b"HTTP/1.1 200 "), host
        reply = raw(port, b"GET /livez HTTP/1.1\r\nHost: other.lan\r\n\r\n", "127.0.0.2")
        assert reply.startswith(b"HTTP/1.1 421 ")
    finally:
        health.stop()


def test_a_non_loopback_bind_checks_no_host_and_redacts_the_gateway_text(
    shown: Shown, metrics: Metrics
) -> None:
    shown.status = make_status(
        State.ERROR,
        account="DU7654321",
        message="account DU7654321_Summary for userId=9876543",
        fail="Cookie: x-sess-uuid=0.abc.1700000000; JSESSIONID=ABCDEF0123456789ABCDEF",
    )
    health = HealthServer(parse_addr("0.0.0.0:0"), shown, metrics)
    health.start()
    try:
        reply = raw(health.addr.port, b"GET /status HTTP/1.1\r\nHost: anything.example\r\n\r\n")
        assert reply.startswith(b"HTTP/1.1 200 ")
        data = json.loads(reply.partition(b"\r\n\r\n")[2])
        assert data["account"] is None
        text = json.dumps(data)
        for leak in ("7654321", "9876543", "0.abc.1700000000", "ABCDEF0123456789"):
            assert leak not in text
        assert data["state"] == "error"
    finally:
        health.stop()


# ------------------------------------------------------------------------- bounds


def test_keep_alive_serves_several_requests_on_one_connection(server: HealthServer) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.addr.port, timeout=5)
    try:
        for path in ("/livez", "/readyz", "/status"):
            conn.request("GET", path)
            reply = conn.getresponse()
            assert reply.status == 200 and reply.read()
    finally:
        conn.close()


def test_a_reset_client_is_one_debug_line(
    server: HealthServer, caplog: pytest.LogCaptureFixture
) -> None:
    import struct

    with caplog.at_level(logging.DEBUG, logger="cpgw_tray"):
        # half a request, or a whole one whose reply meets the reset
        for sent in [b"GET /status HTTP/1.1\r\n", b"GET /metrics HTTP/1.1\r\n\r\n"] * 10:
            sock = socket.create_connection(("127.0.0.1", server.addr.port), timeout=5)
            sock.sendall(sent)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
        assert get(server.addr.port, "/livez")[0] == 200  # served after the resets
    mine = [r for r in caplog.records if r.name.startswith("cpgw_tray")]
    assert all(r.levelno == logging.DEBUG and not r.exc_info for r in mine), mine
    assert any("went away" in r.getMessage() for r in mine)
    assert sum("went away" in r.getMessage() for r in mine) <= 20  # one line a reset


def test_a_slow_client_is_dropped_at_the_head_deadline(shown: Shown, metrics: Metrics) -> None:
    from cpgw_tray.outlets.httpd import Limits

    health = HealthServer(Addr("127.0.0.1", 0), shown, metrics, limits=Limits(64, 0.3, 0.6))
    health.start()
    try:
        with socket.create_connection(("127.0.0.1", health.addr.port), timeout=5) as sock:
            sock.sendall(b"GET /status HTTP/1.1\r\n")
            started = time.monotonic()
            for _ in range(20):  # one byte at a time, each well within any per-read timeout
                try:
                    sock.sendall(b"X")
                except OSError:
                    break
                if not wait_readable(sock, 0.1):
                    continue
                assert dropped(sock)  # dropped, not answered
                break
            took = time.monotonic() - started
        assert took < 1.0, took
    finally:
        health.stop()


def dropped(sock: socket.socket) -> bool:
    """The server closed ``sock`` (an orderly close, or a reset when it left bytes unread)."""
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


def wait_readable(sock: socket.socket, timeout: float) -> bool:
    import select

    return bool(select.select([sock], [], [], timeout)[0])


def test_the_oldest_idle_connection_makes_way_at_the_cap(shown: Shown, metrics: Metrics) -> None:
    from cpgw_tray.outlets.httpd import Limits

    health = HealthServer(Addr("127.0.0.1", 0), shown, metrics, limits=Limits(4, 30, 30))
    health.start()
    port = health.addr.port
    try:
        idle = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        wait_for_count(health, 4)
        assert get(port, "/livez")[0] == 200  # a fifth client: the oldest idle one goes
        assert wait_readable(idle[0], 5) and dropped(idle[0])
        assert health._httpd.connections <= 4
        for sock in idle:
            sock.close()
    finally:
        health.stop()


def wait_for_count(health: HealthServer, count: int) -> None:
    deadline = time.monotonic() + 5
    while health._httpd.connections < count:
        assert time.monotonic() < deadline, health._httpd.connections
        time.sleep(0.01)


def test_the_server_uses_one_thread_whatever_the_clients(server: HealthServer) -> None:
    import threading

    before = threading.active_count()
    socks = [socket.create_connection(("127.0.0.1", server.addr.port)) for _ in range(20)]
    try:
        wait_for_count(server, 20)
        assert threading.active_count() == before
    finally:
        for sock in socks:
            sock.close()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["Health.Example.LAN", "proxy"], ("health.example.lan", "proxy")),
        ("a.lan, b.lan c.lan", ("a.lan", "b.lan", "c.lan")),
        ("", ()),
    ],
)
def test_parse_host_names(value: Any, expected: tuple[str, ...]) -> None:
    assert parse_host_names(value) == expected


@pytest.mark.parametrize("value", [["a.lan:80"], ["bad name"], 5, [1]])
def test_parse_host_names_errors(value: Any) -> None:
    with pytest.raises(ValueError):
        parse_host_names(value)


def test_the_listen_backlog_holds_a_burst_of_scrapers(shown: Shown, metrics: Metrics) -> None:
    from cpgw_tray.outlets.httpd import BACKLOG

    health = HealthServer(Addr("127.0.0.1", 0), shown, metrics)  # listening, not accepting
    socks: list[socket.socket] = []
    try:
        for _ in range(BACKLOG - 8):  # queued by the kernel until the loop accepts them
            socks.append(socket.create_connection(("127.0.0.1", health.addr.port), timeout=2))
        assert BACKLOG >= 128
    finally:
        for sock in socks:
            sock.close()
        health.stop()


def test_pipelined_requests_are_answered_in_order(server: HealthServer) -> None:
    many = 1500  # more than the interpreter's recursion limit
    data = b"GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n" * (many - 1)
    data += b"GET /livez HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.addr.port), timeout=10) as sock:
        sock.sendall(data)
        replies = bytearray()
        while chunk := sock.recv(1 << 16):
            replies += chunk
    assert replies.count(b"HTTP/1.1 200 OK\r\n") == many


def test_an_odd_request_target_is_404_not_an_error(
    server: HealthServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="cpgw_tray"):
        reply = raw(server.addr.port, b"GET http://[ HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 404 ")
    assert not caplog.records
