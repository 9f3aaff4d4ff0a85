"""The poller: checks the gateway on a schedule, on its own thread, and keeps what it
publishes honest.

Every ``interval`` seconds it asks ``auth/status``; every ``keepalive`` seconds, while a
session exists, it tickles instead, unless the person paused session care
(``keepalive_paused``: then only checks). "Check now" wakes it at once; a click while a
check runs does not queue another. Each result goes to ``on_status``; the receiver
decides what changed and marshals UI work to its own thread.

It owns four promises:

- One verdict. ``/iserver/auth/status`` is the authority on the session: only its
  replies (the checks) are verdicts, and only verdicts change the state. Every other
  reply — the tickle, and whatever else is handed to :meth:`Poller.evidence` (the
  websocket's ``sts``) — is evidence. Evidence that agrees with the last verdict (the
  same state) refreshes its ``checked_at`` and ``sso_expires_s`` only, so no line, hook
  or history row follows (and a tickle that agrees replaces a check: keep-alive costs no
  extra request). Evidence that disagrees, says nothing of the session (a tickle without
  ``iserver.authStatus``) or cannot be read (NaN, ``{"error": "no session"}``) publishes
  nothing: it asks for a check, at most one per source per :data:`EVIDENCE_EVERY`
  seconds and never before a 429's back-off or IBKR's restart-window pacing ends. Two
  endpoints that keep disagreeing thus give one stable state. (A tickle replaces one check
  in a row at most: checks never starve behind tickles.)
- It cannot die. The whole step is guarded, and the thread loop too: any exception is
  logged with its traceback and published as an ``error`` verdict naming the log; when
  publishing itself fails, that is logged and the schedule goes on unchanged.
- A verdict is fresh or it is not shown. After each finished check it records, on the
  wall clock, when the verdict goes stale (:func:`~cpgw_tray.model.status.fresh_until`); a
  watchdog thread publishes the stale ``unknown`` when that passes without a new finished
  check (a wedged request, a suspended laptop), and :meth:`Poller.view` gives any other
  view the same answer. A jump of the wall clock past the monotonic one (a resume) gets a
  check at once.
- Pacing is honest. A request the client holds back (:class:`~cpgw_tray.client.api.Deferred`)
  publishes nothing new: the last verdict stays, its detail says when the next check is,
  and its freshness moves with the hold.

While push is connected and the verdict is ``ready``, checks stretch to min(4 × interval,
300 s); on any other verdict, after evidence, or when push drops, the interval holds. What
is published, and its freshness, is :class:`~cpgw_tray.care.shown.Shown`'s part.

Idle, nothing wakes between the poller's own due checks: the schedule waits until the next
is due (a resume is noticed at it), and the watchdog sleeps on an :class:`~.alarm.Alarm`
that each new deadline moves without waking it. Tests on fake clocks give ``look_every``:
both threads then wait in slices of at most that. Both can be stopped at once and are
daemons: quitting never waits on a hung request. ``on_status`` is called from either
thread, never from both at once.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from ..client.governor import Deferred
from ..model.status import SESSION_STATES, State, Status
from . import maintenance
from .alarm import Alarm
from .shown import Shown

log = logging.getLogger(__name__)

RESUME_GAP = 3.0  # wall clock ahead of the monotonic one by more: the machine slept
MIN_HOLD = 1.0  # a held-back request is tried again no sooner than this
EVIDENCE_EVERY = 10.0  # evidence from one source asks for a check at most this often
PUSH_STRETCH = 300.0  # while push watches a ready session: checks every min(4×interval, this)
# States a piece of evidence can agree with: what an authStatus (or a 401) says.
AGREEABLE = SESSION_STATES | {State.LOGGED_OUT}
_NEXT_NOTE = re.compile(r"\s*Next check\b[^.]*\d\d:\d\d:\d\d\.$")  # "Next check [in N s, ]at …"


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def with_next_check(status: Status, at: datetime) -> Status:
    """The same verdict, its detail ending with when the next check is."""
    detail = _NEXT_NOTE.sub("", status.detail)
    return replace(status, detail=f"{detail} Next check at {at.astimezone():%H:%M:%S}.")


class Poller(Shown):
    """Schedules checks and keep-alive tickles and guards what is published.
    :meth:`step` (the schedule) and :meth:`check_freshness` (the watchdog) hold the
    decisions and are driven directly by tests with fake clocks; :meth:`start` runs each
    on its own thread."""

    def __init__(
        self,
        check: Callable[[], Status],
        on_status: Callable[[Status], None],
        *,
        interval: float = 15.0,
        tickle: Callable[[], Status] | None = None,
        keepalive: float = 60.0,
        timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = _utc_now,
        log_path: str | Path | None = None,
        url: str = "",
        look_every: float | None = None,
    ) -> None:
        slices = 1.0 if look_every is None else look_every
        for name, value in (("interval", interval), ("look_every", slices)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, not {value}")
        if not (math.isfinite(keepalive) and keepalive >= 0 and math.isfinite(timeout)):
            raise ValueError("keepalive and timeout must be finite")
        self._check = check
        self._tickle = tickle
        self._on_status = on_status
        self.interval = interval
        self.keepalive = keepalive if tickle is not None else 0.0
        self.timeout = timeout
        self.url = url
        self.look_every = look_every
        self._clock = clock
        self._wall = wall
        where = f"at {log_path}" if log_path else "(cpgw-tray.log)"
        self.error_detail = f"cpgw-tray internal error — see the log {where}."
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()  # the schedule flags and the published verdict
        self._publishing = threading.RLock()  # one on_status call at a time, in order
        self._busy = False
        self._now_requested = False
        self._resumed = False
        self._looked: tuple[float, datetime] | None = None
        self._next_check: float | None = None  # None: check at once
        self._next_tickle: float | None = None
        self._tickled = False  # a tickle went since the last check
        self._paced_until = 0.0  # no request before this: a 429's back-off, window pacing
        self._asked: dict[str, float] = {}  # evidence source -> when it last asked a check
        self._gateway: Status | None = None  # the gateway's last verdict: drives keep-alive
        self.latest: Status | None = None  # the last verdict published as fresh
        # When the verdict goes stale, on both clocks: the wall clock counts a suspend,
        # the monotonic one a wall clock set back.
        self._fresh_until: tuple[datetime, float] | None = None
        self._stale_shown = False
        self.threads: list[threading.Thread] = []
        self._alarm: Alarm | None = None  # the watchdog's, while it runs without slices
        # True while the person paused session care: checks go on, tickles do not.
        self.keepalive_paused: Callable[[], bool] = lambda: False
        # The websocket (push.py), when asked for: its state for the ``push`` field, and
        # whether it is connected (checks then stretch while the verdict is ready).
        self.push_state: Callable[[], str | None] = lambda: None
        self._stretch_to: float | None = None  # the next check while push may stretch it

    # ------------------------------------------------------------------ control
    def reconfigure(self, *, interval: float, keepalive: float, timeout: float) -> None:
        """Saved settings, from the next wait on; a shorter interval checks at once (the
        wait under way is the old, longer one)."""
        shorter, self.timeout = interval < self.interval, timeout
        with self._lock:
            self.interval, self.keepalive = interval, keepalive if self._tickle else 0.0
        if shorter:
            self.check_now()

    def pause_keepalive_when(self, paused: Callable[[], bool]) -> None:
        """Ask ``paused`` before each tickle (the person's pause of session care)."""
        self.keepalive_paused = paused

    def start(self) -> None:
        self._alarm = Alarm() if self.look_every is None else None
        self.threads = [
            threading.Thread(target=self._run, name="poller", daemon=True),
            threading.Thread(target=self._watchdog, name="poller-watchdog", daemon=True),
        ]
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop at once; a request in flight is abandoned, not awaited."""
        self._stopped.set()
        self._wake.set()
        if self._alarm is not None:
            self._alarm.stop()

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

    def tickle_soon(self) -> None:
        """Tickle at once rather than a keep-alive period after the first check (the
        websocket needs the session id a tickle reply carries); never inside a hold."""
        now = self._clock()
        with self._lock:
            if now < self._paced_until:
                return
            if self._next_tickle is not None and self._next_tickle > now:
                self._next_tickle = now
        self._wake.set()

    def _stretched(self) -> float:
        """Seconds between checks while push watches a ready session."""
        return max(self.interval, min(4 * self.interval, PUSH_STRETCH))

    def _next_due(self) -> float | None:
        """When the next check is due: later while push watches a ready session."""
        due = self._next_check
        stretch = self._stretch_to
        if due is None or stretch is None or self.push_state() != "connected":
            return due
        ready = self._gateway is not None and self._gateway.state is State.READY
        return max(due, stretch) if ready else due

    @property
    def busy(self) -> bool:
        return self._busy

    # ------------------------------------------------------------------ schedule
    def due(self) -> tuple[str | None, float]:
        """What is due now ("check", "tickle" or None) and, if nothing, how long until."""
        now = self._clock()
        has_session = self._gateway is not None and self._gateway.state in SESSION_STATES
        keep = self.keepalive > 0 and has_session and not self.keepalive_paused()
        due_at = self._next_due()
        next_check = now if due_at is None else due_at
        check = self._now_requested or self._resumed or now >= next_check
        # Both due: the tickle first, unless one went since the last check (the check's
        # turn: a tickle's reply is evidence and must not starve the verdicts).
        tickle = keep and (self._next_tickle is None or now >= self._next_tickle)
        if tickle and not (check and self._tickled):
            return "tickle", 0.0
        if check:
            return "check", 0.0
        waits = [next_check - now]
        if keep and self._next_tickle is not None:
            waits.append(self._next_tickle - now)
        return None, max(0.0, min(waits))

    def step(self) -> float:
        """Do whatever is due; return seconds until something is due next. Never raises:
        an internal error is logged and published, and the schedule goes on."""
        action: str | None = None
        try:
            self._look()
            action, wait = self.due()
            if action is None:
                return wait
            return self._do(action)
        except Exception:
            log.exception("internal error in the poller")
            self._internal_error(action)
            return self.interval
        finally:
            with self._lock:
                self._busy = False

    def _look(self) -> None:
        """Notice a resume: the wall clock moved much further than the monotonic one."""
        mono, wall = self._clock(), self._wall()
        if self._looked is not None:
            slept = (wall - self._looked[1]).total_seconds() - (mono - self._looked[0])
            if slept > RESUME_GAP:
                log.info("the wall clock jumped %.0f s ahead (a resume?): checking at once", slept)
                self._resumed = True
        self._looked = (mono, wall)

    def _do(self, action: str) -> float:
        with self._lock:
            self._busy = True
            if action == "check":  # a tickle is evidence: it answers no request for a check
                self._now_requested = False  # this check answers every request made so far
                self._resumed = False
        try:
            status = self._tickle() if action == "tickle" and self._tickle else self._check()
        except Deferred as held:
            return self._held(held.wait)
        finished = self._clock()
        # After a 429 nothing is sent until the back-off ends; inside an IBKR restart
        # window, while not ready, one request a minute: schedule past either.
        hold = status.retry_after_s if status.state is State.RATE_LIMITED else None
        hold = hold if hold is not None and math.isfinite(hold) else 0.0
        hold = max(hold, maintenance.pace(status))
        if action == "tickle" and self._gateway is not None:
            hold = max(hold, maintenance.pace(self._gateway))
        self._paced_until = finished + hold
        if action == "tickle" or self._next_tickle is None:
            self._next_tickle = finished + self.keepalive
        if hold:
            self._next_tickle = max(self._next_tickle, finished + hold)
        if action == "tickle":  # evidence, not a verdict; it replaces one check in a row
            if hold and self._next_check is not None:
                self._next_check = max(self._next_check, self._paced_until)
            replaces, self._tickled = not self._tickled, True
            self.evidence("tickle", status, replaces_check=replaces)
            return self.due()[1]
        self._tickled = False
        self._next_check = finished + max(self.interval, hold)
        self._stretch_to = finished + max(self._stretched(), hold)
        self._gateway = status
        self._publish_verdict(status, (self._next_due() or self._next_check) - finished)
        return self.due()[1]

    def evidence(self, source: str, said: Status | None, *, replaces_check: bool = False) -> str:
        """Evidence about the session from a reply other than ``auth/status``; safe from
        any thread. ``source`` names where it came from (``"tickle"``, ``"websocket"``):
        each source asks for a check at most once per :data:`EVIDENCE_EVERY` s. ``said``
        is the reply classified as a status (its ``state``, ``checked_at`` and
        ``sso_expires_s`` are read), or None when the reply cannot be read at all.

        Returns ``"agrees"`` (the verdict republished with the new ``checked_at`` and
        ``sso_expires_s``; ``replaces_check``: the next check moves an interval on),
        ``"check"`` (a check is asked for, once pacing allows), ``"capped"`` (this
        source asked too recently) or ``"ignored"`` (no verdict yet). Never a new state."""
        now = self._clock()
        with self._publishing:
            with self._lock:
                verdict, latest = self._gateway, self.latest
                if verdict is None or latest is None:
                    return "ignored"
                if said is not None and said.state is verdict.state and said.state in AGREEABLE:
                    sso = said.sso_expires_s
                    sso = latest.sso_expires_s if sso is None else sso
                    at = said.checked_at or latest.checked_at
                    self._gateway = replace(verdict, checked_at=at, sso_expires_s=sso)
                    self.latest = refreshed = replace(latest, checked_at=at, sso_expires_s=sso)
                    if replaces_check:
                        self._next_check = max(now + self.interval, self._paced_until)
                        self._stretch_to = max(now + self._stretched(), self._paced_until)
                    next_due = (self._next_due() or now) - now
                    self._fresh_until = self._deadline(max(0.0, next_due))
                    self._rearm(now_wall=None)
                    self._stale_shown = False
                    done = "agrees"
                else:
                    last = self._asked.get(source)
                    if last is not None and now - last < EVIDENCE_EVERY:
                        done = "capped"
                    else:
                        self._asked[source] = now
                        self._next_check = min(
                            self._next_check if self._next_check is not None else now,
                            max(now, self._paced_until),
                        )
                        self._stretch_to = None  # this check is not put off by push
                        done = "check"
            if done == "agrees":
                self._publish(refreshed)
        what = said.state.value if said is not None else "an unreadable reply"
        log.debug(
            "evidence from %s (%s) vs verdict %s: %s", source, what, verdict.state.value, done
        )
        if done == "check":
            self._wake.set()
        return done

    def _held(self, wait: float) -> float:
        """The client held the request back (nothing was sent): try again after the hold;
        keep the verdict, noting when the next check is, and keep it fresh as long."""
        wait = max(wait, MIN_HOLD) if math.isfinite(wait) else self.interval
        now, wall = self._clock(), self._wall()
        log.info("request held back by the rate governor for %.0f s", wait)
        self._next_check = max(self._next_check or now, now + wait)
        self._next_tickle = max(self._next_tickle or now, now + wait)
        self._paced_until = max(self._paced_until, now + wait)
        with self._publishing:
            with self._lock:
                latest, until, held = self.latest, self._until(wall), self._fresh_until
                if latest is None or until is None or held is None or wall > until:
                    return wait  # nothing shown yet, or stale already: a hold does not revive it
                extended = self._deadline(wait)
                self._fresh_until = (max(held[0], extended[0]), max(held[1], extended[1]))
                self._rearm(now_wall=wall)
                self.latest = with_next_check(latest, wall + timedelta(seconds=wait))
            if self.latest != latest:
                self._publish(self.latest)
        return wait

    def _internal_error(self, action: str | None) -> None:
        """Publish an internal error as the verdict; checks and keep-alive go on."""
        try:
            now = self._clock()
            self._next_check = now + self.interval
            if action == "tickle" or self._next_tickle is None or self._next_tickle <= now:
                self._next_tickle = now + self.keepalive
        except Exception:
            log.exception("the poller could not reschedule after its internal error")
        try:
            self._publish_verdict(self._error(), self.interval)
        except Exception:  # the clocks themselves fail: at least show it
            log.exception("the poller could not record its internal error")
            self._publish(self._error())

    def _error(self) -> Status:
        label = "Internal error"
        url = self.latest.url if self.latest is not None else self.url
        try:
            at: datetime | None = self._wall()
        except Exception:
            at = None
        return Status(State.ERROR, label, self.error_detail, checked_at=at, url=url)

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                wait = self.step()
                if self.look_every is not None:
                    wait = min(wait, self.look_every)
                if wait > 0 and not self._now_requested:
                    self._wake.wait(wait)
                self._wake.clear()
            except Exception:  # step never raises; this guards the loop's own lines
                log.exception("internal error in the poller loop")
                self._internal_error(None)
                self._stopped.wait(self.look_every or self.interval)
