"""Tray backends: pystray behind the small :class:`Backend` interface the app talks to.

pystray is imported only here, and only when the tray starts (on Linux it connects to
the display at import). Each backend says how to run a function on the tray's thread:
the GLib loop (gtk, appindicator), AppKit's main thread (darwin), pystray's own X loop
(xorg), or a serial worker (win32, whose calls are thread-safe).
"""

from __future__ import annotations

import atexit
import gc
import logging
import queue
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

from .icons import ICONS, Icon, icon_image, icon_name, look_of
from .menu import SEPARATOR, Entry
from .status import State

log = logging.getLogger(__name__)

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


class Backend(Protocol):
    """What :class:`TrayApp` needs of a tray. Methods run on the tray's thread except
    :meth:`post`, which any thread may call to get there."""

    name: str
    has_menu: bool
    has_notification: bool

    def post(self, fn: Callable[[], None]) -> None: ...
    def set_icon(self, icon: Icon) -> None: ...
    def set_title(self, text: str) -> None: ...
    def set_menu(self, entries: Sequence[Entry]) -> None: ...
    def notify(self, message: str, title: str) -> None: ...
    def stop(self) -> None: ...


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


class PystrayBackend:
    """The real tray, through pystray. Create and :meth:`run` on the main thread."""

    def __init__(self, title: str) -> None:
        import pystray  # connects to the display on Linux: only when the tray starts

        self._pystray = pystray
        self.name = pystray.Icon.__module__.rsplit("_", 1)[-1]  # pystray._gtk -> gtk
        self.icon = pystray.Icon("cpgw-tray", icon_image(State.UNKNOWN), self._text(title))
        self.has_menu = bool(self.icon.HAS_MENU)
        self.has_notification = bool(self.icon.HAS_NOTIFICATION)
        self._entries: Sequence[Entry] = ()
        self.popup: PopupMenu | None = None
        self._post = self._dispatcher()
        self._notifier = DbusNotifier.create() if self.name in ("gtk", "appindicator") else None
        self._icon_dir = _icon_folder() if self.name == "appindicator" else None
        if self.name == "xorg":
            self._fix_xorg_clicks()
            self.popup = PopupMenu.create()
        log.info("pystray backend: %s (menu: %s)", self.name, self.has_menu)

    def _dispatcher(self) -> Callable[[Callable[[], None]], None]:
        """How to run a function on the tray's thread for this backend."""
        if self.name in ("gtk", "appindicator"):
            from gi.repository import GLib

            def post(fn: Callable[[], None]) -> None:
                def once() -> bool:
                    fn()
                    return False  # run once, not again on the next idle

                GLib.idle_add(once)

            return post
        if self.name == "darwin":  # AppKit: the main thread only (pystray issue 60)
            from PyObjCTools import AppHelper

            return AppHelper.callAfter  # type: ignore[no-any-return]
        if self.name == "xorg":
            return XorgDispatcher(self.icon).post
        return SerialThread().post

    def _fix_xorg_clicks(self) -> None:
        """pystray 0.19.5's xorg backend never selects ButtonPress, so clicks are lost
        (pystray issue 151): add it to the icon window's event mask."""
        try:
            import Xlib.X

            mask = Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask | Xlib.X.ButtonPressMask
            self.icon._window.change_attributes(event_mask=mask)
            self.icon._display.flush()
        except Exception:  # private API: degrade to an icon without clicks, say so
            log.warning("could not enable clicks on the xorg tray icon", exc_info=True)

    # Backend interface -------------------------------------------------------
    def post(self, fn: Callable[[], None]) -> None:
        self._post(fn)

    def set_icon(self, icon: Icon) -> None:
        if self._icon_dir is not None:
            # A name from a folder holding every state's icon since start-up: the panel
            # finds it at once. pystray writes a new temporary file for each change
            # instead, which xfce4-panel sometimes showed blank for seconds.
            indicator = self.icon._appindicator
            if indicator.get_icon_theme_path() != str(self._icon_dir):
                indicator.set_icon_theme_path(str(self._icon_dir))
            indicator.set_icon_full(f"cpgw-tray-{icon_name(icon)}", look_of(icon).label)
            return
        self.icon.icon = icon_image(icon)

    def set_title(self, text: str) -> None:
        self.icon.title = self._text(text)

    def _text(self, text: str) -> str:
        """xorg sets the window name as Latin-1: spell out what it cannot encode."""
        if self.name != "xorg":
            return text
        text = text.replace("—", "-").replace("…", "...")
        return text.encode("latin-1", errors="replace").decode("latin-1")

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self._entries = entries
        if self.popup is not None:  # no native menu: a click opens the popup
            item = self._pystray.MenuItem("Menu", lambda: self._show_popup(), default=True)
            if self.icon.menu is None:
                self.icon.menu = self._pystray.Menu(item)
            return
        self.icon.menu = self._pystray.Menu(*[self._item(e) for e in entries])

    def _show_popup(self) -> None:
        if self.popup is not None:
            self.popup.show(self._entries)

    def _item(self, entry: Entry) -> Any:
        pystray = self._pystray
        if entry.separator:
            return pystray.Menu.SEPARATOR
        if entry.submenu:
            return pystray.MenuItem(
                entry.text, pystray.Menu(*[self._item(e) for e in entry.submenu])
            )
        action = entry.action
        return pystray.MenuItem(
            entry.text,
            (lambda: action()) if action is not None else None,
            checked=(lambda _item: bool(entry.checked)) if entry.checked is not None else None,
            radio=entry.radio,
            default=entry.default,
            enabled=entry.enabled,
        )

    def notify(self, message: str, title: str) -> None:
        if self._notifier is not None:  # gtk, appindicator: asynchronous D-Bus call
            self._notifier.notify(title, message)
            return

        def send() -> None:
            try:
                self.icon.notify(message, title)
            except Exception:  # no notification service: not worth more than a log line
                log.warning("notification failed", exc_info=True)

        if self.name == "darwin":  # pystray runs osascript and waits: keep it off the UI
            threading.Thread(target=send, name="notify", daemon=True).start()
        else:
            send()

    def stop(self) -> None:
        self.post(self.icon.stop)  # on the tray's thread, like every other change

    def run(self, setup: Callable[[], None]) -> None:
        def on_setup(icon: Any) -> None:
            # pystray's setup thread; showing the icon is a tray change like any other
            self.post(lambda: setattr(icon, "visible", True))
            setup()

        try:
            self.icon.run(setup=on_setup)
        except Exception as exc:
            # pystray's gtk clean-up closes its notification over D-Bus and raises when
            # the desktop has no notification service; by then the icon is gone.
            log.debug("tray clean-up failed: %s", exc)


def _icon_folder() -> Path:
    """Every icon as a PNG in a private folder, removed at exit."""
    folder = Path(tempfile.mkdtemp(prefix="cpgw-tray-icons-"))
    for icon in ICONS:
        icon_image(icon).save(folder / f"cpgw-tray-{icon_name(icon)}.png")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


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


class DbusNotifier:
    """Desktop notifications over D-Bus without waiting for the answer: pystray's own
    call is synchronous and would block the tray's thread if the service is slow."""

    def __init__(self) -> None:
        from gi.repository import Gio, GLib

        self._gio, self._glib = Gio, GLib
        self._bus = Gio.bus_get_sync(Gio.BusType.SESSION, None)
        self._id = 0  # replace our previous notification instead of stacking them

    @classmethod
    def create(cls) -> DbusNotifier | None:
        try:
            return cls()
        except Exception:
            log.info("no session bus: notifications off", exc_info=True)
            return None

    def notify(self, title: str, message: str) -> None:
        params = self._glib.Variant(
            "(susssasa{sv}i)", ("cpgw-tray", self._id, "", title, message, [], {}, -1)
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

    def _done(self, bus: Any, result: Any) -> None:
        try:
            self._id = bus.call_finish(result).unpack()[0]
        except self._glib.Error as exc:
            log.info("notification not shown: %s", exc.message)


class PopupMenu:
    """The menu for trays without one (xorg): a Tk popup at the pointer, on its own
    thread that sleeps on a queue between clicks."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Sequence[Entry]] = queue.SimpleQueue()
        self.notice: list[str] = []  # lines shown atop the next popup, once
        self.on_notice_shown: Callable[[], None] | None = None
        threading.Thread(target=self._run, name="popup-menu", daemon=True).start()

    @classmethod
    def create(cls) -> PopupMenu | None:
        import importlib.util

        # Only look: importing Tk costs memory, paid on the first click instead.
        if importlib.util.find_spec("tkinter") is None:
            log.warning("tkinter is missing: the tray icon has no menu; install python3-tk")
            return None
        return cls()

    def show(self, entries: Sequence[Entry]) -> None:
        if self.notice:
            entries = [*(Entry(line, enabled=False) for line in self.notice), SEPARATOR, *entries]
            self.notice = []
            if self.on_notice_shown is not None:
                self.on_notice_shown()
        self._queue.put(entries)

    def _run(self) -> None:
        while True:
            entries = self._queue.get()  # blocks: no Tk loop and no wake-ups while idle
            chosen: list[Callable[[], None]] = []
            self._popup(entries, chosen)
            # Tk objects must die on the thread that made them: collect the cycles
            # here, before an action such as Quit lets the main thread finish.
            gc.collect()
            for action in chosen:
                try:
                    action()
                except Exception:
                    log.exception("menu action failed")

    @staticmethod
    def _popup(entries: Sequence[Entry], chosen: list[Callable[[], None]]) -> None:
        """Show the menu at the pointer until it closes; collect the chosen action."""
        import tkinter

        try:
            root = tkinter.Tk(className="cpgw-tray")
        except tkinter.TclError:
            log.exception("cannot open the popup menu")
            return
        root.withdraw()
        counter = iter(range(10_000))

        def options(e: Entry) -> dict[str, Any]:
            action = e.action
            found: dict[str, Any] = {
                "label": e.text,
                "state": "normal" if e.enabled else "disabled",
            }
            if action is not None:
                found["command"] = lambda: chosen.append(action)
            return found

        def build(parent: Any, items: Sequence[Entry]) -> Any:
            menu = tkinter.Menu(parent, tearoff=False)
            for e in items:
                if e.separator:
                    menu.add_separator()
                elif e.submenu:
                    menu.add_cascade(label=e.text, menu=build(menu, e.submenu))
                elif e.checked is not None:
                    # A plain Tcl variable name: tkinter.Variable objects delete
                    # themselves from whichever thread collects them, which Tk forbids.
                    name = f"cpgw_tray_check_{next(counter)}"
                    root.setvar(name, "1" if e.checked else "0")
                    marks: dict[str, Any] = {"variable": name}
                    if e.radio:
                        menu.add_radiobutton(**options(e), **marks, value="1")
                    else:
                        menu.add_checkbutton(**options(e), **marks, onvalue="1", offvalue="0")
                else:
                    menu.add_command(**options(e))
            return menu

        try:
            menu = build(root, entries)
            menu.bind("<Unmap>", lambda _event: root.after(50, root.quit))
            x, y = root.winfo_pointerxy()
            root.after(0, lambda: menu.tk_popup(x, y))
            root.mainloop()  # until the menu closes
        finally:
            root.destroy()
