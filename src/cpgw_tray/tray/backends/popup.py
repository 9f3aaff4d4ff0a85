"""The menu for trays without one (pystray's xorg backend): a Tk popup beside the icon.

Tk runs on a thread of its own that sleeps on a queue between clicks (no Tk loop, no
wake-ups while closed); each opening builds the menu from the entries of the moment,
places it beside the icon (below a top panel's icon, above a bottom one's, beside a
side panel's) so it never covers it, and redraws countdown rows while it is open.
"""

from __future__ import annotations

import gc
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any

from ..menu import SEPARATOR, Entry
from .live import LiveLabels

log = logging.getLogger(__name__)

Box = tuple[int, int, int, int]  # x, y, width, height on the screen


def place(
    menu: tuple[int, int], icon: Box | None, screen: tuple[int, int], pointer: tuple[int, int]
) -> tuple[int, int]:
    """Where the menu's top-left corner goes: beside the icon, on the screen, never
    over the icon; at the pointer when the icon's place is not known."""
    w, h = menu
    sw, sh = screen
    if icon is None:
        x, y = pointer
        return max(0, min(x, sw - w)), max(0, min(y, sh - h))
    ix, iy, iw, ih = icon
    x = max(0, min(ix, sw - w))
    if iy + ih + h <= sh:  # below (a panel at the top)
        return x, iy + ih
    if iy - h >= 0:  # above (a panel at the bottom)
        return x, iy - h
    y = max(0, min(iy, sh - h))  # beside (a panel at the side)
    return (ix + iw, y) if ix + iw + w <= sw else (max(0, ix - w), y)


class PopupMenu:
    """The popup's thread and what it shows next."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Sequence[Entry], Box | None]] = queue.SimpleQueue()
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

    def show(self, entries: Sequence[Entry], icon: Box | None = None) -> None:
        """Any thread: open the popup with ``entries`` beside ``icon``."""
        if self.notice:
            entries = [*(Entry(line, enabled=False) for line in self.notice), SEPARATOR, *entries]
            self.notice = []
            if self.on_notice_shown is not None:
                self.on_notice_shown()
        self._queue.put((entries, icon))

    def _run(self) -> None:
        while True:
            entries, icon = self._queue.get()  # blocks: no Tk loop, no wake-ups while idle
            chosen: list[Callable[[], None]] = []
            self._popup(entries, icon, chosen)
            # Tk objects must die on the thread that made them: collect the cycles
            # here, before an action such as Quit lets the main thread finish.
            gc.collect()
            for action in chosen:
                try:
                    action()
                except Exception:
                    log.exception("menu action failed")

    @staticmethod
    def _popup(
        entries: Sequence[Entry], icon: Box | None, chosen: list[Callable[[], None]]
    ) -> None:
        """Show the menu beside the icon until it closes; collect the chosen action."""
        import tkinter

        try:
            root = tkinter.Tk(className="cpgw-tray")
        except tkinter.TclError:
            log.exception("cannot open the popup menu")
            return
        root.withdraw()
        counter = iter(range(10_000))
        live = LiveLabels()

        def options(e: Entry) -> dict[str, Any]:
            action = e.action
            found: dict[str, Any] = {
                "label": e.live() if e.live is not None else e.text,  # as of this opening
                "state": "normal" if e.enabled else "disabled",
            }
            if action is not None:
                found["command"] = lambda: chosen.append(action)
            return found

        def relabel(menu: Any, index: Any) -> Callable[[str], None]:
            return lambda text: menu.entryconfigure(index, label=text)

        def build(parent: Any, items: Sequence[Entry]) -> Any:
            menu = tkinter.Menu(parent, tearoff=False)
            for e in items:
                if e.separator:
                    menu.add_separator()
                elif e.submenu:
                    submenu = build(menu, e.submenu)
                    submenu.bind("<Map>", lambda _e, s=submenu, m=menu: beside(s, m))
                    menu.add_cascade(
                        label=e.text,
                        menu=submenu,
                        state="normal" if e.enabled else "disabled",
                    )
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
                    if e.live is not None:
                        live.track(e, relabel(menu, menu.index("end")))
            return menu

        def beside(submenu: Any, parent: Any) -> None:
            """Tk posts a submenu right of its parent and, where it does not fit, pushes
            it back over the parent: move it to the parent's left side instead."""
            px, pw = parent.winfo_rootx(), parent.winfo_width()
            sx, sy, sw = submenu.winfo_rootx(), submenu.winfo_rooty(), submenu.winfo_reqwidth()
            if sx < px + pw and px < sx + sw and px - sw >= 0:
                submenu.post(px - sw, sy)

        def redraw() -> None:
            live.tick()
            if live.every is not None:
                root.after(int(live.every * 1000), redraw)

        try:
            menu = build(root, entries)
            menu.bind("<Unmap>", lambda _event: root.after(50, root.quit))
            menu.update_idletasks()
            x, y = place(
                (menu.winfo_reqwidth(), menu.winfo_reqheight()),
                icon,
                (root.winfo_screenwidth(), root.winfo_screenheight()),
                root.winfo_pointerxy(),
            )
            root.after(0, lambda: menu.tk_popup(x, y))
            if live.every is not None:
                root.after(int(live.every * 1000), redraw)
            root.mainloop()  # until the menu closes
        finally:
            root.destroy()
