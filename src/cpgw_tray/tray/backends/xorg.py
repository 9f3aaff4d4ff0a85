"""The xorg backend: pystray's bare XEmbed icon (a pip install without PyGObject).

pystray gives it no menu, no notifications and clicks it never asks X for; here a
left or right click opens our Tk popup (:mod:`.popup`) beside the icon, posted work
reaches pystray's X loop over a connection of our own, and the icon fills its square
(pystray pastes it on black without its alpha, so a disc would get black corners).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..icons import Icon, fit, xorg_icon
from ..menu import Entry
from .base import PystrayBackend
from .popup import PopupMenu

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

MENU_BUTTONS = (1, 3)  # left and right click open the menu


class XorgBackend(PystrayBackend):
    """pystray's xorg backend with the popup for a menu."""

    name = "xorg"
    live_menu = True  # the popup is built at each opening and redraws its countdowns

    def __init__(self, pystray: Any, title: str) -> None:
        super().__init__(pystray, title)
        self._dispatcher = XorgDispatcher(self.icon)
        self._enable_clicks()
        self._paint_unstretched()
        self.popup = PopupMenu.create()

    def post(self, fn: Callable[[], None]) -> None:
        self._dispatcher.post(fn)

    def image(self, icon: Icon) -> Image.Image:
        return xorg_icon(icon)

    def text(self, text: str) -> str:
        """xorg sets the window name as Latin-1: spell out what it cannot encode."""
        text = text.replace("—", "-").replace("…", "...")
        return text.encode("latin-1", errors="replace").decode("latin-1")

    def _enable_clicks(self) -> None:
        """pystray 0.19.5's xorg backend never selects ButtonPress, so clicks are lost
        (pystray issue 151), and it answers the left button only: ask X for presses and
        open the menu on the left or the right button."""
        try:
            import Xlib.X

            mask = Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask
            self.icon._window.change_attributes(event_mask=mask)
            self.icon._display.flush()

            def on_press(event: Any) -> None:
                if event.detail in MENU_BUTTONS:
                    self._show_popup()

            self.icon._message_handlers[Xlib.X.ButtonPress] = on_press
        except Exception:  # private API: degrade to an icon without clicks, say so
            log.warning("could not enable clicks on the xorg tray icon", exc_info=True)

    def _paint_unstretched(self) -> None:
        """pystray stretches the icon to its window (trayer gives a tall 24 x 62 slot):
        paint it square and centred on its own colour instead (see :func:`fit`)."""
        icon = self.icon

        def paint(width: int, height: int) -> None:
            data = icon._icon_data
            if data is not None and data.size == (width, height):
                return
            data = fit(icon._icon, width, height)
            data.tostring = data.tobytes  # type: ignore[attr-defined]  # python-xlib reads it
            icon._icon_data = data

        icon._assert_icon_data = paint  # pystray's _draw calls it on each expose

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self._entries = entries
        if self.popup is None:  # no Tk either: pystray's default item is all there is
            super().set_menu(entries)
            return
        if self.icon.menu is None:  # a click opens the popup
            item = self._pystray.MenuItem("Menu", lambda: self._show_popup(), default=True)
            self.icon.menu = self._pystray.Menu(item)

    def _show_popup(self) -> None:
        """pystray's X loop thread: the popup, placed beside the icon."""
        if self.popup is not None:
            self.popup.show(self._entries, self._icon_box())

    def _icon_box(self) -> tuple[int, int, int, int] | None:
        """The icon window's (x, y, width, height) on the screen, or None."""
        try:
            window = self.icon._window
            root = self.icon._display.screen().root
            geometry = window.get_geometry()
            origin = root.translate_coords(window, 0, 0)
            return (origin.x, origin.y, geometry.width, geometry.height)
        except Exception:
            log.info("icon position unknown: the popup opens at the pointer", exc_info=True)
            return None


class XorgDispatcher:
    """Runs posted functions on pystray's xorg event-loop thread.

    pystray marshals calls from other threads by sending an X message over the same
    python-xlib connection its loop reads, and python-xlib is not safe for that: now
    and then a reply is lost and the icon never paints, the loop blocked for good.
    Here the wake-up message goes over a connection of our own, and the posted work
    then runs on the loop's thread, where pystray calls its X code directly.
    """

    def __init__(self, icon: Any) -> None:
        from Xlib import X, display

        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._sender = display.Display()
        self._atom = self._sender.intern_atom("_CPGW_TRAY_POST")
        self._window = self._sender.create_resource_object("window", icon._window.id)
        pystray_handler = icon._message_handlers.get(X.ClientMessage)

        def on_client_message(event: Any) -> None:
            if event.client_type == self._atom:
                self._drain()
            elif pystray_handler is not None:
                pystray_handler(event)

        icon._message_handlers[X.ClientMessage] = on_client_message

    def post(self, fn: Callable[[], None]) -> None:
        from Xlib.protocol import event

        self._queue.put(fn)
        message = event.ClientMessage(
            window=self._window, client_type=self._atom, data=(32, [0, 0, 0, 0, 0])
        )
        with self._lock:  # one sender at a time on our own connection
            self._window.send_event(message, event_mask=0)  # to the window's owner
            self._sender.flush()

    def _drain(self) -> None:
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                fn()
            except Exception:
                log.exception("tray update failed")
