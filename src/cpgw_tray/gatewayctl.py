"""The tray menu's gateway items: launch, stop, restart, open the log or the folder.

Every blocking step runs on a worker thread; the tray only reads this object's fields
when it draws the menu.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .menu import Entry

if TYPE_CHECKING:
    from .launcher import GatewayProcess, Launcher
    from .tray import TrayApp

log = logging.getLogger(__name__)


class GatewayControl:
    """The menu's gateway items: launch, stop, restart, log, folder. Every blocking step
    runs on a worker thread; the tray only reads this object's fields."""

    def __init__(self, app: TrayApp, log_path: Path | None = None) -> None:
        from . import paths
        from .launcher import Launcher, LaunchError, find_directory

        self.app = app
        self.config = app.config
        self.running: GatewayProcess | None = None
        self.busy: str | None = None  # "Launching gateway…" while an action runs
        self.launcher: Launcher | None = None
        self.log_path = log_path or paths.gateway_log()
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
