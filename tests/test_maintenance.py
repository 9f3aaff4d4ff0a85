"""IBKR's restart windows in the product (issue 12's acceptance): the tray's look and its
silence inside a window, one notification when the session has not come back, `watch`
sending no reauthentication and one request a minute inside a window, the status fields,
and the settings. Real simulator over HTTPS; one injected clock, no sleeping."""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cpgw_tray.care import maintenance
from cpgw_tray.care.maintenance import IbkrClock, expected_drop
from cpgw_tray.care.pipeline import Pipeline
from cpgw_tray.care.poller import Poller
from cpgw_tray.cli.watch import Printer
from cpgw_tray.client.api import GatewayClient, RateGovernor
from cpgw_tray.model.ibkr_clock import next_maintenance, resolve_region
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import Simulator
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.menu import Entry
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import run_cli
from .test_tray import IdlePoller

NY = ZoneInfo("America/New_York")
UTC = timezone.utc
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")  # as checked_at


def et(day: int, hour: int, minute: int = 0) -> datetime:
    """A time in New York, November 2026 (the 25th is a Wednesday; winter time)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=NY)


class Clocks:
    """One fake time for everything: monotonic seconds (poller, governor, simulator)
    and the wall clock that goes with them (the client's ``checked_at``, the tray)."""

    def __init__(self, start: datetime) -> None:
        self.mono = 1000.0
        self.start = start

    def __call__(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += seconds

    def wall(self) -> datetime:
        return (self.start + timedelta(seconds=self.mono - 1000.0)).astimezone(UTC)

    def set_wall(self, at: datetime) -> None:
        self.start = at - timedelta(seconds=self.mono - 1000.0)


def client(sim: Simulator, clocks: Clocks) -> GatewayClient:
    return GatewayClient(
        sim.url,
        verify=False,
        now=clocks.wall,
        governor=RateGovernor(clock=clocks),
        sleep=clocks.sleep,
    )


def texts(entries: Sequence[Entry]) -> list[str]:
    return [e.text for e in entries]


# ------------------------------------------------------------------ the tray


def tray_on(sim: Simulator, clocks: Clocks, region: str = "na") -> tuple[TrayApp, DummyBackend]:
    config = load({"url": sim.url, "region": region}, env={})  # restart windows on
    tray = TrayApp(config, client(sim, clocks), poller=IdlePoller(), now=clocks.wall)
    backend = DummyBackend()
    tray.start(backend)
    backend.drain()
    return tray, backend


def check_at(tray: TrayApp, clocks: Clocks, at: datetime) -> Status:
    clocks.set_wall(at)
    clocks.sleep(2)  # past the governor's one-per-second
    status = tray.care.check()
    tray.apply(status)
    return status


def icons(backend: DummyBackend) -> list[object]:
    return [v for k, v in backend.calls if k == "icon"]


def test_a_401_at_half_past_midnight_looks_expected_and_stays_quiet(sim: Simulator) -> None:
    clocks = Clocks(et(25, 0, 10))
    tray, backend = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 0, 10))  # ready before the window
    assert icons(backend)[-1] is State.READY
    sim.set_scenario("logged_out")  # IBKR restarts: the session is gone
    status = check_at(tray, clocks, et(25, 0, 30))
    assert status.state is State.LOGGED_OUT and status.exit_code == 1  # classified as ever
    assert status.maintenance_until == et(25, 1, 45) == datetime(2026, 11, 25, 6, 45, tzinfo=UTC)
    assert icons(backend)[-1] == maintenance.ICON
    menu = texts(backend.menu)
    assert menu[0] == "IBKR nightly restart until 06:45 UTC (01:45 ET) — no action needed"
    assert "Status: Logged out (expected during the restart)" in menu
    assert not any("Log in at" in line for line in menu)  # no advice to act
    title = [v for k, v in backend.calls if k == "title"][-1]
    assert title.startswith(
        "IBKR gateway: IBKR nightly restart until 06:45 UTC (01:45 ET) — no action needed"
    )
    check_at(tray, clocks, et(25, 1, 40))
    assert backend.count("notify") == 0
    # the window ends: the normal look at once, but no notification for 5 minutes
    check_at(tray, clocks, et(25, 1, 46))
    assert icons(backend)[-1] is State.LOGGED_OUT and backend.count("notify") == 0
    check_at(tray, clocks, et(25, 1, 50))  # 5 minutes after the end, still logged out
    notes = [v for k, v in backend.calls if k == "notify"]
    assert len(notes) == 1 and notes[0].startswith("Not back after IBKR's restart: Logged out")
    check_at(tray, clocks, et(25, 1, 55))
    assert backend.count("notify") == 1  # one, not one per check
    tray.client.close()


def test_a_session_that_comes_back_after_the_window_notifies_nothing(sim: Simulator) -> None:
    clocks = Clocks(et(25, 0, 10))
    tray, backend = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 0, 10))
    sim.set_scenario("not_authenticated")
    check_at(tray, clocks, et(25, 0, 20))
    assert icons(backend)[-1] == maintenance.ICON
    sim.set_scenario("ready")
    for minute in (47, 52, 59):
        check_at(tray, clocks, et(25, 1, minute))
    assert icons(backend)[-1] is State.READY and backend.count("notify") == 0
    tray.client.close()


def test_outside_a_window_changes_notify_as_before(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    tray, backend = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 12, 0))
    sim.set_scenario("logged_out")
    status = check_at(tray, clocks, et(25, 12, 1))
    assert status.maintenance_until is None and status.next_maintenance == et(26, 0, 15)
    assert icons(backend)[-1] is State.LOGGED_OUT and backend.count("notify") == 1
    tray.client.close()


@pytest.mark.parametrize(
    ("state", "http", "expected"),
    [
        (State.LOGGED_OUT, 401, True),
        (State.NOT_AUTHENTICATED, 200, True),
        (State.DISCONNECTED, 200, True),
        (State.NOT_RESPONDING, None, True),
        (State.ERROR, 500, True),
        (State.ERROR, 503, True),
        (State.ERROR, None, False),  # a TLS failure is not IBKR's restart
        (State.GATEWAY_DOWN, None, False),  # the gateway process is local
        (State.ACCESS_DENIED, 404, False),
        (State.COMPETING, 200, False),
        (State.RATE_LIMITED, 429, False),
        (State.READY, 200, False),
    ],
)
def test_which_states_a_restart_explains(state: State, http: int | None, expected: bool) -> None:
    ibkr = IbkrClock(resolve_region("na", timedelta(0)))
    look = LOOKS[state]
    inside = ibkr.stamp(Status(state, look.label, "d", http_status=http, checked_at=et(25, 0, 30)))
    outside = ibkr.stamp(Status(state, look.label, "d", http_status=http, checked_at=et(25, 2)))
    assert expected_drop(inside) is expected and not expected_drop(outside)


def test_ready_inside_a_window_keeps_its_look_and_says_the_window(sim: Simulator) -> None:
    clocks = Clocks(et(25, 0, 30))
    tray, backend = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 0, 30))
    assert icons(backend)[-1] is State.READY
    assert "IBKR nightly restart until 06:45 UTC (01:45 ET)" in texts(backend.menu)
    tray.client.close()


def test_menu_says_what_is_coming(sim: Simulator) -> None:
    clocks = Clocks(et(24, 22, 5))
    tray, backend = tray_on(sim, clocks)
    check_at(tray, clocks, et(24, 22, 5))
    menu = texts(backend.menu)
    assert "IBKR restart in 2 h 10 min, at 05:15 UTC (00:15 ET)" in menu
    assert "IBKR region: North America" in menu
    assert not any("Full login" in t or "Daily reset" in t for t in menu)
    check_at(tray, clocks, et(28, 12, 0))  # Saturday noon: the day before the token reset
    assert "Full login with your phone needed after Sun 06:00 UTC (01:00 ET)" in texts(backend.menu)
    tray.client.close()


def test_asia_pacific_evening_window_in_the_tray(sim: Simulator) -> None:
    hk = ZoneInfo("Asia/Hong_Kong")
    clocks = Clocks(datetime(2026, 11, 25, 20, 30, tzinfo=hk))
    tray, backend = tray_on(sim, clocks, region="ap")
    sim.set_scenario("server_error")
    status = check_at(tray, clocks, datetime(2026, 11, 25, 20, 30, tzinfo=hk))
    assert status.maintenance_until == datetime(2026, 11, 25, 21, 15, tzinfo=hk)
    assert texts(backend.menu)[0] == (
        "IBKR nightly restart until 13:15 UTC (21:15 HKT) — no action needed"
    )
    tray.client.close()


# ------------------------------------------------------------------ watch and the poller


def run_watch(poller: Poller, clocks: Clocks, seconds: float) -> None:
    """Step the poller for ``seconds`` of fake time."""
    end = clocks.mono + seconds
    while clocks.mono < end:
        clocks.sleep(max(poller.step(), 0.001))


def watching(
    sim: Simulator, clocks: Clocks, out: io.StringIO, as_json: bool = False
) -> tuple[Poller, list[float]]:
    """`watch`'s poller on the simulator, and the fake time of each check or tickle."""
    config = load({"url": sim.url, "region": "na"}, env={})
    printer = Printer(out, as_json, threading.Event())
    checks: list[float] = []

    def on_status(status: Status) -> None:
        checks.append(clocks.mono)
        printer(status)

    return Pipeline(config, client(sim, clocks), on_status, clock=clocks).poller, checks


def test_watch_inside_a_window_does_not_reauthenticate_and_checks_once_a_minute(
    sim: Simulator,
) -> None:
    sim.set_scenario("not_authenticated")  # connected, brokerage session down
    clocks = Clocks(et(25, 0, 20))
    out = io.StringIO()
    poller, checks = watching(sim, clocks, out)
    run_watch(poller, clocks, 60 * 60)  # 00:20 to 01:20 ET
    paths = [r.path for r in sim.requests()]
    assert not any(p.endswith(("ssodh/init", "reauthenticate")) for p in paths)
    assert all(b - a >= 60 for a, b in itertools.pairwise(checks)), checks
    assert len(checks) == 60  # one a minute: a check, then keep-alive tickles
    assert len(paths) <= 61  # and nothing else (the last record may still be on its way)
    assert "[IBKR nightly restart until 01:45 ET]" in out.getvalue().splitlines()[0]
    # outside the window it restarts the brokerage session at once
    clocks.set_wall(et(25, 12, 0))
    sim.clear_requests()
    run_watch(poller, clocks, 120)
    assert any(r.path.endswith("ssodh/init") for r in sim.requests())
    assert poller.latest is not None and poller.latest.state is State.READY
    last = out.getvalue().splitlines()[-1]
    assert last.split()[1] == "ready:" and "[IBKR restart in 12 h 15 min (00:15 ET)]" in last


def test_watch_prints_a_line_when_the_window_ends_whatever_the_state(sim: Simulator) -> None:
    sim.set_scenario("logged_out")
    clocks = Clocks(et(25, 1, 40))
    out = io.StringIO()
    poller, _ = watching(sim, clocks, out, as_json=True)
    run_watch(poller, clocks, 10 * 60)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["state"] for line in lines] == ["logged_out", "logged_out"]
    assert lines[0]["maintenance_until"] == "2026-11-25T06:45:00.000Z"
    assert lines[0]["next_maintenance"] == "2026-11-26T05:15:00.000Z"
    assert lines[1]["maintenance_until"] is None and lines[1]["region"] == "na"


def paced(state: State, at: datetime) -> float:
    ibkr = IbkrClock(resolve_region("na", timedelta(0)))
    status = ibkr.stamp(Status(state, LOOKS[state].label, "d", checked_at=at))
    clock = Clocks(at)
    poller = Poller(lambda: status, lambda s: None, interval=15, tickle=lambda: status, clock=clock)
    poller.step()
    return poller.due()[1]


def test_pacing_in_a_window_only_while_not_ready() -> None:
    assert paced(State.NOT_AUTHENTICATED, et(25, 0, 30)) == 60
    assert paced(State.GATEWAY_DOWN, et(25, 0, 30)) == 60
    assert paced(State.NOT_AUTHENTICATED, et(25, 12)) == 15
    assert paced(State.READY, et(25, 0, 30)) == 15  # keep-alive as usual: never let it lapse


# ------------------------------------------------------------------ fields and settings


def test_status_json_has_region_and_window_fields(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CPGW_TRAY_RESTART_WINDOWS")  # on, as by default: fields at real time
    path = tmp_path / "config.toml"
    path.write_text('region = "na"\n')
    code, text = run_cli("--url", sim.url, "--config", str(path), "status", "--json")
    data = json.loads(text)
    assert code == 0 and data["region"] == "na"
    checked = datetime.fromisoformat(data["checked_at"].replace("Z", "+00:00"))
    assert ISO.match(data["next_maintenance"])
    assert data["next_maintenance"] == next_maintenance("na", checked).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    assert data["maintenance_until"] is None or ISO.match(data["maintenance_until"])


def test_region_setting_and_environment() -> None:
    assert load({}, env={}).region == "auto"
    assert load({}, env={"CPGW_TRAY_REGION": "AP"}).region == "ap"


def test_bad_region_names_key_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('interval = 15\nregion = "us"\n')
    code, _ = run_cli("--config", str(path), "status")
    assert code == 64
    err = capsys.readouterr().err.strip()
    assert err == (
        f"cpgw-tray: bad value for 'region' in {path} line 2: expected one of auto, na, eu, ap"
    )


def test_old_config_with_reset_timezone_loads(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('reset_timezone = "Europe/Zurich"\n')
    config = load({}, config_path=str(path), env={})
    assert config.region == "eu"
    with caplog.at_level(logging.WARNING):
        clock = IbkrClock.from_config(config, utc_offset=timedelta(hours=-5))
    assert clock.region == "eu"
    warnings = [r for r in caplog.records if "reset_timezone is deprecated" in r.message]
    assert len(warnings) == 1
    # an explicit region wins; a zone with no region of its own means auto
    both = load({"region": "ap"}, config_path=str(path), env={})
    assert both.region == "ap"
    path.write_text('reset_timezone = "America/Chicago"\n')
    assert load({}, config_path=str(path), env={}).region == "auto"


def test_restart_windows_off_leaves_the_fields_null() -> None:
    config = load({"region": "na", "restart_windows": False}, env={})
    ibkr = IbkrClock.from_config(config)
    status = ibkr.stamp(Status(State.LOGGED_OUT, "Logged out", "d", checked_at=et(25, 0, 30)))
    assert status.region == "na" and status.maintenance_until is None
    assert status.next_maintenance is None and not ibkr.quiet(status)
