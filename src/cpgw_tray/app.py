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
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .config import file_path
from .constants import EXIT_UNAVAILABLE, EXIT_USAGE
from .options import add_outlets, add_shared, resolve

if TYPE_CHECKING:
    from .backends import PystrayBackend
    from .config import Config
    from .menu import Entry
    from .outlets import Outlets
    from .push_link import PushLink
    from .settings_menu import SettingsItems
    from .simulator import SimClock, Simulator
    from .tray import TrayApp

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    tray = sub.add_parser("tray", help="show the tray icon (the default)")
    add_shared(tray)
    add_outlets(tray)
    tray.set_defaults(func=cmd_tray)
    demo = sub.add_parser("demo", help="the tray with a simulated gateway, for a first look")
    add_shared(demo)
    demo.set_defaults(func=cmd_demo)


def cmd_tray(args: argparse.Namespace, out: TextIO) -> int:
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
    from .backends import NATIVE_MENU_HELP, NATIVE_MENU_NOTICE

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
    from .menu import Entry
    from .status import State

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
    from .outlets import Outlets, poller_view, wanted

    if wanted(config):
        outlets.append(Outlets(config, lambda: poller_view(built[0].poller)))


def _push_items(app: TrayApp) -> PushLink:
    """The websocket for the tray, its menu rows first among the extra entries."""
    from .push_menu import PushItems

    push = PushItems(app)
    more = app.extra_entries
    app.extra_entries = lambda: [*push.entries(), *(more() if more is not None else [])]
    return push.link


def run_tray(
    load: Callable[[], Config],
    settings_path: Path,
    *,
    extra_entries: Callable[[TrayApp], list[Entry]] | None = None,
    on_quit: Callable[[], None] | None = None,
    gateway_items: bool = True,
    record_history: bool = True,
    now: Callable[[], datetime] | None = None,
) -> int:
    """Run the tray on this (main) thread until Quit. Exit 69 without a display.

    ``load`` resolves the settings; it runs again whenever the file at ``settings_path``
    is saved. Bad settings at start print their line on stderr and show a red icon
    saying what is wrong (exit 64 after Quit); once the file is fixed the tray starts.
    ``now``: a wall clock shared with a simulator (the demo's), for the tray and its
    checks."""
    from . import logs
    from .config import ConfigError
    from .settings_watch import SettingsWatcher

    built: list[TrayApp] = []
    items: list[SettingsItems] = []
    links: list[PushLink] = []

    def changed(new: Config) -> None:  # watcher thread
        if items:
            items[0].reloaded(new)
        else:
            build(new)

    def show_bad(message: str) -> None:  # tray thread: a red icon saying what is wrong
        from .settings_menu import show_bad_settings

        show_bad_settings(backend, message, settings_path, backend.stop)

    def failed(message: str) -> None:  # watcher thread
        if items:
            items[0].failed(message)
        else:
            backend.post(lambda: show_bad(message))

    def tick() -> None:  # watcher thread, every few seconds
        if items:
            items[0].tick()

    # made before the first load
    watcher = SettingsWatcher(settings_path, load, changed, failed, on_tick=tick)
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
        from .backends import create

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
            from .gateway import client_for
            from .history import History
            from .person_care import pause_path
            from .settings_menu import SettingsItems
            from .tray import TrayApp

            history = History(paths.history_file(), "tray") if record_history else None
            app = TrayApp(
                config,
                client_for(config, now),
                on_quit=on_quit,
                history=history,
                log_path=log_path,
                now=now or partial(datetime.now, timezone.utc),
                # the trader's own tray: its pause is seen by `watch` and `status --json`
                pause_file=pause_path() if record_history else None,
            )
            if gateway_items:
                from .gatewayctl import GatewayControl

                app.gateway = GatewayControl(app)
            if extra_entries is not None:
                app.extra_entries = lambda: extra_entries(app)
            app.settings = settings = SettingsItems(app, settings_path)
            if config.push:
                links.append(_push_items(app))
            built.append(app)
            items.append(settings)
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
            for link in links:
                link.start()
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
    for link in links:
        link.stop()
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
            extra_entries=lambda app: simulate_menu(app, sim, clock),
            on_quit=sim.stop,
            gateway_items=False,
            record_history=False,  # a simulated day is not the trader's history
            now=clock.now,
        )
    finally:
        sim.stop()


def simulate_menu(app: TrayApp, sim: Simulator, clock: SimClock) -> list[Entry]:
    """The demo's Simulate menu: a scenario for the simulated gateway, a takeover by TWS,
    or IBKR's nightly restart and weekly token reset played on the clock the tray and the
    simulator share."""
    from .ibkr_clock import next_daily_window, next_token_reset
    from .menu import SEPARATOR, Entry
    from .simulator import SCENARIOS
    from .simulator.clock import reset_moment

    def changed() -> None:
        app.client.governor.forgive()  # the simulated gateway changed: ask at once
        app.poller.check_now(fresh=True)

    def switch(name: str) -> Callable[[], None]:
        def go() -> None:
            sim.set_scenario(name)
            changed()

        return go

    def jump(at: Callable[[datetime], datetime]) -> None:
        """The shared clock to ``at(now)``, or back to real time with the scenario it left
        (an injected restart or reset is undone, so nothing says "not back after IBKR's
        restart"). The "Since …" rows move with the clock."""
        before = clock.now()
        if clock.injected:
            clock.set(None)
            sim.set_scenario(clock.left_scenario)
        else:
            clock.left_scenario = sim.session.scenario
            sim.region = app.ibkr.region
            clock.set(at(before))
        app.since += clock.now() - before
        changed()

    def nightly_restart() -> None:
        """Into IBKR's next nightly restart window (30 s in), or back to real time."""
        jump(lambda now: next_daily_window(sim.region, now).start + timedelta(seconds=30))

    def weekly_reset() -> None:
        """To IBKR's weekly token reset, which ends the login (see ``reset_moment``); or
        back to real time."""

        def land(now: datetime) -> datetime:
            at = reset_moment(sim.region, now)
            if at > next_token_reset(now):  # jumped past it: the login it ended is gone
                sim.set_scenario("logged_out")
            return at

        jump(land)

    def taken_over() -> None:
        sim.taken_over("TWS")
        changed()

    def bulletin() -> None:
        """An IBKR bulletin on the simulator's websocket (a new id each time)."""
        sim.push.bulletin(
            int(time.time()), "[BBSMSG Bulletin]\nSimulated: IBKR will be down for maintenance."
        )

    choices = tuple(
        Entry(f"{name}: {what}", switch(name), checked=sim.session.scenario == name, radio=True)
        for name, what in SCENARIOS.items()
    )
    restart = Entry(
        "nightly restart: the clock jumps into IBKR's next restart window",
        nightly_restart,
        checked=clock.injected,
    )
    reset = Entry(
        "weekly reset: the clock jumps to IBKR's Sunday token reset (outside the restart)",
        weekly_reset,
        checked=clock.injected,
    )
    tws = Entry("taken over by TWS: TWS logs in with the same username", taken_over)
    news = Entry("IBKR bulletin: one on the websocket (shown when push is connected)", bulletin)
    return [Entry("Simulate", submenu=(*choices, SEPARATOR, tws, news, restart, reset))]
