"""IBKR's bulletins seen on the websocket: each shown once, by id per gateway, remembered
for :data:`KEEP` in a small JSON file in the state folder so that a reconnect or a restart
does not show one again. A file that cannot be read starts empty (logged); one that cannot
be written costs a log line, never the watcher."""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..model.status import iso_utc

log = logging.getLogger(__name__)

KEEP = timedelta(days=7)
MAX_IDS = 2000  # far more than IBKR sends in a week


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Bulletins:
    """Which bulletins were shown; thread-safe. ``gateway``: the gateway's root URL or
    name, so that two gateways each show a bulletin once."""

    def __init__(self, path: Path, gateway: str, now: Callable[[], datetime] = _utc_now) -> None:
        self.path = path
        self.gateway = gateway
        self._now = now
        self._lock = threading.Lock()

    def first_time(self, ident: str) -> bool:
        """Note ``ident`` as shown; True when it was not shown in the last 7 days."""
        key = f"{self.gateway} {ident}"
        with self._lock:
            now = self._now()
            seen = self._load(now)
            if key in seen:
                return False
            seen[key] = now
            self._save(seen)
            return True

    def _load(self, now: datetime) -> dict[str, datetime]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("cannot read the bulletins seen %s: %s", self.path, exc)
            return {}
        seen: dict[str, datetime] = {}
        for key, at in data.items() if isinstance(data, dict) else ():
            try:
                when = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
            except ValueError:
                continue
            if when.tzinfo is not None and now - when < KEEP:
                seen[str(key)] = when
        return seen

    def _save(self, seen: dict[str, datetime]) -> None:
        newest = sorted(seen.items(), key=lambda item: item[1])[-MAX_IDS:]
        text = json.dumps({key: iso_utc(at) for key, at in newest})
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            spare = self.path.with_name(self.path.name + ".new")
            spare.write_text(text, encoding="utf-8")
            os.replace(spare, self.path)
        except OSError as exc:
            log.warning("cannot write the bulletins seen %s: %s", self.path, exc)
