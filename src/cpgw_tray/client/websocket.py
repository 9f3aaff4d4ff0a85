"""One client websocket read on the caller's thread: the ``websockets`` library's sans-I/O
protocol (:class:`websockets.client.ClientProtocol`) over a plain or TLS socket this module
opens and owns. No framing by hand: the protocol parses frames, caps a message's size
(``max_size``, across its fragments), answers pings and runs the closing handshake; this
module moves bytes, puts fragments together and checks a text message's UTF-8.

Why not the library's sync client: it reads on a background thread of its own and hands
each message to the caller's thread, so every heartbeat woke two threads. Here one
``recv`` call blocks on the socket itself, bounded by the caller's deadline.

Every wait is bounded: the connect, TLS and HTTP upgrade share one deadline; a read waits
at most what the caller allows; what the protocol queues (pongs, a close) is sent within
the same deadline, so a peer that never reads cannot hold the thread past it. Never a
proxy: the socket goes straight to the gateway.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from collections import deque
from collections.abc import Sequence
from types import TracebackType

from websockets.client import ClientProtocol
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

READ_CHUNK = 64 * 1024
CLOSE_WAIT = 1.0  # sending our close frame when we leave: at most this long


class Closed(Exception):
    """The websocket ended; the message says how."""


class WebSocket:
    """An open websocket: :meth:`recv` gives whole messages (text as str, binary as
    bytes); use it as a context manager to close it."""

    def __init__(self, sock: socket.socket, protocol: ClientProtocol) -> None:
        self._sock, self._protocol = sock, protocol
        self._messages: deque[str | bytes] = deque()
        self._parts: list[bytes] = []
        self._kind: Opcode | None = None
        self._failed = False  # we failed the connection: nothing more is taken from it
        self._stalled = False  # a send ran out of time: the stream is cut mid-frame

    @classmethod
    def open(
        cls,
        url: str,
        *,
        context: ssl.SSLContext | None,
        headers: list[tuple[str, str]],
        max_size: int,
        timeout: float,
    ) -> WebSocket:
        """Connect, shake hands over TLS (for ``wss:``) and upgrade, all within
        ``timeout`` seconds. Raises OSError (TimeoutError at the deadline),
        ``websockets`` exceptions for a refused upgrade."""
        uri = parse_uri(url)
        end = time.monotonic() + timeout
        sock = socket.create_connection((uri.host, uri.port), timeout=timeout)
        try:
            if uri.secure:
                sock.settimeout(_left(end))  # bounds the TLS handshake as a whole
                sock = (context or ssl.create_default_context()).wrap_socket(
                    sock, server_hostname=uri.host
                )
            protocol = ClientProtocol(uri, max_size=max_size)
            request = protocol.connect()
            for name, value in headers:
                request.headers[name] = value
            protocol.send_request(request)
            websocket = cls(sock, protocol)
            websocket._upgrade(end)
        except BaseException:
            sock.close()
            raise
        return websocket

    def _upgrade(self, end: float) -> None:
        protocol = self._protocol
        if not self._flush(end):
            raise TimeoutError("the upgrade request could not be sent in time")
        while True:
            self._sock.settimeout(_left(end))
            if time.monotonic() >= end:
                raise TimeoutError("no upgrade reply in time")
            data = self._sock.recv(READ_CHUNK)  # TimeoutError at the deadline
            self._feed(data)
            events = protocol.events_received()
            if protocol.handshake_exc is not None:
                raise protocol.handshake_exc
            upgraded = [i for i, event in enumerate(events) if isinstance(event, Response)]
            if upgraded:
                self._take(events[upgraded[0] + 1 :], end)  # frames in the same read
                return
            if not data:
                raise EOFError("the connection closed before the upgrade")

    def recv(self, timeout: float) -> str | bytes | None:
        """The next whole message, or None when none came within ``timeout`` seconds.
        Raises :class:`Closed` once the websocket has ended (after the messages that
        came before its end)."""
        end = time.monotonic() + timeout
        while not self._messages:
            if self._ended():
                raise Closed(self._why())
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(READ_CHUNK)
            except TimeoutError:
                return None
            except OSError as exc:
                raise Closed(f"the socket failed ({exc.__class__.__name__}: {exc})") from exc
            self._feed(data)
            self._take(self._protocol.events_received(), end)
            if self._stalled:
                return None  # the deadline passed while sending; the next call says so
        return self._messages.popleft()

    def _feed(self, data: bytes) -> None:
        if data:
            self._protocol.receive_data(data)
        else:
            self._protocol.receive_eof()

    def _take(self, events: Sequence[object], end: float) -> None:
        """Whole messages from the frames, then send what the protocol queued."""
        for event in events:
            if isinstance(event, Frame) and not self._failed:
                self._frame(event)
        if not self._flush(end):
            self._stalled = True

    def _frame(self, frame: Frame) -> None:
        if frame.opcode is Opcode.TEXT or frame.opcode is Opcode.BINARY:
            self._kind, self._parts = frame.opcode, [bytes(frame.data)]
        elif frame.opcode is Opcode.CONT:
            self._parts.append(bytes(frame.data))  # the protocol checked one is under way
        else:
            return  # ping, pong, close: the protocol answers and tracks them
        if not frame.fin:
            return
        data, self._parts = b"".join(self._parts), []
        if self._kind is Opcode.BINARY:
            self._messages.append(data)
            return
        try:
            self._messages.append(data.decode("utf-8"))
        except UnicodeDecodeError as exc:
            self._protocol.fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}")
            self._failed = True

    def _flush(self, end: float) -> bool:
        """Send what the protocol queued by ``end``; False when time ran out."""
        for data in self._protocol.data_to_send():
            if not data:  # the protocol's end of stream: half-close
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_WR)
                continue
            view = memoryview(data)
            while view:
                left = end - time.monotonic()
                if left <= 0:
                    return False
                self._sock.settimeout(left)
                try:
                    view = view[self._sock.send(view) :]
                except TimeoutError:
                    return False
        return True

    def _ended(self) -> bool:
        closing = self._protocol.state in (State.CLOSING, State.CLOSED)
        return self._stalled or self._failed or closing

    def _why(self) -> str:
        protocol = self._protocol
        if self._stalled:
            return "a send to the gateway stalled (it does not read)"
        if protocol.close_rcvd is not None and protocol.close_rcvd_then_sent is not False:
            return f"closed by the gateway: {protocol.close_rcvd}"
        if protocol.close_sent is not None:
            return f"closed on our side: {protocol.close_sent}"
        return f"the connection ended ({protocol.parser_exc or 'end of stream'})"

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Say goodbye if the websocket is still open (within :data:`CLOSE_WAIT`), then
        drop the socket without waiting for the gateway's reply."""
        try:
            if self._protocol.state is State.OPEN and not self._stalled:
                self._protocol.send_close(CloseCode.NORMAL_CLOSURE)
                self._flush(time.monotonic() + CLOSE_WAIT)
        except OSError:
            pass
        finally:
            self._sock.close()


def _left(end: float) -> float:
    """Seconds left before ``end``, never 0 (a socket timeout of 0 means non-blocking)."""
    return max(end - time.monotonic(), 0.001)
