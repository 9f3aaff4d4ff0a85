"""Push joined to a watcher (the tray or ``watch``): the websocket (:mod:`.push`) is held
only while the poller's verdict says a session exists, care is not paused and no IBKR
restart window is on; what it hears is evidence for the poller, and IBKR's bulletins go
out once each (:mod:`.bulletins`) as :class:`Bulletin` events.

- An ``sts`` whose facts differ from the verdict (authenticated, connected, competing)
  is handed to the poller as evidence (:meth:`.Poller.evidence`, source ``websocket``),
  which asks for an auth/status check; a lost socket or a missing heartbeat is evidence
  too. The check, not the message, publishes.
- A change of the socket's state republishes the verdict with its ``push`` field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ..client.push import HEARTBEAT_GAP, Push, Sts
from ..model.person import Event
from ..model.status import LOOKS, SESSION_STATES, State, Status, iso_utc

if TYPE_CHECKING:
    from ..client.api import GatewayClient
    from ..settings.config import Config
    from .bulletins import Bulletins
    from .poller import Poller

log = logging.getLogger(__name__)

SOURCE = "websocket"  # the evidence source: its own cap of one check per 10 s


@dataclass(frozen=True)
class Bulletin(Event):
    """An IBKR bulletin, shown once: ``kind`` is ``bulletin``."""

    ident: str = ""

    def to_json(self) -> dict[str, str | None]:
        return {
            "event": "bulletin",
            "id": self.ident,
            "message": self.message,
            "at": iso_utc(self.at),
            "gateway": self.gateway,
        }


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def sts_status(sts: Sts, url: str) -> Status:
    """What an ``sts`` says, as a status (evidence for the poller, never published)."""
    if sts.competing is True:
        state = State.COMPETING
    elif sts.authenticated is not True:
        state = State.NOT_AUTHENTICATED
    elif sts.connected is not True:
        state = State.DISCONNECTED
    else:
        state = State.READY
    return Status(
        state,
        LOOKS[state].label,
        "The websocket's sts.",
        authenticated=sts.authenticated,
        connected=sts.connected,
        competing=sts.competing,
        url=url,
    )


def disagrees(sts: Sts, verdict: Status | None) -> bool:
    """Whether an ``sts`` tells another story than the verdict."""
    if verdict is None:
        return True
    told = (sts.authenticated is True, sts.connected is True, sts.competing is True)
    known = (verdict.authenticated is True, verdict.connected is True, verdict.competing is True)
    return told != known


class PushLink:
    """One gateway's websocket, wired to its poller (see the module)."""

    def __init__(
        self,
        config: Config,
        client: GatewayClient,
        poller: Poller,
        bulletins: Bulletins,
        *,
        on_bulletin: Callable[[Bulletin], None] = lambda bulletin: None,
        paused: Callable[[], bool] = lambda: False,
        wall: Callable[[], datetime] = _utc_now,
        heartbeat_gap: float = HEARTBEAT_GAP,
    ) -> None:
        self.client, self.poller, self.bulletins = client, poller, bulletins
        self.on_bulletin = on_bulletin
        self._paused = paused
        self._wall = wall
        self.push = Push(
            config.url,
            verify=config.verify,
            timeout=config.timeout,
            session_id=self._session_id,
            allowed=self._allowed,
            on_sts=self._sts,
            on_bulletin=self._bulletin,
            on_lost=self._lost,
            on_state=lambda state: poller.republish(),
            heartbeat_gap=heartbeat_gap,
        )
        poller.push_state = lambda: self.push.state
        if config.keepalive == 0:
            log.warning("push stays off: its cookie is the session id of a keep-alive tickle")
        self._poked: str | None = None  # the session id the socket was last woken for
        self._asked = False  # a tickle asked for this session's id

    def start(self) -> None:
        self.push.start()

    def stop(self) -> None:
        self.push.stop()

    def saw(self, status: Status) -> None:
        """A published verdict (poller thread): a session that just began gets a tickle
        now (its reply carries the session id), and the socket opens as soon as the id
        is known rather than at the next look."""
        if status.state not in SESSION_STATES:
            # The session ended: its id is no cookie for the next one. The next session's
            # first tickle (asked for below) brings the new id. Same thread as the tickle.
            self.client.push_session = None
        session = self.client.push_session
        if status.state in SESSION_STATES and session is None and not self._asked:
            self._asked = True  # once a session: the keep-alive's own tickles go on after
            self.poller.tickle_soon()
        if session is not None and session != self._poked:
            self.push.poke()
        self._poked = session
        self._asked = self._asked and status.state in SESSION_STATES

    def _session_id(self) -> str | None:
        latest = self.poller.latest
        if latest is None or latest.state not in SESSION_STATES:
            return None
        return self.client.push_session

    def _allowed(self) -> bool:
        latest = self.poller.latest
        return not self._paused() and (latest is None or latest.maintenance_until is None)

    def _sts(self, sts: Sts) -> None:
        latest = self.poller.latest
        if disagrees(sts, latest):
            shown = latest.state.value if latest is not None else State.UNKNOWN.value
            log.info("push: sts %s disagrees with the verdict %s", sts, shown)
            self.poller.evidence(SOURCE, sts_status(sts, self.push.url))

    def _lost(self, reason: str) -> None:
        self.poller.evidence(SOURCE, None)

    def _bulletin(self, ident: str, message: str) -> None:
        if self.bulletins.first_time(ident):
            self.on_bulletin(Bulletin("bulletin", message, self._wall(), ident))
