"""Session care against the simulator: rate governor, keep-alive, reauthenticate,
log out, account facts, back-off after 429."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import pytest

from cpgw_tray.care.poller import Poller
from cpgw_tray.care.session import SessionCare
from cpgw_tray.client.api import Deferred, GatewayClient, Outcome, RateGovernor
from cpgw_tray.model.accounts import Account, parse_account
from cpgw_tray.model.status import State, Status
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import Logged, Simulator
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import run_cli, wait_for


class SharedClock:
    """One fake clock for the simulator, the governor and the poller: "sleeping"
    advances it, so a minute of session passes in milliseconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def per_endpoint_gaps(log: list[Logged]) -> dict[str, float]:
    by_path: dict[str, list[float]] = {}
    for r in log:
        by_path.setdefault(r.path, []).append(r.t)
    return {
        path: min((b - a for a, b in itertools.pairwise(times)), default=99.0)
        for path, times in by_path.items()
    }


def max_per_second(log: list[Logged]) -> int:
    times = sorted(r.t for r in log)
    return max((sum(1 for u in times if t <= u < t + 1.0) for t in times), default=0)


@pytest.mark.e2e  # real clicks in real time against the real rate limits
def test_check_now_storm_is_paced_and_coalesced() -> None:
    with Simulator(0, scenario="ready", rate_limit=True) as sim:
        client = GatewayClient(sim.url, verify=False)
        results: list[Status] = []
        poller = Poller(
            client.auth_status, results.append, interval=15, tickle=client.tickle, keepalive=60
        )
        poller.start()
        wait_for(lambda: results)
        sim.clear_requests()
        for _ in range(50):  # 50 clicks within one second
            poller.check_now()
            time.sleep(0.02)
        # whatever the storm started has finished: no check asked for, none running
        wait_for(lambda: not poller._now_requested and not poller.busy)
        poller.stop()
        client.close()
        log = sim.requests()
    checks = [r for r in log if r.path.endswith("auth/status")]
    assert 1 <= len(checks) <= 2
    assert all(r.status == 200 for r in log), Counter(r.status for r in log)
    assert all(gap >= 1.0 for gap in per_endpoint_gaps(log).values())
    assert max_per_second(log) <= 10


def keepalive_run(keepalive: float, seconds: float) -> list[Status]:
    clock = SharedClock()
    with Simulator(0, scenario="ready", session_timeout=5, clock=clock) as sim:
        client = GatewayClient(
            sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
        )
        seen: list[Status] = []
        poller = Poller(
            client.auth_status,
            seen.append,
            interval=30,
            tickle=client.tickle,
            keepalive=keepalive,
            clock=clock,
        )
        end = clock.now + seconds
        while clock.now < end:
            clock.sleep(poller.step())
        client.close()
        assert all(r.status != 429 for r in sim.requests())
    return seen


def test_keepalive_keeps_a_short_session_alive() -> None:
    seen = keepalive_run(keepalive=2, seconds=60)
    assert len(seen) >= 25
    assert {s.state for s in seen} == {State.READY}


def test_without_keepalive_the_session_times_out() -> None:
    seen = keepalive_run(keepalive=0, seconds=60)
    assert seen[0].state is State.READY
    assert seen[-1].state is State.LOGGED_OUT


def test_default_settings_send_no_more_than_asked() -> None:
    clock = SharedClock()
    with Simulator(0, scenario="ready", clock=clock) as sim:
        client = GatewayClient(
            sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
        )
        config = load({}, env={})
        poller = Poller(
            client.auth_status,
            lambda s: None,
            interval=config.interval,
            tickle=client.tickle,
            keepalive=config.keepalive,
            clock=clock,
        )
        end = clock.now + 600
        while clock.now < end:
            clock.sleep(poller.step())
        client.close()
        paths = Counter(r.path for r in sim.requests())
    # ten minutes (0 to 585 s): one request per 15 s interval, every fourth a tickle
    assert paths["/v1/api/tickle"] == 9
    assert paths["/v1/api/iserver/auth/status"] + paths["/v1/api/tickle"] == 40


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_reauthenticate_and_logout_from_the_cli(sim: Simulator) -> None:
    sim.set_scenario("not_authenticated")
    code, out = run_cli("--url", sim.url, "reauth")
    assert code == 0 and "Reauthentication started" in out
    assert run_cli("--url", sim.url, "status")[0] == 0
    code, out = run_cli("--url", sim.url, "logout")
    assert code == 0 and out == "Logged out.\n"
    code, out = run_cli("--url", sim.url, "status")
    assert code == 1 and out.startswith("logged_out")
    code, out = run_cli("--url", sim.url, "reauth")  # no login: the gateway refuses
    assert code == 1 and "failed" in out


def test_reauthenticate_falls_back_to_the_old_endpoint(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sim._route

    def without_ssodh(method: str, endpoint: str, body: object, now: float):  # type: ignore[no-untyped-def]
        if endpoint == "iserver/auth/ssodh/init":
            return 404, {"error": "not found"}, {}
        return original(method, endpoint, body, now)

    monkeypatch.setattr(sim, "_route", without_ssodh)
    sim.set_scenario("not_authenticated")
    client = GatewayClient(sim.url, verify=False)
    outcome = client.reauthenticate()
    client.close()
    assert outcome.ok
    assert [r.path for r in sim.requests()][-2:] == [
        "/v1/api/iserver/auth/ssodh/init",
        "/v1/api/iserver/reauthenticate",
    ]
    assert sim.session.authenticated


def test_auto_reauth_once_per_five_minutes_never_when_competing(sim: Simulator) -> None:
    clock = SharedClock()
    client = GatewayClient(
        sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
    )
    care = SessionCare(client, clock=clock)
    sim.set_scenario("not_authenticated")
    assert care.check().state is State.READY  # restarted automatically
    sim.set_scenario("not_authenticated")
    clock.now += 60
    assert care.check().state is State.NOT_AUTHENTICATED  # not again within 5 minutes
    clock.now += 300
    assert care.check().state is State.READY
    sim.set_scenario("competing")
    clock.now += 600
    assert care.check().state is State.COMPETING  # never taken over automatically
    client.close()
    inits = [r for r in sim.requests() if r.path.endswith("ssodh/init")]
    assert len(inits) == 2


def test_429_backs_off_and_says_when() -> None:
    clock = SharedClock()
    with Simulator(0, scenario="rate_limited", rate_limit=False) as sim:
        client = GatewayClient(
            sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
        )
        first = client.auth_status()
        assert first.state is State.RATE_LIMITED and first.retry_after_s == 60  # Retry-After: 60
        assert "Next check in 60 s, at " in first.detail
        clock.now += 30
        with pytest.raises(Deferred) as held:  # still in the back-off: nothing is sent,
            client.auth_status()  # so no verdict is made up (no fabricated 429)
        assert 29 <= held.value.wait <= 31
        assert len(sim.requests()) == 1
        sim.set_scenario("ready")
        clock.now += 31
        assert client.auth_status().state is State.READY
        assert len(sim.requests()) == 2
        client.close()


def test_backoff_without_retry_after_doubles_to_fifteen_minutes() -> None:
    clock = SharedClock()
    gov = RateGovernor(clock=clock)
    waits = [gov.rate_limited(None) for _ in range(6)]
    assert waits == [60, 120, 240, 480, 900, 900]
    gov.answered()
    assert gov.rate_limited(None) == 60
    assert gov.reserve("/tickle") == 60  # every request waits out the back-off


def test_poller_waits_out_the_backoff() -> None:
    clock = SharedClock()
    limited = Status(State.RATE_LIMITED, "Rate limited", "d", retry_after_s=300)
    calls: list[float] = []

    def check() -> Status:
        calls.append(clock.now)
        return limited

    poller = Poller(check, lambda s: None, interval=15, clock=clock)
    assert poller.step() == 300


def tray_checked_once(sim: Simulator, scenario: str | None = None) -> tuple[TrayApp, DummyBackend]:
    """A tray on the simulator (fake tray, poller not started) after one real check."""
    if scenario is not None:
        sim.set_scenario(scenario)
    config = load({"url": sim.url, "restart_windows": False}, env={})  # real time
    tray = TrayApp(config, GatewayClient(config.url, verify=False))
    backend = DummyBackend()
    tray.backend = backend
    tray.apply(tray.care.check())
    return tray, backend


@pytest.mark.parametrize(
    ("paper", "kind", "account"), [(True, "Paper", "DU1234567"), (False, "Live", "U7654321")]
)
def test_menu_shows_account_and_paper_or_live(
    sim: Simulator, paper: bool, kind: str, account: str
) -> None:
    sim.configure(paper=paper)
    tray, backend = tray_checked_once(sim)
    texts = [e.text for e in backend.menu]
    assert f"Account: {account} ({kind.lower()}), server SimGw01" in texts
    assert any(t.startswith("Seen ready since") for t in texts)
    tray.client.close()


def test_status_json_has_account_fields(sim: Simulator) -> None:
    from .conftest import status_json

    code, data = status_json(sim.url)
    assert code == 0 and data["account"] == "DU1234567" and data["paper"] is True
    assert "sso_expires_s" in data


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_tray_actions_reauthenticate_and_logout(sim: Simulator) -> None:
    tray, backend = tray_checked_once(sim, "not_authenticated")  # auto-reauth restarts it
    assert tray.status.state is State.READY
    entries = {e.text: e for e in backend.menu}
    assert not entries["Reauthenticate"].enabled
    logout = entries["Log out…"].submenu[0]
    done = threading.Event()
    tray.poller.check_now = lambda fresh=False: done.set() or True  # type: ignore[method-assign]
    assert logout.action is not None
    logout.action()
    assert done.wait(5)
    assert not sim.session.logged_in
    tray.client.close()


def test_competing_asks_before_taking_over(sim: Simulator) -> None:
    tray, backend = tray_checked_once(sim, "competing")
    entry = next(e for e in backend.menu if e.text.startswith("Reauthenticate"))
    assert entry.text == "Reauthenticate…" and entry.action is None
    assert "Take the session over" in entry.submenu[0].text
    tray.client.close()


def test_parse_account() -> None:
    assert parse_account({"accounts": ["DU1"], "isPaper": True}) == Account(("DU1",), True)
    assert parse_account({"accounts": ["U1"]}, {"LOGIN_TYPE": 2}) == Account(("U1",), True)
    assert parse_account({"accounts": ["U1"]}, {"LOGIN_TYPE": 1}) == Account(("U1",), False)
    assert parse_account({"accounts": ["DU1", "DU2"]}) == Account(("DU1", "DU2"), True)
    assert parse_account({"accounts": ["U1"]}).kind == "Live"  # type: ignore[union-attr]
    assert parse_account("nonsense") is None and parse_account({}) is None


def test_menu_says_when_the_next_check_is_after_a_429(sim: Simulator) -> None:
    tray, backend = tray_checked_once(sim, "rate_limited")
    shown = " ".join(e.text for e in backend.menu)
    assert tray.status.state is State.RATE_LIMITED
    assert "Next check in 1 min, at " in shown and "Next check in 60 s" not in shown
    tray.client.close()


# ------------------------------------------------------------------ never take over unasked


class ReauthRecorder:
    """A client whose brokerage session is always down; records each reauthenticate."""

    def __init__(self) -> None:
        self.take_overs: list[bool] = []

    def auth_status(self) -> Status:
        return Status(
            State.NOT_AUTHENTICATED,
            "Brokerage session not started",
            "d",
            authenticated=False,
            connected=True,
            competing=False,
        )

    tickle = auth_status

    def reauthenticate(self, take_over: bool = False) -> Outcome:
        self.take_overs.append(take_over)
        return Outcome(False, "Reauthenticate failed: not today")

    def account(self, validate: bool = True) -> Account | None:
        raise AssertionError("no account facts without a brokerage session")


def test_auto_reauth_never_asks_for_a_take_over() -> None:
    clock = SharedClock()
    client = ReauthRecorder()
    care = SessionCare(client, clock=clock)  # type: ignore[arg-type]
    for _ in range(80):  # twenty minutes of checks
        assert care.check().state is State.NOT_AUTHENTICATED
        clock.now += 15
    assert client.take_overs == [False] * 4  # once per 5 minutes, never a take-over


def test_auto_care_never_takes_a_competing_session_over() -> None:
    clock = SharedClock()
    with Simulator(0, scenario="competing", rate_limit=False, clock=clock) as sim:
        client = GatewayClient(
            sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
        )
        care = SessionCare(client, clock=clock)
        seen: list[Status] = []
        poller = Poller(
            care.check, seen.append, interval=15, tickle=care.tickle, keepalive=60, clock=clock
        )
        end = clock.now + 1200  # four times the auto-reauth spacing
        while clock.now < end:
            clock.sleep(poller.step())
        client.close()
        assert sim.session.competing and not sim.session.authenticated
        paths = {r.path for r in sim.requests()}
    assert {s.state for s in seen} == {State.COMPETING}
    assert not any("reauthenticate" in p or "ssodh" in p for p in paths)


def test_a_session_competing_by_the_time_auto_care_acts_is_not_taken_over(
    sim: Simulator,
) -> None:
    client = GatewayClient(sim.url, verify=False)
    asked, reauthenticate = client.auth_status, client.reauthenticate
    outcomes: list[Outcome] = []

    def then_tws_logs_in() -> Status:
        status = asked()
        sim.set_scenario("competing")  # between the check and the reauthentication
        return status

    def recorded(take_over: bool = False) -> Outcome:
        outcomes.append(reauthenticate(take_over))
        return outcomes[-1]

    client.auth_status = then_tws_logs_in  # type: ignore[method-assign]
    client.reauthenticate = recorded  # type: ignore[method-assign]
    sim.set_scenario("not_authenticated")
    status = SessionCare(client).check()
    client.close()
    assert [o.ok for o in outcomes] == [False]  # it tried to restart the session
    assert sim.session.competing and not sim.session.authenticated  # but took nothing over
    assert status.state is State.NOT_AUTHENTICATED


# ------------------------------------------------------------------ side requests


def accounts_failing(
    sim: Simulator, monkeypatch: pytest.MonkeyPatch, reply: tuple[int, object]
) -> tuple[list[bool], list[tuple[str, float]]]:
    """Make ``/iserver/accounts`` answer ``reply`` while the returned flag list is empty;
    the second list gets each endpoint asked, at the simulator's (fake) time. (The
    simulator's own log is written after the reply: a test may read it too early.)"""
    original = sim._route
    healed: list[bool] = []
    asked: list[tuple[str, float]] = []

    def route(method: str, endpoint: str, body: object, now: float):  # type: ignore[no-untyped-def]
        asked.append((endpoint, now))
        if endpoint == "iserver/accounts" and not healed:
            return reply[0], reply[1], {}
        return original(method, endpoint, body, now)

    monkeypatch.setattr(sim, "_route", route)
    return healed, asked


def test_failed_account_facts_are_asked_at_most_once_per_five_minutes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SharedClock()
    with Simulator(0, scenario="ready", rate_limit=False, clock=clock) as sim:
        healed, asked = accounts_failing(
            sim, monkeypatch, (500, {"error": "Internal Server Error"})
        )
        client = GatewayClient(
            sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
        )
        care = SessionCare(client, validate=False, clock=clock)
        for _ in range(40):  # forty minutes of checks, one a minute
            status = care.check()
            assert status.state is State.READY and status.account is None
            clock.now += 60
        assert sum(endpoint == "iserver/auth/status" for endpoint, _ in asked) == 40
        accounts = [t - 1000 for endpoint, t in asked if endpoint == "iserver/accounts"]
        assert accounts == [0, 300, 900, 2100]  # 5, 10, 20 minutes apart: a back-off
        healed.append(True)  # the gateway answers again: the next retry gets the facts
        for _ in range(40):
            status = care.check()
            clock.now += 60
        assert status.account == "DU1234567" and status.paper is True
        client.close()


@pytest.mark.parametrize("bad", ["accounts", "validate"])
def test_a_bad_side_reply_leaves_the_state_as_auth_status_said(
    monkeypatch: pytest.MonkeyPatch, bad: str
) -> None:
    clock = SharedClock()
    deep = "[" * 100_000
    with Simulator(0, scenario="ready", rate_limit=False, clock=clock) as sim:
        original = sim._route

        def route(method: str, endpoint: str, body: object, now: float):  # type: ignore[no-untyped-def]
            if endpoint == "iserver/accounts":
                return (200, deep, {}) if bad == "accounts" else (200, {"accounts": ["U1"]}, {})
            if endpoint == "sso/validate":
                return 200, deep, {}
            return original(method, endpoint, body, now)

        monkeypatch.setattr(sim, "_route", route)
        client = GatewayClient(
            sim.url, verify=False, governor=RateGovernor(clock=clock), sleep=clock.sleep
        )
        status = SessionCare(client, clock=clock).check()
        client.close()
    assert status.state is State.READY and status.detail.startswith("Logged in")
    if bad == "accounts":
        assert status.account is None and status.paper is None
