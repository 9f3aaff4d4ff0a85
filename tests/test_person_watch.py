"""Calling the person without a display (issue 13's acceptance): each ``on_competing``
value against the simulator's competing session — ``take_back`` sends exactly one
``compete: true``, never twice within 5 minutes, never inside a restart window — a pause
that stops tickles and reauthentication for an hour, the events printed by ``watch``,
``paused_until`` in ``status --json``, the settings, and the demo's simulations. Real
simulator over HTTPS; `watch`'s poller stepped on one injected clock, no sleeping."""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cpgw_tray.care.person_care import PAUSE_FILE, read_pause, write_pause
from cpgw_tray.care.pipeline import Pipeline
from cpgw_tray.care.poller import Poller
from cpgw_tray.cli.watch import Printer
from cpgw_tray.demo import SimulateMenu
from cpgw_tray.model.ibkr_clock import next_token_reset
from cpgw_tray.model.person import LOGIN_NEEDED
from cpgw_tray.model.status import State
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import SimClock, Simulator
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import run_cli, status_json
from .test_maintenance import Clocks, client, et, run_watch
from .test_tray import IdlePoller

UTC = timezone.utc


def watching(
    sim: Simulator,
    clocks: Clocks,
    *,
    as_json: bool = True,
    pause_file: Path | None = None,
    **settings: Any,
) -> tuple[Poller, io.StringIO]:
    """`watch` as ``cmd_watch`` builds it, on the simulator and the injected clock."""
    config = load({"url": sim.url, "region": "na", **settings}, env={})
    out = io.StringIO()
    printer = Printer(out, as_json, threading.Event())
    poller = Pipeline(
        config,
        client(sim, clocks),
        printer,
        clock=clocks,
        on_event=printer.event,
        pause_file=pause_file,
        wall=clocks.wall,
        poller_wall=clocks.wall,
    ).poller
    return poller, out


def takeovers(sim: Simulator) -> list[Any]:
    """The bodies of the session starts sent to the simulator."""
    return [r.body for r in sim.requests() if r.path.endswith("ssodh/init")]


def events(out: io.StringIO) -> list[str]:
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    return [line["event"] for line in lines if "event" in line]


def test_leave_tells_once_and_never_takes_over(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    poller, out = watching(sim, clocks)
    run_watch(poller, clocks, 60)
    sim.taken_over("TWS")
    run_watch(poller, clocks, 60 * 60)
    assert takeovers(sim) == [] and events(out) == ["competing", "dropped"]
    assert poller.latest is not None and poller.latest.state is State.COMPETING


def test_take_back_sends_one_compete_and_never_twice_within_5_minutes(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    poller, out = watching(sim, clocks, on_competing="take_back")
    run_watch(poller, clocks, 60)
    sim.clear_requests()
    sim.taken_over("TWS")
    run_watch(poller, clocks, 60)
    assert takeovers(sim) == [{"publish": True, "compete": True}]  # exactly one, at once
    assert poller.latest is not None and poller.latest.state is State.READY
    assert events(out) == ["competing", "take_over", "dropped"]
    sim.taken_over("TWS")  # TWS takes it again a minute later: no ping-pong
    run_watch(poller, clocks, 150)
    assert len(takeovers(sim)) == 1
    assert poller.latest is not None and poller.latest.state is State.COMPETING
    run_watch(poller, clocks, 120)  # 5 minutes after the first: once more
    assert takeovers(sim) == [{"publish": True, "compete": True}] * 2
    assert events(out) == [
        *("competing", "take_over", "dropped"),
        *("competing", "dropped", "take_over"),
    ]


def test_take_back_never_inside_a_window(sim: Simulator) -> None:
    clocks = Clocks(et(25, 0, 20))  # inside IBKR's nightly restart, still ready
    poller, out = watching(sim, clocks, on_competing="take_back")
    run_watch(poller, clocks, 60)
    sim.taken_over("TWS")
    run_watch(poller, clocks, 89 * 60)  # 00:21 to 01:50 ET: the window and 5 quiet minutes
    assert takeovers(sim) == [] and events(out) == ["competing"]
    run_watch(poller, clocks, 6 * 60)
    assert takeovers(sim) == [{"publish": True, "compete": True}]


def test_take_back_after_waits_compete_after(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    poller, out = watching(sim, clocks, on_competing="take_back_after", compete_after=900)
    run_watch(poller, clocks, 60)
    sim.taken_over("TWS")
    run_watch(poller, clocks, 14 * 60)
    assert takeovers(sim) == []
    run_watch(poller, clocks, 2 * 60)
    assert takeovers(sim) == [{"publish": True, "compete": True}]
    assert events(out) == ["competing", "dropped", "take_over"]


def test_a_pause_stops_tickles_reauth_and_takeovers_for_an_hour(
    sim: Simulator, tmp_path: Path
) -> None:
    clocks = Clocks(et(25, 12, 0))
    pause_file = tmp_path / PAUSE_FILE
    poller, out = watching(sim, clocks, pause_file=pause_file, on_competing="take_back")
    run_watch(poller, clocks, 5 * 60)
    before = Counter(r.path.rsplit("/", 1)[-1] for r in sim.requests())
    assert before["tickle"] >= 4  # keep-alive while not paused
    write_pause(pause_file, clocks.wall() + timedelta(hours=1))  # the tray's menu did this
    sim.clear_requests()
    sim.set_scenario("not_authenticated")  # brokerage session down: auto-reauth would send
    run_watch(poller, clocks, 30 * 60)
    sim.taken_over("TWS")  # and take_back would take it over
    run_watch(poller, clocks, 29 * 60)
    during = Counter(r.path.rsplit("/", 1)[-1] for r in sim.requests())
    assert during["tickle"] == 0 and during["init"] == 0 and during["reauthenticate"] == 0
    assert during["status"] >= 59 * 4 - 2  # checks go on, every 15 s
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    paused = [line["paused_until"] for line in lines if "state" in line]
    assert paused[0] is None and paused[-1] == (clocks.wall() + timedelta(minutes=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    run_watch(poller, clocks, 3 * 60)  # the hour is over
    after = Counter(r.path.rsplit("/", 1)[-1] for r in sim.requests())
    assert after["init"] == 1 and takeovers(sim) == [{"publish": True, "compete": True}]
    assert after["tickle"] >= 1
    assert poller.latest is not None and poller.latest.paused_until is None


def test_watch_prints_the_login_events(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    poller, out = watching(sim, clocks, login_reminder=600)
    run_watch(poller, clocks, 60)
    sim.set_scenario("logged_out")
    run_watch(poller, clocks, 2 * 60 * 60)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    said = [line for line in lines if "event" in line]
    assert [line["event"] for line in said] == ["login_needed", "dropped"] + ["login_reminder"] * 5
    assert said[0]["message"] == LOGIN_NEEDED and set(said[0]) == {
        "event",
        "message",
        "at",
        "gateway",
    }
    first = datetime.fromisoformat(said[0]["at"].replace("Z", "+00:00"))
    assert said[1]["message"] == "Not ready any more: Logged out" and said[1]["at"] == said[0]["at"]
    second = datetime.fromisoformat(said[2]["at"].replace("Z", "+00:00"))
    assert timedelta(minutes=10) <= second - first < timedelta(minutes=10, seconds=20)
    # the event lines come before the status line of the check that brought them
    index = lines.index(said[0])
    assert lines[index + 1] == said[1] and lines[index + 2]["state"] == "logged_out"


def test_watch_prints_events_for_people_too(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    poller, out = watching(sim, clocks, as_json=False)
    run_watch(poller, clocks, 60)
    sim.taken_over("TWS")
    run_watch(poller, clocks, 60)
    said = [line for line in out.getvalue().splitlines() if " competing: Another" in line]
    assert len(said) == 1
    assert said[0].split(" ", 1)[1] == (
        "competing: Another session — TWS, the phone or the web — took over"
    )


def test_a_sleep_across_a_restart_window_starts_a_new_episode(sim: Simulator) -> None:
    """Reminders used up, then the laptop sleeps across IBKR's nightly restart: waking
    to a session still logged out calls the person again."""
    clocks = Clocks(et(25, 12, 0))
    poller, out = watching(sim, clocks, login_reminder=600)
    run_watch(poller, clocks, 60)
    sim.set_scenario("logged_out")
    run_watch(poller, clocks, 2 * 60 * 60)
    used_up = ["login_needed", "dropped"] + ["login_reminder"] * 5
    assert events(out) == used_up
    clocks.set_wall(et(26, 9, 0))  # asleep from 14:01 to 09:00: the 23:45 window passed
    run_watch(poller, clocks, 60)
    assert events(out) == [*used_up, "login_needed"]


def test_logged_out_after_the_token_reset_calls_a_process_that_never_saw_it_ready(
    sim: Simulator,
) -> None:
    """`watch` (or the tray) started on Monday with the session logged out since
    Sunday's token reset: nobody saw it ready since, so only a person can help."""
    sim.set_scenario("logged_out")
    clocks = Clocks(et(30, 12, 0))  # Monday noon, after Sunday's reset
    poller, out = watching(sim, clocks)
    run_watch(poller, clocks, 60)
    assert events(out) == ["login_needed"]


def test_a_tray_and_a_watch_take_over_once_per_5_minutes_between_them(
    sim: Simulator, tmp_path: Path
) -> None:
    """Two processes set to take_back on one machine (they share the state folder):
    one takeover per 5 minutes between them, never one each."""
    clocks = Clocks(et(25, 12, 0))
    pause_file = tmp_path / PAUSE_FILE
    one, out_one = watching(sim, clocks, pause_file=pause_file, on_competing="take_back")
    two, out_two = watching(sim, clocks, pause_file=pause_file, on_competing="take_back")

    def both(seconds: float) -> None:
        end = clocks.mono + seconds
        while clocks.mono < end:
            clocks.sleep(max(min(one.step(), two.step()), 0.001))

    both(60)
    sim.clear_requests()
    sim.taken_over("TWS")
    both(60)
    assert takeovers(sim) == [{"publish": True, "compete": True}]
    sim.taken_over("TWS")  # again a minute later: neither takes it back within 5 minutes
    both(150)
    assert len(takeovers(sim)) == 1
    both(150)  # past 5 minutes: one more, by one of them
    assert takeovers(sim) == [{"publish": True, "compete": True}] * 2
    assert (events(out_one) + events(out_two)).count("take_over") == 2


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_status_json_says_paused_until(sim: Simulator, isolated_env: Path) -> None:
    code, data = status_json(sim.url)
    assert code == 0 and data["paused_until"] is None
    until = datetime.now(UTC) + timedelta(minutes=42)
    write_pause(isolated_env / "state" / "cpgw-tray" / PAUSE_FILE, until)
    code, data = status_json(sim.url)
    assert data["paused_until"] == until.strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{until.microsecond // 1000:03d}Z"
    )
    assert data["state"] == "ready" and code == 0  # a pause changes no state


def test_a_pause_file_that_is_over_or_garbled_is_no_pause(tmp_path: Path) -> None:
    path = tmp_path / PAUSE_FILE
    now = datetime(2026, 11, 25, 17, tzinfo=UTC)
    assert read_pause(path, now) is None
    write_pause(path, now - timedelta(seconds=1))
    assert read_pause(path, now) is None
    path.write_text("tomorrow\n")
    assert read_pause(path, now) is None
    path.write_text("2026-11-25T18:00:00\n")  # no UTC offset: not ours
    assert read_pause(path, now) is None
    write_pause(path, now + timedelta(hours=1))
    assert read_pause(path, now) == now + timedelta(hours=1)
    write_pause(path, None)
    assert not path.exists()


def test_settings_defaults_and_bad_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = load({}, env={})
    assert (config.login_reminder, config.on_competing, config.compete_after) == (
        600,
        "leave",
        900,
    )
    assert load({}, env={"CPGW_TRAY_LOGIN_REMINDER": "0"}).login_reminder == 0
    path = tmp_path / "config.toml"
    path.write_text('interval = 15\non_competing = "always"\n')
    code, _ = run_cli("--config", str(path), "status")
    assert code == 64
    assert capsys.readouterr().err.strip() == (
        f"cpgw-tray: bad value for 'on_competing' in {path} line 2: "
        "expected one of leave, take_back, take_back_after"
    )
    path.write_text("login_reminder = 5\n")
    assert run_cli("--config", str(path), "status")[0] == 64
    assert "'login_reminder'" in capsys.readouterr().err


def test_the_demo_simulates_a_takeover_by_tws_and_the_weekly_reset(sim: Simulator) -> None:
    start = datetime(2026, 11, 25, 17, tzinfo=UTC)
    real = [start]
    clock = SimClock(real=lambda: real[0])
    sim.wall = clock
    config = load({"url": sim.url, "region": "na"}, env={})
    watched = client(sim, Clocks(start))
    simulate = SimulateMenu.factory(sim, clock, watched)
    tray = TrayApp(config, watched, sections=[simulate], poller=IdlePoller(), now=clock.now)
    backend = DummyBackend()
    tray.start(backend)
    tray.refresh()
    backend.drain()
    simulate = next(e for e in backend.menu if e.text == "Simulate").submenu
    tws = next(e for e in simulate if e.text.startswith("taken over by TWS"))
    assert tws.action is not None
    tws.action()
    assert sim.session.competing and sim.session.logged_in  # as if TWS logged in
    assert tray.care.check().state is State.COMPETING
    sim.login()
    reset = next(e for e in simulate if e.text.startswith("weekly reset"))
    assert reset.action is not None
    reset.action()
    # Sunday 01:00 ET lies in North America's nightly window (00:15-01:45 ET): the clock
    # lands after it and its 5 quiet minutes, the reset passed, the login ended
    assert next_token_reset(start) < clock.now()
    assert clock.now() == datetime(2026, 11, 29, 1, 50, 30, tzinfo=ZoneInfo("America/New_York"))
    assert tray.care.check().state is State.LOGGED_OUT
    tray.client.close()
