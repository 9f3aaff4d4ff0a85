"""A small bounded HTTP/1.1 server for the health endpoint, safe against slow, idle and
flooding clients.

One selector loop on one daemon thread serves every connection (no thread per
connection). At most ``max_connections`` are open: a new one drops the oldest idle one
(no request under way), so a flood of clients can slow answers but never takes the
descriptors the rest of the process needs. The listen backlog is :data:`BACKLOG`. A
request's line and headers must arrive within ``head_timeout`` seconds of connecting
(or of the previous reply on a kept-alive connection) and the whole exchange, reply
included, within ``request_timeout``; a client past either is dropped. While nothing is
connected the loop waits with no timeout, so it costs nothing.

A request whose ``Host`` header the ``host_ok`` callable refuses gets 421 and no body;
no ``Host`` at all (HTTP/1.0) is passed on. Everything else goes to ``handler``.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import selectors
import socket
import threading
import time
from collections.abc import Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import NamedTuple

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 64
BACKLOG = 128
HEAD_TIMEOUT = 5.0
REQUEST_TIMEOUT = 10.0
MAX_HEAD = 16 * 1024  # bytes of request line and headers
MAX_BODY = 64 * 1024  # a GET has none; a small one is read and ignored
_PAUSE = 0.5  # seconds without accepting after the process ran out of descriptors
_HEAD_END = re.compile(rb"\r?\n\r?\n")
_OUT_OF_FILES = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class Request(NamedTuple):
    method: str
    path: str
    version: str
    headers: dict[str, list[str]]  # lower-case names


class Reply(NamedTuple):
    code: HTTPStatus
    body: bytes = b""
    kind: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


class Limits(NamedTuple):
    """How many clients, and how long each may take."""

    max_connections: int = MAX_CONNECTIONS
    head_timeout: float = HEAD_TIMEOUT
    request_timeout: float = REQUEST_TIMEOUT


DEFAULT_LIMITS = Limits()


class _Conn:
    """One client: what it sent, what it is owed, and until when it may take."""

    def __init__(self, sock: socket.socket, peer: str, now: float) -> None:
        self.sock, self.peer = sock, peer
        self.inbuf = bytearray()
        self.outbuf = bytearray()
        self.started = now  # when the current request began to be awaited
        self.need: int | None = None  # body bytes still due once the head is read
        self.request: Request | None = None
        self.close_after = False

    @property
    def idle(self) -> bool:
        return not self.inbuf and not self.outbuf and self.request is None


class BoundedServer:
    """Listens at once (raising OSError); :meth:`start` serves on a daemon thread;
    :meth:`stop` returns at once and closes every connection."""

    def __init__(
        self,
        host: str,
        port: int,
        handler: Callable[[Request], Reply],
        host_ok: Callable[[str], bool],
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listen = socket.create_server((host, port), family=family, backlog=BACKLOG)
        self._listen.setblocking(False)
        self.address = self._listen.getsockname()[:2]
        self.handler, self.host_ok = handler, host_ok
        self.max_connections, self.head_timeout, self.request_timeout = limits
        self._conns: dict[socket.socket, _Conn] = {}
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = False
        self._paused_until: float | None = None
        self._thread = threading.Thread(target=self._run, name="health", daemon=True)

    @property
    def connections(self) -> int:
        return len(self._conns)

    @property
    def thread(self) -> threading.Thread:
        """The selector loop's thread."""
        return self._thread

    def start(self) -> None:
        self._selector.register(self._listen, selectors.EVENT_READ, "accept")
        self._selector.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread.start()

    def stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self._wake_w.send(b"x")
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        for conn in list(self._conns.values()):
            self._close(conn)
        self._selector.close()
        self._listen.close()
        self._wake_r.close()
        self._wake_w.close()

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stopping:
            try:
                for key, mask in self._selector.select(self._wait()):
                    if key.data == "accept":
                        self._accept()
                    elif isinstance(key.data, _Conn):
                        self._serve(key.data, mask)
                self._expire(time.monotonic())
            except Exception:  # keep serving; a broken loop would be a silent stop
                log.exception("health endpoint loop failed")

    def _wait(self) -> float | None:
        """Seconds until the next deadline; None (no timeout) when nothing is due."""
        due = [self._deadline(c) for c in self._conns.values()]
        if self._paused_until is not None:
            due.append(self._paused_until)
        return max(0.0, min(due) - time.monotonic()) if due else None

    def _deadline(self, conn: _Conn) -> float:
        waiting = conn.request is None and not conn.outbuf  # for a request's head
        late = self.head_timeout if waiting else self.request_timeout
        return conn.started + late

    def _expire(self, now: float) -> None:
        if self._paused_until is not None and now >= self._paused_until:
            self._paused_until = None
            self._selector.register(self._listen, selectors.EVENT_READ, "accept")
        for conn in [c for c in self._conns.values() if now >= self._deadline(c)]:
            log.debug("health endpoint: %s too slow, dropped", conn.peer)
            self._close(conn)

    def _accept(self) -> None:
        for _ in range(self.max_connections):  # a bounded batch, then the others' turn
            try:
                sock, peer = self._listen.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FILES:  # the listener stays readable: pause it
                    log.warning("health endpoint: cannot accept (%s); pausing", exc.strerror)
                    self._selector.unregister(self._listen)
                    self._paused_until = time.monotonic() + _PAUSE
                    return
                continue  # e.g. ECONNABORTED: that client is gone already
            if len(self._conns) >= self.max_connections:
                idle = [c for c in self._conns.values() if c.idle] or list(self._conns.values())
                oldest = min(idle, key=lambda c: c.started)
                log.debug("health endpoint: %s dropped for a new client", oldest.peer)
                self._close(oldest)
            sock.setblocking(False)
            conn = _Conn(sock, str(peer[0]), time.monotonic())
            self._conns[sock] = conn
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _close(self, conn: _Conn) -> None:
        if self._conns.pop(conn.sock, None) is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(conn.sock)
        conn.sock.close()

    def _serve(self, conn: _Conn, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE:
                self._write(conn)
            elif mask & selectors.EVENT_READ:
                data = conn.sock.recv(16384)
                if not data:
                    self._close(conn)
                    return
                conn.inbuf += data
            while conn.sock in self._conns and not conn.outbuf and self._advance(conn):
                self._write(conn)  # pipelined requests, one at a time, in a loop
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:  # reset or broken pipe: the client's doing, not an error
            log.debug("health endpoint: %s went away (%s)", conn.peer, exc.strerror or exc)
            self._close(conn)

    # ------------------------------------------------------------------ one request

    def _advance(self, conn: _Conn) -> bool:
        """Read as far as the buffer allows; once a whole request is in, queue its reply
        and say so (True)."""
        if conn.request is None:
            end = _HEAD_END.search(conn.inbuf)
            if end is None:
                if len(conn.inbuf) > MAX_HEAD:
                    self._answer(conn, Reply(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE), True)
                    return True
                return False
            head = bytes(conn.inbuf[: end.start()])
            del conn.inbuf[: end.end()]
            request = _parse(head)
            if request is None:
                self._answer(conn, Reply(HTTPStatus.BAD_REQUEST, b"Bad request\n"), True, "1.0")
                return True
            conn.request = request
            length = _content_length(request)
            if length is None or length > MAX_BODY:
                code = HTTPStatus.BAD_REQUEST if length is None else HTTPStatus(413)
                self._answer(conn, Reply(code, f"{code.phrase}\n".encode()), True)
                return True
            conn.need = length
        if conn.need is not None and len(conn.inbuf) < conn.need:
            return False
        del conn.inbuf[: conn.need or 0]
        request, conn.request, conn.need = conn.request, None, None
        assert request is not None
        closing = request.version != "HTTP/1.1" or "close" in _header(request, "connection")
        hosts = request.headers.get("host", [])
        if hosts and (len(hosts) > 1 or not self.host_ok(hosts[0])):
            log.debug("health endpoint: %s asked for host %r: 421", conn.peer, hosts)
            self._answer(conn, Reply(HTTPStatus.MISDIRECTED_REQUEST, kind=""), True)
            return True
        try:
            reply = self.handler(request)
        except Exception:  # the handler's fault: logged, answered, and the loop goes on
            log.exception("health endpoint: %s %s failed", request.method, request.path[:200])
            reply = Reply(HTTPStatus.INTERNAL_SERVER_ERROR, b"internal error; see the log\n")
        log.debug(
            "health endpoint: %s %s %s %d", conn.peer, request.method, request.path, reply.code
        )
        self._answer(conn, reply, closing, head_only=request.method == "HEAD")
        return True

    def _answer(
        self,
        conn: _Conn,
        reply: Reply,
        close: bool,
        version: str = "1.1",
        head_only: bool = False,
    ) -> None:
        lines = [f"HTTP/{version} {reply.code.value} {reply.code.phrase}", "Server: cpgw-tray"]
        lines.append(f"Date: {formatdate(usegmt=True)}")
        if reply.kind:
            lines += [f"Content-Type: {reply.kind}", "Cache-Control: no-store"]
        lines.append(f"Content-Length: {len(reply.body)}")
        lines += [f"{name}: {value}" for name, value in reply.headers]
        if close:
            lines.append("Connection: close")
        conn.outbuf += ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        conn.outbuf += b"" if head_only else reply.body
        conn.close_after = close

    def _write(self, conn: _Conn) -> None:
        sent = conn.sock.send(conn.outbuf) if conn.outbuf else 0
        del conn.outbuf[:sent]
        if conn.outbuf:
            self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
            return
        if conn.close_after:
            self._close(conn)
            return
        conn.request, conn.started = None, time.monotonic()  # awaiting the next request
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)


def _parse(head: bytes) -> Request | None:
    """The request line and headers; None when they are not HTTP/1.x."""
    lines = re.split(r"\r?\n", head.decode("latin-1"))
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1.") or not parts[0].isalpha():
        return None
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip() or " " in name:
            return None  # folded or broken header lines
        headers.setdefault(name.lower(), []).append(value.strip())
    return Request(parts[0], parts[1], parts[2], headers)


def _header(request: Request, name: str) -> str:
    return ",".join(request.headers.get(name, [])).lower()


def _content_length(request: Request) -> int | None:
    """The body's length (0 when none); None when it cannot be read (or is chunked)."""
    if "transfer-encoding" in request.headers:
        return None
    values = set(request.headers.get("content-length", ["0"]))
    value = values.pop() if len(values) == 1 else ""
    return int(value) if value.isdigit() else None
