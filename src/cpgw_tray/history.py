"""The history of state changes: one JSON line per change, seen by the tray or by
``watch``, in the platform's state folder; bounded and rotated. Reading skips a corrupt
line instead of failing, so a half-written line after a crash costs one row, not the file.

Row: ``{"at": ISO UTC, "state", "previous", "detail", "url", "source": "tray"|"watch"}``.
Event row (no ``state``): ``{"at", "event": "bulletin", "id", "message", "url", "source"}``.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from .status import State, Status, iso_utc
from .urls import gateway_root

log = logging.getLogger(__name__)

MAX_BYTES = 512 * 1024  # about 2,500 changes a file
BACKUPS = 3  # history.jsonl.1 … .3 kept: months of a normal trader's changes


@dataclass(frozen=True)
class Row:
    """One change of state."""

    at: datetime
    state: str
    previous: str | None
    detail: str
    url: str
    source: str

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso_utc(self.at),
            "state": self.state,
            "previous": self.previous,
            "detail": self.detail,
            "url": self.url,
            "source": self.source,
        }


def _row(data: Any) -> Row | None:
    """A row from a parsed line, or None when the line is not one of ours."""
    if not isinstance(data, dict):
        return None
    try:
        at = datetime.fromisoformat(str(data["at"]).replace("Z", "+00:00"))
        state = str(data["state"])
        State(state)
    except (KeyError, ValueError):
        return None
    if at.tzinfo is None:
        return None
    previous = data.get("previous")
    return Row(
        at.astimezone(timezone.utc),
        state,
        previous if isinstance(previous, str) else None,
        str(data.get("detail", "")),
        str(data.get("url", "")),
        str(data.get("source", "")),
    )


class History:
    """Appends changes of state to ``path`` (thread-safe); reads them back."""

    def __init__(
        self, path: Path, source: str, max_bytes: int = MAX_BYTES, backups: int = BACKUPS
    ) -> None:
        self.path = path
        self.source = source
        self.max_bytes = max_bytes
        self.backups = backups
        self._lock = threading.Lock()
        self._last: State | None = None

    def record(self, status: Status) -> bool:
        """Append a row if the state changed since the last one recorded here; returns
        whether it did. A disk that refuses costs a log line, never the watcher."""
        with self._lock:
            if status.state is self._last:
                return False
            previous, self._last = self._last, status.state
            row = Row(
                status.checked_at or datetime.now(timezone.utc),
                status.state.value,
                previous.value if previous is not None else None,
                status.detail,
                gateway_root(status.url) if status.url else "",
                self.source,
            )
            try:
                self._append(json.dumps(row.to_json()) + "\n")
            except OSError as exc:
                log.warning("cannot write the history %s: %s", self.path, exc)
            return True

    def record_event(self, event: dict[str, Any], url: str) -> None:
        """Append an event row (``{"at", "event", …, "url", "source"}``, e.g. an IBKR
        bulletin); readers of state rows skip it."""
        row = {**event, "url": gateway_root(url) if url else "", "source": self.source}
        with self._lock:
            try:
                self._append(json.dumps(row) + "\n")
            except OSError as exc:
                log.warning("cannot write the history %s: %s", self.path, exc)

    def _append(self, line: str) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size and size + len(line) > self.max_bytes:
            self._rotate()
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(line)

    def _rotate(self) -> None:
        oldest = self._backup(self.backups)
        oldest.unlink(missing_ok=True)
        for n in range(self.backups - 1, 0, -1):
            if self._backup(n).exists():
                self._backup(n).rename(self._backup(n + 1))
        self.path.rename(self._backup(1))

    def _backup(self, n: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{n}")

    def files(self) -> list[Path]:
        """The history's files, oldest first."""
        rotated = [self._backup(n) for n in range(self.backups, 0, -1)]
        return [p for p in [*rotated, self.path] if p.exists()]

    def rows(self, since: datetime | None = None) -> Iterator[Row]:
        """Every readable row, oldest first, from ``since`` on; corrupt lines skipped."""
        for path in self.files():
            try:
                with open(path, encoding="utf-8", errors="replace") as lines:
                    for line in lines:
                        try:
                            row = _row(json.loads(line))
                        except ValueError:
                            row = None
                        if row is None:
                            log.debug("skipped a line of %s that is not a row", path)
                        elif since is None or row.at >= since:
                            yield row
            except OSError as exc:
                log.warning("cannot read the history %s: %s", path, exc)


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
