"""A tray that shows nothing: records what the app asked it to show, and runs posted
work on whichever thread calls :meth:`DummyBackend.drain` (its "tray thread").

pystray ships ``_dummy`` for the same purpose. Ours keeps the :class:`~.Backend`
interface of the real ones, so the app's behaviour can be driven without a display:
work posted from a worker waits for the tray's thread, as it does in every backend,
and only the tray's thread changes what is shown.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..menu import Entry, signature

if TYPE_CHECKING:
    from ..icons import Icon


class DummyBackend:
    """Records calls as ``(kind, value)`` in :attr:`calls` ("icon", "title", "menu",
    "live", "notify"); :attr:`menu` is the last menu set, :attr:`icon` the last icon.
    ``live_menu``: behave as a tray that redraws countdown rows in place (gtk,
    appindicator)."""

    name = "dummy"
    has_menu = True
    live_menu = False

    def __init__(self, has_notification: bool = True) -> None:
        self.has_notification = has_notification
        self.calls: list[tuple[str, Any]] = []
        self.menu: Sequence[Entry] = ()
        self.icon: Icon | None = None
        self.stopped = threading.Event()
        self._posted: deque[Callable[[], None]] = deque()
        self._lock = threading.Lock()

    def post(self, fn: Callable[[], None]) -> None:
        """Any thread: queue ``fn`` for the tray's thread."""
        with self._lock:
            self._posted.append(fn)

    def pending(self) -> int:
        """How much posted work waits for the tray's thread."""
        with self._lock:
            return len(self._posted)

    def drain(self) -> None:
        """As the tray's thread: run what was posted, in order, until none is left
        (work posted meanwhile included). An error propagates, to be seen."""
        while True:
            with self._lock:
                if not self._posted:
                    return
                fn = self._posted.popleft()
            fn()

    def set_icon(self, icon: Icon) -> None:
        self.icon = icon
        self.calls.append(("icon", icon))

    def set_title(self, text: str) -> None:
        self.calls.append(("title", text))

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self.menu = entries
        self.calls.append(("menu", signature(entries)))

    def refresh_live(self) -> None:
        self.calls.append(("live", None))

    def notify(self, message: str, title: str) -> None:
        self.calls.append(("notify", message))

    def stop(self) -> None:
        self.stopped.set()

    def count(self, kind: str) -> int:
        """How many calls of ``kind`` were made."""
        return sum(1 for k, _ in self.calls if k == kind)
