"""The GTK backends: gtk (``Gtk.StatusIcon``, XEmbed) and appindicator (StatusNotifier).

Both run on the GLib loop, send notifications over D-Bus without waiting, and keep one
``Gtk.Menu`` whose rows change in place (:mod:`.gtk_menu`; pystray's would be rebuilt
whole at every change and click); countdown rows' labels are set again on the loop.
gtk pops the menu up in this process, so the redraws run only while it shows (no
wake-ups otherwise); appindicator's menu is drawn by the panel over D-Bus with no
signal here when it opens, so the openings are read from the D-Bus calls the panel
makes (``AboutToShow``): each starts the redraws for a while (hosts rarely say when a
menu closes), and each check's result redraws them too; only rows whose text changed
are sent. Nothing wakes up while no menu shows.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..icons import ICONS, SEVERAL_ICONS, Icon, icon_image, icon_name, look_of
from ..menu import Entry
from .base import PystrayBackend, pystray_item
from .gtk_menu import GtkMenu
from .live import LiveLabels

log = logging.getLogger(__name__)


class GtkBackend(PystrayBackend):
    """pystray's gtk backend: a ``Gtk.StatusIcon`` in an XEmbed tray."""

    name = "gtk"
    live_menu = True

    def __init__(self, pystray: Any, title: str) -> None:
        from gi.repository import GLib, Gtk

        self._glib = GLib
        super().__init__(pystray, title)
        self._notifier = DbusNotifier.create()
        self.live = LiveLabels()
        self.menu = GtkMenu(Gtk, GLib)
        # pystray builds a menu of its own on every update_menu() (after a left click on
        # gtk too) and would replace ours: the menu is ours alone
        self.icon._update_menu = lambda: None
        self._timer: int | None = None

    def post(self, fn: Callable[[], None]) -> None:
        def once() -> bool:
            fn()
            return False  # run once, not again on the next idle

        self._glib.idle_add(once)

    def notify(self, message: str, title: str) -> None:
        if self._notifier is not None:  # asynchronous: a slow service never blocks
            self._notifier.notify(title, message)

    def notify_with_action(
        self,
        message: str,
        title: str,
        label: str,
        action: Callable[[], None],
        also: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        """A click on the notification runs ``action``; ``also``: a second button (best
        effort: where the notification service supports actions)."""
        if self._notifier is not None:
            self._notifier.notify(title, message, (label, action), also)

    def set_menu(self, entries: Sequence[Entry]) -> None:
        """Tray thread (the GLib loop): the menu in place where its shape is the same
        (see :mod:`.gtk_menu`), else built anew and handed to the tray once."""
        self._entries = entries
        if not self.shown:  # no native menu before run(): it is built once the icon shows
            self._pending = entries
            return
        if self.has_default:  # gtk: pystray's menu, for a left click's default action
            # (set past its setter, which would build a second Gtk.Menu). Not on
            # appindicator: its show fails silently on a menu without a default item
            # (the item stays passive: no icon on the panel).
            items = [pystray_item(self._pystray, e, radio=self.has_radio) for e in entries]
            self.icon._menu = self._pystray.Menu(*items)
        rebuilt = self.menu.show(entries)
        if rebuilt:
            self._install(self.menu.menu)
        self._hook(entries, rebuilt)

    def _install(self, menu: Any) -> None:
        """A menu built anew, to the tray (gtk pops ``_menu_handle`` up itself)."""
        self.icon._menu_handle = menu

    def _hook(self, entries: Sequence[Entry], rebuilt: bool) -> None:
        """Find the live rows in the menu; watch when to redraw them (once per menu)."""
        menu = self.menu.menu
        self.live.clear()
        self._track(menu, entries)
        if rebuilt:
            self._stop_timer()
            self._watch(menu)

    def _track(self, menu: Any, entries: Sequence[Entry]) -> None:
        for widget, entry in zip(menu.get_children(), entries, strict=False):
            if entry.live is not None:
                self.live.track(entry, widget.set_label)
            submenu = widget.get_submenu() if entry.submenu else None
            if submenu is not None:
                self._track(submenu, entry.submenu)

    def _watch(self, menu: Any) -> None:
        """gtk: the menu pops up in this process; redraw only while it shows."""
        menu.connect("show", lambda _menu: self._start_timer())
        menu.connect("hide", lambda _menu: self._stop_timer())

    def _start_timer(self) -> None:
        self.live.tick()
        every = self.live.every
        if every is not None and self._timer is None:
            self._timer = self._glib.timeout_add(int(every * 1000), self._on_timer)

    def _on_timer(self) -> bool:
        self.live.tick()
        return True  # again, until stopped

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._glib.source_remove(self._timer)
            self._timer = None


DBUSMENU = "com.canonical.dbusmenu"
OPEN_FOR = 60.0  # seconds an opening keeps the countdowns moving, unless "closed" comes


class AppIndicatorBackend(GtkBackend):
    """pystray's appindicator backend: a StatusNotifierItem whose menu the panel draws."""

    name = "appindicator"

    def __init__(self, pystray: Any, title: str) -> None:
        self._icon_dir = _icon_folder()
        super().__init__(pystray, title)
        self._until = 0.0  # monotonic end of the redraws after the last opening
        self._watch_openings()

    def _watch_openings(self) -> None:
        """Read the panel's dbusmenu calls to us: ``AboutToShow`` (or an "opened"
        event) means the menu is opening, a "closed" event that it closed."""
        try:
            from gi.repository import Gio

            Gio.bus_get_sync(Gio.BusType.SESSION, None).add_filter(self._on_dbus)
        except Exception:
            log.info("menu openings not seen: countdowns move at each check", exc_info=True)

    def _on_dbus(self, _bus: Any, message: Any, incoming: bool) -> Any:
        """GDBus's worker thread, for every message: only look, then hand it on."""
        if incoming and message.get_interface() == DBUSMENU:
            member = message.get_member()
            if member in ("AboutToShow", "AboutToShowGroup"):
                self.post(self._opened)
            elif member in ("Event", "EventGroup"):
                body = message.get_body()
                events = [body.unpack()] if member == "Event" else body.unpack()[0]
                names = {event[1] for event in events if event[0] == 0}  # the root menu
                if "opened" in names:
                    self.post(self._opened)
                elif "closed" in names:
                    self.post(self._stop_timer)
        return message

    def _opened(self) -> None:
        self._until = time.monotonic() + OPEN_FOR
        self._start_timer()

    def _on_timer(self) -> bool:
        self.live.tick()
        if time.monotonic() < self._until:
            return True
        self._timer = None
        return False  # the menu has most likely closed: stop waking up

    def _show(self) -> None:
        """The item made active in any case, once pystray's own show has run: that one
        can fail silently before it does (seen on xfce4-panel: no icon)."""
        super()._show()
        indicator = self.icon._appindicator
        active = type(indicator.get_status()).ACTIVE
        self.post(lambda: indicator.set_status(active))

    def _install(self, menu: Any) -> None:
        """Exported over D-Bus by libappindicator: one layout for a new menu."""
        super()._install(menu)
        self.icon._appindicator.set_menu(menu)

    def _watch(self, menu: Any) -> None:
        """The panel opens the menu in its own process: see :meth:`_watch_openings`."""
        if time.monotonic() < self._until:  # rebuilt while open: keep it moving
            self._start_timer()

    def refresh_live(self) -> None:
        self.live.tick()

    def set_icon(self, icon: Icon) -> None:
        # A name from a folder holding every state's icon since start-up: the panel
        # finds it at once. pystray writes a new temporary file for each change
        # instead, which xfce4-panel sometimes showed blank for seconds.
        indicator = self.icon._appindicator
        if indicator.get_icon_theme_path() != str(self._icon_dir):
            indicator.set_icon_theme_path(str(self._icon_dir))
        indicator.set_icon_full(f"cpgw-tray-{icon_name(icon)}", look_of(icon).label)


def _icon_folder() -> Path:
    """Every icon as a PNG in a private folder, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="cpgw-tray-icons-"))
    for icon in (*ICONS, *SEVERAL_ICONS):
        icon_image(icon).save(folder / f"cpgw-tray-{icon_name(icon)}.png")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


class DbusNotifier:
    """Desktop notifications over D-Bus without waiting for the answer: pystray's own
    call is synchronous and would block the tray's thread if the service is slow."""

    def __init__(self, bus: Any = None) -> None:
        from gi.repository import Gio, GLib

        self._gio, self._glib = Gio, GLib
        self._bus = bus or Gio.bus_get_sync(Gio.BusType.SESSION, None)
        self._id = 0  # replace our previous notification instead of stacking them
        self._actions: dict[str, Callable[[], None]] = {}  # the shown one's buttons, by key
        name, path = "org.freedesktop.Notifications", "/org/freedesktop/Notifications"
        flags = Gio.DBusSignalFlags.NONE
        self._bus.signal_subscribe(name, name, "ActionInvoked", path, None, flags, self._invoked)

    @classmethod
    def create(cls) -> DbusNotifier | None:
        try:
            return cls()
        except Exception:
            log.info("no session bus: notifications off", exc_info=True)
            return None

    def notify(
        self,
        title: str,
        message: str,
        action: tuple[str, Callable[[], None]] | None = None,
        also: tuple[str, Callable[[], None]] | None = None,
    ) -> None:
        """``action``: (label, what a click does), where the service supports actions;
        ``also``: a second button."""
        chosen = {"default": action, "also": also if action else None}
        actions = [part for key, pair in chosen.items() if pair for part in (key, pair[0])]
        self._actions = {key: pair[1] for key, pair in chosen.items() if pair}
        params = self._glib.Variant(
            "(susssasa{sv}i)", ("cpgw-tray", self._id, "", title, message, actions, {}, -1)
        )
        self._bus.call(
            "org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications",
            "Notify",
            params,
            self._glib.VariantType("(u)"),
            self._gio.DBusCallFlags.NONE,
            5000,
            None,
            self._done,
        )

    def _invoked(self, *signal: Any) -> None:
        """ActionInvoked (id, key) from the service: our notification was clicked."""
        shown, key = signal[-1].unpack()
        action = self._actions.get(key) if shown == self._id else None
        if action is not None:
            try:
                action()
            except Exception:
                log.exception("notification action failed")

    def _done(self, bus: Any, result: Any) -> None:
        try:
            self._id = bus.call_finish(result).unpack()[0]
        except self._glib.Error as exc:
            log.info("notification not shown: %s", exc.message)
