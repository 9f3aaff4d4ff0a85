"""The person policy (:mod:`cpgw_tray.model.person`) wired to the session, for the tray and
``watch`` alike.

Each verdict reaches the policy on the poller's thread through :meth:`PersonCare.check`
and :meth:`PersonCare.tickle`, with IBKR's clock: no reminder and no takeover inside a
restart window or in the 5 minutes after it (the tray's quiet rule, so the session has
time to come back); a window that began since the last check (a sleep across it) ends
the episode; no ready session seen since the latest weekly token reset (this process's
first check included) means a full login is due. A ``take_over`` event is sent by
:meth:`SessionCare.take_over` (the only automatic ``compete: true``), once per machine
per 5 minutes (:class:`~.shared_state.TakeoverLimit`, for processes that share the
pause), and the session checked again; every event goes to ``on_event`` (the tray
notifies, ``watch`` prints) and then to each of :attr:`PersonCare.listeners` (the phone
and ``on_event`` hooks, :mod:`.outlets`). Each status gets ``paused_until``.

A pause stops keep-alive tickles (the poller asks :meth:`PersonCare.paused_now`), automatic
reauthentication and takeovers; checks go on. It is kept in a file in the state folder,
so it outlives a restart within the hour and every cpgw-tray process honours it —
``watch`` and ``status --json`` included.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..client.shared_state import TakeoverLimit
from ..model.ibkr_clock import next_token_reset, windows
from ..model.person import TAKEOVER_EVERY, Event, PersonPolicy
from ..model.status import State, Status, iso_utc
from ..smallfile import read_small

if TYPE_CHECKING:
    from ..settings.config import Config
    from .session import SessionCare

log = logging.getLogger(__name__)

PAUSE_FILE = "paused-until"  # in the state folder: the end of a pause, ISO 8601 UTC


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def pause_path(gateway: str | None = None) -> Path:
    """Where the pause of ``gateway`` (a ``[gateways.NAME]``; None: the unnamed one) is
    kept: each gateway is paused on its own."""
    from .. import paths

    return paths.state_dir() / (PAUSE_FILE + (f"-{gateway}" if gateway else ""))


def read_pause(path: Path, now: datetime) -> datetime | None:
    """The end of a pause still running, from its file; None without one (or a file
    that is not a time: a pause is never made up)."""
    try:
        text = read_small(path).decode("utf-8").strip()
        until = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if until.utcoffset() is None:
        return None
    return until if until > now else None


def write_pause(path: Path, until: datetime | None) -> None:
    """Record a pause (None: remove it)."""
    if until is None:
        path.unlink(missing_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(iso_utc(until) + "\n", encoding="utf-8")


class PersonCare:
    """The policy fed by the checks, acting on its takeovers (see the module)."""

    def __init__(
        self,
        care: SessionCare,
        on_event: Callable[[Event], None],
        *,
        login_reminder: float = 600.0,
        on_competing: str = "leave",
        compete_after: float = 900.0,
        pause_file: Path | None = None,
        wall: Callable[[], datetime] = _utc_now,
        takeover_limit: TakeoverLimit | None = None,
    ) -> None:
        self.care = care
        self.takeover_limit = takeover_limit  # None: this process's own limit only
        self.policy = PersonPolicy(
            login_reminder=login_reminder, on_competing=on_competing, compete_after=compete_after
        )
        self.pause_file = pause_file  # None: the pause lives in this process only
        self._on_event = on_event
        # Also told of every event, on the thread that brings it (the outlets).
        self.listeners: list[Callable[[Event], None]] = []
        self._wall = wall
        self._lock = threading.Lock()  # the poller's thread and the menu's
        self.last_ready: datetime | None = None
        self.last_check: datetime | None = None
        self._read_pause()

    @classmethod
    def from_config(
        cls,
        care: SessionCare,
        config: Config,
        on_event: Callable[[Event], None],
        *,
        pause_file: Path | None = None,
        wall: Callable[[], datetime] = _utc_now,
    ) -> PersonCare:
        return cls(
            care,
            on_event,
            login_reminder=config.login_reminder,
            on_competing=config.on_competing,
            compete_after=config.compete_after,
            pause_file=pause_file,
            wall=wall,
            # the trader's own processes share the pause, and the takeover limit with it
            takeover_limit=TakeoverLimit.for_machine(TAKEOVER_EVERY) if pause_file else None,
        )

    def reconfigure(self, config: Config) -> None:
        """Settings changed while running: they apply from the next check."""
        with self._lock:
            self.policy.login_reminder = config.login_reminder
            self.policy.compete_after = timedelta(seconds=config.compete_after)
            self.policy.choose(config.on_competing, self.now())

    def now(self) -> datetime:
        return self._wall()

    # ---------------------------------------------------------------- the poller's
    def check(self) -> Status:
        self._read_pause()  # before session care decides on a reauthentication
        return self._observe(self.care.check())

    def tickle(self) -> Status:
        """The keep-alive: evidence for the poller, so the person's policy does not see
        it (it observes verdicts only)."""
        self._read_pause()
        if self.paused():  # paused since the poller looked (by another process): no tickle
            return self._observe(self.care.check())
        return self.stamp(self.care.tickle())

    def _read_pause(self) -> None:
        """Another process may have paused or resumed (the tray, for ``watch``)."""
        if self.pause_file is not None:
            with self._lock:
                self.policy.paused_until = read_pause(self.pause_file, self.now())

    def paused(self) -> bool:
        return self.policy.paused(self.now())

    def paused_now(self) -> bool:
        """:meth:`paused`, the pause file read first: the poller asks it before each
        tickle, so a pause made by another process (the tray, for ``watch``) stops the
        keep-alive before it is sent rather than turning it into a check."""
        self._read_pause()
        return self.paused()

    def _observe(self, status: Status) -> Status:
        for event in self._events(status):
            if event.kind == "take_over" and not self._may_take_over(event.at):
                continue
            self._emit(event)
            if event.kind == "take_over":
                status = self.care.take_over(status)
                for after in self._events(status):  # what the takeover brought
                    self._emit(after)
        return self.stamp(status)

    def _may_take_over(self, at: datetime) -> bool:
        """No other cpgw-tray process on this machine took over in the last 5 minutes."""
        if self.takeover_limit is None or self.takeover_limit.claim(at):
            return True
        log.info("person: not taking over: another cpgw-tray process did within 5 minutes")
        return False

    def _events(self, status: Status) -> list[Event]:
        now = status.checked_at or self.now()
        with self._lock:
            if status.state is State.READY:
                self.last_ready = now
            reset = self.last_ready is None or next_token_reset(self.last_ready) <= now
            ibkr = self.care.ibkr
            quiet = ibkr is not None and ibkr.quiet(status)
            passed = False
            if ibkr is not None and ibkr.enabled and self.last_check is not None:
                began = windows(ibkr.region, self.last_check, now, ibkr.schedule)
                passed = any(self.last_check < w.start <= now for w in began)
            self.last_check = max(now, self.last_check or now)
            return self.policy.observe(
                status, now, in_window=quiet, after_token_reset=reset, window_passed=passed
            )

    def _emit(self, event: Event) -> None:
        log.info("person: %s: %s", event.kind, event.message)
        self.tell(event)

    def tell(self, event: Event) -> None:
        """Hand an event to ``on_event`` and every listener (any thread; what does not
        come from a verdict, such as push's bulletins, enters here)."""
        for receiver in (self._on_event, *self.listeners):
            try:
                receiver(event)
            except Exception:  # a receiver's failure must not stop the checks
                log.exception("handing on the %s event failed", event.kind)

    def stamp(self, status: Status) -> Status:
        """The status with ``paused_until`` (None unless a pause runs)."""
        until = self.policy.paused_until
        return replace(status, paused_until=until if self.paused() else None)

    # ---------------------------------------------------------------- the person's say
    def pause(self) -> datetime:
        """Pause session care for an hour; returns when it resumes."""
        with self._lock:
            self.policy.pause(self.now())
            until = self.policy.paused_until
            assert until is not None
            self._save(until)
        log.info("session care paused until %s", iso_utc(until))
        return until

    def resume(self) -> None:
        with self._lock:
            self.policy.resume()
            self._save(None)
        log.info("session care resumed")

    def _save(self, until: datetime | None) -> None:
        if self.pause_file is None:
            return
        try:
            write_pause(self.pause_file, until)
        except OSError as exc:  # the pause holds in this process only, from now on
            log.warning("cannot record the pause in %s: %s", self.pause_file, exc)
            self.pause_file = None

    def snooze(self) -> None:
        with self._lock:
            self.policy.snooze(self.now())

    def leave_this_time(self) -> None:
        with self._lock:
            self.policy.leave_this_time()

    def choose(self, on_competing: str) -> None:
        with self._lock:
            self.policy.choose(on_competing, self.now())
