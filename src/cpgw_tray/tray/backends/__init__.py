"""Tray backends: pystray behind the small :class:`Backend` interface the app talks to.

pystray is imported only here, and only when the tray starts (on Linux it connects to
the display at import). pystray picks its backend at import; :func:`create` then picks
our class for it once: one small class per backend (:mod:`.gtk` for gtk and
appindicator, :mod:`.xorg`, :mod:`.darwin`, :mod:`.win32`) over a shared base
(:mod:`.base`), each saying how to run a function on the tray's thread and what its
tray can do.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from ..menu import Entry
from .base import PystrayBackend

if TYPE_CHECKING:
    from ..icons import Icon

NATIVE_MENU_HELP = (
    "This tray has no native menu (pystray's xorg backend: PyGObject is missing). "
    "Click the icon for the menu. For native menus install python3-gi and the "
    "AppIndicator package, then `pipx install --system-site-packages cpgw-tray`."
)

NATIVE_MENU_NOTICE = [
    "No native tray menu here (PyGObject is missing).",
    "For one: install python3-gi and the AppIndicator",
    "package, then pipx install --system-site-packages",
    "cpgw-tray (see README). Shown once.",
]

# pystray's backend name -> (our module, our class)
CLASSES = {
    "appindicator": ("gtk", "AppIndicatorBackend"),
    "gtk": ("gtk", "GtkBackend"),
    "xorg": ("xorg", "XorgBackend"),
    "darwin": ("darwin", "DarwinBackend"),
    "win32": ("win32", "Win32Backend"),
}


class Backend(Protocol):
    """What :class:`TrayApp` needs of a tray. Methods run on the tray's thread except
    :meth:`post`, which any thread may call to get there. ``live_menu``: the backend
    redraws countdown rows (:attr:`Entry.live`) in place, so their changes alone need
    no new menu; :meth:`refresh_live` is its chance to do so after a check that left the
    menu's rows as they were."""

    name: str
    has_menu: bool
    live_menu: bool

    @property
    def has_notification(self) -> bool: ...

    def post(self, fn: Callable[[], None]) -> None: ...
    def set_icon(self, icon: Icon) -> None: ...
    def set_title(self, text: str) -> None: ...
    def set_menu(self, entries: Sequence[Entry]) -> None: ...
    def refresh_live(self) -> None: ...
    def notify(self, message: str, title: str) -> None: ...
    def stop(self) -> None: ...


def create(title: str) -> PystrayBackend:
    """The tray for the backend pystray picked (``PYSTRAY_BACKEND`` or its own order).
    Create and :meth:`~PystrayBackend.run` on the main thread."""
    import pystray  # connects to the display on Linux: only when the tray starts

    name = pystray.Icon.__module__.rsplit("_", 1)[-1]  # pystray._gtk -> gtk
    if name not in CLASSES:
        raise RuntimeError(f"pystray backend {name!r} cannot show a tray icon")
    module, cls = CLASSES[name]
    found: type[PystrayBackend] = getattr(importlib.import_module(f".{module}", __name__), cls)
    return found(pystray, title)


__all__ = ["NATIVE_MENU_HELP", "NATIVE_MENU_NOTICE", "Backend", "PystrayBackend", "create"]
