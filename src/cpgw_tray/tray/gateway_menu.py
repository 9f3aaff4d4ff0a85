"""The tray menu's gateway items: launch, stop, restart, open the log or the folder.

The items act on the tray's folder (``gateway_dir``, else the usual places) with the same
identity rules as the command line (:mod:`cpgw_tray.process.identity`); with no folder, only on
the gateway listening on the watched URL's port. Every blocking step runs
on a worker thread (the door's background work) whose whole body is guarded: any failure
becomes a note in the menu and a notification, never a silent end. A menu section: it
acts through the tray's door (:mod:`cpgw_tray.tray.sections`), never on the app.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .menu import Entry
from .sections import Section

if TYPE_CHECKING:
    from ..process.identity import Gateway
    from ..process.launcher import Exited, Launcher
    from .sections import Door
    from .view import View

log = logging.getLogger(__name__)


class GatewayControl(Section):
    """The menu's gateway items: launch, stop, restart, log, folder. Every blocking step
    runs on a worker thread; the tray only reads this object's fields."""

    def __init__(self, door: Door, log_path: Path | None = None) -> None:
        from ..process.launcher import Launcher, LaunchError, find_directory

        self.door = door
        self.config = door.config  # its keys need a restart
        self.running: Gateway | None = None
        self.busy: str | None = None  # "Launching gateway…" while an action runs
        self.launcher: Launcher | None = None
        self._restarts = 0
        self._stop = threading.Event()
        self._closed = threading.Event()  # the tray quits: nothing restarts
        try:
            directory, _ = find_directory(self.config.gateway_dir)
        except LaunchError as exc:
            log.warning("gateway items off: %s", exc)
        else:
            self.launcher = Launcher(
                directory, log_path, timeout=self.config.launch_timeout, on_exit=self._exited
            )
        self.log_path = self.launcher.log_path if self.launcher else log_path

    def rescan(self) -> None:
        """Worker thread: look for the gateway of the tray's folder (ours or adopted);
        without a folder, the one on the watched URL's port, never another's. A
        failure is logged and shown."""
        from ..model.urls import port_of
        from ..process import identity

        try:
            if self.launcher is not None:
                self.running = identity.gateway_in(self.launcher.directory)
            else:
                port = int(port_of(self.config.url))
                running = [g for g in identity.running_gateways() if g.port == port]
                self.running = running[0] if len(running) == 1 else None
        except Exception as exc:
            log.exception("looking for the gateway failed")
            self.door.note(f"Gateway: could not look for it ({exc})")

    def state_changed(self) -> None:
        """Any thread: the state changed; look again for the gateway, off the poller's
        path (a process scan), and redraw."""

        def scan() -> None:
            self.rescan()
            self.door.redraw()

        self.door.background("gateway-rescan", scan, "Looking for the gateway failed")

    def entries(self, view: View | None = None) -> list[Entry]:
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
        log_file = self.log_path
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
            Entry(
                "Open gateway log",
                self.open_log,
                enabled=log_file is not None and log_file.is_file(),
            ),
            Entry("Open gateway folder", self.open_folder, enabled=launcher is not None),
        ]

    def _fail(self, exc: Exception) -> str:
        """A failed action: log it, notify, and return the menu's note."""
        from ..process.launcher import LaunchError

        if isinstance(exc, LaunchError):
            log.warning("%s", exc)
        else:
            log.error("gateway action failed", exc_info=exc)
        text = str(exc) or type(exc).__name__
        self.door.notify("Gateway problem", text)
        return f"Gateway: {text}"

    def _work(self, label: str, job: Callable[[], str | None]) -> None:
        """Run ``job`` on a worker thread with ``label`` shown; its result, or its failure,
        as a note (and a notification for a failure)."""
        self.busy = label
        self.door.redraw()

        def run() -> None:
            note: str | None = None
            try:
                note = job()
            except Exception as exc:
                note = self._fail(exc)
            try:
                self.rescan()
                self.door.note(note)
            except Exception as exc:
                self.door.note(self._fail(exc))
            finally:
                self.busy = None  # last: an idle menu means the outcome is shown
                self.door.redraw()
            self.door.check_now(fresh=True)

        self.door.background("gateway-action", run, "Gateway action failed")

    def launch(self) -> None:
        self._work("Launching gateway…", self._launch)

    def _launch(self) -> str:
        from ..process.launcher import AlreadyRunning

        assert self.launcher is not None
        self._stop.clear()
        try:
            self.launcher.start()
        except AlreadyRunning as exc:
            return f"Gateway already running ({exc.running.describe()})"
        ready = self.launcher.wait_ready(stop=self._stop)
        self._restarts = 0
        if self.config.open_browser_on_launch:
            self.door.open_login()
        return f"Gateway ready on port {ready.port}: log in"

    def stop(self) -> None:
        self._work("Stopping gateway…", self._stop_now)

    def _stop_now(self) -> str:
        from ..process.launcher import LaunchError
        from ..process.stopping import stop_gateway

        self._stop.set()
        self.rescan()
        running = self.running
        if running is None:
            raise LaunchError("no gateway is running")
        if self.launcher is not None:
            self.launcher.stop(running)
        else:
            stop_gateway(running)
        return "Gateway stopped"

    def restart(self) -> None:
        def both() -> str:
            self._stop_now()
            return self._launch()

        self._work("Restarting gateway…", both)

    def open_log(self) -> None:
        if self.log_path is not None:
            self._open(self.log_path)

    def open_folder(self) -> None:
        if self.launcher is not None:
            self._open(self.launcher.directory)

    def _open(self, path: Path) -> None:
        """Open a file or folder with the desktop's program; where nothing can, the
        tray shows the path (menu and notification)."""
        self.door.open_path(path)

    def _exited(self, event: Exited) -> None:
        """Crash watch (the launcher's thread): tell the user honestly. When run.sh died
        but the gateway lives on, it is still running: Stop stays on, nothing restarts.
        When it ended, restart if configured, with a growing pause so a gateway that
        cannot start does not loop fast."""
        try:
            self.rescan()
            what = event.describe()
            log.warning("gateway: %s: %s", what, event.last_lines)
            if event.survivors:
                self.door.notify("Gateway's run script ended", f"{what[0].upper()}{what[1:]}.")
                self.door.note(f"Gateway: {what}")
                return
            self.door.notify(
                "Gateway stopped", f"{what[0].upper()}{what[1:]}. {event.last_lines[-200:]}"
            )
            self.door.note(f"Gateway {what}")
            if self.config.auto_restart and not self._closed.is_set():
                pause = min(300.0, 10.0 * 2**self._restarts)
                self._restarts += 1
                log.info("restarting the gateway in %.0f s", pause)
                if not self._stop.wait(pause) and not self._closed.is_set():
                    self._work("Restarting gateway…", self._launch)
        except Exception as exc:
            self.door.note(self._fail(exc))

    def shutdown(self) -> None:
        """At quit: stop waiting; a launched gateway keeps running (it is the user's)."""
        self._closed.set()
        self._stop.set()
