"""The darwin backend (macOS): every AppKit call on the main thread (pystray issue 60),
and notifications off it, since pystray runs ``osascript`` and waits for it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from .base import PystrayBackend

log = logging.getLogger(__name__)


class DarwinBackend(PystrayBackend):
    """pystray's darwin backend. Its menu is built when set: countdown rows come with
    a new menu (``live_menu`` False)."""

    name = "darwin"

    def __init__(self, pystray: Any, title: str) -> None:
        from PyObjCTools import AppHelper

        self._call_after: Callable[[Callable[[], None]], None] = AppHelper.callAfter
        super().__init__(pystray, title)

    def post(self, fn: Callable[[], None]) -> None:
        self._call_after(fn)

    def notify(self, message: str, title: str) -> None:
        send = super().notify
        threading.Thread(target=send, args=(message, title), name="notify", daemon=True).start()
