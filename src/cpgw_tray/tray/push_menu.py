"""Push in the tray: the websocket (:mod:`.push_link`) started with the tray's poller, a
menu line saying whether it is connected and since when, the last IBKR bulletin as a menu
line, and each new bulletin as a notification, a history event row and an event (hooks,
the phone)."""

from __future__ import annotations

import time
from datetime import datetime
from typing import TYPE_CHECKING

from .. import paths
from ..care.bulletins import Bulletins
from ..care.push_link import Bulletin, PushLink
from ..client.push import CONNECTED, CONNECTING
from .menu import Entry
from .sections import Section

if TYPE_CHECKING:
    from ..care.pipeline import Pipeline
    from ..outlets.history import History
    from .sections import Door
    from .view import View

LINE = 90  # characters of a bulletin shown in the menu


class PushItems(Section):
    """The tray's push rows and what a bulletin does there: a section the tray makes for
    itself when the setting ``push`` is on (its link joins the tray's own pipeline)."""

    def __init__(self, door: Door, pipeline: Pipeline, history: History | None) -> None:
        self.door = door
        self.history = history
        self.tell = pipeline.person.tell  # the event for the event hooks and the phone
        self.last: Bulletin | None = None
        store = Bulletins(paths.bulletins_file(), door.config.url)
        self.link = PushLink(
            door.config,
            pipeline.client,
            pipeline.poller,
            store,
            on_bulletin=self.bulletin,
            paused=pipeline.person.paused_now,
        )

    def bulletin(self, bulletin: Bulletin) -> None:
        """Push thread: a new bulletin — a notification, a history row, the menu line, and
        the event for the event hooks and the phone (as ``watch`` hands it on)."""
        self.last = bulletin
        if self.history is not None:
            url = self.door.config.url
            self.history.record_event(
                "bulletin", bulletin.at, bulletin.message, url, bulletin.ident
            )
        self.door.notify("IBKR bulletin", bulletin.message)
        self.tell(bulletin)
        self.door.redraw()

    def shutdown(self) -> None:
        self.link.stop()

    def entries(self, view: View | None = None) -> list[Entry]:
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
        return rows + [Entry(" ", enabled=False)] * (2 - len(rows))  # Settings never moves
