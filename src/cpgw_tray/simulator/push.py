"""The simulator's websocket (``/v1/api/ws`` on the gateway's own port): the real
greeting (``system`` success, ``act``, ``sts``), a heartbeat every ``heartbeat`` seconds
(10, as the real gateway; settable for tests), an ``sts`` at every change of the session
(and, once the session is gone, the socket closed after it), and IBKR bulletins sent from
the control API or the demo's Simulate menu. The framing is the ``websockets`` library's
sans-I/O server protocol; this module only moves its bytes."""

from __future__ import annotations

import contextlib
import json
import logging
import select
import socket
import ssl
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.protocol import State
from websockets.server import ServerProtocol

if TYPE_CHECKING:
    from .model import SimulatedGateway

log = logging.getLogger(__name__)

SESSION_ID = "9fe1c272dc44e023a3aefe52b71d42bd"  # what the simulated tickle reports
HEARTBEAT = 10.0
LOOK = 0.05  # how often a socket looks for a change of the session
MAX_SIZE = 64 * 1024


class PushHub:
    """The sockets open on one simulator: their bulletin queues and the heartbeat."""

    def __init__(self) -> None:
        self.heartbeat = HEARTBEAT
        self._lock = threading.Lock()
        self._queues: list[deque[dict[str, Any]]] = []
        self.sent_bulletins = 0

    @property
    def clients(self) -> int:
        with self._lock:
            return len(self._queues)

    def bulletin(self, ident: int | str, message: str) -> int:
        """Send a bulletin (as the real gateway does: one item in an array) to every open
        socket; returns how many."""
        item = {"topic": "blt", "args": [{"id": ident, "exchanges": None, "message": message}]}
        with self._lock:
            for queue in self._queues:
                queue.append(item)
            self.sent_bulletins += 1
            return len(self._queues)

    def _join(self) -> deque[dict[str, Any]]:
        queue: deque[dict[str, Any]] = deque(maxlen=100)
        with self._lock:
            self._queues.append(queue)
        return queue

    def _leave(self, queue: deque[dict[str, Any]]) -> None:
        with self._lock:
            self._queues.remove(queue)


def is_upgrade(path: str, headers: Any) -> bool:
    """A websocket opening handshake for the gateway's socket."""
    wanted = str(headers.get("Upgrade", "")).lower() == "websocket"
    return wanted and path.split("?")[0].rstrip("/") in ("/v1/api/ws", "/v1/portal/ws")


def _cookie_session(headers: Any) -> str | None:
    for value in headers.get_all("Cookie") or ():
        for part in str(value).split(";"):
            name, _, raw = part.strip().partition("=")
            if name == "api":
                with contextlib.suppress(ValueError, AttributeError):
                    session = json.loads(raw).get("session")
                    return session if isinstance(session, str) else None
    return None


def _facts(sim: SimulatedGateway) -> tuple[bool, bool, bool, bool]:
    with sim.lock:
        s = sim.session
        return s.logged_in, s.authenticated, s.connected, s.competing


def _sts(facts: tuple[bool, bool, bool, bool]) -> dict[str, Any]:
    _, authenticated, connected, competing = facts
    args = {
        "connected": connected,
        "authenticated": authenticated,
        "established": authenticated,
        "competing": competing,
        "message": "",
        "fail": "",
        "serverName": "JifN19053",
        "serverVersion": "Build 10.25.0p, Dec 5, 2023 5:48:12 PM",
        "username": "simuser",
    }
    return {"topic": "sts", "args": args}


def _greeting(sim: SimulatedGateway, facts: tuple[bool, bool, bool, bool]) -> list[dict[str, Any]]:
    with sim.lock:
        paper, account = sim.session.paper, sim.account
    act = {
        "accounts": [account],
        "selectedAccount": account,
        "isPaper": paper,
        "serverInfo": {"serverName": "JifN19053", "serverVersion": "Build 10.25.0p"},
        "sessionId": SESSION_ID,
    }
    return [
        {"topic": "system", "success": "simuser", "isFT": False, "isPaper": paper},
        {"topic": "act", "args": act},
        _sts(facts),
    ]


class _Socket:
    """One accepted websocket: moves the protocol's bytes over the handler's socket."""

    def __init__(self, sock: socket.socket, protocol: ServerProtocol) -> None:
        self.sock, self.protocol = sock, protocol

    def flush(self) -> bool:
        """Send what the protocol has queued; False once the socket is done."""
        for data in self.protocol.data_to_send():
            if not data:  # the protocol asks for the end of the stream
                with contextlib.suppress(OSError):
                    self.sock.shutdown(socket.SHUT_WR)
                return False
            self.sock.sendall(data)
        return self.protocol.state is not State.CLOSED

    def send(self, message: dict[str, Any]) -> None:
        if self.protocol.state is State.OPEN:  # not once a close frame went out
            self.protocol.send_text(json.dumps(message).encode())

    def read(self, wait: float) -> bool:
        """Read what arrived within ``wait`` seconds; False at the end of the stream."""
        pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
        if not pending and not select.select([self.sock], [], [], wait)[0]:
            return True
        data = self.sock.recv(MAX_SIZE)
        if not data:
            self.protocol.receive_eof()
            return False
        self.protocol.receive_data(data)
        frames = self.protocol.events_received()
        return not any(isinstance(f, Frame) and f.opcode is Opcode.CLOSE for f in frames)


def serve(sim: SimulatedGateway, hub: PushHub, handler: Any, stopping: threading.Event) -> None:
    """Answer one opening handshake on ``handler`` (a BaseHTTPRequestHandler that read it)
    and serve the socket until either side closes it or the simulator stops."""
    protocol = ServerProtocol(max_size=MAX_SIZE)
    # The handler read the request already; the protocol parses it again from its bytes,
    # so that its reader moves on to frames.
    lines = "".join(f"{name}: {value}\r\n" for name, value in handler.headers.items())
    protocol.receive_data(handler.raw_requestline + lines.encode("latin-1") + b"\r\n")
    request = next(e for e in protocol.events_received() if isinstance(e, Request))
    facts = _facts(sim)
    if not facts[0] or _cookie_session(handler.headers) != SESSION_ID:
        response = protocol.reject(401, "no session\n")
    else:
        response = protocol.accept(request)
    protocol.send_response(response)
    handler.close_connection = True
    link = _Socket(handler.connection, protocol)
    if response.status_code != 101:
        link.flush()
        return
    queue = hub._join()
    try:
        _loop(sim, hub, link, queue, facts, stopping)
    except (OSError, ValueError) as exc:
        log.debug("websocket ended: %s", exc)
    finally:
        hub._leave(queue)


def _loop(
    sim: SimulatedGateway,
    hub: PushHub,
    link: _Socket,
    queue: deque[dict[str, Any]],
    facts: tuple[bool, bool, bool, bool],
    stopping: threading.Event,
) -> None:
    for message in _greeting(sim, facts):
        link.send(message)
    beat = time.monotonic() + hub.heartbeat
    while link.flush() and not stopping.is_set():
        if not link.read(max(0.0, min(LOOK, beat - time.monotonic()))):
            link.flush()  # the close frame the protocol answers with
            return
        now_facts = _facts(sim)
        if now_facts != facts:
            facts = now_facts
            link.send(_sts(facts))
            if not facts[0]:  # the session is gone: the socket goes with it
                link.protocol.send_close(1000, "session ended")
        while queue:
            link.send(queue.popleft())
        if time.monotonic() >= beat:
            link.send({"topic": "system", "hb": int(time.time() * 1000)})
            beat = time.monotonic() + hub.heartbeat
