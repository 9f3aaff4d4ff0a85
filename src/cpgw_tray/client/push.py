"""The gateway's websocket (``/v1/api/ws``), held open while a session exists: it owns the
socket, its deadlines and its reconnect policy, and turns messages into facts.

Every message is evidence, never a verdict: an ``sts`` goes to ``on_sts`` (the caller
compares it with the verdict and asks the poller for a check), a bulletin (``blt``) to
``on_bulletin``; a heartbeat missing for :data:`HEARTBEAT_GAP` seconds or a closed socket
goes to ``on_lost`` and the socket is opened again after a growing, jittered pause
(capped at :data:`MAX_PAUSE`). No socket while ``allowed()`` says no (paused, an IBKR
restart window, push turned off) or while the keep-alive has no session id.

The socket is :class:`.websocket.WebSocket` (the ``websockets`` library's sans-I/O
protocol, read on this one thread, so a heartbeat wakes one thread): messages capped at
:data:`MAX_MESSAGE` bytes, the opening handshake bounded by the client's timeout, each
read (and the pongs it sends) bounded by the heartbeat deadline, the same TLS context as
the HTTP client (:func:`.transport.build_context`), never a proxy. The session is sent
as the cookie ``api={"session":"ID"}``. ``ntf`` messages are ignored. The library is
imported when the first socket opens: push is off by default, and a tray or ``watch``
without it does not carry it.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..model.strictjson import loads_or_none
from ..model.urls import api_base, is_loopback
from ..model.wording import excerpt
from .transport import build_context

if TYPE_CHECKING:
    from .websocket import WebSocket

log = logging.getLogger(__name__)

HEARTBEAT_GAP = 25.0  # the gateway beats every 10 s: two missed and a half
MIN_PAUSE = 1.0  # the first reconnect after a loss
MAX_PAUSE = 300.0  # the longest pause between attempts
STEADY = 60.0  # a socket that lived this long resets the pause
MAX_MESSAGE = 64 * 1024  # an sts or a bulletin is well under 2 KiB
LOOK_EVERY = 10.0  # while no socket is allowed: how often to look again

CONNECTED, CONNECTING, OFF = "connected", "connecting", "off"


@dataclass(frozen=True)
class Sts:
    """The session facts of an ``sts`` message; None where not a JSON boolean."""

    authenticated: bool | None
    connected: bool | None
    competing: bool | None


def ws_url(url: str) -> str:
    """The websocket's address for a gateway root URL."""
    base = api_base(url)
    scheme = "wss" if base.startswith("https:") else "ws"
    return f"{scheme}:{base.split(':', 1)[1]}ws"


def parse(text: str | bytes) -> tuple[str, Any] | None:
    """A message's topic and what it carries (its strings cleaned by the text boundary,
    :func:`.strictjson.loads`): ``("hb", None)``, ``("sts", Sts)``,
    ``("blt", [(id, message), ...])``; None for anything else (ignored)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            return None
    data = loads_or_none(text)
    if not isinstance(data, dict):
        return None
    topic, args = data.get("topic"), data.get("args")
    if topic == "system":
        return ("hb", None) if "hb" in data else None
    if topic == "sts" and isinstance(args, dict):

        def flag(key: str) -> bool | None:
            value = args.get(key)
            return value if isinstance(value, bool) else None

        return "sts", Sts(flag("authenticated"), flag("connected"), flag("competing"))
    if topic == "blt":
        found = []
        for item in args if isinstance(args, list) else [args]:
            if not isinstance(item, dict):
                continue
            ident, message = item.get("id"), item.get("message")
            if isinstance(ident, bool) or not isinstance(ident, (int, str)):
                continue
            if isinstance(message, str) and str(ident).strip():
                found.append((str(ident), message))  # cleaned where it was read
        return ("blt", found) if found else None
    return None


class Push:
    """One websocket to one gateway, on its own daemon thread (see the module)."""

    def __init__(
        self,
        url: str,
        *,
        verify: bool | str,
        timeout: float,
        session_id: Callable[[], str | None],
        allowed: Callable[[], bool] = lambda: True,
        on_sts: Callable[[Sts], None] = lambda sts: None,
        on_bulletin: Callable[[str, str], None] = lambda ident, message: None,
        on_lost: Callable[[str], None] = lambda reason: None,
        on_state: Callable[[str], None] = lambda state: None,
        heartbeat_gap: float = HEARTBEAT_GAP,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.url = ws_url(url)
        self._loopback = is_loopback(url)
        self._context = None
        self._broken: str | None = None  # a CA bundle that cannot be loaded: no socket
        if self.url.startswith("wss:"):
            try:
                self._context = build_context(verify, trust_env=not self._loopback)
            except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
                self._broken = f"the CA bundle {verify} could not be loaded ({exc})"
                log.warning("push is off: %s", self._broken)
        self.timeout = timeout
        self.heartbeat_gap = heartbeat_gap
        self._session_id = session_id
        self._allowed = allowed
        self.on_sts, self.on_bulletin, self.on_lost = on_sts, on_bulletin, on_lost
        self._on_state = on_state
        self._clock = clock
        self._jitter = jitter
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._failures = 0
        self.state = OFF
        self.since = clock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="push", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop at once; an open socket is dropped with the thread (a daemon)."""
        self._stopped.set()
        self._wake.set()

    def poke(self) -> None:
        """Look again now whether a socket is allowed (a session began, a pause ended)."""
        self._wake.set()

    def pause_after_failure(self) -> float:
        """The pause before the next attempt: doubling from :data:`MIN_PAUSE` with each
        failure in a row, capped at :data:`MAX_PAUSE`, jittered down by up to half."""
        base = min(MAX_PAUSE, MIN_PAUSE * 2 ** min(self._failures, 16))
        self._failures += 1
        return float(base * (0.5 + 0.5 * self._jitter()))

    def _set(self, state: str) -> None:
        if state != self.state:
            self.state, self.since = state, self._clock()
            try:
                self._on_state(state)
            except Exception:
                log.exception("the push state listener failed")

    # ------------------------------------------------------------------ the loop
    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                wait = self.step()
            except Exception:  # a bug here must not end push for the run
                log.exception("internal error in the push loop")
                self._set(OFF)
                wait = self.pause_after_failure()
            self._wake.wait(wait)
            self._wake.clear()

    def step(self) -> float:
        """One attempt: open a socket if allowed, read it until it is lost or no longer
        allowed; return the seconds to wait before the next attempt."""
        session = self._session_id()
        if session is None or not self._allowed() or self._broken is not None:
            self._set(OFF)
            return LOOK_EVERY if self._broken is None else MAX_PAUSE
        from websockets.exceptions import WebSocketException

        self._set(CONNECTING)
        opened = self._clock()
        try:
            with self._open(session) as socket:
                self._set(CONNECTED)
                reason = self._read(socket, session)
        except (OSError, EOFError, WebSocketException) as exc:
            reason = f"could not hold the websocket ({exc.__class__.__name__}: {exc})"
        if reason is None:  # no longer allowed, or stopped: not a loss
            self._set(OFF)
            return 0.0  # the next step looks whether another socket is allowed
        log.info("push: %s", excerpt(reason, 200))
        if self._clock() - opened >= STEADY:
            self._failures = 0
        self._set(OFF)
        self._tell_lost(reason)
        return self.pause_after_failure()

    def _open(self, session: str) -> WebSocket:
        from .websocket import WebSocket

        return WebSocket.open(
            self.url,
            context=self._context,
            headers=[
                ("Cookie", f'api={{"session":"{session}"}}'),
                ("User-Agent", "cpgw-tray"),
            ],
            max_size=MAX_MESSAGE,
            timeout=self.timeout,
        )

    def _read(self, socket: WebSocket, session: str) -> str | None:
        """Read until the socket is lost (the reason) or no longer wanted (None)."""
        from .websocket import Closed

        beat = self._clock()
        while True:
            now = self._clock()
            if self._stopped.is_set() or self._session_id() != session or not self._allowed():
                return None
            left = beat + self.heartbeat_gap - now
            if left <= 0:
                return f"no heartbeat for {self.heartbeat_gap:g} s"
            try:  # a heartbeat every 10 s brings the loop round: no shorter slices
                message = socket.recv(timeout=left)
            except Closed as exc:
                return f"the websocket closed ({exc})"
            if message is None:
                continue
            parsed = parse(message)
            if parsed is None:
                continue
            topic, facts = parsed
            if topic == "hb":
                beat = self._clock()
            elif topic == "sts":
                self._tell(self.on_sts, facts)
            else:
                for ident, text in facts:
                    self._tell(self.on_bulletin, ident, text)

    def _tell(self, listener: Callable[..., None], *args: Any) -> None:
        try:
            listener(*args)
        except Exception:
            log.exception("a push listener failed")

    def _tell_lost(self, reason: str) -> None:
        self._tell(self.on_lost, reason)
