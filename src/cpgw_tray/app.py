"""Wiring for the desktop: ``cpgw-tray tray`` (the default) and ``cpgw-tray demo``.

The icon is shown first, from what is cheap to import (pystray, pillow, the status
model); the client (requests), the session care and the gateway items (psutil) are
built on pystray's setup thread once the icon is up, so the tray appears at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .cli.options import add_outlets, gateways_of, resolve
from .constants import EXIT_UNAVAILABLE, EXIT_USAGE
from .settings.config import file_path
from .tray.sections import Section

if TYPE_CHECKING:
    from .client.api import GatewayClient
    from .outlets.wiring import Outlets
    from .settings.config import Config
    from .simulator import SimClock, Simulator
    from .tray.backends import PystrayBackend
    from .tray.menu import Entry
    from .tray.sections import Door, SectionFactory
    from .tray.settings_menu import SettingsItems
    from .tray.tray_app import TrayApp
    from .tray.view import View

log = logging.getLogger(__name__)


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``tray`` (the default) and ``demo``: their own options (:mod:`cpgw_tray.cli.main`)."""
    if name == "tray":
        add_outlets(parser)
    else:
        parser.add_argument(
            "--gateways", type=int, choices=(1, 2), default=1, help="2: a live and a paper one"
        )
    parser.set_defaults(func=cmd_tray if name == "tray" else cmd_demo)


def cmd_tray(args: argparse.Namespace, out: TextIO) -> int:
    from .settings.config import ConfigError

    try:
        gateways = gateways_of(args)
    except ConfigError:
        gateways = []  # run_tray shows the settings error
    if len(gateways) > 1:  # several [gateways.NAME] tables and no --gateway: one icon
        from .several_app import run_several

        if display_missing():
            return EXIT_UNAVAILABLE
        path = file_path(getattr(args, "config", None))
        return run_several(gateways, gateway_sections, reload=(path, lambda: gateways_of(args)))
    return run_tray(lambda: resolve(args), file_path(getattr(args, "config", None)))


def display_missing(report: bool = True) -> bool:
    """True (and, if ``report``, one line on stderr) where a tray cannot show: Linux
    without a display."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        if report:
            print(
                "cpgw-tray: no display found (DISPLAY is not set): the tray needs a desktop; "
                "use `cpgw-tray watch` in a terminal",
                file=sys.stderr,
            )
        return True
    return False


def _show_native_menu_notice(backend: PystrayBackend) -> None:
    """Where the tray has no native menu: say so once, atop the first popup."""
    from . import paths
    from .tray.backends import NATIVE_MENU_HELP, NATIVE_MENU_NOTICE

    if backend.popup is None:
        return
    log.warning(NATIVE_MENU_HELP)
    marker = paths.state_dir() / "native-menu-notice"
    if marker.exists():
        return
    backend.popup.notice = NATIVE_MENU_NOTICE

    def shown() -> None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("shown\n")

    backend.popup.on_notice_shown = shown


def _show_broken(backend: PystrayBackend, log_path: Path) -> None:
    """Tray thread: a start-up failure shown as such, never a grey icon that waits."""
    from .model.status import State
    from .tray.menu import Entry

    backend.set_icon(State.ERROR)
    backend.set_title("cpgw-tray could not start: see its log")
    backend.set_menu(
        [
            Entry("cpgw-tray could not start (internal error)", enabled=False),
            Entry(f"Log: {log_path}", enabled=False),
            Entry("Quit", backend.stop),
        ]
    )


def _open_outlets(config: Config, built: list[TrayApp], outlets: list[Outlets]) -> None:
    """The health endpoint, hooks and notifier the settings ask for, if any, into
    ``outlets``. Binds ``--serve``'s port now; requests are answered once the app in
    ``built`` exists."""
    from .outlets.wiring import Outlets, poller_view, wanted

    if wanted(config):
        outlets.append(Outlets(config, lambda: poller_view(built[0].poller)))


def gateway_sections(config: Config, client: GatewayClient) -> list[SectionFactory]:
    """The tray's own section above the settings: the gateway items."""
    from .tray.gateway_menu import GatewayControl

    return [GatewayControl]


def run_tray(
    load: Callable[[], Config],
    settings_path: Path,
    *,
    sections: Callable[[Config, GatewayClient], Sequence[SectionFactory]] | None = None,
    on_quit: Callable[[], None] | None = None,
    record_history: bool = True,
    now: Callable[[], datetime] | None = None,
) -> int:
    """Run the tray on this (main) thread until Quit. Exit 69 without a display.

    ``load`` resolves the settings; it runs again whenever the file at ``settings_path``
    is saved. Bad settings at start print their line on stderr and show a red icon
    saying what is wrong (exit 64 after Quit); once the file is fixed the tray starts.
    ``now``: a wall clock shared with a simulator (the demo's), for the tray and its
    checks. ``sections``: the menu's sections for the settings and client in use, above
    the settings (default: the gateway items)."""
    from . import autostart, logs
    from .settings.config import ConfigError
    from .settings.watcher import SettingsWatcher

    built: list[TrayApp] = []
    items: list[SettingsItems] = []

    def changed(new: Config) -> None:  # watcher thread
        if items:
            items[0].reloaded(new)
        else:
            build(new)

    def show_bad(message: str) -> None:  # tray thread: a red icon saying what is wrong
        from .tray.settings_menu import show_bad_settings

        show_bad_settings(backend, message, settings_path, backend.stop)

    def failed(message: str) -> None:  # watcher thread
        if items:
            items[0].failed(message)
        else:
            backend.post(lambda: show_bad(message))

    def tick() -> None:  # watcher thread: the autostart entry changed (or a poll)
        if items:
            items[0].tick()

    # made before the first load
    follows = autostart.for_platform().file
    watcher = SettingsWatcher(settings_path, load, changed, failed, on_tick=tick, follows=follows)
    try:
        config: Config | None = load()
        problem = None
    except ConfigError as exc:
        print(f"cpgw-tray: {exc}", file=sys.stderr)
        config, problem = None, str(exc)
    if display_missing(report=problem is None):
        return EXIT_USAGE if problem else EXIT_UNAVAILABLE
    log_path = logs.to_file(config.log_level if config else "INFO")
    logs.catch_uncaught()
    if problem:
        log.error("bad settings: %s", problem)
    outlets: list[Outlets] = []
    if config is not None:  # a taken --serve port ends the tray here: exit 64, no icon
        _open_outlets(config, built, outlets)
    try:
        from .tray.backends import create

        backend = create("IBKR gateway: Checking…")
    except Exception as exc:  # Xlib.error.DisplayNameError and friends are not ImportError
        print(
            f"cpgw-tray: cannot show a tray icon ({type(exc).__name__}: {exc}). "
            "On GNOME install the AppIndicator extension; without a desktop use `cpgw-tray watch`.",
            file=sys.stderr,
        )
        for outlet in outlets:
            outlet.stop()
        return EXIT_UNAVAILABLE
    _show_native_menu_notice(backend)

    def build(config: Config) -> None:
        # The icon already showing: now the heavier parts (setup or watcher thread).
        try:
            from . import paths
            from .care.person_care import pause_path
            from .client.api import client_for
            from .outlets.history import History
            from .tray.settings_menu import SettingsItems
            from .tray.tray_app import TrayApp

            history = History(paths.history_file(), "tray") if record_history else None
            client = client_for(config, now)

            def settings_items(door: Door) -> SettingsItems:
                items.append(SettingsItems(door, settings_path))
                return items[0]

            above = (sections or gateway_sections)(config, client)
            app = TrayApp(
                config,
                client,
                sections=[*above, settings_items],
                on_quit=on_quit,
                history=history,
                log_path=log_path,
                now=now or partial(datetime.now, timezone.utc),
                # the trader's own tray: its pause is seen by `watch` and `status --json`
                pause_file=pause_path(config.gateway) if record_history else None,
            )
            built.append(app)
            if problem:  # the settings were fixed after start: their outlets open now
                _open_outlets(config, built, outlets)
            for outlet in outlets:
                app.listeners.append(outlet)
                app.person.listeners.append(outlet.event)
                outlet.attach(app.client)
                outlet.start()
            if history is not None:
                history.started()
            app.start(backend)
        except Exception:
            log.exception("the tray could not start")
            backend.post(lambda: _show_broken(backend, log_path))

    def setup() -> None:  # pystray's setup thread, the icon already showing
        if config is not None:
            build(config)
        else:
            # Posted from the tray's thread, so it runs after the icon is shown: pystray's
            # appindicator shows it one idle call later and resets the icon as it does.
            backend.post(lambda: backend.post(lambda: show_bad(problem or "")))
        watcher.start()

    backend.run(setup)
    watcher.stop()
    for app in built:
        app.quit()
        if app.history is not None:
            app.history.stopped()
    for outlet in outlets:
        outlet.stop()
    return EXIT_USAGE if problem and not built else 0


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """The tray against a simulator started in this process, with a Simulate menu. The
    tray and the simulator share one wall clock, so "nightly restart" can move it into
    IBKR's next restart window."""
    from .simulator import SimClock, Simulator

    if display_missing():
        return EXIT_UNAVAILABLE
    clock = SimClock()
    if getattr(args, "gateways", 1) == 2:
        from .several_app import demo_two

        return demo_two(args, clock, SimulateMenu.factory)
    sim = Simulator(0, scenario="logged_out", penalty=60, wall=clock).start()
    interval = getattr(args, "interval", None) or 5.0

    def load() -> Config:
        # The simulator answers in milliseconds: a short timeout makes "hang" show at once.
        # No automatic reauthentication, so each simulated state stays on show.
        settings = resolve(
            args,
            url=sim.url,
            interval=interval,
            insecure=True,
            timeout=0.8,
            auto_reauth=False,
            push=True,  # the simulator's websocket: its drops and bulletins on show
        )
        # The simulator's certificate is its own; a configured endpoint, hook or phone is
        # for the real gateway, not for simulated states.
        return replace(
            settings, ca_bundle=None, serve=None, on_change=None, on_event=None, notify_urls=()
        )

    print(f"Demo: simulated gateway on {sim.url}; the tray polls it every {interval:g} s.")

    try:
        # The simulator runs in this process: its Simulate menu replaces the gateway items.
        return run_tray(
            load,
            file_path(getattr(args, "config", None)),
            sections=lambda config, client: [SimulateMenu.factory(sim, clock, client)],
            on_quit=sim.stop,
            record_history=False,  # a simulated day is not the trader's history
            now=clock.now,
        )
    finally:
        sim.stop()


class SimulateMenu(Section):
    """The demo's Simulate menu: a scenario for the simulated gateway or none listening, a
    takeover by TWS, or IBKR's nightly restart and weekly token reset played on the clock
    the tray and the simulator share. ``forgive`` ends the client's back-off (the gateway
    changed)."""

    def __init__(
        self, door: Door, sim: Simulator, clock: SimClock, forgive: Callable[[], None]
    ) -> None:
        self.door, self.sim, self.clock, self.forgive = door, sim, clock, forgive

    @classmethod
    def factory(cls, sim: Simulator, clock: SimClock, client: GatewayClient) -> SectionFactory:
        """The section for a tray watching ``sim`` through ``client``."""
        return lambda door: cls(door, sim, clock, client.governor.forgive)

    def changed(self) -> None:
        self.forgive()  # the simulated gateway changed: ask at once
        self.door.check_now(fresh=True)

    def switch(self, name: str) -> Callable[[], None]:
        """A scenario, listening again first if the gateway was down."""

        def go() -> None:
            try:
                self.sim.come_up()
            except OSError as exc:  # another program took the port meanwhile
                log.warning("the simulated gateway cannot listen again: %s", exc)
                self.door.note(f"The simulated gateway cannot listen again: {exc}")
            self.sim.set_scenario(name)
            self.changed()

        return go

    def down(self) -> None:
        """The gateway not running: nothing listens until a scenario is chosen."""
        self.sim.go_down()
        self.changed()

    def jump(self, at: Callable[[datetime], datetime], region: str) -> None:
        """The shared clock to ``at(now)``, or back to real time with the scenario it left
        (an injected restart or reset is undone, so nothing says "not back after IBKR's
        restart"). The "Since …" rows move with the clock."""
        sim, clock = self.sim, self.clock
        before = clock.now()
        if clock.injected:
            clock.set(None)
            sim.set_scenario(clock.left_scenario)
        else:
            clock.left_scenario = sim.session.scenario
            sim.region = region  # the tray's
            clock.set(at(before))
        self.door.clock_moved(clock.now() - before)
        self.changed()

    def nightly_restart(self, region: str) -> None:
        """Into IBKR's next nightly restart window (30 s in), or back to real time."""
        from .model.ibkr_clock import next_daily_window

        self.jump(
            lambda now: next_daily_window(self.sim.region, now).start + timedelta(seconds=30),
            region,
        )

    def weekly_reset(self, region: str) -> None:
        """To IBKR's weekly token reset, which ends the login (see ``reset_moment``); or
        back to real time."""
        from .model.ibkr_clock import next_token_reset
        from .simulator.clock import reset_moment

        def land(now: datetime) -> datetime:
            at = reset_moment(self.sim.region, now)
            if at > next_token_reset(now):  # jumped past it: the login it ended is gone
                self.sim.set_scenario("logged_out")
            return at

        self.jump(land, region)

    def bulletin(self) -> None:
        """An IBKR bulletin on the simulator's websocket (a new id each time)."""
        self.sim.push.bulletin(
            int(time.time()), "[BBSMSG Bulletin]\nSimulated: IBKR will be down for maintenance."
        )

    def taken_over(self) -> None:
        self.sim.taken_over("TWS")
        self.changed()

    def entries(self, view: View) -> list[Entry]:
        from .simulator import SCENARIOS
        from .tray.menu import SEPARATOR, Entry

        sim, clock, region = self.sim, self.clock, view.region
        choices = tuple(
            Entry(
                f"{name}: {what}",
                self.switch(name),
                checked=sim.listening and sim.session.scenario == name,
                radio=True,
            )
            for name, what in SCENARIOS.items()
        )
        what = "the simulator stops listening (connections refused) until a scenario"
        down = Entry(f"gateway down: {what}", self.down, checked=not sim.listening, radio=True)
        restart = Entry(
            "nightly restart: the clock jumps into IBKR's next restart window",
            lambda: self.nightly_restart(region),
            checked=clock.injected,
        )
        reset = Entry(
            "weekly reset: the clock jumps to IBKR's Sunday token reset (outside the restart)",
            lambda: self.weekly_reset(region),
            checked=clock.injected,
        )
        tws = Entry("taken over by TWS: TWS logs in with the same username", self.taken_over)
        news = Entry(
            "IBKR bulletin: one on the websocket (shown when push is connected)", self.bulletin
        )
        return [Entry("Simulate", submenu=(*choices, down, SEPARATOR, tws, news, restart, reset))]
