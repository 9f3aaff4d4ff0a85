"""The history of state changes: one JSON line per change, seen by the tray or by
``watch``, in the platform's state folder; bounded and rotated; and when each watcher was
running, so a gap in watching is told as one, never as the last state.

State row: ``{"at": ISO UTC, "state", "previous", "detail", "url", "source": "tray"|"watch",
"gateway": NAME or null}``.
Event row (an ``event`` key and no ``state``): ``{"at", "event": "started"|"stopped",
"detail", "source"}``: a watcher began or ended; ``{"at", "event": "bulletin", "id",
"detail", "url", "source"}``: an IBKR bulletin from the websocket, shown once (readers
of the history skip it). While the state is steady, the time of
the last finished check is kept beside the history in ``<history>.seen`` (one time per
source, written at most once per :data:`HEARTBEAT`); a watcher that died without a word
is told by that time.

Every writer (tray and ``watch``) appends and rotates under one lock file next to the
history; the file is opened without following a symbolic link; a last line left without
its newline (a crash, a full disk) is cut before the next row is appended, and a failed
write is cut back, so the file always ends at a row boundary.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from ..locks import held
from ..model.status import State, Status, iso_utc
from ..model.urls import gateway_root
from ..smallfile import check_regular

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024  # about 2,500 changes a file
BACKUPS = 3  # history.jsonl.1 … .3 kept: months of a normal trader's changes
HEARTBEAT = timedelta(minutes=5)  # the last finished check is saved at most this often
EVENTS = ("started", "stopped")
LOCK_TIMEOUT = 10.0  # seconds a writer waits for the other writer
_CHUNK = 65536
WINDOWS_LINK = sys.platform == "win32"  # no O_NOFOLLOW there: the link is looked at first
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


@dataclass(frozen=True)
class Row:
    """One change of state, or one event (``state`` None): a watcher started or
    stopped; ``not_watched`` (with ``until``) only in what ``history`` prints."""

    at: datetime
    state: str | None
    previous: str | None
    detail: str
    url: str
    source: str
    event: str | None = None
    until: datetime | None = None
    ident: str | None = None  # a bulletin's id
    gateway: str | None = None  # the [gateways.NAME] whose state it is

    def to_json(self) -> dict[str, Any]:
        if self.event is not None:
            data: dict[str, Any] = {"at": iso_utc(self.at), "event": self.event}
            if self.ident is not None:
                data["id"] = self.ident
            if self.until is not None:
                data["until"] = iso_utc(self.until)
            data = {**data, "detail": self.detail, "source": self.source}
            return {**data, "url": self.url} if self.url else data
        return {
            "at": iso_utc(self.at),
            "state": self.state,
            "previous": self.previous,
            "detail": self.detail,
            "url": self.url,
            "source": self.source,
            "gateway": self.gateway,
        }


def _when(text: object) -> datetime | None:
    try:
        at = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return at.astimezone(timezone.utc) if at.tzinfo is not None else None


def _row(data: Any) -> Row | None:
    """A row from a parsed line, or None when the line is not one of ours."""
    if not isinstance(data, dict):
        return None
    at = _when(data.get("at"))
    if at is None:
        return None
    detail, source = str(data.get("detail", "")), str(data.get("source", ""))
    if "state" not in data:
        event = data.get("event")
        return Row(at, None, None, detail, "", source, event) if event in EVENTS else None
    try:
        state = State(str(data["state"])).value
    except ValueError:
        return None
    previous, gateway = data.get("previous"), data.get("gateway")
    return Row(
        at,
        state,
        previous if isinstance(previous, str) else None,
        detail,
        str(data.get("url", "")),
        source,
        gateway=gateway if isinstance(gateway, str) else None,
    )


class History:
    """Appends changes of state and the watcher's events to ``path`` (thread-safe, and
    safe beside another process writing the same file); reads them back."""

    def __init__(
        self,
        path: Path,
        source: str,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self.path = path
        self.source = source
        self.max_bytes = max_bytes
        self.backups = backups
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._lock = threading.Lock()
        self._last: dict[str | None, State] = {}  # by gateway name
        self._beat: datetime | None = None  # the last finished check saved as seen
        self._refused = False  # the symlink refusal is logged once

    @property
    def seen_path(self) -> Path:
        return self.path.with_name(f"{self.path.name}.seen")

    # ------------------------------------------------------------------ writing
    def record(self, status: Status) -> bool:
        """Append a row if the state changed since the last one recorded here; returns
        whether it did. A steady state saves the check's time (at most once per
        :data:`HEARTBEAT`). A disk that refuses costs a log line, never the watcher."""
        with self._lock:
            at = status.checked_at or self._now()
            previous = self._last.get(status.gateway)
            changed = status.state is not previous
            if changed:
                self._last[status.gateway] = status.state
                row = Row(
                    at,
                    status.state.value,
                    previous.value if previous is not None else None,
                    status.detail,
                    gateway_root(status.url) if status.url else "",
                    self.source,
                    gateway=status.gateway,
                )
                self._guarded(lambda: self._append([row]))
            checked = status.checked_at
            if checked is not None and (self._beat is None or checked - self._beat >= HEARTBEAT):
                self._beat = checked
                self._guarded(lambda: self._set_seen(checked))
            return changed

    def record_event(self, kind: str, at: datetime, detail: str, url: str, ident: str) -> None:
        """Append an event row that readers skip (an IBKR bulletin: ``kind`` "bulletin",
        its text as ``detail``, its ``ident`` as ``id``)."""
        root = gateway_root(url) if url else ""
        row = Row(at, None, None, detail, root, self.source, kind, ident=ident)
        with self._lock:
            self._guarded(lambda: self._append([row]))

    def started(self) -> None:
        """A watcher begins: a ``started`` row. A previous run of this source that ended
        without a word first gets its ``stopped`` row, at its last finished check."""
        with self._lock:
            self._guarded(self._start)

    def stopped(self) -> None:
        """A watcher ends: a ``stopped`` row; its last-seen time is no longer needed."""
        with self._lock:
            now = self._now()
            stop = Row(now, None, None, "", "", self.source, "stopped")
            self._guarded(lambda: self._append([stop], seen=(self.source, None)))

    def _start(self) -> None:
        now = self._now()
        rows = []
        with held(self._lock_path(), LOCK_TIMEOUT):
            before = self.seen().get(self.source)
        if before is not None:
            note = "ended without a word; its last check finished then"
            rows.append(Row(before, None, None, note, "", self.source, "stopped"))
        rows.append(Row(now, None, None, "", "", self.source, "started"))
        self._append(rows, seen=(self.source, now))

    def _guarded(self, write: Callable[[], None]) -> None:
        try:
            write()
        except OSError as exc:
            if exc.errno == errno.ELOOP or (WINDOWS_LINK and self.path.is_symlink()):
                if not self._refused:
                    log.warning(
                        "the history %s is a symbolic link: not followed, nothing written",
                        self.path,
                    )
                self._refused = True
            else:
                log.warning("cannot write the history %s: %s", self.path, exc)

    def _lock_path(self) -> Path:
        return self.path.with_name(f"{self.path.name}.lock")

    def _append(self, rows: list[Row], seen: tuple[str, datetime | None] | None = None) -> None:
        """Under the writers' lock: repair, rotate if full, append; then the seen time."""
        data = "".join(json.dumps(row.to_json()) + "\n" for row in rows).encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with held(self._lock_path(), LOCK_TIMEOUT):
            fd = self._open()
            try:
                size = self._repair(fd)
                if size and size + len(data) > self.max_bytes:
                    os.close(fd)
                    fd = -1
                    self._rotate()
                    fd = self._open()
                    size = self._repair(fd)
                _write_all(fd, data, size)
            finally:
                if fd >= 0:
                    os.close(fd)
            if seen is not None:
                self._write_seen(*seen)

    def _open(self) -> int:
        if WINDOWS_LINK and self.path.is_symlink():
            raise OSError(errno.ELOOP, "a symbolic link", str(self.path))
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | NOFOLLOW | getattr(os, "O_BINARY", 0)
        return os.open(self.path, flags, 0o600)

    def _repair(self, fd: int) -> int:
        """Cut a last line that has no newline (a crash mid-row); the size after."""
        size = os.fstat(fd).st_size
        end = size
        while end > 0:
            start = max(0, end - _CHUNK)
            os.lseek(fd, start, os.SEEK_SET)
            chunk = os.read(fd, end - start)
            cut = chunk.rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        if end < size:
            os.ftruncate(fd, end)
            log.warning("cut an unfinished last row (%d bytes) of %s", size - end, self.path)
        return end

    def _set_seen(self, at: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with held(self._lock_path(), LOCK_TIMEOUT):
            self._write_seen(self.source, at)

    def _write_seen(self, source: str, at: datetime | None) -> None:
        """Caller holds the writers' lock: save (or, None, drop) ``source``'s time."""
        times = {name: iso_utc(when) for name, when in self.seen().items()}
        if at is None:
            times.pop(source, None)
        else:
            times[source] = iso_utc(at)
        temp = self.seen_path.with_name(f".{self.seen_path.name}.{os.getpid()}.tmp")
        try:
            temp.write_text(json.dumps(times), encoding="utf-8")
            os.replace(temp, self.seen_path)
        finally:
            temp.unlink(missing_ok=True)

    def _rotate(self) -> None:
        oldest = self._backup(self.backups)
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            if self._backup(n).exists():
                self._backup(n).rename(self._backup(n + 1))
        self.path.rename(self._backup(1))

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    # ------------------------------------------------------------------ reading
    def seen(self) -> dict[str, datetime]:
        """Each source's last finished check while it ran steady (empty if unknown)."""
        try:
            data = json.loads(self.seen_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        times = {str(name): _when(text) for name, text in data.items()}
        return {name: when for name, when in times.items() if when is not None}

    def files(self) -> list[Path]:
        """The history's files, oldest first."""
        rotated = [self._backup(n) for n in range(self.backups, 0, -1)]
        return [p for p in [*rotated, self.path] if p.exists()]

    def rows(self, since: datetime | None = None) -> Iterator[Row]:
        """Every readable row, oldest first, from ``since`` on; corrupt lines skipped."""
        found = []
        for path in self.files():
            try:
                check_regular(path)  # a FIFO here would block the read for good
                with open(path, encoding="utf-8", errors="replace") as lines:
                    for line in lines:
                        try:
                            row = _row(json.loads(line))
                        except ValueError:
                            row = None
                        if row is None:
                            log.debug("skipped a line of %s that is not a row", path)
                        elif since is None or row.at >= since:
                            found.append(row)
            except OSError as exc:
                log.warning("cannot read the history %s: %s", path, exc)
        # a `stopped` row for a watcher that died is written later than rows after it
        yield from sorted(found, key=lambda row: row.at)


def _write_all(fd: int, data: bytes, size: int) -> None:
    """Append all of ``data``; on failure (a full disk) cut the file back to ``size``
    so that no part of a row is left."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view) :]
    except OSError:
        with contextlib.suppress(OSError):
            os.ftruncate(fd, size)
        raise


_SPAN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_since(text: str, now: datetime) -> datetime:
    """``24h``, ``90m``, ``7d``, ``30s`` before ``now``, or an ISO 8601 time (UTC when
    it names no zone). Raises ValueError with words for the user."""
    match = _SPAN.match(text)
    if match:
        return now - timedelta(seconds=float(match[1]) * _UNIT[match[2]])
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a span like 24h, 90m, 7d or an ISO time "
            "like 2026-11-28T09:00"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def of_gateway(row: Row, name: str | None) -> bool:
    """Whether ``row`` belongs with gateway ``name`` (None: every gateway); the watchers'
    own rows belong with each."""
    return name is None or row.state is None or row.gateway == name
