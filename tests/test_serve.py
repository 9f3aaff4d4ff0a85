"""The health endpoint over real sockets: routes, codes, metrics, exposure, a taken port."""

from __future__ import annotations

import http.client
import json
import logging
import re
import socket
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from cpgw_tray.serve import Addr, HealthServer, Metrics, ServeError, View, parse_addr
from cpgw_tray.status import LOOKS, State, Status

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
        with caplog.at_level(logging.ERROR, logger="cpgw_tray.serve"):
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
    with caplog.at_level(logging.WARNING, logger="cpgw_tray.serve"):
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
