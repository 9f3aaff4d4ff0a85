"""Noticing a saved settings file: a thread that looks every ~3 s (waiting on an Event,
so it stops at once) and, when the file's modification time, size or content changed,
resolves the settings again and hands them on — or hands on the one-line error, so a
bad edit is reported once and the last good settings stay.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .config import ConfigError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, str] | None  # mtime (ns), size, SHA-256; None: no file


def fingerprint(path: Path) -> Fingerprint:
    """What tells one saved version of the file from another."""
    try:
        stat = path.stat()
        data = path.read_bytes()
    except OSError:  # missing or unreadable: loading says which
        return None
    return stat.st_mtime_ns, stat.st_size, hashlib.sha256(data).hexdigest()


class SettingsWatcher:
    """Calls ``on_change(config)`` or ``on_error(message)`` on its own thread after each
    saved change of ``path``. ``load`` resolves every source again (defaults, file,
    environment, command line), so the environment and the command line still win.

    Made before the settings are first loaded, so a save in between is not missed."""

    def __init__(
        self,
        path: Path,
        load: Callable[[], Config],
        on_change: Callable[[Config], None],
        on_error: Callable[[str], None],
        *,
        period: float = 3.0,  # within 5 s of a save, with the settling pause
        settle: float = 0.2,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.path = path
        self._load = load
        self.on_change = on_change
        self.on_error = on_error
        self.period = period
        self.settle = settle  # an editor may write in steps: wait for the file to settle
        self.on_tick = on_tick  # also called at every look (other state to follow)
        self._seen = fingerprint(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="settings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def check(self) -> bool:
        """Look once; True if a new version of the file was loaded (or refused)."""
        now = fingerprint(self.path)
        if now == self._seen:
            return False
        if self.settle > 0 and (self._stop.wait(self.settle) or fingerprint(self.path) != now):
            return False  # stopping, or still being written: look again next time
        self._seen = now
        try:
            config = self._load()
        except ConfigError as exc:
            log.warning("settings not applied, the last good ones stay: %s", exc)
            self.on_error(str(exc))
            return True
        log.info("settings file %s changed: settings loaded again", self.path)
        self.on_change(config)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.check()
                if self.on_tick is not None:
                    self.on_tick()
            except Exception as exc:  # a bug here must not end the watching silently
                log.exception("watching the settings file failed")
                try:
                    self.on_error(f"watching the settings file failed: {exc}")
                except Exception:
                    log.exception("reporting a settings error failed")
