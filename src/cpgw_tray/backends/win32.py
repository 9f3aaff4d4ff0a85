"""The win32 backend: pystray's calls are thread-safe there, so a serial thread of our
own is the "tray thread" that keeps changes in order."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import PystrayBackend, SerialThread

TOOLTIP_LIMIT = 127  # pystray raises ValueError beyond this


class Win32Backend(PystrayBackend):
    """pystray's win32 backend. Its menu is built when set: countdown rows come with a
    new menu (``live_menu`` False)."""

    name = "win32"

    def __init__(self, pystray: Any, title: str) -> None:
        self._thread = SerialThread()
        super().__init__(pystray, title)

    def post(self, fn: Callable[[], None]) -> None:
        self._thread.post(fn)

    def text(self, text: str) -> str:
        return text if len(text) <= TOOLTIP_LIMIT else text[: TOOLTIP_LIMIT - 1] + "…"
