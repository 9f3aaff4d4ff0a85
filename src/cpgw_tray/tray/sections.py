"""The menu's sections and the door they act through.

A section (the gateway items, the settings items, the demo's Simulate menu) is given to
:class:`~cpgw_tray.tray.tray_app.TrayApp` at construction as a factory taking a :class:`Door`: what
a section may ask of the tray, from any thread. It draws its rows with
``entries(view)`` (the tray's :class:`~cpgw_tray.tray.view.View` of the current status)
and never sees the app. :func:`run_in_background` is the one way work leaves the tray's
thread: the job runs on a daemon thread, and a failure is logged and handed on, never
lost.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import timedelta
    from pathlib import Path

    from ..settings.config import Config
    from .menu import Entry
    from .view import View

log = logging.getLogger(__name__)


def run_in_background(
    name: str, job: Callable[[], object], failed: Callable[[Exception], None]
) -> None:
    """Run ``job`` on a daemon thread named ``name``; its exception is logged with its
    traceback and given to ``failed`` (whose own failure is logged)."""

    def run() -> None:
        try:
            job()
        except Exception as exc:
            log.exception("%s failed", name)
            try:
                failed(exc)
            except Exception:
                log.exception("reporting the failure of %s failed", name)

    threading.Thread(target=run, name=name, daemon=True).start()


class Door(Protocol):
    """What a menu section may ask of the tray (any thread), and the settings in use."""

    @property
    def config(self) -> Config: ...

    def note(self, text: str | None) -> None:
        """Show the outcome of an action in the menu."""

    def notify(self, title: str, message: str) -> None:
        """A desktop notification, if the person wants them."""

    def alert(self, title: str, message: str) -> None:
        """A desktop notification whatever the Notifications toggle says: the answer to
        what the person just did (a saved file, a click)."""

    def redraw(self) -> None:
        """Draw the menu again (after a section's own state changed)."""

    def check_now(self, fresh: bool = False) -> None:
        """Check the gateway at once (``fresh``: not answered from a recent reply)."""

    def background(self, name: str, job: Callable[[], object], failure: str) -> None:
        """Run ``job`` off the tray's thread; a failure is logged and noted as
        ``failure`` with the exception's name."""

    def post(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the tray's thread."""

    def open_login(self) -> None:
        """The gateway's login page in the browser."""

    def open_path(self, path: Path) -> None:
        """A file or folder with the desktop's program."""

    def save(self, name: str, value: Any) -> bool:
        """Write one setting back to the file (a menu choice); whether it was saved."""

    def reconfigure(self, config: Config) -> None:
        """Tray thread: saved settings, to the running parts."""

    def clock_moved(self, by: timedelta) -> None:
        """The wall clock the tray reads was moved (the demo's): the times it keeps move
        with it."""


class Section(ABC):
    """A part of the menu. ``separated``: a separator follows its rows."""

    separated = True

    @abstractmethod
    def entries(self, view: View) -> list[Entry]:
        """The section's rows for ``view``."""

    def state_changed(self) -> None:  # noqa: B027 (an optional hook)
        """Any thread: the status's state changed (the gateway items look again)."""

    def shutdown(self) -> None:  # noqa: B027 (an optional hook)
        """At quit: stop waiting on anything."""


@runtime_checkable
class Saver(Protocol):
    """A section that writes settings back (the settings items): :meth:`Door.save` goes
    to it."""

    def save(self, name: str, value: Any) -> bool: ...


SectionFactory = Callable[[Door], Section]
