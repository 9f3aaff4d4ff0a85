"""State shared by every cpgw-tray process on this machine (the tray, ``watch``,
``status``…): small JSON files in the state folder, each read and changed under an
exclusive lock, so two processes never both take the same slot.

- :class:`SharedState`: one such file; :meth:`SharedState.update` runs a change on its
  contents under the lock.
- :class:`SharedSlots`: the gateway's one-request-a-second budget per endpoint, and the
  back-off after a 429, shared by every process that talks to one gateway (one file per
  gateway URL); plugged into :class:`~.governor.RateGovernor` as its ``shared``.
- :class:`TakeoverLimit`: the once-per-5-minutes automatic takeover, one per machine.

The locks are advisory (``flock``; ``msvcrt.locking`` on Windows) and released by the
system when a process dies. A file of the wrong kind (a folder, a FIFO) or a full disk
costs the sharing, never a check: one warning line, then this process paces alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import stat
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

from ..locks import try_lock, unlock
from ..smallfile import MAX_BYTES, NotAFile, check_regular, kind
from .governor import BACKOFF_MAX, Deferred

log = logging.getLogger(__name__)

T = TypeVar("T")
LOCK_WAIT = 2.0  # seconds; a holder keeps the lock for a read and a write
FORGET_AFTER = 120.0  # a slot older than this says nothing about pacing any more
HELD = "held_until"  # the key of the shared back-off: a wall time


class SharedStateError(OSError):
    """The shared file cannot be used; ``str()`` is one line naming it."""


def shared_dir() -> Path:
    from .. import paths

    return paths.state_dir() / "shared"


def url_key(url: str) -> str:
    """A short stable file name part for a gateway URL."""
    return hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


class SharedState:
    """One JSON object in a file, changed under an exclusive lock."""

    def __init__(self, path: Path, wait: float = LOCK_WAIT) -> None:
        self.path = path
        self.wait = wait

    @contextlib.contextmanager
    def _locked(self) -> Iterator[IO[bytes]]:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            check_regular(self.path)
            fd = os.open(self.path, flags, 0o600)
        except NotAFile as exc:
            raise SharedStateError(str(exc)) from None
        except OSError as exc:
            raise SharedStateError(f"cannot use {self.path}: {exc.strerror or exc}") from None
        handle = os.fdopen(fd, "r+b", buffering=0)
        with handle:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise SharedStateError(str(NotAFile(self.path, f"is {kind(mode)}, not a file")))
            deadline = time.monotonic() + self.wait
            while not try_lock(handle):
                if time.monotonic() > deadline:
                    raise SharedStateError(f"{self.path} stayed locked for {self.wait:.0f} s")
                time.sleep(0.005)
            try:
                yield handle
            finally:
                unlock(handle)

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Under the lock: read the object (missing or unreadable: ``{}``), run
        ``change`` on it, write it back when it changed; return what ``change`` returned.
        An exception from ``change`` leaves the file as it was. Raises
        :class:`SharedStateError` when the file cannot be used."""
        with self._locked() as handle:
            try:
                raw = handle.read(MAX_BYTES)
                data = json.loads(raw) if raw.strip() else {}
            except (OSError, ValueError):
                data = None
            if not isinstance(data, dict):
                log.warning("starting afresh: %s was not readable", self.path)
                data = {}
            before = dict(data)
            result = change(data)
            if data != before:
                try:
                    # written over, then cut to its length: truncating to zero first
                    # costs the filesystem a journal wait, a wake-up at every request
                    handle.seek(0)
                    handle.truncate(handle.write(json.dumps(data).encode()))
                except OSError as exc:
                    raise SharedStateError(f"cannot write {self.path}: {exc.strerror}") from None
            return result


class SharedSlots:
    """The booked request times (wall clock) per endpoint of one gateway and its
    back-off, shared by every process (:class:`~.governor.SharedPacing`)."""

    def __init__(self, state: SharedState, clock: Callable[[], float] = time.time) -> None:
        self.state = state
        self._clock = clock
        self._warned = False

    @classmethod
    def for_gateway(cls, url: str) -> SharedSlots:
        return cls(SharedState(shared_dir() / f"pacing-{url_key(url)}.json"))

    def book(self, endpoint: str, delay: float, spacing: float, max_wait: float) -> float:
        """Book ``endpoint`` no sooner than ``delay`` seconds from now and ``spacing``
        after any process's last booking of it; return the seconds until the slot. Raises
        :class:`~.governor.Deferred` (nothing booked) when that is over ``max_wait``."""

        def change(data: dict[str, Any]) -> float:
            now = self._clock()
            for key, value in list(data.items()):  # old or unreadable slots: forgotten
                ahead = BACKOFF_MAX if key == HELD else FORGET_AFTER
                fresh = isinstance(value, (int, float)) and math.isfinite(value)
                if not fresh or not now - FORGET_AFTER < value < now + ahead + 1:
                    del data[key]
            at = max(now + delay, float(data.get(HELD, now)))  # after a 429: after it
            last = data.get(endpoint)
            if last is not None:
                at = max(at, last + spacing)
            if at - now > max_wait:
                raise Deferred(at - now)
            data[endpoint] = at
            return at - now

        try:
            return self.state.update(change)
        except SharedStateError as exc:
            self._warn(exc)
            return delay

    def hold(self, seconds: float) -> None:
        """A 429: no process sends to this gateway for ``seconds``."""

        def change(data: dict[str, Any]) -> None:
            until = self._clock() + min(seconds, BACKOFF_MAX)
            held = data.get(HELD)
            if not isinstance(held, (int, float)) or not held >= until:
                data[HELD] = until

        self._quietly(change)

    def release(self) -> None:
        """End the shared back-off (the demo's simulated gateway changed)."""
        self._quietly(lambda data: data.pop(HELD, None))

    def _quietly(self, change: Callable[[dict[str, Any]], object]) -> None:
        try:
            self.state.update(change)
        except SharedStateError as exc:
            self._warn(exc)

    def _warn(self, exc: SharedStateError) -> None:
        if not self._warned:
            self._warned = True
            log.warning("pacing with other cpgw-tray processes is off: %s", exc)


class TakeoverLimit:
    """At most one automatic takeover per ``every`` on this machine, whichever process
    sends it (the tray's and ``watch``'s policies ask here before each)."""

    def __init__(self, state: SharedState, every: timedelta) -> None:
        self.state = state
        self.every = every

    @classmethod
    def for_machine(cls, every: timedelta) -> TakeoverLimit:
        return cls(SharedState(shared_dir() / "takeover.json"), every)

    def claim(self, now: datetime) -> bool:
        """True (and the takeover recorded) when no process took over within
        ``every`` before ``now``; False when one did."""

        def change(data: dict[str, Any]) -> bool:
            try:
                last = datetime.fromisoformat(str(data.get("last_takeover")))
            except ValueError:
                last = None
            if last is not None and last.utcoffset() is not None and abs(now - last) < self.every:
                return False
            data["last_takeover"] = now.isoformat()
            data["pid"] = os.getpid()
            return True

        try:
            return self.state.update(change)
        except SharedStateError as exc:  # this process's own limit still holds
            log.warning("the takeover limit is this process's only: %s", exc)
            return True
