"""What goes to the phone and when, as a pure policy over an injected time (no I/O, no
threads; :mod:`.notify` sends).

- Words: each event said for someone away from the desk — a loopback login URL is no
  use on a phone, so a login says "log in on the computer that runs the gateway" and
  names it (:func:`phone_text`).
- Bursts: the first message goes at once and opens a 30-second hold; what arrives
  during the hold goes out as one summary when it ends ("3 changes in 40 s: …"), which
  opens the next hold. A flapping gateway sends at most one message per hold.
- Quiet hours (``notify_quiet``, local time): messages wait and go out as one summary
  when they end, except a ``login_needed`` in the hour before IBKR's weekly token reset
  (the last chance to log in before it).
- At most :data:`LIMIT` messages wait; the oldest is dropped and counted when full.

The checks of ``notify_urls``, ``notify_on`` and ``notify_quiet`` live here too.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, time, timedelta, tzinfo

from ..model.ibkr_clock import next_token_reset

LIMIT = 100
HOLD = timedelta(seconds=30)
URGENT_BEFORE_RESET = timedelta(hours=1)
QUIET_LOOK = timedelta(minutes=1)  # how often held messages look whether quiet hours ended


def in_quiet(span: tuple[time, time] | None, local: datetime) -> bool:
    """Whether ``local`` (a local time) falls in the quiet hours; the span may cross
    midnight."""
    if span is None:
        return False
    start, end = span
    now = local.time().replace(tzinfo=None)
    return start <= now < end if start < end else now >= start or now < end


@dataclass(frozen=True)
class Message:
    """One thing to tell: an event's ``kind`` (or ``state`` for a state change)."""

    kind: str
    text: str
    at: datetime


def phone_text(kind: str, message: str, computer: str) -> str:
    """An event in plain words for someone away from the computer ``computer``."""
    there = f"the computer that runs the gateway ({computer})"
    if kind in ("login_needed", "login_reminder"):
        again = "Still waiting: " if kind == "login_reminder" else ""
        return f"{again}IBKR needs you to log in: log in on {there}, then approve on your phone."
    if kind == "logged_in":
        return f"Logged in again on {computer}: nothing to do."
    if kind == "competing":
        return (
            f"Another session — TWS, the phone or the web — took over from the gateway on "
            f"{computer}. Nothing to do if that was you; else take the session back from "
            f"the tray's menu on {computer}."
        )
    if kind == "take_over":
        return (
            f"The gateway on {computer} takes the session back (your on_competing choice): "
            "TWS, the phone or the web is logged out."
        )
    if kind == "dropped":
        return f"The gateway on {computer}: {message}."
    return f"{message} ({computer})"


def urgent(message: Message) -> bool:
    """A login needed in the hour before the weekly token reset: it breaks quiet hours."""
    if message.kind != "login_needed":
        return False
    return next_token_reset(message.at) - message.at <= URGENT_BEFORE_RESET


def span_text(span: timedelta) -> str:
    seconds = max(0, round(span.total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class Outbox:
    """Messages in, texts to send out (see the module). ``zone``: the local time zone
    for the quiet hours (None: the computer's)."""

    def __init__(
        self,
        *,
        quiet: tuple[time, time] | None = None,
        zone: tzinfo | None = None,
        hold: timedelta = HOLD,
        limit: int = LIMIT,
    ) -> None:
        self.quiet = quiet
        self.zone = zone
        self.hold = hold
        self.limit = limit
        self.dropped = 0  # messages dropped because the queue was full
        self._now: list[str] = []  # to send at once
        self._held: deque[Message] = deque()
        self._hold_ends: datetime | None = None
        self._since = 0  # of self.dropped, how many were held in the waiting summary

    def quiet_at(self, now: datetime) -> bool:
        return in_quiet(self.quiet, now.astimezone(self.zone))

    def add(self, message: Message) -> None:
        now = message.at
        quiet = self.quiet_at(now)
        if (quiet and urgent(message)) or (
            not quiet and not self._held and (self._hold_ends is None or now >= self._hold_ends)
        ):
            self._now.append(message.text)
            self._hold_ends = now + self.hold
            return
        if len(self._held) >= self.limit:
            self._held.popleft()
            self.dropped += 1
            self._since += 1
        self._held.append(message)

    def due(self, now: datetime) -> list[str]:
        """The texts to send now: messages that go at once, and the summary of those
        held when their hold (or the quiet hours) ended."""
        out, self._now = self._now, []
        ended = self._hold_ends is None or now >= self._hold_ends
        if self._held and ended and not self.quiet_at(now):
            out.append(self._summary(now))
            self._held.clear()
            self._since = 0
            self._hold_ends = now + self.hold
        elif not self._held and ended:
            self._hold_ends = None
        return out

    def _summary(self, now: datetime) -> str:
        held = list(self._held)
        if len(held) == 1 and not self._since:
            return held[0].text
        count = len(held) + self._since
        span = span_text(now - held[0].at)
        lost = f" ({self._since} oldest left out)" if self._since else ""
        lines = "; ".join(f"{m.at.astimezone(self.zone):%H:%M} {m.text}" for m in held)
        return f"{count} changes in {span}{lost}: {lines}"

    def wake(self, now: datetime) -> datetime | None:
        """When :meth:`due` next has something to give; None while nothing waits."""
        if self._now:
            return now
        if not self._held:
            return None
        if self.quiet_at(now):
            return now + QUIET_LOOK
        return self._hold_ends or now

    def waiting(self) -> int:
        return len(self._now) + len(self._held)
