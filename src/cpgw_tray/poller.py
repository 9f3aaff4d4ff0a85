"""The poller: checks the gateway on a schedule, on its own thread.

Every ``interval`` seconds it asks ``auth/status``; every ``keepalive`` seconds, while a
session exists, it tickles instead (a tickle reply carries the same status, so the
keep-alive never costs an extra check). "Check now" wakes it at once; a click while a
check runs does not queue another. The thread waits on a :class:`threading.Event`, so
it can be woken and stopped at once, and it is a daemon: quitting never waits on a hung
request. Each result goes to ``on_status`` on the poller's thread; the receiver decides
what changed and marshals UI work to its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from .status import State, Status

log = logging.getLogger(__name__)

# States in which the gateway holds a login worth keeping alive.
SESSION_STATES = frozenset(
    {State.READY, State.COMPETING, State.DISCONNECTED, State.NOT_AUTHENTICATED}
)


class Poller:
    """Schedules checks and keep-alive tickles. :meth:`step` holds the whole decision
    and is driven directly by tests with a fake clock; :meth:`start` runs it on a thread."""

    def __init__(
        self,
        check: Callable[[], Status],
        on_status: Callable[[Status], None],
        *,
        interval: float = 15.0,
        tickle: Callable[[], Status] | None = None,
        keepalive: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._check = check
        self._tickle = tickle
        self._on_status = on_status
        self.interval = interval
        self.keepalive = keepalive if tickle is not None else 0.0
        self._clock = clock
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._busy = False
        self._now_requested = False
        self._next_check: float | None = None  # None: check at once
        self._next_tickle: float | None = None
        self.latest: Status | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once; a request in flight is abandoned, not awaited."""
        self._stopped.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def check_now(self, fresh: bool = False) -> bool:
        """Ask for a check as soon as possible. Clicks coalesce: returns False (and does
        nothing) while a check is already requested, or running — unless ``fresh``: the
        gateway was just changed (an action, a simulated state), so a check that started
        before the change does not count and one more follows it."""
        with self._lock:
            if self._now_requested or (self._busy and not fresh):
                return False
            self._now_requested = True
        self._wake.set()
        return True

    @property
    def busy(self) -> bool:
        return self._busy

    # ------------------------------------------------------------------ schedule
    def due(self) -> tuple[str | None, float]:
        """What is due now ("check", "tickle" or None) and, if nothing, how long until."""
        now = self._clock()
        has_session = self.latest is not None and self.latest.state in SESSION_STATES
        tickle_due = (
            self.keepalive > 0
            and has_session
            and (self._next_tickle is None or now >= self._next_tickle)
        )
        if tickle_due:
            return "tickle", 0.0
        if self._now_requested or self._next_check is None or now >= self._next_check:
            return "check", 0.0
        waits = [self._next_check - now]
        if self.keepalive > 0 and has_session and self._next_tickle is not None:
            waits.append(self._next_tickle - now)
        return None, max(0.0, min(waits))

    def step(self) -> float:
        """Do whatever is due; return seconds until something is due next."""
        action, wait = self.due()
        if action is None:
            return wait
        with self._lock:
            self._busy = True
            self._now_requested = False  # this check answers every request made so far
        try:
            if action == "tickle" and self._tickle is not None:
                status = self._tickle()
            else:
                status = self._check()
        except Exception:  # a bug in a check must not kill the poller thread
            log.exception("check failed")
            with self._lock:
                self._busy = False
            self._next_check = self._clock() + self.interval
            return self.interval
        finished = self._clock()
        with self._lock:
            self._busy = False
        # After a 429 nothing is sent until the back-off ends: schedule past it.
        hold = status.retry_after_s if status.state is State.RATE_LIMITED else None
        self._next_check = finished + max(self.interval, hold or 0.0)
        if action == "tickle" or self._next_tickle is None:
            self._next_tickle = finished + self.keepalive
        if hold:
            self._next_tickle = max(self._next_tickle, finished + hold)
        self.latest = status
        if not self._stopped.is_set():
            self._on_status(status)
        return self.due()[1]

    def _run(self) -> None:
        while not self._stopped.is_set():
            wait = self.step()
            if wait > 0 and not self._now_requested:
                self._wake.wait(wait)
            self._wake.clear()
