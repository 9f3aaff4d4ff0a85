"""The tray: icon, tooltip and menu, changed in one place on the tray's own thread.

:class:`TrayApp` holds the product's behaviour and talks to a small
:class:`~cpgw_tray.tray.backends.Backend` interface (the pystray one is in :mod:`backends`;
tests use :mod:`backends.dummy`). The poller hands each result to
:meth:`TrayApp.on_status` on its own thread; that only *posts* :meth:`TrayApp.apply` to
the tray's thread, which changes the icon when the state changes, the tooltip after
each check and the menu when what it shows changed. Inside an IBKR restart window an
expected drop gets its own look and no notifications (:mod:`cpgw_tray.care.maintenance`).
What it shows is computed once per status (:mod:`cpgw_tray.tray.view`); the check
pipeline is :mod:`cpgw_tray.care.pipeline`'s. The person policy's events and items are
:mod:`cpgw_tray.tray.person_menu`'s; the other parts of the menu (the gateway items, the
settings, the demo's Simulate menu) are sections given at construction, acting through
the narrow door of :mod:`cpgw_tray.tray.sections`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..care.pipeline import Pipeline
from ..model.status import SESSION_STATES, State, Status, unknown
from ..model.urls import gateway_root
from . import opener
from . import view as tray_view
from .menu import SEPARATOR, Entry, signature
from .person_menu import Announcer, PersonItems
from .push_menu import PushItems
from .sections import Saver, SectionFactory, run_in_background
from .support_menu import SupportItems
from .view import View

if TYPE_CHECKING:
    from ..care.poller import Poller
    from ..client.api import GatewayClient, Outcome
    from ..outlets.history import History
    from ..settings.config import Config
    from .backends import Backend
    from .icons import Icon

log = logging.getLogger(__name__)


# ------------------------------------------------------------------------ the app


UTC_NOW = partial(datetime.now, timezone.utc)  # the default clock, as every other one


def worth_telling(known: State | None, status: Status, quiet: bool) -> bool:
    """A notification for ``status`` after the last known state ``known``: changes into
    and out of ``ready`` between known states — not the first verdict after start, not a
    verdict gone stale (grey for a moment after a resume), while a drop seen after a stale
    spell still counts. None while ``quiet`` (inside an IBKR restart window and for 5
    minutes after it): the change is judged against the state before the window, so one
    notification follows only when the session has not come back."""
    if status.state is State.UNKNOWN or quiet or known is None or known is status.state:
        return False
    return State.READY in (known, status.state)


STATUS_ROWS = 12  # the status block's rows in every state (the fullest: 12) ...
CLOCK_ROWS = 2  # ... of which the IBKR restart and weekly reset rows, when they are on


def status_block(rows: list[Entry], last: Entry, size: int = STATUS_ROWS) -> list[Entry]:
    """``rows`` and ``last`` (the last action's outcome, just above the actions) on
    exactly ``size`` rows, so the actions below never move: blank rows go in between;
    a longer block loses rows before ``last``."""
    room = size - 1
    if len(rows) > room:
        log.warning("%d status rows, %d shown", len(rows) + 1, size)
    blank = [Entry(" ", enabled=False)] * (room - len(rows))
    return [*rows[:room], *blank, last]


class TrayApp:
    """The tray's behaviour, independent of any toolkit."""

    def __init__(
        self,
        config: Config,
        client: GatewayClient,
        *,
        sections: Sequence[SectionFactory] = (),
        on_quit: Callable[[], None] | None = None,
        open_url: Callable[[str], bool] = opener.open_url,
        open_path: Callable[[Path], bool] = opener.open_path,
        now: Callable[[], datetime] = UTC_NOW,
        poller: Poller | None = None,
        history: History | None = None,
        log_path: Path | None = None,
        pause_file: Path | None = None,
        gateway: str | None = None,
    ) -> None:
        """``gateway``: the settings' name for the watched gateway (one of several),
        carried by every status it publishes (None: the settings name none)."""
        self.config = config
        self.gateway = gateway
        self.client = client
        self.history = history  # None: nothing recorded (the demo, tests)
        self._on_quit = on_quit
        self._open_url = open_url
        self._open_path = open_path
        self._now = now
        self.notifications = config.notifications
        self.status = unknown(config.url)
        self.since = now()
        self.came_from: State | None = None  # the state before the one shown (since_row)
        self.backend: Backend | None = None
        self.announcer = Announcer(self)  # the person policy's events as notifications
        self.pipeline = Pipeline(
            config,
            client,
            self.on_status,
            on_event=self.announcer.receive,
            pause_file=pause_file,
            wall=self._now,
            log_path=log_path,
            poller=poller,
        )
        # the pipeline's parts, read by the menu's items (written only by its reconfigure)
        self.ibkr, self.care = self.pipeline.ibkr, self.pipeline.care
        self.person, self.poller = self.pipeline.person, self.pipeline.poller
        self.person_items = PersonItems(self, self.person)  # the person policy's rows
        self.last_action: str | None = None  # the outcome of the last menu action
        # Also told of every status, on the poller's thread (the health endpoint, hooks).
        self.listeners: list[Callable[[Status], None]] = []
        self._shown_icon: Icon | None = None
        self._known: State | None = None  # the last state that was not unknown, nor quiet
        self._was_quiet = False  # the last known state came inside a restart window's quiet
        self._shown_title: str | None = None
        self._shown_menu: tuple[Any, ...] | None = None
        self.quitting = threading.Event()
        # last: they may ask the door. The push rows (setting ``push``) come just above the
        # settings, the support items close the list.
        self.sections = [make(self) for make in sections]
        # found once: a runtime Protocol check costs more than the rest of a menu's rows
        self.saver = next((s for s in self.sections if isinstance(s, Saver)), None)
        self.push_items = PushItems(self, self.pipeline, history) if config.push else None
        if self.push_items is not None:
            self.listeners.append(self.push_items.link.saw)
            at = None if self.saver is None else self.sections.index(self.saver)
            self.sections.insert(len(self.sections) if at is None else at, self.push_items)
        self.support = SupportItems(self, history, open_url)
        self.sections.append(self.support)

    # ---------------------------------------------------------------- lifecycle
    def start(self, backend: Backend) -> None:
        """Show the first icon and start polling. Returns at once (pystray's ``stop()``
        waits for the setup thread, so nothing here may block)."""
        self.backend = backend
        backend.post(self.refresh)
        self.poller.start()
        if self.push_items is not None:
            self.push_items.link.start()

    def quit(self) -> None:
        """Stop everything now; a hung request is abandoned, never awaited."""
        if self.quitting.is_set():
            return
        self.quitting.set()
        log.info("quitting")
        self.poller.stop()
        for section in self.sections:
            section.shutdown()
        if self._on_quit is not None:
            self._on_quit()
        if self.backend is not None:
            self.backend.stop()

    # ---------------------------------------------------------------- threads
    def on_status(self, status: Status) -> None:
        """Poller thread: hand the snapshot to the tray's thread. When the state changes,
        the sections are told (the gateway items look again, on a worker of their own)."""
        if self.gateway is not None:
            status = replace(status, gateway=self.gateway)
        if self.history is not None:
            self.history.record(status)
        self.post(lambda: self.apply(status))
        if status.state is not self.status.state:
            for section in self.sections:
                section.state_changed()
        for listener in self.listeners:
            listener(status)

    # ---------------------------------------------------------------- the sections' door
    def post(self, fn: Callable[[], None]) -> None:
        """Any thread: run ``fn`` on the tray's thread (nothing once quitting)."""
        if self.backend is not None and not self.quitting.is_set():
            self.backend.post(fn)

    def redraw(self) -> None:
        """Any thread: redraw the menu from the current snapshot."""
        if self.backend is not None:
            self.backend.post(self.refresh)

    def note(self, text: str | None) -> None:
        """Any thread: show the outcome of an action in the menu."""
        self.last_action = text
        self.redraw()

    def background(self, name: str, job: Callable[[], object], failure: str) -> None:
        """Any thread: run ``job`` off the tray's thread; a failure is logged and shown
        as "``failure`` (its name); see the log"."""
        run_in_background(
            name, job, lambda exc: self.note(f"{failure} ({type(exc).__name__}); see the log")
        )

    def clock_moved(self, by: timedelta) -> None:
        """Tray thread: the demo's clock moved; "Since …" moves with it."""
        self.since += by

    def save(self, name: str, value: Any) -> bool:
        """Tray thread: a menu choice written back to the settings file (where there is
        a settings section); whether it was saved (else the choice stays as it was)."""
        return self.saver is None or self.saver.save(name, value)

    def notify(self, title: str, message: str) -> None:
        """Any thread: a desktop notification, if the user wants them."""
        if self.notifications:
            self.alert(title, message)

    def alert(self, title: str, message: str) -> None:
        """Any thread: a desktop notification whatever the Notifications toggle says,
        where the desktop has them: the answer to what the person just did."""
        backend = self.backend
        if backend is not None and backend.has_notification:
            backend.post(lambda: backend.notify(message, title))

    def refresh(self) -> None:
        """Tray thread: re-apply the current snapshot (after a menu toggle)."""
        self.apply(self.status)

    def reconfigure(self, config: Config) -> None:
        """Tray thread: saved settings, to the tray's own and to the pipeline's parts."""
        if config.notifications != self.config.notifications:
            self.notifications = config.notifications
        self.config = config
        self.pipeline.reconfigure(config)

    def view(self) -> View:
        """What the tray shows for the current snapshot (computed once per apply)."""
        return tray_view.compute(
            self.status,
            since=self.since,
            came_from=self.came_from,
            last_action=self.last_action,
            ibkr=self.ibkr,
            wall=self._now,
            latest=lambda: self.status,
        )

    def apply(self, status: Status) -> None:
        """Tray thread: the one place that changes the tray; it renders the view."""
        backend = self.backend
        if backend is None or self.quitting.is_set():
            return
        previous = self.status
        if status.state is not previous.state:
            self.since, self.came_from = self._now(), previous.state
            self.last_action = None  # the new state says how the action went
        self.status = status
        said = self.announcer.announce(self._was_quiet)  # before the view: it may note
        known, was_quiet = self._remember(status)
        view = self.view()
        if view.icon != self._shown_icon:
            log.debug("icon: %s", view.icon)
            backend.set_icon(view.icon)
            self._shown_icon = view.icon
        if view.tooltip != self._shown_title:
            backend.set_title(view.tooltip)
            self._shown_title = view.tooltip
        entries = self.entries(view)
        menu = signature(entries, live=backend.live_menu)
        if menu != self._shown_menu:
            backend.set_menu(entries)
            self._shown_menu = menu
        else:  # the same rows: their countdowns may have moved
            backend.refresh_live()
        wanted = self.notifications and backend.has_notification
        if wanted and worth_telling(known, status, self._was_quiet) and not said:
            after = "Not back after IBKR's restart: " if was_quiet else ""
            backend.notify(f"{after}{status.label}. {status.detail}", "IBKR gateway")

    def _remember(self, status: Status) -> tuple[State | None, bool]:
        """Keep the last known state and whether it came in a restart window's quiet;
        returns both as they were before ``status``. A grey verdict changes neither."""
        before = self._known, self._was_quiet
        if status.state is not State.UNKNOWN:
            self._was_quiet = self.ibkr.quiet(status)
            if not self._was_quiet:
                self._known = status.state
        return before

    # ---------------------------------------------------------------- menu
    def entries(self, view: View | None = None) -> list[Entry]:
        """The menu for ``view`` (default: the current snapshot's). Each state has a
        fixed row layout: a fact not known says so, so rows never move between openings."""
        view = view or self.view()
        status = view.status
        state = status.state
        person = self.person_items
        *facts, last = view.rows  # the last: the last action's outcome
        size = STATUS_ROWS - (0 if self.ibkr.enabled else CLOCK_ROWS)  # fits small screens
        items = status_block([*person.head(view), *facts, *person.rows(view)], last, size)
        items += [SEPARATOR, Entry("Check now", self.check_now, default=True)]
        answers = status.http_status is not None and state is not State.ACCESS_DENIED
        items.append(Entry("Open login page", self.open_login, enabled=answers))
        if state is State.COMPETING:  # taking over logs the user out elsewhere: ask first
            take_over = Entry("Take the session over (logs out TWS / the phone)", self.take_over)
            items.append(Entry("Reauthenticate…", submenu=(take_over,)))
        else:
            can = state in (State.NOT_AUTHENTICATED, State.DISCONNECTED)
            items.append(Entry("Reauthenticate", self.reauthenticate, enabled=can))
        end = Entry("Yes, end the session", self.logout)
        items.append(Entry("Log out…", submenu=(end,), enabled=state in SESSION_STATES))
        items += [*self.person_items.entries(view), SEPARATOR]
        for section in self.sections:
            items += [*section.entries(view), *([SEPARATOR] if section.separated else [])]
        if self.saver is None:  # else under Settings
            items += [Entry(view.hint, enabled=False), SEPARATOR]
        items += [
            Entry("Notifications", self.toggle_notifications, checked=self.notifications),
            Entry("Quit", self.quit),
        ]
        return items

    def check_now(self, fresh: bool = False) -> None:
        """Menu: check at once (coalesced with a check already running, unless
        ``fresh``: the gateway was just changed)."""
        self.poller.check_now(fresh)

    def open_login(self) -> None:
        """Menu: the gateway's login page in the default browser."""
        url = gateway_root(self.config.url)
        self._open(lambda: self._open_url(url), url, "No browser found")

    def open_path(self, path: Path) -> None:
        """Menu: a file or folder (the gateway's log) with the desktop's program."""
        self._open(lambda: self._open_path(path), str(path), "Nothing here opens files")

    def _open(self, attempt: Callable[[], bool], target: str, why: str) -> None:
        """Off the tray's thread (a browser may take its time): where nothing can open
        ``target``, show it where the person can copy it: the menu and a notification."""

        def run() -> None:
            try:
                opened = attempt()
            except Exception:
                log.exception("opening %s failed", target)
                opened = False
            if opened:
                return
            log.warning("%s: %s", why, target)
            self.note(f"{why}; open {target} yourself")
            self.alert(why, f"Open it yourself: {target}")  # the click's answer

        self.background("opener", run, f"Opening {target}")

    def reauthenticate(self) -> None:
        """Menu: start the brokerage session again (off the tray's thread)."""
        self._act("Reauthenticate", self.client.reauthenticate)

    def take_over(self) -> None:
        """Menu, after asking: take the session over from TWS or the phone."""
        self._act("Take over", lambda: self.client.reauthenticate(take_over=True))

    def logout(self) -> None:
        """Menu: end the session (off the tray's thread)."""
        self._act("Log out", self.client.logout)

    def _act(self, what: str, action: Callable[[], Outcome]) -> None:
        """Run a menu action on a worker thread; whatever happens is shown, never lost."""

        def run() -> None:
            try:
                outcome = action()
                message = outcome.message
                log.info("%s", message)
            except Exception as exc:
                log.exception("%s failed", what)
                message = f"{what} failed: internal error ({type(exc).__name__}); see the log"
                self.notify("cpgw-tray", message)
            self.care.forget()
            self.note(message)
            self.poller.check_now(fresh=True)

        self.background("action", run, f"{what} failed")

    def toggle_notifications(self) -> None:
        """Menu: notifications on or off, saved to the settings file (else unchanged)."""
        wanted = not self.notifications
        if self.save("notifications", wanted):
            self.notifications = wanted
        self.redraw()
