"""The menu as plain data: rendered by pystray, or by the popup where a tray has no menu.

Entries carry their text, state and action; :func:`signature` is what the user sees of
a menu, so the tray rebuilds a menu only when that changes. A countdown row ("Next check
in 42 s") also carries ``live``, a function giving its text now: backends that can redraw
a row in place call it while the menu shows, instead of rebuilding the menu.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entry:
    """A menu entry as plain data, rendered by pystray or by the popup fallback."""

    text: str
    action: Callable[[], None] | None = field(default=None, compare=False)
    enabled: bool = True
    checked: bool | None = None  # None: not a check item
    radio: bool = False
    default: bool = False
    submenu: tuple[Entry, ...] = ()
    live: Callable[[], str] | None = field(default=None, compare=False)
    every: float = field(default=1.0, compare=False)  # seconds between redraws of ``live``

    @property
    def separator(self) -> bool:
        return self.text == "-"


SEPARATOR = Entry("-", enabled=False)


def signature(entries: Sequence[Entry], *, live: bool = False) -> tuple[Any, ...]:
    """What the user sees of a menu (texts, enabled and checked marks), without actions.
    With ``live`` (the backend redraws countdown rows itself) their texts are left out."""
    return tuple(
        [
            (
                "live" if live and e.live is not None else e.text,
                e.enabled,
                e.checked,
                e.radio,
                e.default,
                signature(e.submenu, live=live) if e.submenu else (),
            )
            for e in entries
        ]
    )
