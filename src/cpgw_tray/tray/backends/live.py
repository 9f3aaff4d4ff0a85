"""Countdown rows redrawn in place while a menu shows, for the backends that can."""

from __future__ import annotations

import logging
from collections.abc import Callable

from ..menu import Entry

log = logging.getLogger(__name__)


class LiveLabels:
    """The countdown rows of a menu on show, each with the function that redraws its
    label in place. :meth:`tick` (on the tray's thread) redraws only rows whose text
    changed; :attr:`every` is how often a tick is worth it (None: no live rows)."""

    def __init__(self) -> None:
        # (the row, how to redraw its label, the text shown now)
        self._rows: list[tuple[Entry, Callable[[str], None], list[str]]] = []

    def track(self, entry: Entry, set_label: Callable[[str], None]) -> None:
        if entry.live is not None:
            self._rows.append((entry, set_label, [entry.text]))

    @property
    def every(self) -> float | None:
        return min((entry.every for entry, _, _ in self._rows), default=None)

    def clear(self) -> None:
        self._rows.clear()

    def tick(self) -> None:
        for entry, set_label, shown in self._rows:
            try:
                text = entry.live() if entry.live is not None else entry.text
                if text != shown[0]:
                    set_label(text)
                    shown[0] = text
            except Exception:
                log.exception("redrawing a menu row failed")
