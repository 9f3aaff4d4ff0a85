"""Push in the tray: the websocket (:mod:`.push_link`) started with the tray's poller, a
menu line saying whether it is connected and since when, the last IBKR bulletin as a menu
line, and each new bulletin as a notification, a history event row and an event (hooks,
the phone)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from .menu import Entry
from .push import CONNECTED, CONNECTING

if TYPE_CHECKING:
    from .push_link import Bulletin, PushLink
    from .tray import TrayApp

LINE = 90  # characters of a bulletin shown in the menu


class PushItems:
    """The tray's push rows and what a bulletin does there."""

    def __init__(self, app: TrayApp) -> None:
        from . import paths
        from .bulletins import Bulletins
        from .push_link import PushLink

        self.app = app
        self.last: Bulletin | None = None
        store = Bulletins(paths.bulletins_file(), app.config.url)
        self.link: PushLink = PushLink(
            app.config,
            app.client,
            app.poller,
            store,
            on_bulletin=self.bulletin,
            paused=lambda: app.poller.keepalive_paused(),
        )
        app.listeners.append(self.link.saw)

    def bulletin(self, bulletin: Bulletin) -> None:
        """Push thread: a new bulletin — a notification, a history row, the menu line, and
        the event for the event hooks and the phone (as ``watch`` hands it on)."""
        self.last = bulletin
        history = self.app.history
        if history is not None:
            url = self.app.config.url
            history.record_event("bulletin", bulletin.at, bulletin.message, url, bulletin.ident)
        self.app.notify("IBKR bulletin", bulletin.message)
        self.app.person.tell(bulletin)
        self.app.post_refresh()

    def entries(self) -> list[Entry]:
        push = self.link.push
        if push.state == CONNECTED:
            ago = time.monotonic() - push.since
            since = datetime.fromtimestamp(time.time() - ago).strftime("%H:%M")
            rows = [Entry(f"Push: connected since {since}", enabled=False)]
        elif push.state == CONNECTING:
            rows = [Entry("Push: connecting…", enabled=False)]
        else:
            rows = [Entry("Push: off until a session is ready", enabled=False)]
        if self.last is not None:
            at = self.last.at.astimezone().strftime("%H:%M")
            text = self.last.message
            text = text if len(text) <= LINE else text[: LINE - 1] + "…"
            rows.append(Entry(f"IBKR bulletin {at}: {text}", enabled=False))
        return rows
