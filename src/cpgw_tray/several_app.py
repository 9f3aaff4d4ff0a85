"""Wiring for a tray of several gateways (``[gateways.NAME]`` tables, or the demo's
``--gateways 2``): one :class:`~cpgw_tray.tray.tray_app.TrayApp` per gateway, each with its
own client, pipeline, gateway items and pause file, shown together by
:class:`~cpgw_tray.tray.several.Several` on one icon. The health endpoint, hooks and
notifier take every gateway's statuses, named.

A saved settings file reaches each gateway's app (:func:`watch_settings`: changes inside
a table apply live); adding or removing a table needs a restart, and every section says so.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from .constants import EXIT_UNAVAILABLE

if TYPE_CHECKING:
    from .client.api import GatewayClient
    from .outlets.wiring import Outlets
    from .settings.config import Config
    from .settings.gateways import Gateway
    from .settings.watcher import SettingsWatcher
    from .tray.sections import SectionFactory
    from .tray.several import Several
    from .tray.tray_app import TrayApp

log = logging.getLogger(__name__)

Sections = Callable[["Config", "GatewayClient"], Sequence["SectionFactory"]]


def run_several(
    gateways: Sequence[Gateway],
    sections: Sections,
    *,
    on_quit: Callable[[], None] | None = None,
    record_history: bool = True,
    now: Callable[[], datetime] | None = None,
    reload: tuple[Path, Callable[[], list[Gateway]]] | None = None,
) -> int:
    """Run one tray for ``gateways`` on this (main) thread until Quit; ``sections``: each
    gateway's menu sections for its settings and client; ``reload``: the settings file
    and how to resolve every gateway again after it is saved. Exit 69 without a tray."""
    from . import logs
    from .outlets.wiring import Outlets, poller_view, wanted
    from .tray.backends import create
    from .tray.several import Several

    first = gateways[0].config
    log_path = logs.to_file(first.log_level)
    logs.catch_uncaught()
    apps: list[TrayApp] = []
    names = [gateway.name for gateway in gateways]
    outlets: list[Outlets] = []
    if wanted(first):  # binds --serve's port now; answers once the apps exist
        views = lambda: [poller_view(app.poller) for app in apps]  # noqa: E731
        outlets.append(Outlets(first, views, gateways=names))
    try:
        backend = create("IBKR gateways: Checking…")
    except Exception as exc:
        print(f"cpgw-tray: cannot show a tray icon ({type(exc).__name__}: {exc})", file=sys.stderr)
        for outlet in outlets:
            outlet.stop()
        return EXIT_UNAVAILABLE
    several = Several(backend)
    watchers: list[SettingsWatcher] = []

    def setup() -> None:  # pystray's setup thread, the icon already showing
        try:
            for app in build_apps(several, gateways, sections, record_history, now, log_path):
                apps.append(app)
                for outlet in outlets:
                    app.listeners.append(outlet)
                    app.person.listeners.append(outlet.event)
                    outlet.attach(app.client, app.gateway)
            for outlet in outlets:
                outlet.start()
            for app, part in zip(apps, several.parts, strict=True):
                app.start(part)
            if reload is not None:
                watchers.extend(watch_settings(apps, *reload))
        except Exception:
            log.exception("the tray could not start")
            backend.post(backend.stop)

    backend.run(setup)
    for watcher in watchers:
        watcher.stop()
    several.quit()
    for app in apps:
        if app.history is not None:
            app.history.stopped()
    for outlet in outlets:
        outlet.stop()
    if on_quit is not None:
        on_quit()
    return 0


def watch_settings(
    apps: Sequence[TrayApp], path: Path, load_all: Callable[[], list[Gateway]]
) -> list[SettingsWatcher]:
    """Started watchers of the settings file at ``path``, one per app: each hands its
    gateway's resolved settings to its app (on the tray's thread); a bad file, or tables
    added or removed (a restart applies them), is noted in every section."""
    from .settings.config import ConfigError
    from .settings.gateways import names
    from .settings.watcher import SettingsWatcher

    running = [app.gateway for app in apps]

    def load_for(name: str | None) -> Config:
        gateways = load_all()
        if [gateway.name for gateway in gateways] != running:
            raise ConfigError(
                f"the gateways changed to {names(gateways)}: restart the tray to apply that"
            )
        return next(gateway.config for gateway in gateways if gateway.name == name)

    def watcher(app: TrayApp) -> SettingsWatcher:
        return SettingsWatcher(
            path,
            lambda: load_for(app.gateway),
            lambda config: app.post(lambda: app.reconfigure(config)),
            lambda message: app.note(f"Settings not applied: {message}"),
        )

    watchers = [watcher(app) for app in apps]
    for each in watchers:
        each.start()
    return watchers


def build_apps(
    several: Several,
    gateways: Sequence[Gateway],
    sections: Sections,
    record_history: bool = False,
    now: Callable[[], datetime] | None = None,
    log_path: Path | None = None,
    open_url: Callable[[str], bool] | None = None,
) -> list[TrayApp]:
    """One app per gateway, in the settings' order, each added to ``several`` with its
    part; not started. ``open_url``: how a login page opens (default: the browser)."""
    from . import paths
    from .care.person_care import pause_path
    from .client.api import client_for
    from .outlets.history import History
    from .tray import opener
    from .tray.tray_app import TrayApp

    built = []
    for gateway in gateways:
        config, name = gateway.config, gateway.name or "gateway"
        client = client_for(config, now)
        history = History(paths.history_file(), "tray") if record_history else None
        app = TrayApp(
            config,
            client,
            sections=list(sections(config, client)),
            history=history,
            log_path=log_path,
            now=now or partial(datetime.now, timezone.utc),
            pause_file=pause_path(gateway.name) if record_history else None,
            gateway=name,
            open_url=open_url or opener.open_url,
        )
        several.part(name)
        several.add(app)
        if history is not None:
            history.started()
        built.append(app)
    return built
