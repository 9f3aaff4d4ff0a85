"""The gateway client and `status` against the simulator over real HTTPS on 127.0.0.1."""

from __future__ import annotations

import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
import trustme

from cpgw_tray.client.api import GatewayClient
from cpgw_tray.client.governor import RateGovernor, parse_retry_after
from cpgw_tray.model.status import State
from cpgw_tray.model.urls import api_base, is_loopback
from cpgw_tray.simulator import Simulator

from .conftest import SYSTEM_CA, PlainHTTPServer, control, free_port, status_json
from .test_status import JSON_FIELDS

# scenario -> (state, exit code)
SCENARIO_STATES = {
    "ready": ("ready", 0),
    "competing": ("competing", 1),
    "disconnected": ("disconnected", 1),
    "not_authenticated": ("not_authenticated", 1),
    "no_bridge": ("not_authenticated", 1),
    "logged_out": ("logged_out", 1),
    "access_denied": ("access_denied", 3),
    "rate_limited": ("rate_limited", 3),
    "server_error": ("error", 3),
    "unavailable": ("error", 3),
    "not_json": ("error", 3),
}


@pytest.mark.parametrize("scenario", list(SCENARIO_STATES))
def test_status_json_per_scenario(sim: Simulator, scenario: str) -> None:
    control(sim.url, "/sim/state", {"scenario": scenario})
    code, data = status_json(sim.url)
    state, exit_code = SCENARIO_STATES[scenario]
    assert data["state"] == state, data["detail"]
    assert code == exit_code
    assert set(data) >= JSON_FIELDS
    assert data["url"] == sim.url + "/v1/api/iserver/auth/status"
    assert data["checked_at"].endswith("Z") and data["latency_ms"] > 0
    assert isinstance(data["http_status"], int)
    if state == "ready":
        assert (data["authenticated"], data["connected"], data["competing"]) == (True, True, False)
        assert data["server_name"] == "SimGw01" and data["server_version"].startswith("Build")


def test_fail_text_reaches_the_user(sim: Simulator) -> None:
    fail = "Force compete capability must be used together with compete flag"
    control(sim.url, "/sim/state", {"scenario": "not_authenticated", "fail": fail})
    code, data = status_json(sim.url)
    assert code == 1 and data["fail"] == fail and fail in data["detail"]


@pytest.mark.e2e  # waits out a real timeout
def test_hanging_gateway_is_not_responding_within_timeout(sim: Simulator) -> None:
    control(sim.url, "/sim/state", {"scenario": "hang"})
    code, data = status_json(sim.url, "--timeout", "0.5")  # the hang lasts far longer
    assert data["state"] == "not_responding" and code == 2
    assert "0.5 s" in data["detail"]


def test_nothing_listening_is_gateway_down() -> None:
    code, data = status_json(f"https://127.0.0.1:{free_port()}")
    assert data["state"] == "gateway_down" and code == 2


def test_plain_http_on_the_port_is_error_without_tls(plain_http: PlainHTTPServer) -> None:
    code, data = status_json(f"https://127.0.0.1:{plain_http.port}")
    assert data["state"] == "error" and code == 3
    assert "without TLS" in data["detail"]


@pytest.fixture
def ca_sim(tmp_path: Path) -> tuple[Simulator, trustme.CA]:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(str(cert_file))
    cert.private_key_pem.write_to_path(str(key_file))
    sim = Simulator(
        0, scenario="ready", rate_limit=False, certfile=str(cert_file), keyfile=str(key_file)
    )
    return sim.start(), ca


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
@pytest.mark.parametrize("env_var", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"])
def test_ca_bundle_verifies_and_rejects(
    ca_sim: tuple[Simulator, trustme.CA],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env_var: str,
) -> None:
    sim, ca = ca_sim
    monkeypatch.setenv(env_var, SYSTEM_CA)  # as on many machines: must not override ours
    try:
        right, wrong = tmp_path / "right.pem", tmp_path / "wrong.pem"
        ca.cert_pem.write_to_path(str(right))
        trustme.CA().cert_pem.write_to_path(str(wrong))
        code, data = status_json(sim.url, "--ca-bundle", str(right))
        assert data["state"] == "ready" and code == 0
        code, data = status_json(sim.url, "--ca-bundle", str(wrong))
        assert data["state"] == "error" and code == 3
        assert "did not verify" in data["detail"]
    finally:
        sim.stop()


def test_loopback_is_unverified_by_default_and_quiet(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        _code, data = status_json(sim.url)
    assert data["state"] == "ready"
    assert not [w for w in caught if "Unverified HTTPS" in str(w.message)]


def test_remote_host_is_verified_by_default() -> None:
    from cpgw_tray.settings.config import load

    assert load({"url": "https://gw.example.com:5000"}, env={}).verify is True
    assert load({"url": "https://127.0.0.1:5000"}, env={}).verify is False
    assert load({"url": "https://localhost:5000"}, env={}).verify is False
    assert load({"url": "https://gw.example.com", "insecure": True}, env={}).verify is False


def test_one_connection_is_reused(sim: Simulator) -> None:
    client = GatewayClient(sim.url, verify=False, governor=RateGovernor(spacing=0))
    try:
        for _ in range(3):
            assert client.auth_status().state.value == "ready"
        client.tickle()
    finally:
        client.close()
    ports = {r.peer_port for r in sim.requests()}
    assert len(sim.requests()) == 4 and len(ports) == 1


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_portal_alias_and_post_without_length(sim: Simulator) -> None:
    import socket
    import ssl

    import requests

    reply = requests.post(
        sim.url + "/v1/portal/iserver/auth/status", json={}, verify=False, timeout=5
    )
    assert reply.status_code == 200 and reply.json()["authenticated"] is True
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", sim.port), timeout=5) as raw,
        context.wrap_socket(raw) as tls,
    ):
        tls.sendall(b"POST /v1/api/iserver/auth/status HTTP/1.1\r\nHost: x\r\n\r\n")
        assert tls.recv(100).startswith(b"HTTP/1.1 411")


def test_tickle_status_has_sso_expiry(sim: Simulator) -> None:
    client = GatewayClient(sim.url, verify=False)
    status = client.tickle()
    client.close()
    assert status.state.value == "ready" and status.sso_expires_s is not None
    assert status.url.endswith("/v1/api/tickle")


# ------------------------------------------------------------------ governor, helpers


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_governor_spaces_each_endpoint() -> None:
    clock = FakeClock()
    gov = RateGovernor(spacing=1.1, clock=clock)
    assert gov.reserve("tickle") == 0
    assert gov.reserve("iserver/auth/status") == 0  # another endpoint: no wait
    assert gov.reserve("tickle") == pytest.approx(1.1)
    assert gov.reserve("tickle") == pytest.approx(2.2)  # queued behind the booked slot
    clock.now += 5
    assert gov.reserve("tickle") == 0


def test_governor_caps_overall_rate() -> None:
    clock = FakeClock()
    gov = RateGovernor(spacing=0, per_second=10, clock=clock)
    waits = [gov.reserve(f"e{i}") for i in range(11)]
    assert waits[:10] == [0] * 10
    assert waits[10] > 1.0


def test_client_waits_through_injected_sleep(sim: Simulator) -> None:
    slept: list[float] = []
    client = GatewayClient(sim.url, verify=False, sleep=slept.append)
    client.auth_status()
    client.auth_status()
    client.close()
    assert len(slept) == 1 and 0.9 < slept[0] <= 1.1


def test_helpers() -> None:
    assert api_base("https://127.0.0.1:5000") == "https://127.0.0.1:5000/v1/api/"
    assert api_base("https://127.0.0.1:5000/v1/api/") == "https://127.0.0.1:5000/v1/api/"
    assert is_loopback("https://127.0.0.2:1") and is_loopback("https://[::1]:5000")
    assert not is_loopback("https://192.168.1.5:5000")
    assert parse_retry_after("30") == 30
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_login_page_logs_the_simulated_user_in(sim: Simulator) -> None:
    import requests

    sim.set_scenario("logged_out")
    page = requests.get(sim.url + "/", verify=False, timeout=5)  # 302 to the form, as the gateway
    assert page.history[0].status_code == 302 and "/sso/Login" in page.url
    assert '<form method="post" action="/sso/Login">' in page.text
    done = requests.post(
        sim.url + "/sso/Login", data={"user": "me", "password": "x"}, verify=False, timeout=5
    )
    assert "Client login succeeds" in done.text
    code, data = status_json(sim.url)
    assert code == 0 and data["state"] == "ready"


def test_session_times_out_and_daily_reset() -> None:
    clock = [1000.0]
    with Simulator(
        0, scenario="ready", rate_limit=False, session_timeout=5, clock=lambda: clock[0]
    ) as sim:
        client = GatewayClient(sim.url, verify=False, governor=RateGovernor(spacing=0))
        clock[0] += 4
        assert client.auth_status().state.value == "ready"  # a request keeps it alive
        clock[0] += 6
        assert client.auth_status().state.value == "logged_out"
        sim.configure(session_timeout=0, max_session=100)
        sim.login()
        clock[0] += 99
        assert client.tickle().sso_expires_s == pytest.approx(1.0)
        clock[0] += 2
        assert client.auth_status().state.value == "logged_out"  # the daily reset
        client.close()


# ------------------------------------------------------------------ TLS context, reconnects


@pytest.mark.parametrize("verify", ["off", "bundle", "default"])
def test_a_reconnect_costs_a_handshake_not_a_ca_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, verify: str
) -> None:
    """urllib3 used to build a context and load the CA store on every new connection
    (74 % of idle CPU against a gateway that closes connections). Now: once per client."""
    import ssl
    from collections import Counter

    from .faults.hostile import Hostile, ready

    loads: Counter[str] = Counter()
    for name in ("load_verify_locations", "set_default_verify_paths", "load_default_certs"):
        original = getattr(ssl.SSLContext, name)

        def counting(
            self: ssl.SSLContext, *a: object, _n: str = name, _o: Any = original, **k: object
        ) -> Any:
            loads[_n] += 1
            return _o(self, *a, **k)

        monkeypatch.setattr(ssl.SSLContext, name, counting)
    with Hostile(tmp_path) as server:
        server.set(ready(close=True))  # "Connection: close": every check reconnects
        chosen: bool | str = {
            "off": False,
            "bundle": str(tmp_path / "cert.pem"),  # the self-signed certificate as its own CA
            "default": True,  # requests' bundle: the hostile certificate fails to verify
        }[verify]
        client = GatewayClient(
            server.url, verify=chosen, timeout=5, governor=RateGovernor(spacing=0)
        )
        built = sum(loads.values())
        expected = "error" if verify == "default" else "ready"
        for _ in range(4):
            assert client.auth_status().state.value == expected
        client.close()
        assert server.connections == 4
    assert built == (0 if verify == "off" else 1)
    assert sum(loads.values()) == built, loads  # no load per reconnect


def test_explicit_insecure_is_not_flipped_by_the_environment(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """REQUESTS_CA_BUNDLE names a CA that does not sign the simulator's certificate: an
    explicit verify=False on a remote-looking client still does not verify."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", SYSTEM_CA)
    client = GatewayClient(sim.url, verify=False, governor=RateGovernor(spacing=0))
    client.session.trust_env = True  # as for a remote host
    try:
        assert client.auth_status().state.value == "ready"
    finally:
        client.close()


# ------------------------------------------------------------------ honest governor, actions


def test_governor_books_nothing_for_a_caller_that_will_not_wait() -> None:
    from cpgw_tray.client.api import Deferred

    clock = FakeClock()
    gov = RateGovernor(spacing=1.1, clock=clock)
    assert gov.reserve("tickle", max_wait=0) == 0
    for _ in range(3):  # refused: nothing booked, so later slots do not move
        with pytest.raises(Deferred) as held:
            gov.reserve("tickle", max_wait=0.5)
        assert held.value.wait == pytest.approx(1.1)
    assert gov.reserve("tickle") == pytest.approx(1.1)


def test_two_governors_on_one_shared_file_pace_as_one(tmp_path: Path) -> None:
    """Two processes' governors (each its own SharedState on the one file): the second
    waits the rest of the spacing; one that will not wait books nothing there."""
    from cpgw_tray.client.api import Deferred
    from cpgw_tray.client.shared_state import SharedSlots, SharedState

    wall, mono = FakeClock(), FakeClock()
    path = tmp_path / "pacing.json"
    one = RateGovernor(spacing=1.1, clock=mono, shared=SharedSlots(SharedState(path), wall))
    two = RateGovernor(spacing=1.1, clock=mono, shared=SharedSlots(SharedState(path), wall))
    assert one.reserve("iserver/auth/status") == 0
    wall.now += 0.4
    mono.now += 0.4
    with pytest.raises(Deferred) as held:
        two.reserve("iserver/auth/status", max_wait=0.5)
    assert held.value.wait == pytest.approx(0.7)
    assert two.reserve("iserver/auth/status") == pytest.approx(0.7)  # the rest of it
    assert two.reserve("tickle") == 0  # another endpoint: its own budget
    assert one.reserve("iserver/auth/status") == pytest.approx(1.8)  # behind the second


def test_a_429_in_one_process_holds_back_the_others_until_released(tmp_path: Path) -> None:
    from cpgw_tray.client.api import Deferred
    from cpgw_tray.client.shared_state import SharedSlots, SharedState

    wall, mono = FakeClock(), FakeClock()
    path = tmp_path / "pacing.json"
    one = RateGovernor(clock=mono, shared=SharedSlots(SharedState(path), wall))
    two = RateGovernor(clock=mono, shared=SharedSlots(SharedState(path), wall))
    assert one.rate_limited(60.0) == 60.0
    with pytest.raises(Deferred) as held:
        two.reserve("iserver/auth/status", max_wait=5)
    assert held.value.wait == pytest.approx(60.0)
    wall.now += 20
    mono.now += 20
    assert two.reserve("tickle") == pytest.approx(40.0)  # the rest of the back-off
    one.forgive()  # the demo's gateway changed: every process may ask again
    assert two.reserve("iserver/auth/status") == 0


def test_governor_back_off_defers_without_booking() -> None:
    from cpgw_tray.client.api import Deferred

    clock = FakeClock()
    gov = RateGovernor(clock=clock)
    gov.rate_limited(60)
    with pytest.raises(Deferred) as held:
        gov.reserve("iserver/auth/status", max_wait=5)
    assert held.value.wait == 60
    clock.now += 60
    assert gov.reserve("iserver/auth/status", max_wait=5) == 0


def test_governor_overall_cap_counts_only_the_last_second() -> None:
    clock = FakeClock()
    gov = RateGovernor(spacing=0, per_second=2, clock=clock)
    assert gov.reserve("sso/validate") == 0
    assert gov.reserve("sso/validate") == pytest.approx(61)  # booked far ahead
    assert gov.reserve("a") == 0  # the far booking does not fill this second
    assert gov.reserve("b") == pytest.approx(1.01)


def test_held_back_check_raises_deferred_and_sends_nothing(sim: Simulator) -> None:
    from cpgw_tray.client.api import Deferred

    clock = FakeClock()
    gov = RateGovernor(clock=clock)
    gov.rate_limited(120)
    client = GatewayClient(sim.url, verify=False, governor=gov)
    try:
        for check in (client.auth_status, client.tickle):
            with pytest.raises(Deferred):
                check()
        assert client.account() is None
        assert not client.logout().ok
    finally:
        client.close()
    assert sim.requests() == []


def test_reauthenticate_never_takes_over_unless_asked(sim: Simulator) -> None:
    sim.set_scenario("competing")
    client = GatewayClient(sim.url, verify=False, governor=RateGovernor(spacing=0))
    try:
        outcome = client.reauthenticate()  # compete: false
        assert not outcome.ok
        assert client.auth_status().state.value == "competing"
        assert client.reauthenticate(take_over=True).ok
        assert client.auth_status().state.value == "ready"
    finally:
        client.close()


def test_unreadable_ca_bundle_is_an_error_not_a_traceback(sim: Simulator, tmp_path: Path) -> None:
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("this is not a certificate\n")
    client = GatewayClient(sim.url, verify=str(bad))
    try:
        status = client.auth_status()
    finally:
        client.close()
    assert status.state.value == "error" and "could not be loaded" in status.detail
    assert sim.requests() == []  # nothing is sent without the context the user asked for


def test_deadlines_need_no_thread(sim: Simulator) -> None:
    """Requests are bounded by their own sockets' timeouts (what is left of the
    deadline, before each read and write): no watchdog thread wakes for them."""
    client = GatewayClient(sim.url, timeout=30, verify=False, governor=RateGovernor(spacing=0))
    try:
        for _ in range(5):
            assert client.auth_status().state is State.READY
        assert "request-deadlines" not in [t.name for t in threading.enumerate()]
    finally:
        client.close()
