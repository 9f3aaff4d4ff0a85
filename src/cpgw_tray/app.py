"""Wiring for the desktop: ``cpgw-tray tray`` (the default), and :func:`run_tray`, which
the demo (:mod:`cpgw_tray.demo`) runs too.

The icon is shown first, from what is cheap to import (pystray, pillow, the status
model); the client (requests), the session care and the gateway items (psutil) are
built on pystray's setup thread once the icon is up, so the tray appears at once.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .cli.options import add_outlets, gateways_of, resolve
from .constants import EXIT_UNAVAILABLE, EXIT_USAGE
from .settings.config import file_path

if TYPE_CHECKING:
    from .client.api import GatewayClient
    from .outlets.wiring import Outlets
    from .settings.config import Config
    from .tray.backends import PystrayBackend
    from .tray.sections import Door, SectionFactory
    from .tray.settings_menu import SettingsItems
    from .tray.tray_app import TrayApp

log = logging.getLogger(__name__)


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``tray``'s own options (:mod:`cpgw_tray.cli.main`)."""
    add_outlets(parser)
    parser.set_defaults(func=cmd_tray)


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
