"""The darwin backend (macOS): every touch of the status item and its menu on the main
thread (pystray issue 60; from macOS 26 a touch off it ends the process), through one
marshalling point, :meth:`DarwinBackend.on_main`; notifications off it, since pystray
runs ``osascript`` and waits for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..menu import Entry
from .base import PystrayBackend

if TYPE_CHECKING:
    from ..icons import Icon

log = logging.getLogger(__name__)


class DarwinBackend(PystrayBackend):
    """pystray's darwin backend. Its menu is built when set: countdown rows come with
    a new menu (``live_menu`` False). No radio items and no default item: pystray's
    darwin icon has neither (``HAS_MENU_RADIO``, ``HAS_DEFAULT_ACTION`` are False)."""

    name = "darwin"

    def __init__(self, pystray: Any, title: str) -> None:
        from PyObjCTools import AppHelper

        self._call_after: Callable[[Callable[[], None]], None] = AppHelper.callAfter
        super().__init__(pystray, title)  # the status item: made here, on the main thread

    def post(self, fn: Callable[[], None]) -> None:
        self._call_after(fn)

    def on_main(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` now on the main thread, else hand it to AppKit's loop there: the
        one way this backend touches the status item or its menu."""
        if threading.current_thread() is threading.main_thread():
            fn()
        else:
            self._call_after(fn)

    def set_icon(self, icon: Icon) -> None:
        self.on_main(lambda: PystrayBackend.set_icon(self, icon))

    def set_title(self, text: str) -> None:
        self.on_main(lambda: PystrayBackend.set_title(self, text))

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self.on_main(lambda: PystrayBackend.set_menu(self, entries))

    def stop(self) -> None:
        self.on_main(self._remove)

    def notify(self, message: str, title: str) -> None:
        send = super().notify
        threading.Thread(target=send, args=(message, title), name="notify", daemon=True).start()
