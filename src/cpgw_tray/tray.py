"""The tray: icon, tooltip and menu, changed in one place on the tray's own thread.

:class:`TrayApp` holds the product's behaviour and talks to a small
:class:`~cpgw_tray.backends.Backend` interface (the pystray one is in :mod:`backends`;
tests use a fake). The poller hands each result to
:meth:`TrayApp.on_status` on its own thread; that only *posts* :meth:`TrayApp.apply` to
the tray's thread, which changes the icon when the state changes, the tooltip after
each check and the menu when what it shows changed.
"""

from __future__ import annotations

import logging
import os
import sys
import textwrap
import threading
import webbrowser
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from .menu import SEPARATOR, Entry, signature
from .poller import SESSION_STATES, Poller
from .session import SessionCare, reset_warning
from .status import State, Status, gateway_root, unknown

if TYPE_CHECKING:
    import argparse

    from .backends import Backend
    from .config import Config
    from .gateway import GatewayClient, Outcome
    from .launcher import GatewayProcess, Launcher

log = logging.getLogger(__name__)

TOOLTIP_LIMIT = 127  # win32 raises ValueError beyond this
RESET_WARNING = timedelta(minutes=60)  # warn this long before the daily session reset


def tooltip(status: Status) -> str:
    """``IBKR gateway: Ready — checked 12:01:05 (3 ms)``, cut to the win32 limit."""
    text = f"IBKR gateway: {status.label}"
    if status.checked_at is not None:
        text += f" — checked {status.checked_at.astimezone().strftime('%H:%M:%S')}"
    if status.latency_ms is not None:
        text += f" ({status.latency_ms:.0f} ms)"
    return text if len(text) <= TOOLTIP_LIMIT else text[: TOOLTIP_LIMIT - 1] + "…"


# ------------------------------------------------------------------------ the app


class TrayApp:
    """The tray's behaviour, independent of any toolkit."""

    def __init__(
        self,
        config: Config,
        client: GatewayClient,
        *,
        extra_entries: Callable[[], list[Entry]] | None = None,
        on_quit: Callable[[], None] | None = None,
        open_url: Callable[[str], Any] = webbrowser.open,
        now: Callable[[], datetime] = datetime.now,
        poller: Poller | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.extra_entries = extra_entries
        self._on_quit = on_quit
        self._open_url = open_url
        self._now = now
        self.notifications = config.notifications
        self.status = unknown(config.url)
        self.since = now()
        self.backend: Backend | None = None
        self.care = SessionCare(client, auto_reauth=config.auto_reauth)
        self.poller = poller or Poller(
            self.care.check,
            self.on_status,
            interval=config.interval,
            tickle=self.care.tickle,
            keepalive=config.keepalive,
        )
        self.last_action: str | None = None  # the outcome of the last menu action
        self.gateway: GatewayControl | None = None
        self._shown_state: State | None = None
        self._shown_title: str | None = None
        self._shown_menu: tuple[Any, ...] | None = None
        self.quitting = threading.Event()

    # ---------------------------------------------------------------- lifecycle
    def start(self, backend: Backend) -> None:
        """Show the first icon and start polling. Returns at once (pystray's ``stop()``
        waits for the setup thread, so nothing here may block)."""
        self.backend = backend
        backend.post(self.refresh)
        self.poller.start()

    def quit(self) -> None:
        """Stop everything now; a hung request is abandoned, never awaited."""
        if self.quitting.is_set():
            return
        self.quitting.set()
        log.info("quitting")
        self.poller.stop()
        if self.gateway is not None:
            self.gateway.shutdown()
        if self._on_quit is not None:
            self._on_quit()
        if self.backend is not None:
            self.backend.stop()

    # ---------------------------------------------------------------- threads
    def on_status(self, status: Status) -> None:
        """Poller thread: hand the snapshot to the tray's thread. When the state changes,
        look again for the gateway process here, off the tray's thread."""
        if self.gateway is not None and status.state is not self.status.state:
            self.gateway.rescan()
        if self.backend is not None and not self.quitting.is_set():
            self.backend.post(lambda: self.apply(status))

    def post_refresh(self) -> None:
        """Any thread: redraw the menu from the current snapshot."""
        if self.backend is not None:
            self.backend.post(self.refresh)

    def note(self, text: str | None) -> None:
        """Any thread: show the outcome of an action in the menu."""
        self.last_action = text
        self.post_refresh()

    def notify(self, title: str, message: str) -> None:
        """Any thread: a desktop notification, if the user wants them."""
        backend = self.backend
        if backend is not None and self.notifications and backend.has_notification:
            backend.post(lambda: backend.notify(message, title))

    def refresh(self) -> None:
        """Tray thread: re-apply the current snapshot (after a menu toggle)."""
        self.apply(self.status)

    def apply(self, status: Status) -> None:
        """Tray thread: the one place that changes the tray."""
        backend = self.backend
        if backend is None or self.quitting.is_set():
            return
        previous = self.status
        if status.state is not previous.state:
            self.since = self._now()
            self.last_action = None  # the new state says how the action went
        self.status = status
        if status.state is not self._shown_state:
            log.debug("icon: %s", status.state.value)
            backend.set_icon(status.state)
            self._shown_state = status.state
        title = tooltip(status)
        if title != self._shown_title:
            backend.set_title(title)
            self._shown_title = title
        entries = self.entries()
        menu = signature(entries)
        if menu != self._shown_menu:
            backend.set_menu(entries)
            self._shown_menu = menu
        if self._should_notify(previous, status):
            backend.notify(f"{status.label}. {status.detail}", "IBKR gateway")

    def _should_notify(self, previous: Status, status: Status) -> bool:
        """Changes into and out of ``ready``, not the first verdict after start."""
        if not self.notifications or self.backend is None or not self.backend.has_notification:
            return False
        if previous.state is State.UNKNOWN or previous.state is status.state:
            return False
        return State.READY in (previous.state, status.state)

    # ---------------------------------------------------------------- menu
    def entries(self) -> list[Entry]:
        """The menu, as a function of the current snapshot."""
        status = self.status
        state = status.state
        lines = textwrap.wrap(status.detail, 60)
        if len(lines) > 4:
            lines = [*lines[:3], lines[3][:57] + "…"]
        items: list[Entry] = [Entry(f"Gateway: {status.label}", enabled=False)]
        items += [Entry(line, enabled=False) for line in lines]
        items += [Entry(line, enabled=False) for line in self._facts()]
        items += [SEPARATOR, Entry("Check now", self.check_now, default=True)]
        items.append(Entry("Open login page", self.open_login))
        if state is State.COMPETING:  # taking over logs the user out elsewhere: ask first
            take_over = Entry(
                "Take the session over (logs out TWS / the phone)", self.reauthenticate
            )
            items.append(Entry("Reauthenticate…", submenu=(take_over,)))
        else:
            can = state in (State.NOT_AUTHENTICATED, State.DISCONNECTED)
            items.append(Entry("Reauthenticate", self.reauthenticate, enabled=can))
        end = Entry("Yes, end the session", self.logout)
        items.append(Entry("Log out…", submenu=(end,), enabled=state in SESSION_STATES))
        items.append(SEPARATOR)
        if self.gateway is not None:
            items += [*self.gateway.entries(), SEPARATOR]
        if self.extra_entries is not None:
            items += [*self.extra_entries(), SEPARATOR]
        items += [
            Entry("Notifications", self.toggle_notifications, checked=self.notifications),
            Entry("Quit", self.quit),
        ]
        return items

    def _facts(self) -> list[str]:
        """Lines about the session: since when, which account, time left."""
        status = self.status
        if status.state is State.UNKNOWN:
            return []
        since = self.since.strftime("%H:%M")
        facts = [
            f"Authenticated since {since}" if status.state is State.READY else f"Since {since}"
        ]
        if status.account:
            kind = (
                "Paper"
                if status.paper
                else "Live"
                if status.paper is False
                else "paper/live unknown"
            )
            facts.append(f"Account {status.account} — {kind}")
        if status.server_name:
            facts.append(f"Server {status.server_name}")
        if status.sso_expires_s is not None and status.state in SESSION_STATES:
            facts.append(f"Login expires in {max(1, round(status.sso_expires_s / 60))} min")
        if status.state in SESSION_STATES:
            zone = self.config.reset_timezone
            warning = reset_warning(self._now().astimezone(), ZoneInfo(zone), zone, RESET_WARNING)
            if warning:
                facts.append(warning)
        if self.last_action:
            facts.append(self.last_action)
        return facts

    def check_now(self) -> None:
        """Menu: check at once (coalesced with a check already running)."""
        self.poller.check_now()

    def open_login(self) -> None:
        """Menu: the gateway's login page in the default browser."""
        url = gateway_root(self.config.url)
        threading.Thread(target=self._open_url, args=(url,), name="browser", daemon=True).start()

    def reauthenticate(self) -> None:
        """Menu: start the brokerage session again (off the tray's thread)."""
        self._act(self.client.reauthenticate)

    def logout(self) -> None:
        """Menu: end the session (off the tray's thread)."""
        self._act(self.client.logout)

    def _act(self, action: Callable[[], Outcome]) -> None:
        def run() -> None:
            outcome = action()
            log.info("%s", outcome.message)
            self.care.forget()
            self.note(outcome.message)
            self.poller.check_now(fresh=True)

        threading.Thread(target=run, name="action", daemon=True).start()

    def toggle_notifications(self) -> None:
        self.notifications = not self.notifications
        self.post_refresh()


# ------------------------------------------------------------------------ gateway items


class GatewayControl:
    """The menu's gateway items: launch, stop, restart, log, folder. Every blocking step
    runs on a worker thread; the tray only reads this object's fields."""

    def __init__(self, app: TrayApp, log_path: Path | None = None) -> None:
        from .launcher import Launcher, LaunchError, find_directory, gateway_log_path

        self.app = app
        self.config = app.config
        self.running: GatewayProcess | None = None
        self.busy: str | None = None  # "Launching gateway…" while an action runs
        self.launcher: Launcher | None = None
        self.log_path = log_path or gateway_log_path()
        self._restarts = 0
        self._stop = threading.Event()
        try:
            directory, _ = find_directory(self.config.gateway_dir)
        except LaunchError as exc:
            log.warning("gateway items off: %s", exc)
        else:
            self.launcher = Launcher(
                directory, self.log_path, timeout=self.config.launch_timeout, on_exit=self._exited
            )

    def rescan(self) -> None:
        """Worker thread: look for a running gateway (ours or anyone's)."""
        from .launcher import find_running

        self.running = find_running()

    def entries(self) -> list[Entry]:
        running, busy, launcher = self.running, self.busy, self.launcher
        if busy:
            line = busy
        elif running:
            line = f"Gateway running ({running.describe()})"
        elif launcher is None and self.config.gateway_dir:
            line = "Gateway folder not usable: check gateway_dir"
        elif launcher is None:
            line = "Gateway folder not found: set gateway_dir"
        else:
            line = "Gateway process not running"
        idle = busy is None
        return [
            Entry(line, enabled=False),
            Entry(
                "Launch gateway",
                self.launch,
                enabled=idle and running is None and launcher is not None,
            ),
            Entry("Stop gateway", self.stop, enabled=idle and running is not None),
            Entry(
                "Restart gateway",
                self.restart,
                enabled=idle and running is not None and launcher is not None,
            ),
            Entry("Open gateway log", self.open_log, enabled=self.log_path.is_file()),
            Entry("Open gateway folder", self.open_folder, enabled=launcher is not None),
        ]

    def _work(self, label: str, job: Callable[[], str | None]) -> None:
        """Run ``job`` on a worker thread with ``label`` shown; its result as a note."""
        from .launcher import LaunchError

        self.busy = label
        self.app.post_refresh()

        def run() -> None:
            note: str | None
            try:
                note = job()
            except LaunchError as exc:
                note = f"Gateway: {exc}"
                log.warning("%s", exc)
                self.app.notify("Gateway problem", str(exc))
            finally:
                self.busy = None
            self.rescan()
            self.app.note(note)
            self.app.poller.check_now(fresh=True)

        threading.Thread(target=run, name="gateway-action", daemon=True).start()

    def launch(self) -> None:
        self._work("Launching gateway…", self._launch)

    def _launch(self) -> str:
        assert self.launcher is not None
        self._stop.clear()
        self.launcher.start()
        ready = self.launcher.wait_ready(stop=self._stop)
        self._restarts = 0
        if self.config.open_browser_on_launch:
            self.app.open_login()
        return f"Gateway ready on port {ready.port}: log in"

    def stop(self) -> None:
        self._work("Stopping gateway…", self._stop_now)

    def _stop_now(self) -> str:
        from .launcher import Launcher

        self._stop.set()
        running = self.running
        launcher = self.launcher or Launcher(Path.cwd(), self.log_path)
        launcher.stop(running)
        return "Gateway stopped"

    def restart(self) -> None:
        def both() -> str:
            self._stop_now()
            return self._launch()

        self._work("Restarting gateway…", both)

    def open_log(self) -> None:
        from .launcher import open_path

        open_path(self.log_path)

    def open_folder(self) -> None:
        from .launcher import open_path

        if self.launcher is not None:
            open_path(self.launcher.directory)

    def _exited(self, code: int, last_lines: str) -> None:
        """Crash watch (the launcher's thread): tell the user; restart if configured,
        with a growing pause so a gateway that cannot start does not loop fast."""
        self.running = None
        log.warning("gateway exited by itself (code %s): %s", code, last_lines)
        self.app.notify(
            "Gateway stopped", f"It exited by itself (code {code}). {last_lines[-200:]}"
        )
        self.app.note(f"Gateway exited by itself (code {code})")
        if self.config.auto_restart and not self.app.quitting.is_set():
            pause = min(300.0, 10.0 * 2**self._restarts)
            self._restarts += 1
            log.info("restarting the gateway in %.0f s", pause)
            if not self._stop.wait(pause) and not self.app.quitting.is_set():
                self._work("Restarting gateway…", self._launch)

    def shutdown(self) -> None:
        """At quit: stop waiting; a launched gateway keeps running (it is the user's)."""
        self._stop.set()


# ------------------------------------------------------------------------ entry points


def display_missing() -> bool:
    """True (and one line on stderr) where a tray cannot show: Linux without a display."""
    if sys.platform.startswith("linux") and not (
        os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    ):
        print(
            "cpgw-tray: no display found (DISPLAY is not set): the tray needs a desktop; "
            "use `cpgw-tray watch` in a terminal",
            file=sys.stderr,
        )
        return True
    return False


def setup_file_logging(level: str) -> Path:
    """Log to a rotating file in the platform's log folder."""
    import logging.handlers

    import platformdirs

    folder = platformdirs.user_log_path("cpgw-tray", appauthor=False)
    folder.mkdir(parents=True, exist_ok=True)
    from .cli import LOG_FORMAT

    path = folder / "cpgw-tray.log"
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=1_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(getattr(logging, level))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(min(root.level, handler.level))
    return path


def _marker(name: str) -> Path:
    import platformdirs

    return platformdirs.user_state_path("cpgw-tray", appauthor=False) / name


def run_tray(
    config: Config,
    *,
    extra_entries: Callable[[TrayApp], list[Entry]] | None = None,
    on_quit: Callable[[], None] | None = None,
    gateway_items: bool = True,
) -> int:
    """Run the tray on this (main) thread until Quit. Exit 69 without a display."""
    from .backends import NATIVE_MENU_HELP, NATIVE_MENU_NOTICE, PystrayBackend
    from .cli import EXIT_UNAVAILABLE, make_client

    if display_missing():
        return EXIT_UNAVAILABLE
    setup_file_logging(config.log_level)
    client = make_client(config)
    app = TrayApp(config, client, on_quit=on_quit)
    if gateway_items:
        app.gateway = GatewayControl(app)
    if extra_entries is not None:
        app.extra_entries = lambda: extra_entries(app)
    try:
        backend = PystrayBackend(tooltip(app.status))
    except Exception as exc:  # Xlib.error.DisplayNameError and friends are not ImportError
        print(
            f"cpgw-tray: cannot show a tray icon ({type(exc).__name__}: {exc}). "
            "On GNOME install the AppIndicator extension; without a desktop use `cpgw-tray watch`.",
            file=sys.stderr,
        )
        return EXIT_UNAVAILABLE
    if backend.popup is not None:
        log.warning(NATIVE_MENU_HELP)
        marker = _marker("native-menu-notice")
        if not marker.exists():  # once: atop the first popup
            backend.popup.notice = NATIVE_MENU_NOTICE

            def shown() -> None:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text("shown\n")

            backend.popup.on_notice_shown = shown
    backend.run(lambda: app.start(backend))
    app.quit()
    return 0


def run_demo(args: argparse.Namespace) -> int:
    """The tray against a simulator started in this process, with a Simulate menu."""
    from .cli import resolve
    from .simulator import SCENARIOS, Simulator

    if display_missing():
        from .cli import EXIT_UNAVAILABLE

        return EXIT_UNAVAILABLE
    sim = Simulator(0, scenario="logged_out", penalty=60).start()
    interval = getattr(args, "interval", None) or 5.0
    # The simulator answers in milliseconds: a short timeout makes "hang" show at once.
    # No automatic reauthentication, so each simulated state stays on show.
    settings = resolve(
        args, url=sim.url, interval=interval, insecure=True, timeout=0.8, auto_reauth=False
    )
    config = replace(settings, ca_bundle=None)  # the simulator's certificate is its own
    print(f"Demo: simulated gateway on {sim.url}; the tray polls it every {interval:g} s.")

    def simulate(app: TrayApp) -> list[Entry]:
        def switch(name: str) -> Callable[[], None]:
            def go() -> None:
                sim.set_scenario(name)
                app.client.governor.forgive()  # the simulated gateway changed: ask at once
                app.poller.check_now(fresh=True)

            return go

        choices = tuple(
            Entry(f"{name}: {what}", switch(name), checked=sim.session.scenario == name, radio=True)
            for name, what in SCENARIOS.items()
        )
        return [Entry("Simulate", submenu=choices)]

    try:
        # The simulator runs in this process: its Simulate menu replaces the gateway items.
        return run_tray(config, extra_entries=simulate, on_quit=sim.stop, gateway_items=False)
    finally:
        sim.stop()
