"""The win32 backend: pystray's calls are thread-safe there, so a serial thread of our
own is the "tray thread" that keeps changes in order.

What Windows takes: the tooltip and a notification's texts go into fixed ``WCHAR``
arrays (pystray raises past them, and the notification is lost), counted in UTF-16
units; the icon goes through an ``.ico`` file that ``LoadImage`` reads, made from a
square RGBA picture whose frames include the sizes Windows asks for (16, 32, 48, 256).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..icons import icon_image
from .base import PystrayBackend, SerialThread

if TYPE_CHECKING:
    from PIL import Image

    from ..icons import Icon

TIP_SIZE = 128  # NOTIFYICONDATAW.szTip: WCHAR[128], its NUL included
INFO_SIZE = 256  # szInfo: a notification's text
INFO_TITLE_SIZE = 64  # szInfoTitle
ICON_SIZE = 256  # the picture pystray saves as .ico: frames of 16 to 256 px


def fit_wide(text: str, size: int) -> str:
    """``text`` in a ``WCHAR[size]`` with its NUL: at most ``size - 1`` UTF-16 units (a
    character beyond the BMP takes two), cut with an ellipsis."""

    def units(s: str) -> int:
        return len(s.encode("utf-16-le")) // 2

    if units(text) < size:
        return text
    cut = text
    while cut and units(cut) + 1 >= size:
        cut = cut[:-1]
    return cut + "…"


class Win32Backend(PystrayBackend):
    """pystray's win32 backend. Its menu is built when set: countdown rows come with a
    new menu (``live_menu`` False)."""

    name = "win32"

    def __init__(self, pystray: Any, title: str) -> None:
        self._thread = SerialThread()
        super().__init__(pystray, title)

    def post(self, fn: Callable[[], None]) -> None:
        self._thread.post(fn)

    def image(self, icon: Icon) -> Image.Image:
        return icon_image(icon, ICON_SIZE)

    def text(self, text: str) -> str:
        return fit_wide(text, TIP_SIZE)

    def notify(self, message: str, title: str) -> None:
        super().notify(fit_wide(message, INFO_SIZE), fit_wide(title, INFO_TITLE_SIZE))
