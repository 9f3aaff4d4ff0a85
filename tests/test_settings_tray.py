"""Settings that stick, the tray's side: the Notifications toggle saved, "Settings…" and
"Start at login", a saved change taken on while running (or a bad one refused), and
bad settings at start shown rather than a silent exit."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from cpgw_tray.care.poller import Poller
from cpgw_tray.client.api import GatewayClient
from cpgw_tray.model.status import State
from cpgw_tray.settings.config import Config, load
from cpgw_tray.settings.file import default_text
from cpgw_tray.settings.table import LIVE_KEYS
from cpgw_tray.settings.watcher import SettingsWatcher
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.icons import SETTINGS_ICON, look_of
from cpgw_tray.tray.menu import Entry
from cpgw_tray.tray.sections import Door, SectionFactory
from cpgw_tray.tray.settings_menu import SettingsItems, open_settings, show_bad_settings
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import run_cli, wait_for
from .test_settings import MINE, save
from .test_tray import snapshot

# ---------------------------------------------------------------- the tray


class Opened:
    """Records the files the settings items asked the system to open."""

    def __init__(self, works: bool = True) -> None:
        self.works = works
        self.paths: list[Path] = []
        self.done = threading.Event()

    def __call__(self, path: Path) -> bool:
        self.paths.append(path)
        self.done.set()
        return self.works


class FakeAutostart:
    where = "the fake"

    def __init__(self) -> None:
        from cpgw_tray.autostart import Result

        self.on = False
        self.result = Result

    def status(self) -> bool:
        return self.on

    def enable(self, command: list[str]) -> object:
        self.on = True
        return self.result(True, f"on: {command}")

    def disable(self) -> object:
        self.on = False
        return self.result(True, "off")


def settings_section(path: Path) -> SectionFactory:
    """The settings items on ``path``, with a fake autostart and opener."""
    return lambda door: SettingsItems(
        door,
        path,
        autostart=FakeAutostart(),  # type: ignore[arg-type]
        opener=Opened(),
        command=["x"],
    )


def tray_with_settings(
    path: Path,
    poller: Poller | None = None,
    env: dict[str, str] | None = None,
    section: SectionFactory | None = None,
) -> tuple[TrayApp, DummyBackend, SettingsItems]:
    """A TrayApp as `cpgw-tray tray` builds it, on the fake tray."""
    config = load({}, config_path=str(path), env=env or {})
    client = GatewayClient(config.url, verify=False)
    poller = poller or Poller(
        lambda: snapshot(State.READY),
        lambda s: None,
        interval=config.interval,
        tickle=lambda: snapshot(State.READY),
        keepalive=config.keepalive,
    )
    app = TrayApp(
        config,
        client,
        sections=[section or settings_section(path)],
        poller=poller,
        open_url=lambda url: None,
    )
    items = app.sections[0]
    assert isinstance(items, SettingsItems)
    backend = DummyBackend()
    app.backend = backend  # as start() does, without starting the poller
    app.refresh()
    return app, backend, items


def entry(backend: DummyBackend, text: str) -> Entry:
    found = [e for e in backend.menu if e.text == text]
    assert found, f"no {text!r} in {[e.text for e in backend.menu]}"
    return found[0]


# What a running tray shows for each key it applies live, once the key changed.
LIVE_CHANGES: dict[str, tuple[object, Callable[[TrayApp], object]]] = {
    "timeout": (4.0, lambda app: (app.client.timeout, app.poller.timeout) == (4, 4)),
    "interval": (7.0, lambda app: app.poller.interval == 7),
    "keepalive": (20.0, lambda app: app.poller.keepalive == 20),
    "notifications": (False, lambda app: app.notifications is False),
    "auto_reauth": (False, lambda app: app.care.auto_reauth is False),
    "login_reminder": (120.0, lambda app: app.person.policy.login_reminder == 120),
    "on_competing": ("take_back", lambda app: app.person.policy.on_competing == "take_back"),
    "compete_after": (
        120.0,
        lambda app: app.person.policy.compete_after == timedelta(seconds=120),
    ),
}


@pytest.mark.parametrize("key", sorted(LIVE_KEYS))
def test_every_live_key_is_applied_through_reconfigure(tmp_path: Path, key: str) -> None:
    """Issue 22: each key the settings table marks live reaches its running part through
    ``reconfigure`` alone, and no key is left out of this check."""
    assert set(LIVE_CHANGES) == LIVE_KEYS, "say how the new live key shows in LIVE_CHANGES"
    app, _, _ = tray_with_settings(save(tmp_path / "config.toml", ""))
    value, applied = LIVE_CHANGES[key]
    assert not applied(app)
    app.reconfigure(replace(app.config, **{key: value}))
    assert applied(app), key


def test_notifications_toggle_survives_a_restart_and_keeps_comments(tmp_path: Path) -> None:
    path = save(tmp_path / "config.toml", MINE)
    _app, backend, _ = tray_with_settings(path)
    assert entry(backend, "Notifications").checked is True
    action = entry(backend, "Notifications").action
    assert action is not None
    action()
    backend.drain()
    assert entry(backend, "Notifications").checked is False
    assert path.read_text() == MINE.replace("notifications = true", "notifications = false")
    again, backend2, _ = tray_with_settings(path)  # the next start
    assert again.notifications is False and entry(backend2, "Notifications").checked is False


def test_a_toggle_that_cannot_be_saved_says_why(tmp_path: Path) -> None:
    path = save(tmp_path / "config.toml", "# mine\n")
    app, backend, _ = tray_with_settings(path)
    app.apply(snapshot(State.READY))
    save(path, "# mine\nnotifications = \n")  # a bad edit, not yet fixed
    action = entry(backend, "Notifications").action
    assert action is not None
    action()
    backend.drain()
    assert app.notifications is True  # not saved: nothing changed, and that is said
    notes = [e.text for e in backend.menu if e.text.startswith("Not saved:")]
    assert notes and "line 2" in notes[0]
    assert path.read_text() == "# mine\nnotifications = \n"


def test_settings_item_opens_the_file_creating_it(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "config.toml"
    _, backend, items = tray_with_settings(save(path, ""))
    path.unlink()  # deleted while the tray runs
    action = entry(backend, "Settings…").action
    assert action is not None
    action()
    opener = items._opener
    assert isinstance(opener, Opened) and opener.done.wait(5)
    assert opener.paths == [path] and path.read_text() == default_text()


def test_settings_file_nobody_can_open_is_named(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert open_settings(path, Opened(works=False)) == f"No app to open the settings file: {path}"


def test_start_at_login_item_is_checked_and_toggles(tmp_path: Path) -> None:
    app, backend, items = tray_with_settings(save(tmp_path / "c.toml", ""))
    app.apply(snapshot(State.READY))
    assert entry(backend, "Start at login").checked is False
    action = entry(backend, "Start at login").action
    assert action is not None
    action()
    backend.drain()
    assert items.autostart.status() and entry(backend, "Start at login").checked is True
    assert "on: ['x']" in [e.text for e in backend.menu]  # the outcome, in the menu


def test_saved_change_is_applied_live_restart_keys_wait(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "interval = 30\n")
    app, backend, items = tray_with_settings(path)
    assert app.poller.interval == 30
    save(path, 'interval = 5\nkeepalive = 20\ntimeout = 4\nurl = "https://127.0.0.1:5999"\n')
    items.apply(load({}, config_path=str(path), env={}))
    backend.drain()  # the menu is redrawn on the tray's thread
    assert (app.poller.interval, app.poller.keepalive, app.client.timeout) == (5, 20, 4)
    assert app.poller.timeout == 4
    assert app.config.interval == 5 and app.config.url == "https://127.0.0.1:5000"  # kept
    assert "Restart cpgw-tray to apply: url" in [e.text for e in backend.menu]
    assert ("notify", "Restart cpgw-tray to apply: url") in backend.calls


def test_environment_still_wins_over_a_saved_change(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "interval = 30\n")
    env = {"CPGW_TRAY_INTERVAL": "7"}
    app, _, items = tray_with_settings(path, env=env)
    save(path, "interval = 5\n")
    items.apply(load({}, config_path=str(path), env=env))
    assert app.poller.interval == 7


def test_watcher_hands_on_a_saved_change_and_refuses_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = save(tmp_path / "c.toml", "# mine\ninterval = 30\n")
    app, backend, items = tray_with_settings(path)
    watcher = SettingsWatcher(
        path, lambda: load({}, config_path=str(path), env={}), items.reloaded, items.failed
    )
    watcher.settle = 0  # driven by hand: no waiting
    assert not watcher.check()  # nothing saved yet
    save(path, "# mine\ninterval = 10\n")
    assert watcher.check()
    backend.drain()
    assert app.poller.interval == 10
    assert not watcher.check()  # the same version is not loaded twice
    with caplog.at_level(logging.WARNING):
        save(path, "# mine\ninterval = 10\nkeepalive = \n")
        assert watcher.check()
    backend.drain()
    assert app.poller.interval == 10 and app.config.interval == 10  # last good kept
    assert f"{path}: Invalid value (at line 3" in caplog.text
    note = next(e for e in backend.menu if e.text.startswith("Settings file has an error"))
    assert "line 3" in " ".join(e.text for e in note.submenu)  # its submenu says where
    assert any(kind == "notify" and "line 3" in what for kind, what in backend.calls)
    save(path, "# mine\ninterval = 20\n")  # fixed
    assert watcher.check()
    backend.drain()
    assert app.poller.interval == 20
    assert "Settings file has an error" not in " ".join(e.text for e in backend.menu)


@pytest.mark.e2e
def test_watcher_thread_survives_a_failing_load_and_says_so(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "interval = 30\n")
    errors: list[str] = []
    reported = threading.Event()

    def broken() -> Config:
        raise RuntimeError("a bug")

    def on_error(message: str) -> None:
        errors.append(message)
        reported.set()

    watcher = SettingsWatcher(path, broken, lambda c: None, on_error, period=0.05, settle=0)
    watcher.start()
    try:
        save(path, "interval = 20\n")
        assert reported.wait(5)
        assert errors == ["watching the settings file failed: a bug"]
        reported.clear()
        save(path, "interval = 10\n")
        assert reported.wait(5)  # still watching
    finally:
        watcher.stop()


def test_bad_settings_at_start_show_a_red_icon_saying_why(tmp_path: Path) -> None:
    backend = DummyBackend()
    path = tmp_path / "config.toml"
    problem = f"unknown key 'timout' in {path} line 2 (did you mean 'timeout'?)"
    show_bad_settings(backend, problem, path, backend.stop)  # type: ignore[arg-type]
    # the icon's name, which trays show as its tooltip, and the title say "Settings error"
    assert backend.calls[0] == ("icon", SETTINGS_ICON)
    assert look_of(SETTINGS_ICON).label == "Settings error"
    titles = [text for kind, text in backend.calls if kind == "title"]
    assert titles == ["cpgw-tray: Settings error — see the menu"]
    texts = [e.text for e in backend.menu]
    assert "cpgw-tray cannot start: bad settings" in texts
    assert "line 2" in " ".join(texts) and f"File: {path}" in texts
    assert texts[-2:] == ["Open settings file", "Quit"]
    quit_action = backend.menu[-1].action
    assert quit_action is not None
    quit_action()
    assert backend.stopped.is_set()


def test_bad_settings_without_a_display_exit_64_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    path = save(tmp_path / "c.toml", "# mine\ntimout = 5\n")
    code, _ = run_cli("--config", str(path), "tray")
    err = capsys.readouterr().err
    assert code == 64 and err.count("\n") == 1
    assert f"unknown key 'timout' in {path} line 2" in err


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_default_settings_file_that_is_a_fifo_is_bad_settings_for_the_tray(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Not silently ignored: the tray's bad-settings path (the red icon on a desktop;
    exit 64 with one line naming the file without one), and no wait on the FIFO."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    path = isolated_env / "config" / "cpgw-tray" / "config.toml"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    code, _ = run_cli("tray")
    err = capsys.readouterr().err
    assert code == 64 and err.count("\n") == 1
    assert f"{path} is a FIFO" in err


@pytest.mark.e2e
def test_running_tray_applies_an_edited_interval_within_5_s(isolated_env: Path) -> None:
    """`config --init`, then an edited interval: the real watcher thread, the real
    poller thread, a saved file; the poller runs at the new interval within 5 s."""
    code, _ = run_cli("config", "--init")
    assert code == 0
    path = isolated_env / "config" / "cpgw-tray" / "config.toml"
    checks: list[float] = []
    poller = Poller(
        lambda: checks.append(time.monotonic()) or snapshot(State.READY), lambda s: None
    )
    app, backend, items = tray_with_settings(path, poller=poller)
    watcher = SettingsWatcher(path, lambda: load(), items.reloaded, items.failed)
    app.start(backend)
    watcher.start()
    try:
        assert poller.interval == 15
        text = path.read_text().replace("# interval = 15", "interval = 1")
        save(path, text)
        saved = time.monotonic()

        def applied() -> bool:
            backend.drain()  # as the tray's thread
            return poller.interval == 1

        wait_for(applied, timeout=5)
        wait_for(lambda: len([t for t in checks if t > saved]) >= 3, timeout=10)
        after = [t for t in checks if t > saved]
        assert after[-1] - after[-2] < 3  # checks at the new pace
    finally:
        watcher.stop()
        app.quit()


def test_start_at_login_follows_the_command_line(tmp_path: Path) -> None:
    """`cpgw-tray autostart on|off` while the tray runs: the settings watcher sees the
    autostart entry change (no folder for it at first, no periodic look) and ticks or
    unticks *Start at login* (it stayed ticked after `off`)."""
    path = save(tmp_path / "config.toml", "# mine\n")

    def real(door: Door) -> SettingsItems:  # the real autostart entry
        return SettingsItems(door, path, command=["cpgw-tray"])

    app, backend, items = tray_with_settings(path, section=real)
    assert items.autostart.file is not None and not items.autostart.file.parent.exists()
    watcher = SettingsWatcher(
        path,
        Config,
        items.reloaded,
        items.failed,
        period=3600,
        on_tick=items.tick,
        follows=items.autostart.file,
    )
    watcher.start()
    try:
        assert entry(backend, "Start at login").checked is False
        for state, expected in (("on", True), ("off", False)):
            assert run_cli("autostart", state)[0] == 0

            def shown(expected: bool = expected) -> bool:
                backend.drain()  # as the tray's thread
                return entry(backend, "Start at login").checked is expected

            wait_for(shown, timeout=10)
    finally:
        watcher.stop()
        app.quit()


def test_the_watcher_ticks_at_every_look(tmp_path: Path) -> None:
    ticked = threading.Event()
    watcher = SettingsWatcher(
        tmp_path / "config.toml", Config, print, print, period=0.01, on_tick=ticked.set
    )
    watcher.start()
    try:
        assert ticked.wait(10)
    finally:
        watcher.stop()
