"""Request pacing: the one place every request to the gateway asks for a slot.

The gateway allows 10 requests a second overall, one a second to ``/tickle`` and one a
minute to ``/sso/validate``, and puts an offender in a penalty box for up to 15 minutes.
:class:`RateGovernor` keeps cpgw-tray inside those limits and, after a 429, holds every
request back. A request it will not let go soon enough raises :class:`Deferred`: nothing
was sent, so nothing about the gateway is learnt from it. No I/O, no requests import:
the pacing and the back-off shared with other processes are an injected ``shared``
(:class:`~.shared_state.SharedSlots`).
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Protocol

BACKOFF_START = 60.0  # after a 429 without Retry-After
BACKOFF_MAX = 900.0  # the gateway's penalty box lasts 15 minutes
SLOW_ENDPOINTS = {"sso/validate": 61.0}  # documented limit: 1 request a minute


class Deferred(Exception):
    """The governor holds the request back longer than the caller will wait: nothing was
    sent and nothing was booked. ``wait`` is how long until it could go."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"held back for {wait:.0f} s")
        self.wait = wait


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - (now or datetime.now(timezone.utc))).total_seconds())


class SharedPacing(Protocol):
    """Slots and back-offs shared with the other processes that talk to the gateway."""

    def book(self, endpoint: str, delay: float, spacing: float, max_wait: float) -> float:
        """Book ``endpoint`` no sooner than ``delay`` s from now, ``spacing`` after any
        other process's booking of it and after any back-off; the seconds until the slot,
        or raise :class:`Deferred` (nothing booked) when over ``max_wait``."""
        ...

    def hold(self, seconds: float) -> None:
        """A 429: every process holds back for ``seconds``."""
        ...

    def release(self) -> None:
        """End a shared back-off now."""
        ...


class RateGovernor:
    """Paces requests (at most one per ``spacing`` seconds to each endpoint, slower where
    the gateway documents it, and ``per_second`` overall) and, after a 429, holds every
    request back: ``Retry-After`` if given, else 60 s doubling up to 15 min, reset by the
    next good reply.

    Thread-safe; :meth:`reserve` decides and books in one step, so concurrent callers
    queue instead of bursting, and a caller that will not wait books nothing. With
    ``shared``, each slot is also booked with every other process on the machine, and
    a 429 holds them all back.
    """

    def __init__(
        self,
        spacing: float = 1.1,  # the gateway allows 1/s; a margin absorbs network jitter
        per_second: int = 10,
        clock: Callable[[], float] = time.monotonic,
        shared: SharedPacing | None = None,
    ) -> None:
        self.spacing = spacing
        self.shared = shared
        self.per_second = per_second
        self._clock = clock
        self._lock = threading.Lock()
        self._last: dict[str, float] = {}
        self._recent: list[float] = []  # booked slots, in order
        self._blocked_until = 0.0
        self._backoff = 0.0

    def rate_limited(self, retry_after: float | None) -> float:
        """Note a 429; return how long every request now waits."""
        with self._lock:
            if retry_after is not None and math.isfinite(retry_after):
                wait = min(max(retry_after, 1.0), BACKOFF_MAX)
            else:
                wait = BACKOFF_START if not self._backoff else min(self._backoff * 2, BACKOFF_MAX)
            self._backoff = wait
            self._blocked_until = self._clock() + wait
            if self.shared is not None:
                self.shared.hold(wait)
            return wait

    def forgive(self) -> None:
        """End a back-off now: for a gateway known to have changed (the demo's simulator)."""
        with self._lock:
            self._blocked_until, self._backoff = 0.0, 0.0
            if self.shared is not None:
                self.shared.release()

    def answered(self) -> None:
        """A reply that was not a 429: the back-off starts afresh next time."""
        with self._lock:
            self._backoff = 0.0

    def reserve(self, endpoint: str, max_wait: float = math.inf) -> float:
        """Book the earliest allowed slot for ``endpoint`` and return the seconds until
        it; or, when that is more than ``max_wait``, book nothing and raise
        :class:`Deferred`."""
        with self._lock:
            now = self._clock()
            at = max(now, self._blocked_until)
            last = self._last.get(endpoint)
            if last is not None:
                at = max(at, last + SLOW_ENDPOINTS.get(endpoint, self.spacing))
            while self._recent and self._recent[0] <= now - 1.0:
                self._recent.pop(0)
            while True:  # the overall cap, in the second up to the slot
                window = [t for t in self._recent if at - 1.0 < t <= at]
                if len(window) < self.per_second:
                    break
                at = window[-self.per_second] + 1.0 + 0.01
            if at - now > max_wait:
                raise Deferred(at - now)
            if self.shared is not None:  # the other processes' bookings (may defer)
                spacing = SLOW_ENDPOINTS.get(endpoint, self.spacing)
                at = now + self.shared.book(endpoint, at - now, spacing, max_wait)
            self._last[endpoint] = at
            bisect.insort(self._recent, at)
            return at - now
