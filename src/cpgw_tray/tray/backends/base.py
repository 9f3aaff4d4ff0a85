"""What every pystray backend shares: the icon, its title and menu as pystray objects,
notifications through pystray, and the helpers some backends use (a serial "tray thread"
and live countdown rows).

pystray's pitfalls on Windows and macOS are handled here for every backend: the icon is
shown only from pystray's setup, once ``run()`` has started (shown earlier, win32
crashes); a menu set before then waits for it (macOS fails on menu calls before
``run()``); notifications wait for the shown icon (win32 drops them silently before);
radio items and a default item are asked for only where the backend has them
(``HAS_MENU_RADIO``, ``HAS_DEFAULT_ACTION``: macOS has neither); and a stop hides the
icon before it ends the loop, so no dead icon stays in Windows' notification area.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ...model.status import State
from ..icons import Icon, icon_image
from ..menu import Entry

if TYPE_CHECKING:
    from PIL import Image

    from .popup import PopupMenu

log = logging.getLogger(__name__)

SHOW_WAIT = 10.0  # seconds set-up waits for the icon before building the rest anyway


class PystrayBackend:
    """The real tray, through pystray. Subclasses say how to reach the tray's thread
    (:meth:`post`) and override what their backend does differently."""

    name = "pystray"
    live_menu = False  # countdown rows redrawn in place (see :class:`LiveLabels`)
    popup: PopupMenu | None = None  # the menu, where the tray has none of its own

    def __init__(self, pystray: Any, title: str) -> None:
        self._pystray = pystray
        self.icon = pystray.Icon("cpgw-tray", self.image(State.UNKNOWN), self.text(title))
        self.has_menu = bool(self.icon.HAS_MENU)
        self.has_radio = bool(self.icon.HAS_MENU_RADIO)
        self.has_default = bool(self.icon.HAS_DEFAULT_ACTION)
        self._can_notify = bool(self.icon.HAS_NOTIFICATION)
        self.shown = False  # tray thread: the icon shows (from pystray's setup, after run())
        self._pending: Sequence[Entry] | None = None  # a menu set before it showed
        self._entries: Sequence[Entry] = ()
        log.info("pystray backend: %s (menu: %s)", self.name, self.has_menu)

    # ------------------------------------------------------------ what differs
    def post(self, fn: Callable[[], None]) -> None:
        raise NotImplementedError

    def image(self, icon: Icon) -> Image.Image:
        """The picture for ``icon`` (a state's, or the restart's) on this tray."""
        return icon_image(icon)

    def text(self, text: str) -> str:
        """The title as this tray can show it."""
        return text

    # ------------------------------------------------------------ Backend interface
    @property
    def has_notification(self) -> bool:
        """pystray can notify here (``HAS_NOTIFICATION``) and the icon shows; callers
        say it in the menu otherwise."""
        return self._can_notify and self.shown

    def set_icon(self, icon: Icon) -> None:
        self.icon.icon = self.image(icon)

    def set_title(self, text: str) -> None:
        self.icon.title = self.text(text)

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self._entries = entries
        if not self.shown:  # no native menu before run(): it is built once the icon shows
            self._pending = entries
            return
        items = [pystray_item(self._pystray, e, self.has_radio, self.has_default) for e in entries]
        self.icon.menu = self._pystray.Menu(*items)

    def refresh_live(self) -> None:
        """After a check that left the rows as they were: nothing here (the menu is
        rebuilt when a countdown changes, or redrawn while it shows)."""

    def notify(self, message: str, title: str) -> None:
        if not self.shown:
            log.info("no notification before the icon shows: %s", message)
            return
        try:
            self.icon.notify(message, title)
        except Exception:  # no notification service: not worth more than a log line
            log.warning("notification failed", exc_info=True)

    def stop(self) -> None:
        self.post(self._remove)  # on the tray's thread, like every other change

    def _remove(self) -> None:
        """Tray thread: hide the icon, then end pystray's loop (a stop alone leaves a
        blank icon in Windows' notification area until the mouse passes over it)."""
        try:
            self.icon.visible = False
        except Exception:
            log.debug("could not hide the icon", exc_info=True)
        self.shown = False
        self.icon.stop()

    def _show(self) -> None:
        """Tray thread, from pystray's setup: show the icon, then the menu set so far."""
        self.icon.visible = True
        self.shown = True
        pending, self._pending = self._pending, None
        if pending is not None:
            self.set_menu(pending)

    def run(self, setup: Callable[[], None]) -> None:
        """pystray's loop, on the main thread, until :meth:`stop`; ``setup`` runs on
        pystray's setup thread once the icon shows: setup imports the heavy parts, which
        would otherwise hold up the tray's thread (the GIL, the disk) before the icon is up."""

        def on_setup(_icon: Any) -> None:
            shown = threading.Event()

            def show() -> None:  # a tray change like any other, on the tray's thread
                try:
                    self._show()
                finally:
                    # one round more: some trays (appindicator) show it one idle call later
                    self.post(shown.set)

            self.post(show)
            if not shown.wait(SHOW_WAIT):
                log.warning("the icon did not show within %.0f s; going on", SHOW_WAIT)
            setup()

        try:
            self.icon.run(setup=on_setup)
        except Exception as exc:
            # pystray's gtk clean-up closes its notification over D-Bus and raises when
            # the desktop has no notification service; by then the icon is gone.
            log.debug("tray clean-up failed: %s", exc)


def pystray_item(pystray: Any, entry: Entry, radio: bool = True, default: bool = True) -> Any:
    """A pystray menu item for ``entry``, enabled or not (submenus too); a radio item
    and the default item only where the backend has them (``radio``, ``default``)."""
    if entry.separator:
        return pystray.Menu.SEPARATOR
    if entry.submenu:
        return pystray.MenuItem(
            entry.text,
            pystray.Menu(*[pystray_item(pystray, e, radio, default) for e in entry.submenu]),
            enabled=entry.enabled,
        )
    action = entry.action
    return pystray.MenuItem(
        entry.text,
        (lambda: action()) if action is not None else None,
        checked=(lambda _item: bool(entry.checked)) if entry.checked is not None else None,
        radio=entry.radio and radio,
        default=entry.default and default,
        enabled=entry.enabled,
    )


class SerialThread:
    """Runs posted functions one at a time on a daemon thread: the "tray thread" for
    backends without a main loop of their own to post to (pystray marshals their
    calls itself)."""

    def __init__(self, name: str = "tray-ui") -> None:
        self._queue: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        threading.Thread(target=self._run, name=name, daemon=True).start()

    def post(self, fn: Callable[[], None]) -> None:
        self._queue.put(fn)

    def _run(self) -> None:
        while True:
            fn = self._queue.get()  # blocks: no wake-ups while idle
            try:
                fn()
            except Exception:
                log.exception("tray update failed")
