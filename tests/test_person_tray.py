"""Calling the person in the tray (issue 13's acceptance): login notifications and
reminders, the snooze, silence inside a restart window, the menu's items, the radio group
that saves ``on_competing``, the fallbacks where the tray cannot notify. Real simulator
over HTTPS, one injected clock, no sleeping."""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cpgw_tray.model.person import LOGIN_NEEDED
from cpgw_tray.model.status import State, Status
from cpgw_tray.model.urls import gateway_root
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import Simulator
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.menu import Entry
from cpgw_tray.tray.sections import SectionFactory
from cpgw_tray.tray.settings_menu import SettingsItems
from cpgw_tray.tray.tray_app import TrayApp

from .test_maintenance import Clocks, client, et
from .test_settings_tray import settings_section
from .test_tray import IdlePoller


def tray_on(
    sim: Simulator,
    clocks: Clocks,
    backend: DummyBackend | None = None,
    sections: Sequence[SectionFactory] = (),
    **settings: object,
) -> tuple[TrayApp, DummyBackend, list[str]]:
    config = load({"url": sim.url, "region": "na", **settings}, env={})  # windows on
    opened: list[str] = []
    tray = TrayApp(
        config,
        client(sim, clocks),
        sections=sections,
        poller=IdlePoller(),
        now=clocks.wall,
        open_url=lambda url: opened.append(url) is None,
    )
    backend = backend or DummyBackend()
    tray.start(backend)
    backend.drain()
    return tray, backend, opened


def check_at(tray: TrayApp, clocks: Clocks, at: datetime) -> Status:
    """One check as the poller makes it (through the person policy), shown."""
    clocks.set_wall(at)
    clocks.sleep(2)  # past the governor's one-per-second
    tray.on_status(tray.person.check())
    assert tray.backend is not None
    tray.backend.drain()  # type: ignore[attr-defined]
    return tray.status


def every_minute(tray: TrayApp, clocks: Clocks, start: datetime, minutes: int) -> None:
    for minute in range(minutes + 1):
        check_at(tray, clocks, start + timedelta(minutes=minute))


def join(name: str) -> None:
    for thread in [t for t in threading.enumerate() if t.name == name]:
        thread.join(timeout=10)


def notes(backend: DummyBackend) -> list[str]:
    return [v for k, v in backend.calls if k == "notify"]


def entry(entries: Sequence[Entry], start: str) -> Entry:
    return next(e for e in entries if e.text.startswith(start))


def care_menu(entries: Sequence[Entry]) -> Sequence[Entry]:
    return entry(entries, "Session care").submenu


def radio_group(entries: Sequence[Entry]) -> Sequence[Entry]:
    """The three choices under the group's heading, in the Session care submenu."""
    care = care_menu(entries)
    heading = texts(care).index("When TWS or the phone takes over:")
    assert not care[heading].enabled
    return care[heading + 1 : heading + 4]


def texts(entries: Sequence[Entry]) -> list[str]:
    return [e.text for e in entries]


def test_a_logged_out_session_notifies_at_once_then_reminds_at_most_six_times(
    sim: Simulator,
) -> None:
    clocks = Clocks(et(25, 12, 0))
    tray, backend, opened = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 12, 0))  # ready
    sim.set_scenario("logged_out")  # the session drops: only a person can log in
    check_at(tray, clocks, et(25, 12, 1))
    assert notes(backend) == [LOGIN_NEEDED]  # at once, and instead of the state's own
    assert texts(backend.menu)[:2] == ["Log in now…", "Status: Logged out"]
    action = backend.menu[0].action
    assert action is not None
    action()
    join("opener")
    assert opened == [gateway_root(sim.url)]  # the login page
    every_minute(tray, clocks, et(25, 12, 2), 8)
    assert len(notes(backend)) == 1  # nothing more until login_reminder has passed
    check_at(tray, clocks, et(25, 12, 11))
    assert len(notes(backend)) == 2
    every_minute(tray, clocks, et(25, 12, 12), 120)
    assert notes(backend) == [LOGIN_NEEDED] * 6  # at 12:01, :11, :21, :31, :41, :51 only
    sim.login()
    check_at(tray, clocks, et(25, 14, 30))
    assert texts(backend.menu)[0] == "Status: Ready"
    assert notes(backend)[-1].startswith("Ready")
    tray.client.close()


def test_snoozing_stops_the_reminders_for_an_hour(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    tray, backend, _ = tray_on(sim, clocks, login_reminder=600)
    check_at(tray, clocks, et(25, 12, 0))
    sim.set_scenario("logged_out")
    check_at(tray, clocks, et(25, 12, 1))
    snooze = entry(backend.menu, "Snooze login reminders for 1 hour")
    assert snooze.action is not None
    snooze.action()
    backend.drain()
    assert any(t.startswith("Login reminders snoozed until ") for t in texts(backend.menu))
    every_minute(tray, clocks, et(25, 12, 2), 58)  # to 13:00: the hour of the snooze
    assert len(notes(backend)) == 1
    every_minute(tray, clocks, et(25, 13, 2), 5)
    assert notes(backend) == [LOGIN_NEEDED] * 2  # reminders again after the hour
    tray.client.close()


def test_no_reminders_inside_a_window_one_call_when_not_back_after_it(sim: Simulator) -> None:
    clocks = Clocks(et(25, 0, 10))
    tray, backend, _ = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 0, 10))  # ready before IBKR's nightly restart
    sim.set_scenario("logged_out")
    every_minute(tray, clocks, et(25, 0, 16), 88)  # 00:16 to 01:44 ET: in the window
    assert texts(backend.menu)[0].startswith("IBKR nightly restart")  # no "Log in now…"
    every_minute(tray, clocks, et(25, 1, 45), 4)  # and its 5 quiet minutes
    assert notes(backend) == []
    check_at(tray, clocks, et(25, 1, 50))
    assert notes(backend) == [f"Not back after IBKR's restart: {LOGIN_NEEDED}"]
    assert texts(backend.menu)[0] == "Log in now…"
    tray.client.close()


def test_competing_with_leave_tells_and_offers_the_takeover(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    tray, backend, _ = tray_on(sim, clocks)
    check_at(tray, clocks, et(25, 12, 0))
    sim.taken_over("TWS")
    every_minute(tray, clocks, et(25, 12, 1), 30)
    assert notes(backend) == ["Another session — TWS, the phone or the web — took over"]
    reauth = entry(backend.menu, "Reauthenticate…")
    assert reauth.submenu[0].text.startswith("Take the session over")
    assert not any(r.path.endswith("ssodh/init") for r in sim.requests())
    tray.client.close()


def test_take_back_after_counts_down_and_leave_it_this_time(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    tray, backend, _ = tray_on(sim, clocks, on_competing="take_back_after", compete_after=900)
    check_at(tray, clocks, et(25, 12, 0))
    sim.taken_over("TWS")
    check_at(tray, clocks, et(25, 12, 1))
    assert "Taking the session back in 15 min" in texts(backend.menu)
    check_at(tray, clocks, et(25, 12, 4))
    assert "Taking the session back in 12 min" in texts(backend.menu)
    leave = entry(backend.menu, "Leave it this time")
    assert leave.action is not None
    leave.action()
    backend.drain()
    assert not any(t.startswith("Taking the session back") for t in texts(backend.menu))
    assert "Left to the other session" in texts(backend.menu)  # the same rows, in words
    assert not entry(backend.menu, "Leave it this time").enabled
    every_minute(tray, clocks, et(25, 12, 5), 40)
    assert not any(r.path.endswith("ssodh/init") for r in sim.requests())
    assert tray.status.state is State.COMPETING
    tray.client.close()


def test_the_radio_group_saves_on_competing_and_applies_it(sim: Simulator, tmp_path: Path) -> None:
    clocks = Clocks(et(25, 12, 0))
    path = tmp_path / "config.toml"
    tray, backend, _ = tray_on(sim, clocks, sections=[settings_section(path)])
    check_at(tray, clocks, et(25, 12, 0))
    group = radio_group(backend.menu)
    assert [(e.text, e.checked, e.radio) for e in group] == [
        ("Leave it, tell me", True, True),
        ("Take it back at once", False, True),
        ("Take it back after 15 min", False, True),
    ]
    assert group[1].action is not None
    group[1].action()
    backend.drain()
    assert load({}, config_path=str(path), env={}).on_competing == "take_back"
    assert tray.person.policy.on_competing == "take_back"
    assert [e.checked for e in radio_group(backend.menu)] == [False, True, False]
    tray.client.close()


def test_pause_in_the_menu_shows_when_it_resumes(sim: Simulator, tmp_path: Path) -> None:
    clocks = Clocks(et(25, 12, 0))
    config = load({"url": sim.url, "region": "na"}, env={})
    pause_file = tmp_path / "paused-until"
    tray = TrayApp(
        config, client(sim, clocks), poller=IdlePoller(), now=clocks.wall, pause_file=pause_file
    )
    backend = DummyBackend()
    tray.start(backend)
    check_at(tray, clocks, et(25, 12, 0))
    assert entry(backend.menu, "Session care").text == "Session care"
    pause = entry(care_menu(backend.menu), "Pause for 1 hour (I'm using TWS)")
    assert pause.action is not None
    clicked = clocks.wall()
    pause.action()
    backend.drain()
    resumes = clicked + timedelta(hours=1)
    assert f"Resume (paused until {resumes.astimezone():%H:%M %Z})" in texts(
        care_menu(backend.menu)
    )
    assert f"Session care paused until {resumes.astimezone():%H:%M %Z}" in texts(backend.menu)
    assert tray.poller.keepalive_paused() and tray.care.paused()
    assert check_at(tray, clocks, et(25, 12, 1)).paused_until == resumes
    assert pause_file.read_text().strip() == "2026-11-25T18:00:02.000Z"  # 13:00:02 ET
    resume = entry(care_menu(backend.menu), "Resume (paused until")
    assert resume.action is not None
    resume.action()
    backend.drain()
    assert not pause_file.exists() and not tray.poller.keepalive_paused()
    assert check_at(tray, clocks, et(25, 12, 2)).paused_until is None
    tray.client.close()


def fake_notify_send(folder: Path) -> Path:
    """A ``notify-send`` on PATH that writes its arguments to a file."""
    folder.mkdir()
    script = folder / "notify-send"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "{folder}/said"\n')
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder / "said"


def test_where_the_tray_cannot_notify_notify_send_is_used(
    sim: Simulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    said = fake_notify_send(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    clocks = Clocks(et(25, 12, 0))
    tray, _, _ = tray_on(sim, clocks, backend=DummyBackend(has_notification=False))
    check_at(tray, clocks, et(25, 12, 0))
    sim.set_scenario("logged_out")
    check_at(tray, clocks, et(25, 12, 1))
    join("notify-send")
    assert said.read_text().splitlines() == ["--app-name=cpgw-tray", "IBKR gateway", LOGIN_NEEDED]
    tray.client.close()


class PopupBackend(DummyBackend):
    """xorg without notify-send: the popup's notice line."""

    def __init__(self) -> None:
        super().__init__(has_notification=False)
        self.popup = type("Popup", (), {"notice": []})()


def test_without_notify_send_the_popup_says_it(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    backend = PopupBackend()
    tray, _, _ = tray_on(sim, clocks, backend=backend)
    tray.announcer._which = lambda name: None  # no notify-send on this desktop
    check_at(tray, clocks, et(25, 12, 0))
    sim.set_scenario("logged_out")
    check_at(tray, clocks, et(25, 12, 1))
    notice = backend.popup.notice
    assert " ".join(notice[:-1]) == LOGIN_NEEDED and notice[-1].startswith("(")
    tray.client.close()


def test_a_saved_change_of_the_settings_applies_while_running(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    tray, _, _ = tray_on(sim, clocks, sections=[settings_section(Path("unused.toml"))])
    items = tray.sections[0]
    assert isinstance(items, SettingsItems)
    new = load(
        {"url": sim.url, "region": "na", "on_competing": "take_back_after", "compete_after": 120},
        env={"CPGW_TRAY_LOGIN_REMINDER": "0"},
    )
    items.apply(new)
    policy = tray.person.policy
    assert policy.on_competing == "take_back_after" and policy.login_reminder == 0
    assert policy.compete_after == timedelta(minutes=2) and items.restart_needed == []
    tray.client.close()


class ActionBackend(DummyBackend):
    """A backend whose notifications take a click (D-Bus in the real one)."""

    def notify_with_action(
        self,
        message: str,
        title: str,
        label: str,
        action: Callable[[], None],
        also: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        self.calls.append(("notify", message))
        self.clicks = (label, action)
        self.also = also


def test_a_click_on_the_login_notification_opens_the_login_page(sim: Simulator) -> None:
    clocks = Clocks(et(25, 12, 0))
    backend = ActionBackend()
    tray, _, opened = tray_on(sim, clocks, backend=backend)
    check_at(tray, clocks, et(25, 12, 0))
    sim.set_scenario("logged_out")
    check_at(tray, clocks, et(25, 12, 1))
    assert notes(backend) == [LOGIN_NEEDED] and backend.clicks[0] == "Log in now"
    backend.clicks[1]()
    join("opener")
    assert opened == [gateway_root(sim.url)]
    tray.client.close()


def test_the_competing_notification_offers_the_takeover_and_leaving_it(sim: Simulator) -> None:
    """Not "Log in now" (the person is logged in, elsewhere): take the session over, or
    leave it (which stops a countdown to taking it back)."""
    clocks = Clocks(et(25, 12, 0))
    backend = ActionBackend()
    tray, _, opened = tray_on(
        sim, clocks, backend=backend, on_competing="take_back_after", compete_after=900
    )
    check_at(tray, clocks, et(25, 12, 0))
    sim.taken_over("TWS")
    check_at(tray, clocks, et(25, 12, 1))
    assert backend.clicks[0] == "Take the session over"
    assert backend.also is not None and backend.also[0] == "Leave it"
    backend.also[1]()
    backend.drain()
    assert "Left to the other session" in texts(backend.menu)
    backend.clicks[1]()  # take it over after all
    join("action")
    assert any(r.path.endswith("ssodh/init") for r in sim.requests())
    assert opened == []
    tray.client.close()
