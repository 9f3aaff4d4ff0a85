"""The menu's support items: the last 24 hours as a picture (from the tray's history) and
the doctor's diagnostics bundle, each made off the tray's thread; a menu section acting
through the tray's door (:mod:`cpgw_tray.tray.sections`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .. import paths
from .menu import Entry
from .sections import Section

if TYPE_CHECKING:
    from ..outlets.history import History
    from .sections import Door
    from .view import View


class SupportItems(Section):
    """ "Show history…" (off without a history: the demo, tests) and "Save diagnostics…"."""

    separated = False  # the tray's own last items follow

    def __init__(
        self, door: Door, history: History | None, open_url: Callable[[str], bool]
    ) -> None:
        self.door = door
        self.history = history
        self._open_url = open_url

    def entries(self, view: View | None = None) -> list[Entry]:
        return [
            Entry("Show history…", self.show_history, enabled=self.history is not None),
            Entry("Save diagnostics…", self.save_diagnostics),
        ]

    def show_history(self) -> None:
        """Menu: the last 24 hours as a picture, opened, or its path in the menu."""
        history = self.history

        def run() -> None:
            from ..cli.history_cmd import write_timeline

            assert history is not None
            path = write_timeline(
                history,
                paths.state_dir() / "history-24h.png",
                datetime.now(timezone.utc),
                self.door.config,
            )
            if not self._open_url(path.as_uri()):
                self.door.note(f"History picture: {path}")

        self.door.background("history", run, "History picture failed")

    def save_diagnostics(self) -> None:
        """Menu: the support bundle; "saving…" at once, then its path (menu, notification)."""

        def run() -> None:
            from ..cli.doctor import save_bundle

            name = f"diagnostics-{datetime.now():%Y%m%d-%H%M%S}.zip"
            path = save_bundle(paths.state_dir() / name, self.door.config)
            self.door.note(f"Diagnostics saved: {path}")
            self.door.notify("Diagnostics saved", str(path))

        self.door.note("Saving diagnostics… (the doctor asks the gateway first)")
        self.door.background("diagnostics", run, "Diagnostics failed")
