"""Calling the person when only a person can help, as a pure policy driven by each
verdict and the time (no I/O, no threads; the tray and ``watch`` act on its events).

- A login that needs a person — logged out after having been ready, or not ready after
  IBKR's weekly token reset, outside a restart window — is announced at once, then
  reminded every ``login_reminder`` seconds, at most :data:`MAX_REMINDERS` times an
  episode, never inside a window, never while snoozed. An episode ends at login, when
  a restart window begins, or when a whole window passed between two checks (a laptop
  asleep across it).
- A competing session (TWS, the phone, the web) is left alone (``leave``), taken back at
  once (``take_back``) or after ``compete_after`` seconds (``take_back_after``) unless
  the person says "leave it this time". At most one automatic takeover per
  :data:`TAKEOVER_EVERY` seconds, never inside a window or a pause, so two programs never
  ping-pong the session. This is the only automatic sender of ``compete: true``.
- A pause ("I'm using TWS") stops keep-alive, automatic reauthentication and takeovers.
- A session that was ready and is not at the next verdict, outside a window, is
  ``dropped`` (the phone hears of it; the desktop shows the state itself).

:data:`KINDS` is the one vocabulary of events: ``watch`` prints them, ``notify_on``
chooses among them, ``on_event`` runs for each. A new kind (push's ``bulletin``) is added
there and handed to :meth:`cpgw_tray.care.person_care.PersonCare.tell`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .status import State, Status

MAX_REMINDERS = 6  # announcements per episode, the first included
TAKEOVER_EVERY = timedelta(minutes=5)
SNOOZE = timedelta(hours=1)
PAUSE = timedelta(hours=1)
POLICIES = ("leave", "take_back", "take_back_after")

# Every kind of event, in the order the README lists them.
KINDS = (
    "login_needed",
    "login_reminder",
    "logged_in",
    "competing",
    "take_over",
    "dropped",
    "bulletin",
)

LOGIN_NEEDED = "IBKR needs you to log in — approve on your phone"
COMPETING = "Another session — TWS, the phone or the web — took over"


@dataclass(frozen=True)
class Event:
    """Something the person should hear of, or an action to take now.

    ``kind``: ``login_needed`` (the first of an episode), ``login_reminder``,
    ``logged_in``, ``competing``, ``take_over`` (send compete: true now), ``dropped``
    (ready, then not, outside a restart window); see :data:`KINDS`."""

    kind: str
    message: str
    at: datetime
    gateway: str | None = field(default=None, kw_only=True)  # its [gateways.NAME], or None

    def to_json(self) -> dict[str, str | None]:
        from .status import iso_utc

        at = iso_utc(self.at)
        return {"event": self.kind, "message": self.message, "at": at, "gateway": self.gateway}


def needs_login(status: Status) -> bool:
    """Only a person can fix this: no session, or a brokerage session the gateway
    itself is not connected for."""
    if status.state is State.LOGGED_OUT:
        return True
    return status.state is State.NOT_AUTHENTICATED and status.connected is not True


class PersonPolicy:
    """What to tell the person and when, from each verdict (see the module)."""

    def __init__(
        self,
        *,
        login_reminder: float = 600.0,
        on_competing: str = "leave",
        compete_after: float = 900.0,
    ) -> None:
        if on_competing not in POLICIES:
            raise ValueError(f"on_competing must be one of {', '.join(POLICIES)}")
        self.login_reminder = login_reminder
        self.on_competing = on_competing
        self.compete_after = timedelta(seconds=compete_after)
        self.was_ready = False
        self.reminders = 0  # announcements in this episode
        self.next_reminder: datetime | None = None
        self.snoozed_until: datetime | None = None
        self.paused_until: datetime | None = None
        self.take_over_at: datetime | None = None  # take_back_after: when
        self.left_this_time = False
        self.last_takeover: datetime | None = None
        self._competing = False
        self._in_window = False
        self._ready = False  # the last verdict was ready

    # ---------------------------------------------------------------- person's say
    def snooze(self, now: datetime) -> None:
        """Menu: no login reminders for an hour."""
        self.snoozed_until = now + SNOOZE

    def pause(self, now: datetime) -> None:
        """Menu: stop keep-alive, automatic reauthentication and takeovers for an hour."""
        self.paused_until = now + PAUSE

    def resume(self) -> None:
        self.paused_until = None

    def leave_this_time(self) -> None:
        """Menu: do not take this competing session back."""
        self.left_this_time = True
        self.take_over_at = None

    def choose(self, on_competing: str, now: datetime) -> None:
        """The person chose another competing policy; it applies to a competing session
        under way too (``take_back_after`` counts from now)."""
        if on_competing not in POLICIES:
            raise ValueError(f"on_competing must be one of {', '.join(POLICIES)}")
        if on_competing != self.on_competing:
            waits = on_competing == "take_back_after" and self._competing
            self.take_over_at = now + self.compete_after if waits else None
        self.on_competing = on_competing

    def paused(self, now: datetime) -> bool:
        return self.paused_until is not None and now < self.paused_until

    def snoozed(self, now: datetime) -> bool:
        return self.snoozed_until is not None and now < self.snoozed_until

    # ---------------------------------------------------------------- verdicts
    def observe(
        self,
        status: Status,
        now: datetime,
        *,
        in_window: bool,
        after_token_reset: bool = False,
        window_passed: bool = False,
    ) -> list[Event]:
        """The events this verdict brings. ``after_token_reset``: no ready session has
        been seen since IBKR's latest weekly token reset, so a full login is due.
        ``window_passed``: a restart window began since the last check."""
        events: list[Event] = []
        if window_passed or (in_window and not self._in_window):
            self._end_episode()  # a new window: what follows is a new episode
        self._in_window = in_window
        if status.state is State.READY:
            if self.reminders:
                events.append(Event("logged_in", "Logged in again", now))
            self.was_ready = True
            self._end_episode()
        elif needs_login(status) and (self.was_ready or after_token_reset) and not in_window:
            events += self._remind(now)
        events += self._competing_events(status, now, in_window)
        if status.state is not State.UNKNOWN:  # "not checked lately" is no drop
            if self._ready and status.state is not State.READY and not in_window:
                # after the verdict's own events: a phone gets what to do first
                events.append(Event("dropped", f"Not ready any more: {status.label}", now))
            self._ready = status.state is State.READY
        return events

    def _end_episode(self) -> None:
        self.reminders, self.next_reminder = 0, None

    def _remind(self, now: datetime) -> list[Event]:
        if self.reminders == 0:
            self.reminders, self.next_reminder = 1, self._after_reminder(now)
            return [] if self.snoozed(now) else [Event("login_needed", LOGIN_NEEDED, now)]
        due = self.next_reminder is not None and now >= self.next_reminder
        if not due or self.reminders >= MAX_REMINDERS or self.snoozed(now):
            return []
        self.reminders += 1
        self.next_reminder = self._after_reminder(now)
        return [Event("login_reminder", LOGIN_NEEDED, now)]

    def _after_reminder(self, now: datetime) -> datetime | None:
        return now + timedelta(seconds=self.login_reminder) if self.login_reminder > 0 else None

    def _competing_events(self, status: Status, now: datetime, in_window: bool) -> list[Event]:
        competing = status.state is State.COMPETING
        events: list[Event] = []
        if competing and not self._competing:  # it just began
            self.left_this_time = False
            events.append(Event("competing", COMPETING, now))
            if self.on_competing == "take_back_after":
                self.take_over_at = now + self.compete_after
        if not competing:
            self.take_over_at = None
        self._competing = competing
        if competing and self._may_take_over(now, in_window):
            self.last_takeover, self.take_over_at = now, None
            events.append(Event("take_over", "Taking the session back", now))
        return events

    def _may_take_over(self, now: datetime, in_window: bool) -> bool:
        if in_window or self.paused(now) or self.left_this_time:
            return False
        if self.last_takeover is not None and now - self.last_takeover < TAKEOVER_EVERY:
            return False
        if self.on_competing == "take_back":
            return True
        if self.on_competing == "take_back_after":
            return self.take_over_at is not None and now >= self.take_over_at
        return False
