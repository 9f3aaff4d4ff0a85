"""Session care around the gateway client, shared by the tray and ``watch``.

Runs on the poller's thread: each check's status is enriched with what a trader wants
to know of the session (account, paper or live, time left on the login), the account
facts are asked once per session, and a brokerage session that drops while the login
lives is restarted automatically — at most once per 5 minutes, never in ``competing``,
never in a loop, never with a take-over (that logs the user out of TWS or the phone;
only the user asks for one, from the menu or through the competing-session policy they
chose: :meth:`SessionCare.take_over`), never while the person paused session care, and
never inside an IBKR restart window (automation that does has had its IP blocked). Each
status also gets IBKR's clock for its ``checked_at``
(:class:`~cpgw_tray.care.maintenance.IbkrClock`).

Side requests (the account facts) never decide the state: a failed or bad reply leaves
the verdict as ``auth/status`` said, only the facts stay unknown, and they are asked again
with a back-off, at most once per 5 minutes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from ..client.api import Deferred, GatewayClient
from ..model.accounts import Account
from ..model.status import SESSION_STATES, State, Status
from .maintenance import IbkrClock

log = logging.getLogger(__name__)

AUTO_REAUTH_EVERY = 300.0  # seconds between automatic reauthentications, at most
SIDE_RETRY = 300.0  # a failed side request is asked again no sooner than this …
SIDE_RETRY_MAX = 1800.0  # … doubling after each failure up to this


class SessionCare:
    """``check()``/``tickle()`` for the poller, with session facts and auto-reauth."""

    def __init__(
        self,
        client: GatewayClient,
        *,
        auto_reauth: bool = True,
        validate: bool = True,
        clock: Callable[[], float] = time.monotonic,
        ibkr: IbkrClock | None = None,
    ) -> None:
        self.client = client
        self.ibkr = ibkr
        self.auto_reauth = auto_reauth
        self.validate = validate
        self._clock = clock
        self._lock = threading.Lock()
        self.account: Account | None = None
        self._sso: tuple[float, float] | None = None  # (seconds left, when read)
        self._last_auto: float | None = None
        self._account_retry: tuple[float, float] | None = None  # (not before, back-off)
        self.paused: Callable[[], bool] = lambda: False  # the person paused session care

    def reconfigure(self, *, auto_reauth: bool) -> None:
        """A saved setting, from the next check."""
        self.auto_reauth = auto_reauth

    def pause_when(self, paused: Callable[[], bool]) -> None:
        """Ask ``paused`` before an automatic reauthentication (the person's pause)."""
        self.paused = paused

    def check(self) -> Status:
        return self._care(self.client.auth_status())

    def tickle(self) -> Status:
        """The keep-alive. Its reply is evidence, not a verdict (the poller's one-verdict
        rule): it only notes the time left on the login; the session's care (forgetting
        the facts, a reauthentication, the account) waits for what auth/status says."""
        status = self.client.tickle()
        now = self._clock()
        if status.sso_expires_s is not None:
            self._sso = (status.sso_expires_s, now)
        return self.enrich(status, now)

    def _care(self, status: Status) -> Status:
        now = self._clock()
        if status.state not in SESSION_STATES and status.state is not State.RATE_LIMITED:
            with self._lock:  # no session: facts of the last one no longer hold
                self.account, self._sso = None, None
        if status.sso_expires_s is not None:
            self._sso = (status.sso_expires_s, now)
        if self._should_reauthenticate(status, now):
            self._last_auto = now
            status = self._reauthenticate(status)
        if status.state is State.READY and self.account is None:
            self._ask_account(now)
        return self.enrich(status, now)

    def _reauthenticate(self, status: Status) -> Status:
        """Restart the brokerage session, never taking one over; the status after it."""
        try:
            outcome = self.client.reauthenticate(take_over=False)  # only the user takes over
        except Exception:
            log.exception("automatic reauthentication failed")
            return status
        log.info("brokerage session dropped; automatic reauthentication: %s", outcome.message)
        if not outcome.ok:
            return status
        try:
            return self.client.auth_status()
        except Deferred:  # paced: the next check tells
            return status

    def take_over(self, status: Status) -> Status:
        """The competing-session policy's takeover (:mod:`cpgw_tray.care.person_care`):
        ``compete: true``, then the status after it (``status`` if it failed)."""
        try:
            outcome = self.client.reauthenticate(take_over=True)
        except Exception:
            log.exception("taking the session back failed")
            return status
        log.info("competing session: taking the session back: %s", outcome.message)
        self.forget()
        try:
            return self.check()
        except Deferred:  # paced: the next check tells
            return status

    def _ask_account(self, now: float) -> None:
        """Ask the account facts, unless a failed ask is still in its back-off. A side
        request: whatever it answers, the state stays as auth/status said."""
        retry = self._account_retry
        if retry is not None and now < retry[0]:
            return
        try:
            account = self.client.account(validate=self.validate)
        except Exception:
            log.exception("asking the account facts failed")
            account = None
        if account is None:
            backoff = SIDE_RETRY if retry is None else min(retry[1] * 2, SIDE_RETRY_MAX)
            self._account_retry = (now + backoff, backoff)
            log.info("account facts unknown; asking again in %.0f s", backoff)
            return
        with self._lock:
            self._account_retry, self.account = None, account

    def _should_reauthenticate(self, status: Status, now: float) -> bool:
        """The brokerage session is down while the login lives: a gateway that says
        connected but not authenticated, and not because of a competing session."""
        if not self.auto_reauth or status.state is not State.NOT_AUTHENTICATED:
            return False
        if self.paused():
            log.debug("brokerage session down while paused: no reauthentication")
            return False
        if status.connected is not True or status.competing is True:
            return False
        if self.ibkr is not None and self.ibkr.inside(status):
            log.debug("brokerage session down inside an IBKR restart window: no reauthentication")
            return False
        return self._last_auto is None or now - self._last_auto >= AUTO_REAUTH_EVERY

    def enrich(self, status: Status, now: float | None = None) -> Status:
        """The status with the session facts known so far, and IBKR's clock."""
        now = self._clock() if now is None else now
        if self.ibkr is not None:
            status = self.ibkr.stamp(status)
        account, sso = self.account, self._sso
        fields: dict[str, object] = {}
        if account is not None and status.state in SESSION_STATES:
            fields["account"] = ", ".join(account.ids) or None
            fields["paper"] = account.paper
        if sso is not None and status.sso_expires_s is None and status.state in SESSION_STATES:
            fields["sso_expires_s"] = max(0.0, sso[0] - (now - sso[1]))
        return replace(status, **fields) if fields else status  # type: ignore[arg-type]

    def forget(self) -> None:
        """After a log out or a new login: ask the account facts again (at once, unless
        a failed ask is still in its back-off)."""
        with self._lock:
            self.account, self._sso = None, None
