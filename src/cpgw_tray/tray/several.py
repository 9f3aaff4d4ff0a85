"""Several gateways in one tray icon: one :class:`~cpgw_tray.tray.tray_app.TrayApp` per
gateway (each with its own pipeline: pacing, keep-alive, care, person care, pause, on its
own threads, so a slow gateway never delays another's checks), each drawing on a
:class:`Part` instead of the real backend; :class:`Several` combines what the parts would
show into the one real icon, title and menu, on the tray's thread.

The icon is the worst gateway's (red, then yellow, orange, blue, grey, green) with the
several-gateways mark; the title and the menu's first row say each gateway's state, worst
first ("paper: logged out · live: ready"). The menu has one section per gateway in the
settings' order, each that gateway's own rows and actions, then one Notifications toggle
and one Quit for all. Notifications name their gateway.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..care import maintenance
from ..model.status import GREEN, GREY, ORANGE, RED, YELLOW
from .icons import Icon, look_of, several_icon
from .menu import SEPARATOR, Entry

if TYPE_CHECKING:
    from .backends import Backend
    from .tray_app import TrayApp

WORST_FIRST = (RED, YELLOW, ORANGE, maintenance.LOOK.colour, GREY, GREEN)
SHARED = ("Notifications", "Quit")  # the rows every gateway's menu ends with: shown once


def severity(icon: Icon) -> int:
    """Where ``icon``'s colour comes in :data:`WORST_FIRST` (0: the worst)."""
    colour = look_of(icon).colour
    return WORST_FIRST.index(colour) if colour in WORST_FIRST else len(WORST_FIRST)


def _words(icon: Icon) -> str:
    """The look's label inside a sentence: "logged out", "IBKR restart"."""
    label = look_of(icon).label
    return label[0].lower() + label[1:] if label[1:2].islower() else label


class Part:
    """The backend one gateway's tray draws on: it keeps what it would show and has
    :class:`Several` show it together with the others'."""

    name = "part"
    has_menu = True

    def __init__(self, several: Several, gateway: str) -> None:
        self.several, self.gateway = several, gateway
        self.icon: Icon | None = None
        self.entries: Sequence[Entry] = ()
        self.live_menu = several.backend.live_menu

    @property
    def has_notification(self) -> bool:
        return self.several.backend.has_notification

    def post(self, fn: Callable[[], None]) -> None:
        self.several.backend.post(fn)

    def set_icon(self, icon: Icon) -> None:
        self.icon = icon
        self.several.show()

    def set_title(self, text: str) -> None:
        """The part's own title is not shown: the combined one says each state."""

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self.entries = entries
        self.several.show()

    def refresh_live(self) -> None:
        self.several.backend.refresh_live()

    def notify(self, message: str, title: str) -> None:
        self.several.backend.notify(f"{self.gateway}: {message}", title)

    def stop(self) -> None:
        self.several.quit()


class Several:
    """The one tray of several gateways' apps (:meth:`add` each, in the settings'
    order); changes the real backend only on the tray's thread."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.parts: list[Part] = []
        self.apps: list[TrayApp] = []
        self._shown: tuple[object, ...] | None = None
        self._quitting = False

    def part(self, gateway: str) -> Part:
        """The backend for the app of ``gateway``: :meth:`add` the app, then start it on
        this part."""
        part = Part(self, gateway)
        self.parts.append(part)
        return part

    def add(self, app: TrayApp) -> None:
        self.apps.append(app)

    def _known(self) -> list[tuple[Part, Icon]]:
        """The parts with an icon shown, worst first (a tie: the settings' order)."""
        known = [(part, part.icon) for part in self.parts if part.icon is not None]
        return sorted(known, key=lambda pair: severity(pair[1]))

    def summary(self) -> str:
        """Each gateway's state, worst first: "paper: logged out · live: ready"."""
        return " · ".join(f"{part.gateway}: {_words(icon)}" for part, icon in self._known())

    def icon(self) -> Icon | None:
        """The worst gateway's icon, marked as several (None before any is known)."""
        known = self._known()
        return several_icon(known[0][1]) if known else None

    def entries(self) -> list[Entry]:
        """The summary row, each gateway's section in the settings' order, then one
        Notifications toggle and one Quit."""
        items = [Entry(self.summary() or "Checking…", enabled=False), SEPARATOR]
        for part in self.parts:
            rows = list(part.entries)
            while rows and (rows[-1].separator or rows[-1].text in SHARED):
                rows.pop()
            items += [Entry(f"Gateway {part.gateway}", enabled=False), *rows, SEPARATOR]
        on = all(app.notifications for app in self.apps)
        items.append(Entry("Notifications", self.toggle_notifications, checked=on))
        items.append(Entry("Quit", self.quit))
        return items

    def show(self) -> None:
        """Tray thread: the combined icon, title and menu, each set when it changed."""
        icon, title, entries = self.icon(), self.summary(), self.entries()
        shown = (icon, title, [(e.text, e.enabled, e.checked, e.submenu) for e in entries])
        if self._shown is not None and shown == self._shown:
            return
        before = self._shown
        self._shown = shown
        if icon is not None and (before is None or before[0] != icon):
            self.backend.set_icon(icon)
        if title and (before is None or before[1] != title):
            self.backend.set_title(title)
        self.backend.set_menu(entries)

    def toggle_notifications(self) -> None:
        """Menu: notifications on or off for every gateway."""
        wanted = not all(app.notifications for app in self.apps)
        for app in self.apps:
            if app.notifications != wanted:
                app.toggle_notifications()

    def quit(self) -> None:
        """Menu: every gateway's app stops, then the tray (an app's own stop of its
        part comes back here and is ignored)."""
        if self._quitting:
            return
        self._quitting = True
        for app in self.apps:
            app.quit()
        self.backend.stop()
