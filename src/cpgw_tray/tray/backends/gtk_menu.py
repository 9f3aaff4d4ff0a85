"""Our menu as one ``Gtk.Menu`` kept across updates, for the gtk and appindicator backends.

pystray builds a new ``Gtk.Menu`` for every menu it is given, and again after every
click (its handler calls ``update_menu``); appindicator then exports a new menu over
D-Bus: a whole-layout rebuild with new item ids, sent while the panel may be drawing
the old one (xfce4-panel's systray plugin crashed under these). Here the menu is built
once per *shape* (the rows' kinds and submenus); a menu of the same shape changes its
rows in place (label, sensitivity, check mark), which dbusmenu sends as item property
updates, never a layout. A click runs the action of the row shown now, found by its
place, and rebuilds nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..menu import Entry

log = logging.getLogger(__name__)


def shape(entries: Sequence[Entry]) -> tuple[Any, ...]:
    """What a menu must keep to be changed in place: each row's kind and submenu."""
    return tuple(
        (e.separator, e.checked is not None, e.radio, e.default, bool(e.submenu), shape(e.submenu))
        for e in entries
    )


class GtkMenu:
    """Entries as a ``Gtk.Menu``: :meth:`show` changes the built one in place when the
    shape is the same, else builds a new one (:attr:`menu`)."""

    def __init__(self, gtk: Any, glib: Any) -> None:
        self._gtk, self._glib = gtk, glib
        self.menu: Any = None
        self._entries: Sequence[Entry] = ()
        self._updating = False  # set_active emits "activate": not a click

    def show(self, entries: Sequence[Entry]) -> bool:
        """Show ``entries``; whether the menu was built anew."""
        if self.menu is not None and shape(entries) == shape(self._entries):
            self._updating = True
            try:
                self._update(self.menu, self._entries, entries)
            finally:
                self._updating = False
            self._entries = entries
            return False
        self._entries = entries
        self.menu = self._build(entries, ())
        return True

    def _build(self, entries: Sequence[Entry], path: tuple[int, ...]) -> Any:
        gtk = self._gtk
        menu = gtk.Menu.new()
        for n, entry in enumerate(entries):
            if entry.separator:
                menu.append(gtk.SeparatorMenuItem())
                continue
            if entry.checked is not None:
                item = gtk.CheckMenuItem.new_with_label(entry.text)
                item.set_active(entry.checked)
                item.set_draw_as_radio(entry.radio)
            else:
                item = gtk.MenuItem.new_with_label(entry.text)
            if entry.submenu:
                item.set_submenu(self._build(entry.submenu, (*path, n)))
            else:
                item.connect("activate", self._clicked, (*path, n))
            self._label(item, entry)
            item.set_sensitive(entry.enabled)
            menu.append(item)
        menu.show_all()
        return menu

    def _update(self, menu: Any, old: Sequence[Entry], new: Sequence[Entry]) -> None:
        """Change only what differs, row by row (the shapes are equal)."""
        for item, before, entry in zip(menu.get_children(), old, new, strict=True):
            if entry.separator:
                continue
            if entry.text != before.text:
                self._label(item, entry)
            if entry.enabled != before.enabled:
                item.set_sensitive(entry.enabled)
            if entry.checked is not None and entry.checked != before.checked:
                item.set_active(entry.checked)
            if entry.submenu:
                self._update(item.get_submenu(), before.submenu, entry.submenu)

    def _label(self, item: Any, entry: Entry) -> None:
        if entry.default:  # bold, as pystray draws the default item
            item.get_child().set_markup(f"<b>{self._glib.markup_escape_text(entry.text)}</b>")
        else:
            item.set_label(entry.text)

    def _clicked(self, _item: Any, path: tuple[int, ...]) -> None:
        """GLib loop: run the action of the row shown at ``path`` now."""
        if self._updating:
            return
        entries, entry = self._entries, None
        for n in path:
            entry = entries[n]
            entries = entry.submenu
        if entry is not None and entry.action is not None and entry.enabled:
            try:
                entry.action()
            except Exception:
                log.exception("menu action %r failed", entry.text)
