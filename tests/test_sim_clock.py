"""The simulator plays IBKR's clock at an injected time (`/sim/clock`, `sim --clock`),
and the demo's "nightly restart" moves the clock it shares with the tray."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from cpgw_tray.care import maintenance
from cpgw_tray.client.api import GatewayClient, RateGovernor
from cpgw_tray.demo import SimulateMenu, demo_clock
from cpgw_tray.model.ibkr_clock import next_token_reset, window_at
from cpgw_tray.model.status import State
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import SimClock, Simulator
from cpgw_tray.simulator.clock import parse_moment, reset_moment
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import control, run_cli
from .test_tray import IdlePoller

NY = ZoneInfo("America/New_York")
UTC = timezone.utc


class Ticks:
    """A fake monotonic clock for the client's rate governor: pacing costs no time."""

    now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def client(sim: Simulator) -> GatewayClient:
    ticks = Ticks()
    return GatewayClient(
        sim.url, verify=False, governor=RateGovernor(clock=ticks), sleep=ticks.sleep
    )


def test_a_restart_window_ends_the_brokerage_session_until_it_is_over(sim: Simulator) -> None:
    gateway = client(sim)
    clock = control(sim.url, "/sim/clock", {"at": "2026-11-25T00:14:50-05:00", "region": "na"})
    assert clock["injected"] and clock["window"] is None
    assert clock["next_window"]["start"] == "2026-11-25T05:15:00.000Z"
    assert gateway.auth_status().state is State.READY
    control(sim.url, "/sim/clock", {"at": "2026-11-25T00:15:30-05:00"})
    dropped = gateway.auth_status()
    assert dropped.state is State.NOT_AUTHENTICATED and dropped.connected is True
    refused = gateway.reauthenticate()  # nothing to start a session with while IBKR restarts
    assert not refused.ok and "HTTP 503" in refused.message
    assert control(sim.url, "/sim/clock", method="GET")["window"]["label"] == (
        "IBKR nightly restart until 01:45 ET"
    )
    control(sim.url, "/sim/clock", {"at": "2026-11-25T01:46:00-05:00"})
    assert gateway.reauthenticate().ok and gateway.auth_status().state is State.READY
    # each window is played once, at its first request
    control(sim.url, "/sim/clock", {"at": "2026-11-26T00:20:00-05:00"})
    assert gateway.auth_status().state is State.NOT_AUTHENTICATED
    control(sim.url, "/sim/clock", {"at": None})  # real time again: nothing is played
    assert control(sim.url, "/sim/clock", method="GET")["injected"] is False
    gateway.close()


def test_the_weekly_token_reset_ends_the_login(sim: Simulator) -> None:
    gateway = client(sim)
    control(sim.url, "/sim/clock", {"at": "2026-11-28T12:00:00-05:00"})  # Saturday noon
    assert gateway.auth_status().state is State.READY
    control(sim.url, "/sim/clock", {"at": "2026-11-29T01:30:00-05:00"})  # past Sun 01:00 ET
    assert gateway.auth_status().state is State.LOGGED_OUT
    gateway.close()


def test_a_simulator_on_real_time_plays_no_window() -> None:
    # a clock that reads a window's middle, but was never injected
    real = SimClock(lambda: datetime(2026, 11, 25, 5, 30, tzinfo=UTC))
    with Simulator(0, scenario="ready", rate_limit=False, wall=real) as sim:
        gateway = client(sim)
        assert gateway.auth_status().state is State.READY
        gateway.close()


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"at": "tomorrow"}, "not an ISO 8601 time"),
        ({"at": "2026-11-25T00:30"}, "has no UTC offset"),
        ({"at": "now", "region": "us"}, "unknown region 'us'"),
    ],
)
def test_bad_clock_requests_are_refused(sim: Simulator, body: dict[str, str], words: str) -> None:
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as info:
        control(sim.url, "/sim/clock", body)
    assert info.value.code == 400 and words in info.value.read().decode()


def test_parse_moment() -> None:
    assert parse_moment("2026-11-25T00:30Z") == datetime(2026, 11, 25, 0, 30, tzinfo=UTC)
    assert parse_moment("2026-11-25T00:30-05:00") == datetime(2026, 11, 25, 5, 30, tzinfo=UTC)


@pytest.mark.e2e  # a real sim process
def test_sim_command_starts_at_the_given_clock() -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cpgw_tray",
            "sim",
            "--port",
            "0",
            "--clock",
            "2026-11-25T20:20+08:00",
            "--region",
            "ap",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline() for _ in range(6)]
        clock_line = next(line for line in lines if "IBKR's clock" in line)
        assert "region ap: inside the window, IBKR nightly restart until 21:15 HKT" in clock_line
    finally:
        proc.terminate()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            assert stream is not None
            stream.close()


def test_sim_command_refuses_a_bad_clock(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("sim", "--port", "0", "--clock", "2026-11-25 00:30")
    assert code == 64
    assert "has no UTC offset" in capsys.readouterr().err


def test_demo_nightly_restart_shares_one_clock_with_the_tray() -> None:
    clock = SimClock()
    with Simulator(0, scenario="ready", rate_limit=False, wall=clock) as sim:
        config = load({"url": sim.url, "region": "na"}, env={})
        client = GatewayClient(sim.url, verify=False, now=clock.now)
        simulate = SimulateMenu.factory(sim, clock, client)
        tray = TrayApp(config, client, sections=[simulate], poller=IdlePoller(), now=clock.now)
        backend = DummyBackend()
        tray.start(backend)
        tray.refresh()
        backend.drain()
        simulate = next(e for e in backend.menu if e.text == "Simulate")
        restart = next(e for e in simulate.submenu if e.text.startswith("nightly restart:"))
        assert restart.checked is False and restart.action is not None
        restart.action()
        assert clock.injected and tray.poller.now_calls == 1  # type: ignore[attr-defined]
        window = window_at("na", clock.now())
        assert window is not None and window.kind == "daily"
        assert timedelta(0) < clock.now() - window.start < timedelta(minutes=1)
        status = tray.care.check()  # the simulator plays the window: the session drops
        tray.apply(status)
        assert status.state is State.NOT_AUTHENTICATED and status.maintenance_until == window.end
        assert backend.icon == maintenance.ICON
        simulate = next(e for e in backend.menu if e.text == "Simulate")
        restart = next(e for e in simulate.submenu if e.text.startswith("nightly restart:"))
        assert restart.checked is True and restart.action is not None
        restart.action()  # again: back to real time
        assert not clock.injected
        client.close()


@pytest.mark.parametrize("region", ["na", "eu", "ap"])
def test_the_demo_weekly_reset_never_lands_in_a_restart_window(region: str) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hours in range(0, 24 * 366, 7):  # every season, every hour of the week
        now = start + timedelta(hours=hours)
        at = reset_moment(region, now)
        assert window_at(region, at) is None, (region, now, at)
        assert window_at(region, at - maintenance.QUIET_AFTER) is None, (region, now, at)
        reset = next_token_reset(now)
        assert at == reset - timedelta(seconds=30) or reset < at < reset + timedelta(hours=3)


def demo_tray(clock: SimClock, sim: Simulator, region: str) -> tuple[TrayApp, DummyBackend]:
    """The tray as the demo makes it: no automatic reauthentication."""
    config = load({"url": sim.url, "region": region, "auto_reauth": False}, env={})
    client = GatewayClient(sim.url, verify=False, now=clock.now)
    simulate = SimulateMenu.factory(sim, clock, client)
    tray = TrayApp(config, client, sections=[simulate], poller=IdlePoller(), now=clock.now)
    backend = DummyBackend()
    tray.start(backend)
    tray.refresh()
    backend.drain()
    return tray, backend


def simulate(backend: DummyBackend, start: str) -> None:
    simulate = next(e for e in backend.menu if e.text == "Simulate")
    action = next(e for e in simulate.submenu if e.text.startswith(start)).action
    assert action is not None
    action()


def check(tray: TrayApp, backend: DummyBackend) -> State:
    tray.client.governor.forgive()
    tray.apply(tray.care.check())
    backend.drain()
    return tray.status.state


@pytest.mark.e2e  # checks paced by the real rate limits
def test_demo_weekly_reset_shows_the_reset_not_the_restart() -> None:
    clock = SimClock()
    with Simulator(0, scenario="ready", rate_limit=False, wall=clock) as sim:
        tray, backend = demo_tray(clock, sim, "na")  # its window holds the reset
        assert check(tray, backend) is State.READY
        simulate(backend, "weekly reset:")
        assert check(tray, backend) is State.LOGGED_OUT  # the full login the reset asks
        assert backend.icon == State.LOGGED_OUT
        tray.client.close()


@pytest.mark.e2e  # checks paced by the real rate limits
def test_demo_back_to_real_time_undoes_the_restart_quietly() -> None:
    """Turning *nightly restart* off: no "Not back after IBKR's restart" at once, and the
    "Since …" row in real time again."""
    clock = SimClock()
    with Simulator(0, scenario="ready", rate_limit=False, wall=clock) as sim:
        tray, backend = demo_tray(clock, sim, "na")
        assert check(tray, backend) is State.READY
        simulate(backend, "nightly restart:")
        assert check(tray, backend) is State.NOT_AUTHENTICATED  # inside the window
        simulate(backend, "nightly restart:")  # off: real time again
        assert not clock.injected
        assert check(tray, backend) is State.READY
        said = [v for k, v in backend.calls if k == "notify"]
        assert not any("Not back after IBKR's restart" in v for v in said), said
        assert abs(tray.since - datetime.now(UTC)) < timedelta(minutes=5)
        tray.client.close()


@pytest.mark.e2e  # checks paced by the real rate limits
def test_demo_since_rows_move_with_the_clock() -> None:
    """A state that does not change across the jumps (logged out): its "Since" follows
    the clock there and back."""
    clock = SimClock()
    with Simulator(0, scenario="logged_out", rate_limit=False, wall=clock) as sim:
        tray, backend = demo_tray(clock, sim, "eu")
        assert check(tray, backend) is State.LOGGED_OUT
        simulate(backend, "nightly restart:")
        assert abs(tray.since - clock.now()) < timedelta(minutes=1)
        simulate(backend, "nightly restart:")
        assert check(tray, backend) is State.LOGGED_OUT
        assert abs(tray.since - datetime.now(UTC)) < timedelta(minutes=1)
        tray.client.close()


def test_demo_clock_starts_at_the_given_moment_and_is_the_demos_real_time() -> None:
    """`demo --clock`: the shared clock reads that moment, runs on at real speed, and is
    the demo's real time: not "injected" (the Simulate toggles stay off), and a jump
    and its way back land on it again."""
    real = [datetime(2026, 12, 3, 14, 0, 7, tzinfo=UTC)]
    start = parse_moment("2026-11-28T05:00Z")  # a Saturday, in IBKR's weekend maintenance
    clock = demo_clock(start, lambda: real[0])
    assert clock.now() == start and not clock.injected
    real[0] += timedelta(seconds=90)
    assert clock.now() == start + timedelta(seconds=90)
    clock.set(start + timedelta(days=2))  # *nightly restart*, then back to real time
    assert clock.injected
    clock.set(None)
    assert clock.now() == start + timedelta(seconds=90) and not clock.injected
    assert demo_clock(None, lambda: real[0]).now() == real[0]  # no --clock: real time


def test_demo_clock_option(capsys: pytest.CaptureFixture[str]) -> None:
    """`demo --clock ISO` parses as `sim --clock` does (with `--gateways 2` too); a bad
    value is one line naming the option, exit 64, no traceback."""
    from cpgw_tray.cli.main import build_parser

    argv = ["demo", "--gateways", "2", "--clock", "2026-11-25T10:00-05:00"]
    args = build_parser(argv).parse_args(argv)
    assert args.clock == datetime(2026, 11, 25, 15, 0, tzinfo=UTC) and args.gateways == 2
    assert build_parser(["demo"]).parse_args(["demo"]).clock is None
    code, _ = run_cli("demo", "--clock", "Saturday morning")
    err = capsys.readouterr().err
    assert code == 64 and err.count("\n") == 1 and "Traceback" not in err
    assert "--clock" in err and "not an ISO 8601 time" in err
    code, _ = run_cli("demo", "--clock", "2026-11-25T10:00")
    err = capsys.readouterr().err
    assert code == 64 and "--clock" in err and "no UTC offset" in err
