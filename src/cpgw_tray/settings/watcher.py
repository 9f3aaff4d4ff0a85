"""Noticing a saved settings file: a thread that looks when the file's folder changes
(inotify on Linux, through ``inotify_simple``: it sleeps until then) or every ~3 s
elsewhere, or while inotify is unavailable (waiting on an Event, so it stops at once),
and, when the file's content changed, resolves the settings
again and hands them on — or hands on the one-line error, so a bad edit is reported once
and the last good settings stay. The folder is watched, not the file: editors that save
by replacing the file would leave a watch on the old one. A folder not made yet (a fresh
install) is waited for on the nearest folder that exists, never polled; a second file
(the autostart entry *Start at login* follows) is watched the same way.
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
from typing import TYPE_CHECKING, Any, NamedTuple

from ..smallfile import read_small
from .config import ConfigError

if TYPE_CHECKING:
    from .config import Config

log = logging.getLogger(__name__)

Fingerprint = str | None  # the content's SHA-256; None: no file


class Watch(NamedTuple):
    """What one watched folder is for: the ``name`` in it to look for; ``direct`` when
    it is the file's own folder (else the next folder on the way to it); ``tick`` for
    the followed file rather than the settings."""

    name: str
    direct: bool
    tick: bool


def nearest(path: Path) -> tuple[Path, str]:
    """The folder to watch for ``path``: its own, or the nearest one on the way that
    exists, with the name in it that leads on."""
    folder, name = path.parent, path.name
    while not folder.is_dir() and folder != folder.parent:
        folder, name = folder.parent, folder.name
    return folder, name


def fingerprint(path: Path) -> Fingerprint:
    """What tells one saved version of the file from another: its content alone (a
    stat beside the read could mix an old size and time with new content, and the same
    settings saved again change nothing)."""
    try:
        data = read_small(path)  # never waits on a FIFO, never reads a device
    except OSError:  # missing, unreadable or not a file: loading says which
        return None
    return hashlib.sha256(data).hexdigest()


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
        follows: Path | None = None,
    ) -> None:
        self.path = path
        self._load = load
        self.on_change = on_change
        self.on_error = on_error
        self.period = period
        self.settle = settle  # an editor may write in steps: wait for the file to settle
        # also called at every look, when ``follows`` changes (inotify), and every
        # ``period`` where that cannot be watched (other state to follow: Start at login)
        self.on_tick = on_tick
        self.follows = follows
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
            folders = self._folder_events()
            if folders is not None:
                with folders[0]:
                    if self._wait_on(*folders):  # a folder on the way was made or removed
                        continue  # watch again at once, one step nearer (or farther)
            if self._stop.wait(self.period):
                return
            self._guarded_check()

    def _folder_events(self) -> tuple[Any, dict[int, list[Watch]]] | None:
        """Inotify watches on the folders of the file and of ``follows`` (or on the
        nearest folder on the way that exists), or None where there are none (not Linux,
        out of watches): the caller polls then."""
        if sys.platform != "linux":
            return None
        else:
            try:
                from inotify_simple import INotify, flags

                inotify = INotify()
            except (ImportError, OSError) as exc:
                self._polling(f"no inotify: {exc}")
                return None
            mask = flags.CLOSE_WRITE | flags.MOVED_TO | flags.MOVED_FROM | flags.CREATE
            watches: dict[int, list[Watch]] = {}  # a folder may be on the way to both
            try:
                for path, tick in ((self.path, False), (self.follows, True)):
                    if path is not None:
                        folder, name = nearest(path)
                        wd = inotify.add_watch(folder, mask | flags.DELETE | flags.ATTRIB)
                        watches.setdefault(wd, []).append(Watch(name, folder == path.parent, tick))
            except OSError as exc:
                inotify.close()
                self._polling(str(exc))
                return None
            return inotify, watches

    def _polling(self, why: str) -> None:
        if not self._polling_said:
            self._polling_said = True
            log.info("settings file: looked at every %g s (%s)", self.period, why)

    def _wait_on(self, inotify: Any, watches: dict[int, list[Watch]]) -> bool:
        """Look after each change in a folder that names the file, tick after each that
        names ``follows``, until stopped or a watch must move: True when a folder on the
        way to a file was made (or a watched one removed), False when stopped."""
        from inotify_simple import flags

        read, wake = os.pipe()
        with self._lock:
            self._wake = wake
        # where ``follows`` is not given, the tick has nothing to wait on: a period
        period = self.period if self.on_tick is not None and self.follows is None else None
        try:
            self._guarded_check()  # a save between the start and the watch
            while not self._stop.is_set():
                ready, _, _ = select.select([inotify, read], [], [], period)
                if self._stop.is_set():
                    return False
                if not ready:  # the period passed with no change: only the tick
                    self._guarded(self._tick)
                    continue
                look = tick = False
                for event in inotify.read(timeout=0):
                    if event.mask & flags.IGNORED:  # a watched folder is gone
                        return True
                    for watch in watches.get(event.wd, []):
                        if event.name != watch.name:
                            continue
                        if not watch.direct:  # the next folder on the way: watch there
                            return True
                        look, tick = look or not watch.tick, tick or watch.tick
                if look:
                    self._guarded_check()
                elif tick:
                    self._guarded(self._tick)
            return False
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
