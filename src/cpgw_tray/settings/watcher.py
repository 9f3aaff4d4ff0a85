"""Noticing a saved settings file: a thread that looks when the file's folder changes
(inotify on Linux, through ``inotify_simple``: it sleeps until then) or every ~3 s
elsewhere, or while inotify is unavailable (waiting on an Event, so it stops at once),
and, when the file's modification time, size or content changed, resolves the settings
again and hands them on — or hands on the one-line error, so a bad edit is reported once
and the last good settings stay. The folder is watched, not the file: editors that save
by replacing the file would leave a watch on the old one.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import select
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..smallfile import read_small
from .config import ConfigError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

Fingerprint = tuple[int, int, str] | None  # mtime (ns), size, SHA-256; None: no file


def fingerprint(path: Path) -> Fingerprint:
    """What tells one saved version of the file from another."""
    try:
        stat = path.stat()
        data = read_small(path)  # never waits on a FIFO, never reads a device
    except OSError:  # missing, unreadable or not a file: loading says which
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
        # also called at every look, and every ``period`` while inotify sleeps (other
        # state to follow: Start at login)
        self.on_tick = on_tick
        self._seen = fingerprint(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._wake: int | None = None  # the write end of a pipe that ends a folder wait
        self._lock = threading.Lock()  # the pipe is never written once closed
        self._polling_said = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="settings", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self._lock, contextlib.suppress(OSError):
            if self._wake is not None:
                os.write(self._wake, b"x")  # out of a wait on the folder

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
        while not self._stop.is_set():
            folder = self._folder_events()
            if folder is not None:
                with folder:
                    self._wait_on(folder)  # until stopped, or the watch is gone
            if self._stop.wait(self.period):
                return
            self._guarded_check()

    def _folder_events(self) -> Any:
        """An inotify watch on the file's folder, or None where there is none (not
        Linux, no folder yet, out of watches): the caller polls then."""
        if sys.platform != "linux":
            return None
        else:
            try:
                from inotify_simple import INotify, flags

                folder = INotify()
            except (ImportError, OSError) as exc:
                self._polling(f"no inotify: {exc}")
                return None
            try:
                mask = flags.CLOSE_WRITE | flags.MOVED_TO | flags.MOVED_FROM | flags.CREATE
                folder.add_watch(self.path.parent, mask | flags.DELETE | flags.ATTRIB)
            except OSError as exc:
                folder.close()
                self._polling(str(exc))
                return None
            return folder

    def _polling(self, why: str) -> None:
        if not self._polling_said:
            self._polling_said = True
            log.info("settings file: looked at every %g s (%s)", self.period, why)

    def _wait_on(self, folder: Any) -> None:
        """Look after each change in the folder that names the file, until stopped or
        the watch ends (the folder removed)."""
        from inotify_simple import flags

        read, wake = os.pipe()
        with self._lock:
            self._wake = wake
        try:
            self._guarded_check()  # a save between the start and the watch
            while not self._stop.is_set():
                tick = self.period if self.on_tick is not None else None
                ready, _, _ = select.select([folder, read], [], [], tick)
                if self._stop.is_set():
                    return
                if not ready:  # the period passed with no change: only the tick
                    self._guarded(self._tick)
                    continue
                events = folder.read(timeout=0)
                if any(e.mask & flags.IGNORED for e in events):  # the watch is gone
                    return
                if any(e.name == self.path.name for e in events):
                    self._guarded_check()
        finally:
            with self._lock:
                self._wake = None
                os.close(wake)
            os.close(read)

    def _tick(self) -> None:
        if self.on_tick is not None:
            self.on_tick()

    def _look(self) -> None:
        self.check()
        self._tick()

    def _guarded_check(self) -> None:
        self._guarded(self._look)

    def _guarded(self, look: Callable[[], object]) -> None:
        try:
            look()
        except Exception as exc:  # a bug here must not end the watching silently
            log.exception("watching the settings file failed")
            try:
                self.on_error(f"watching the settings file failed: {exc}")
            except Exception:
                log.exception("reporting a settings error failed")
