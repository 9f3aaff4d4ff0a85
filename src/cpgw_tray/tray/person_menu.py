"""The tray's side of calling the person (:mod:`cpgw_tray.care.person_care`): the events as
notifications, and the menu's items — "Log in now…" first while a login is needed, the
snooze, the countdown before a takeover with "Leave it this time", and a "Session care"
submenu with the pause (the time it resumes) and the radio group that chooses (and
saves) ``on_competing``.

Events arrive on the poller's thread and are kept for the tray's thread, which shows
them with the verdict they came with (:meth:`Announcer.announce`, from
:meth:`TrayApp.apply`): one notification, the person's words instead of the state's.
Where the backend cannot notify (pystray's xorg) ``notify-send`` is used when present,
else the popup's notice line.
"""

from __future__ import annotations

import logging
import math
import shutil
import subprocess
import textwrap
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from ..model.person import POLICIES, Event, needs_login
from ..model.status import State
from .menu import SEPARATOR, Entry
from .rows import local_clock

if TYPE_CHECKING:
    from ..care.person_care import PersonCare
    from .backends import Backend
    from .sections import Door
    from .view import View

log = logging.getLogger(__name__)

TITLE = "IBKR gateway"
ANNOUNCED = ("login_needed", "login_reminder", "competing", "take_over")
AFTER_RESTART = "Not back after IBKR's restart: "


class Teller(Protocol):
    """What the announcer needs of the tray (:class:`~cpgw_tray.tray.tray_app.TrayApp`): its
    backend's ways of telling, the person's choice of notifications, and the door's
    note, login page and background work."""

    backend: Backend | None
    notifications: bool
    person: PersonCare

    def note(self, text: str | None) -> None: ...
    def redraw(self) -> None: ...
    def open_login(self) -> None: ...
    def take_over(self) -> None: ...
    def background(self, name: str, job: Callable[[], object], failure: str) -> None: ...


def _hhmm(moment: datetime) -> str:
    """ "14:05 GMT": this computer's clock and its zone, as every time in the menu."""
    return local_clock(moment)


class Announcer:
    """The person policy's events as notifications; everything but :meth:`receive` runs
    on the tray's thread."""

    def __init__(self, tray: Teller, which: Callable[[str], str | None] = shutil.which) -> None:
        self.tray = tray
        self._which = which
        self._pending: list[Event] = []
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- notifications
    def receive(self, event: Event) -> None:
        """Poller thread: keep the event for the verdict it came with."""
        with self._lock:
            self._pending.append(event)

    def announce(self, was_quiet: bool) -> bool:
        """Tray thread: notify the events received since the last verdict; True if one
        was shown (the state's own notification is then left out)."""
        with self._lock:
            events, self._pending = self._pending, []
        said = False
        for event in events:
            if event.kind == "take_over":
                self.tray.note("Taking the session back (your competing-session choice)")
            if event.kind not in ANNOUNCED or not self.tray.notifications:
                continue
            prefix = AFTER_RESTART if was_quiet and event.kind == "login_needed" else ""
            said = self.tell(prefix + event.message, event.kind) or said
        return said

    def _buttons(self, kind: str) -> list[tuple[str, Callable[[], None]]]:
        """What a notification of this kind offers: the login page when a login is
        needed; taking the session over, or leaving it, when another session took it."""
        if kind in ("login_needed", "login_reminder"):
            return [("Log in now", self.tray.open_login)]
        if kind == "competing":

            def leave() -> None:
                self.tray.person.leave_this_time()
                self.tray.redraw()

            return [("Take the session over", self.tray.take_over), ("Leave it", leave)]
        return []

    def tell(self, message: str, kind: str = "") -> bool:
        """One notification by whatever means this desktop has; False where none."""
        backend = self.tray.backend
        if backend is None:
            return False
        if backend.has_notification:
            with_action = getattr(backend, "notify_with_action", None)
            buttons = self._buttons(kind)
            if with_action is not None and buttons:  # where a click can answer it
                with_action(message, TITLE, *buttons[0], *buttons[1:2])
            else:
                backend.notify(message, TITLE)
            return True
        command = self._which("notify-send")
        if command is not None:
            argv = [command, "--app-name=cpgw-tray", TITLE, message]
            self.tray.background("notify-send", lambda: _run(argv), "notify-send failed")
            return True
        popup = getattr(backend, "popup", None)
        if popup is not None:  # shown atop the next click's menu
            popup.notice = [*textwrap.wrap(message, 50), f"({datetime.now():%H:%M})"]
            return True
        return False


class PersonItems:
    """The person policy's menu items (tray thread), acting on ``person`` and through the
    tray's door."""

    def __init__(self, door: Door, person: PersonCare) -> None:
        self.door = door
        self.person = person

    def head(self, view: View) -> list[Entry]:
        """The first row while a person must log in."""
        if needs_login(view.status) and not view.expected:
            return [Entry("Log in now…", self.door.open_login)]
        return []

    def rows(self, view: View) -> list[Entry]:
        """The person's rows at the foot of the status rows (so they never push the
        actions down): the snooze while a person must log in; the takeover's countdown
        and *Leave it this time* while another session holds it."""
        status = view.status
        person = self.person
        policy, now = person.policy, person.now()
        items: list[Entry] = []
        if needs_login(status) and not view.expected:
            if policy.snoozed(now) and policy.snoozed_until is not None:
                text = f"Login reminders snoozed until {_hhmm(policy.snoozed_until)}"
                items.append(Entry(text, enabled=False))
            else:
                snooze = self._refreshing(person.snooze)
                items.append(Entry("Snooze login reminders for 1 hour", snooze))
        if status.state is State.COMPETING and policy.on_competing == "take_back_after":
            items.append(Entry(self._countdown(), enabled=False, live=self._countdown, every=15))
            leave = self._refreshing(person.leave_this_time)
            counting = policy.take_over_at is not None
            items.append(Entry("Leave it this time", leave, enabled=counting))
        return items

    def entries(self, view: View) -> list[Entry]:
        """The *Session care* submenu: one action row in every state."""
        person = self.person
        policy = person.policy
        title = "Session care"
        if person.paused() and policy.paused_until is not None:
            title = f"Session care paused until {_hhmm(policy.paused_until)}"
            text = f"Resume (paused until {_hhmm(policy.paused_until)})"
            pause = Entry(text, self._refreshing(person.resume))
        else:
            pause = Entry("Pause for 1 hour (I'm using TWS)", self._refreshing(person.pause))
        after = f"Take it back after {policy.compete_after.total_seconds() / 60:g} min"
        words = {"leave": "Leave it, tell me", "take_back": "Take it back at once"}
        choices = tuple(
            Entry(
                words.get(name, after),
                self._choose(name),
                checked=policy.on_competing == name,
                radio=True,
            )
            for name in POLICIES
        )
        # One row: the menu must fit a small screen below the icon.
        heading = Entry("When TWS or the phone takes over:", enabled=False)
        return [Entry(title, submenu=(pause, SEPARATOR, heading, *choices))]

    def _countdown(self) -> str:
        """The row before an automatic takeover (``take_back_after``)."""
        person = self.person
        policy, due = person.policy, person.policy.take_over_at
        if due is None:
            return "Left to the other session" if policy.left_this_time else "Not taking it back"
        minutes = max(1, math.ceil((due - person.now()).total_seconds() / 60))
        return f"Taking the session back in {minutes} min"

    def _refreshing(self, action: Callable[[], object]) -> Callable[[], None]:
        def go() -> None:
            action()
            self.door.redraw()

        return go

    def _choose(self, name: str) -> Callable[[], None]:
        def go() -> None:
            if self.door.save("on_competing", name):
                self.person.choose(name)  # unsaved: the choice in force stays
            self.door.redraw()

        return go


def _run(command: list[str]) -> None:
    """notify-send, waited for on its own thread (it returns at once)."""
    try:
        subprocess.run(command, timeout=30, check=False, capture_output=True)
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("notify-send failed: %s", exc)
