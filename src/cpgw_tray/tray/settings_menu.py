"""The tray's settings: the "Settings…" and "Start at login" items, saving the menu's
toggles to the file, applying a saved change while running, and the red icon shown
when the settings are bad at start.

A reloaded :class:`Config` is compared with the one in use: a key whose value did not
change is left alone (so a toggle that the environment overrides stays as clicked);
a key that needs a restart keeps its old value until then and the person is told.
"""

from __future__ import annotations

import logging
import textwrap
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..settings.config import KEYS, ConfigError
from ..settings.file import init_file, remove_stale_temps, set_key
from ..settings.table import RESTART_KEYS
from .icons import SETTINGS_ICON
from .menu import SEPARATOR, Entry
from .opener import open_path
from .sections import Section, run_in_background

if TYPE_CHECKING:
    from ..autostart import Autostart
    from ..settings.config import Config
    from .backends import Backend
    from .sections import Door
    from .view import View

log = logging.getLogger(__name__)

WRAP = 60
NOTE_ROWS = 3  # a bad file's error: at most this many rows, in the submenu of PROBLEM
PROBLEM = "Settings file has an error; last good settings kept"


def open_settings(path: Path, opener: Callable[[Path], bool] = open_path) -> str | None:
    """Worker thread: open the file, creating it from the default if missing. Returns
    what to tell the person when nothing could open it."""
    try:
        if init_file(path):
            log.info("wrote the default settings file %s", path)
    except OSError as exc:
        return f"Cannot write {path}: {exc.strerror or exc}"
    if opener(path):
        return None
    log.warning("nothing could open %s", path)
    return f"No app to open the settings file: {path}"


class SettingsItems(Section):
    """The settings section of the tray's menu and what it does. Menu actions and
    :meth:`apply` run on the tray's thread; :meth:`reloaded` and :meth:`failed` on the
    watcher's, and only post. A saved change reaches the running parts only through the
    door's ``reconfigure``."""

    separated = False  # the tray's own last items follow

    def __init__(
        self,
        door: Door,
        path: Path,
        *,
        autostart: Autostart | None = None,
        opener: Callable[[Path], bool] = open_path,
        command: list[str] | None = None,
    ) -> None:
        from .. import autostart as platform_autostart

        self.door = door
        self.path = path
        self.autostart = autostart or platform_autostart.for_platform()
        self.command = command or platform_autostart.launch_command()
        self._opener = opener
        self.problem: str | None = None  # the last bad edit, until a good one
        self.restart_needed: list[str] = []
        self.autostart_on = self._autostart_status()
        for temp in remove_stale_temps(path):
            log.info("removed %s, left by a save that was killed midway", temp)

    def _autostart_status(self) -> bool:
        try:
            return self.autostart.status()
        except OSError as exc:
            log.warning("cannot tell whether cpgw-tray starts at login: %s", exc)
            return False

    def tick(self) -> None:
        """Watcher thread, when the autostart entry changes (or at each poll where it
        cannot be watched): *Start at login* follows the real state
        (``cpgw-tray autostart on|off``, or the desktop's own settings, change it too)."""
        now = self._autostart_status()
        if now != self.autostart_on:
            self.door.post(lambda: self._show_autostart(now))

    def _show_autostart(self, on: bool) -> None:
        self.autostart_on = on
        self.door.redraw()

    def entries(self, view: View | None = None) -> list[Entry]:
        """Settings… and Start at login, then always one row under them, so the actions
        below never move: a bad file's error (a submenu saying it on at most
        :data:`NOTE_ROWS` rows), else the keys waiting for a restart, else how the IBKR
        region was chosen."""
        items = [
            Entry("Settings…", self.open_file),
            Entry("Start at login", self.toggle_autostart, checked=self.autostart_on),
        ]
        if self.problem:
            wrap = textwrap.TextWrapper(WRAP, break_on_hyphens=False, max_lines=NOTE_ROWS)
            # the file is the one Settings… opens: its name leaves room for the line and key
            lines = wrap.wrap(self.problem.replace(str(self.path), self.path.name))
            why = tuple(Entry(line, enabled=False) for line in lines)
            return [*items, Entry(PROBLEM, submenu=why)]
        if self.restart_needed:
            note = f"Restart cpgw-tray to apply: {', '.join(self.restart_needed)}"
        else:
            note = view.hint if view is not None else " "
        return [*items, Entry(note, enabled=False)]

    # ------------------------------------------------------------------ menu actions
    def open_file(self) -> None:
        def run() -> None:
            problem = open_settings(self.path, self._opener)
            if problem:
                self.door.note(problem)

        self.door.background("settings-open", run, "Opening the settings failed")

    def toggle_autostart(self) -> None:
        try:
            if self.autostart_on:
                result = self.autostart.disable()
            else:
                result = self.autostart.enable(self.command)
            message = result.message
        except OSError as exc:
            message = f"Start at login: cannot change {self.autostart.where}: {exc}"
        log.info("%s", message)
        self.autostart_on = self._autostart_status()
        self.door.note(message)

    def save(self, name: str, value: Any) -> bool:
        """Tray thread: write one key back (a menu toggle), keeping the file's comments.
        Whether it was saved: a failure is said in the menu and a notification, and the
        caller leaves the setting as it was."""
        try:
            set_key(self.path, name, value)
        except (ConfigError, OSError) as exc:
            log.warning("could not save %s: %s", name, exc)
            self.door.note(f"Not saved: {exc}")
            self.door.notify("cpgw-tray setting not saved", str(exc))
            return False
        log.info("saved %s = %r to %s", name, value, self.path)
        where = self.door.config.sources.get(name, "")
        if where.startswith("env") or where == "command line":
            self.door.note(f"Saved; at the next start the {where} still sets {name}")
        return True

    # ------------------------------------------------------------------ reloading
    def reloaded(self, config: Config) -> None:
        """Watcher thread: new settings were saved."""
        self.door.post(lambda: self.apply(config))

    def failed(self, message: str) -> None:
        """Watcher thread: a saved edit is bad; the settings in use stay."""
        self.door.post(lambda: self.show_problem(message))

    def show_problem(self, message: str) -> None:
        """Tray thread: say what is wrong, in the menu and a notification."""
        self.problem = message
        self.door.alert("cpgw-tray settings not applied", message)
        self.door.redraw()

    def apply(self, new: Config) -> None:
        """Tray thread: take on what changed; restart-only keys keep their old value."""
        old = self.door.config
        changed = [key for key in KEYS if getattr(old, key) != getattr(new, key)]
        later = [key for key in changed if key in RESTART_KEYS]
        live = [key for key in changed if key not in RESTART_KEYS]
        self.door.reconfigure(replace(new, **{key: getattr(old, key) for key in later}))
        self.problem = None
        self.restart_needed = sorted({*self.restart_needed, *later})
        if live:
            log.info("settings applied: %s", ", ".join(f"{k} = {getattr(new, k)!r}" for k in live))
        if later:
            log.info("settings saved that apply after a restart: %s", ", ".join(later))
            self.door.alert("cpgw-tray settings", f"Restart cpgw-tray to apply: {', '.join(later)}")
        self.door.redraw()


# ------------------------------------------------------------------ bad at start


def show_bad_settings(backend: Backend, problem: str, path: Path, quit: Callable[[], None]) -> None:
    """Tray thread: settings too bad to start with. A red icon whose menu says what is
    wrong and offers the file, instead of a tray that exits where nobody sees it."""

    def open_file() -> None:
        run_in_background("settings-open", lambda: open_settings(path), lambda exc: None)

    backend.set_icon(SETTINGS_ICON)  # its own name: trays show it, not "Gateway error"
    backend.set_title("cpgw-tray: Settings error — see the menu")
    backend.set_menu(
        [
            Entry("cpgw-tray cannot start: bad settings", enabled=False),
            *(
                Entry(line, enabled=False)
                for line in textwrap.wrap(problem, WRAP, break_on_hyphens=False)
            ),
            Entry(f"File: {path}", enabled=False),
            Entry("Fix and save the file: the tray starts by itself", enabled=False),
            SEPARATOR,
            Entry("Open settings file", open_file, default=True),
            Entry("Quit", quit),
        ]
    )
    if backend.has_notification:
        backend.notify(problem, "cpgw-tray cannot start: bad settings")
