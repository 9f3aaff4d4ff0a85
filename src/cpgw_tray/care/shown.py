"""What the poller shows (mixed into :class:`.poller.Poller`): the verdict it published,
whether it is still fresh, and the push state it carries.

- A verdict is fresh or it is not shown. After each finished check the poller records, on
  the wall clock, when the verdict goes stale (:func:`~cpgw_tray.model.status.fresh_until`); the
  watchdog thread (:meth:`Shown.check_freshness`) publishes the stale ``unknown`` when
  that passes without a new finished check, and :meth:`Shown.view` gives any other view
  the same answer. Each new deadline moves the watchdog's alarm (:mod:`.alarm`) without
  waking it: while checks finish in time it does not wake at all.
- Every status handed on carries ``push`` (the websocket's state, :mod:`.push`) when push
  is asked for; a change of it republishes the verdict, fresh until the next check due
  (later while push stretches the checks).
- ``on_status`` is called one at a time, in order; a receiver that raises is logged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..model.status import State, Status, fresh_until, stale_view, unknown
from .alarm import Alarm

log = logging.getLogger(__name__)


class Shown:
    """The publishing half of the poller; its state lives on the poller."""

    url: str
    timeout: float
    look_every: float | None
    _alarm: Alarm | None
    latest: Status | None
    push_state: Callable[[], str | None]
    _on_status: Callable[[Status], None]
    _clock: Callable[[], float]
    _wall: Callable[[], datetime]
    _lock: threading.Lock
    _publishing: threading.RLock
    _stopped: threading.Event
    _fresh_until: tuple[datetime, float] | None
    _stale_shown: bool

    if TYPE_CHECKING:

        def _next_due(self) -> float | None: ...
        def _error(self) -> Status: ...

    def republish(self) -> None:
        """Publish the fresh verdict again: the push state it carries changed, and with
        it when the next check is due, so the verdict stays fresh until that one."""
        with self._publishing:
            with self._lock:
                latest, until = self.latest, self._until(self._wall())
                if latest is None or until is None or self._wall() > until:
                    return
                due = self._next_due()
                if due is not None:
                    self._fresh_until = self._deadline(max(0.0, due - self._clock()))
                    self._rearm(now_wall=None)
            self._publish(latest)

    def _stamp(self, status: Status) -> Status:
        push = self.push_state()
        return status if push is None or status.push == push else replace(status, push=push)

    def view(self, now: datetime | None = None) -> Status:
        """What any view shows now: the last verdict while fresh, else the stale
        ``unknown``; before the first verdict, ``unknown``."""
        now = self._wall() if now is None else now
        with self._lock:
            latest, until = self.latest, self._until(now)
        if latest is None or until is None:
            return self._stamp(unknown(self.url))
        return self._stamp(stale_view(latest, until, now) or latest)

    def _until(self, now: datetime) -> datetime | None:
        """The verdict's deadline on the wall clock, whichever clock says it comes first."""
        if self._fresh_until is None:
            return None
        wall, mono = self._fresh_until
        return min(wall, now + timedelta(seconds=mono - self._clock()))

    def _deadline(self, next_due_s: float) -> tuple[datetime, float]:
        """When a verdict given now goes stale, if the next check is due in ``next_due_s``."""
        wall = self._wall()
        until = fresh_until(wall, next_due_s, self.timeout)
        return until, self._clock() + (until - wall).total_seconds()

    def _rearm(self, now_wall: datetime | None) -> None:
        """Move the watchdog's alarm to the verdict's deadline (under ``_lock``)."""
        alarm = self._alarm
        if alarm is not None:
            now = self._wall() if now_wall is None else now_wall
            until = self._until(now)
            alarm.set(None if until is None else (until - now).total_seconds() + 0.01)

    # ------------------------------------------------------------------ publishing
    def _publish_verdict(self, status: Status, next_due_s: float) -> None:
        """A check finished: it is the verdict, fresh until the next one is overdue."""
        deadline = self._deadline(next_due_s)
        with self._publishing:  # the watchdog cannot slip a stale view in after this
            with self._lock:
                self.latest = status
                self._fresh_until = deadline
                self._stale_shown = False
                self._rearm(now_wall=None)
            published = self._publish(status)
        if not published and status.state is not State.ERROR:
            self._publish_verdict(self._error(), next_due_s)

    def _publish(self, status: Status) -> bool:
        """Hand a status to the receiver; False (logged) when the receiver raised."""
        with self._publishing:
            if self._stopped.is_set():
                return True
            try:
                self._on_status(self._stamp(status))
            except Exception:
                log.exception("publishing %s failed", status.state.value)
                return False
        return True

    # ------------------------------------------------------------------ watchdog
    def check_freshness(self) -> float | None:
        """Publish the stale ``unknown`` once when the verdict's deadline has passed;
        return seconds until the next look (None: none before a new verdict)."""
        now = self._wall()
        with self._lock:
            latest, until, shown = self.latest, self._until(now), self._stale_shown
        if latest is None or until is None:
            return self.look_every
        stale = stale_view(latest, until, now)
        if stale is None:
            left = max(0.0, (until - now).total_seconds()) + 0.01
            return left if self.look_every is None else min(self.look_every, left)
        if not shown:
            with self._publishing:  # a newer verdict published meanwhile wins
                with self._lock:
                    current = self.latest is latest and not self._stale_shown
                    self._stale_shown = self._stale_shown or current
                if current:
                    log.warning("verdict stale: %s", stale.detail)
                    self._publish(stale)
        return self.look_every

    def _watchdog(self) -> None:
        alarm = self._alarm
        try:
            while not self._stopped.is_set():
                failed = False
                try:
                    wait = self.check_freshness()
                except Exception:
                    log.exception("internal error in the freshness watchdog")
                    wait, failed = self.look_every or 1.0, True
                if alarm is None:
                    self._stopped.wait(wait)
                    continue
                with self._lock:  # the deadline as it is now: one moved meanwhile wins
                    if failed or self._stale_shown:
                        alarm.set(wait)
                    else:
                        self._rearm(now_wall=None)
                alarm.wait()
        finally:
            if alarm is not None:
                alarm.close()
