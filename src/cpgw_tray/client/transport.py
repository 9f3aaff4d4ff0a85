"""The HTTP transport under the gateway client: bounded in time, memory and CPU.

- **One deadline per request.** Connect, TLS handshake, headers and body share one
  wall-clock budget. A socket timeout bounds a single read, not a reply that trickles
  a byte a second, so the connection's sockets (plain and TLS, our own subclasses) set
  their timeout to what is left of the request's deadline before every read and write:
  a trickle ends at the deadline, and no watchdog thread wakes for requests that end in
  time (an idle client wakes nothing between its requests). The handshake runs on a
  socket whose timeout is what is left (CPython bounds a whole handshake by it).
- **Bodies streamed and capped** on their decoded size: gzip/deflate are inflated here,
  never more than the cap plus one byte, so neither an endless body nor a compression
  bomb grows memory.
- **Interim replies skipped**: a ``1xx`` before the real reply (``103 Early Hints``) is
  read past, never taken for the reply.
- **One ``ssl.SSLContext`` per client**, built once and handed to urllib3 through the
  adapter: a reconnect costs a handshake, not a reload of the CA store.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Iterator
from typing import Any

import requests
import urllib3
from requests.adapters import HTTPAdapter
from requests.utils import DEFAULT_CA_BUNDLE_PATH
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..model.status import Failure

READ_CHUNK = 16 * 1024
ENCODINGS = "gzip, deflate"  # all this transport inflates (and caps) itself


class BadReply(Exception):
    """A reply came but cannot be used (too large, unknown or broken encoding)."""


# ------------------------------------------------------------------ deadlines

_local = threading.local()


class Deadline:
    """One request's wall-clock deadline, seen by the sockets of the thread it is
    active on."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds

    @property
    def expired(self) -> bool:
        return time.monotonic() >= self.at

    def left(self) -> float:
        """Seconds left, never below a millisecond (a socket timeout of 0 means
        non-blocking, not "expired")."""
        return max(self.at - time.monotonic(), 0.001)

    @contextlib.contextmanager
    def active(self) -> Iterator[Deadline]:
        """Bound the socket operations of requests made on this thread in the block."""
        _local.deadline = self
        try:
            yield self
        finally:
            _local.deadline = None


def _current() -> Deadline | None:
    deadline: Deadline | None = getattr(_local, "deadline", None)
    return deadline


def _bound(sock: socket.socket) -> None:
    """Before a blocking operation: wait at most what is left of the deadline."""
    deadline = _current()
    if deadline is not None:
        sock.settimeout(deadline.left())


class _BoundedSends:
    """Sends that end at the request's deadline (mixed into both socket classes)."""

    def send(self, *args: Any) -> int:
        _bound(self)  # type: ignore[arg-type]
        return super().send(*args)  # type: ignore[misc, no-any-return]

    def sendall(self, *args: Any) -> None:
        _bound(self)  # type: ignore[arg-type]
        super().sendall(*args)  # type: ignore[misc]


class _Socket(_BoundedSends, socket.socket):
    """A plain socket whose reads and writes end at the request's deadline."""

    def recv(self, *args: Any) -> bytes:
        _bound(self)
        return super().recv(*args)

    def recv_into(self, *args: Any) -> int:
        _bound(self)
        return super().recv_into(*args)


class _SSLSocket(_BoundedSends, ssl.SSLSocket):
    """A TLS socket whose reads and writes end at the request's deadline (its
    ``recv``/``recv_into`` read, its ``sendall`` sends, through these)."""

    def read(self, *args: Any) -> Any:
        _bound(self)
        return super().read(*args)

    def write(self, *args: Any) -> int:
        _bound(self)
        return super().write(*args)


MAX_INTERIM = 20  # interim 1xx replies skipped before one reply, at most


class _FinalResponse(http.client.HTTPResponse):
    """Skips interim replies (``103 Early Hints``, ``102 Processing``) as http.client
    skips ``100 Continue``: they come before the real reply and say nothing of it.
    ``101 Switching Protocols`` is final and stays (an error for the client)."""

    def _read_status(self) -> tuple[str, int, str]:
        for _ in range(MAX_INTERIM):
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 101 < status < 200:
                return version, status, reason
            http.client.parse_headers(self.fp)  # the interim reply's headers
        raise http.client.HTTPException(f"more than {MAX_INTERIM} interim replies")


class _Conn(HTTPConnection):
    """A connection that connects within what is left of the current deadline, on a
    socket bounded by it; its replies skip interim ones."""

    response_class = _FinalResponse

    def _new_conn(self) -> socket.socket:
        deadline = _current()
        if deadline is not None:
            self.timeout = deadline.left()  # connect within what is left
        plain = super()._new_conn()
        timeout = deadline.left() if deadline is not None else plain.gettimeout()
        sock = _Socket(plain.family, plain.type, plain.proto, fileno=plain.detach())
        sock.settimeout(timeout)  # the TLS handshake, as a whole, too
        return sock


class _SConn(_Conn, HTTPSConnection):
    """The same over TLS (the handshake runs inside ``connect``, after ``_new_conn``)."""


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Conn


class _SPool(HTTPSConnectionPool):
    ConnectionCls = _SConn


POOLS = {"http": _Pool, "https": _SPool}


# ------------------------------------------------------------------ TLS, adapter


def build_context(verify: bool | str, trust_env: bool) -> ssl.SSLContext:
    """The client's one TLS context. ``verify``: False (nothing loaded, no hostname
    check), a CA file or folder, or True (requests' own bundle, or
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` when the environment is trusted, as
    requests does). Raises OSError or ssl.SSLError for a CA file that cannot be read."""
    from urllib3.util.ssl_ import create_urllib3_context

    if verify is False:
        context = create_urllib3_context(cert_reqs=ssl.CERT_NONE)
        context.sslsocket_class = _SSLSocket
        return context
    context = create_urllib3_context(cert_reqs=ssl.CERT_REQUIRED)
    context.sslsocket_class = _SSLSocket
    where = verify if isinstance(verify, str) else None
    if where is None and trust_env:
        where = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
    where = where or DEFAULT_CA_BUNDLE_PATH
    if os.path.isdir(where):
        context.load_verify_locations(capath=where)
    else:
        context.load_verify_locations(cafile=where)
    return context


class BoundedAdapter(HTTPAdapter):
    """requests' adapter with our pools (deadline-aware connections) and our one TLS
    context. Verification is the context's, decided once: the per-request ``verify``
    that requests passes in (which ``REQUESTS_CA_BUNDLE`` can rewrite) is not used, and
    no CA file is given to urllib3, which would load it again on every connection."""

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = self._context
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        if proxy.lower().startswith("socks"):
            return super().proxy_manager_for(proxy, **proxy_kwargs)
        manager = super().proxy_manager_for(proxy, ssl_context=self._context, **proxy_kwargs)
        manager.pool_classes_by_scheme = POOLS
        return manager

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        verifying = self._context.verify_mode != ssl.CERT_NONE
        conn.cert_reqs = "CERT_REQUIRED" if verifying else "CERT_NONE"
        conn.ca_certs = None
        conn.ca_cert_dir = None


# ------------------------------------------------------------------ bodies


class _Inflater:
    """gzip/deflate, inflated a bounded amount at a time."""

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS if self._gzip else zlib.MAX_WBITS)
        # deflate: the input before the first output, to start again as raw deflate
        self._start: bytes | None = None if self._gzip else b""

    def feed(self, data: bytes, room: int) -> bytes:
        """Inflate ``data``; at most ``room`` (>= 1) bytes come out."""
        out = b""
        while data:
            try:
                piece = self._obj.decompress(data, room - len(out))
            except zlib.error:
                if self._start is None:
                    raise BadReply("its compressed body is broken") from None
                # "deflate" is sometimes raw deflate, without the zlib wrapper
                data, self._start = self._start + data, None
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                continue
            if self._start is not None:
                self._start = None if piece or len(self._start) > 1024 else self._start + data
            out += piece
            if len(out) >= room:
                return out
            if self._gzip and self._obj.eof and self._obj.unused_data:
                data = self._obj.unused_data  # another gzip member follows
                self._obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
            else:
                data = b""
        return out


def read_capped(response: requests.Response, cap: int, deadline: Deadline) -> bytes:
    """The body, streamed, decoded and at most ``cap`` bytes, or :class:`BadReply`
    ("reply too large"). Raises the transport's own errors on a broken read (a read cut
    by the deadline: a timeout)."""
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    inflater: _Inflater | None = None
    if encoding in ("gzip", "x-gzip", "deflate"):
        inflater = _Inflater(encoding)
    elif encoding not in ("", "identity"):
        raise BadReply(f"it uses an encoding cpgw-tray did not ask for ({encoding[:40]})")
    length = response.headers.get("Content-Length", "").strip()
    if inflater is None and length.isdigit() and int(length) > cap:
        raise BadReply(f"reply too large ({int(length)} bytes; at most {cap} are read)")
    body = bytearray()
    raw, received = response.raw, 0
    while True:
        chunk = raw.read(READ_CHUNK, decode_content=False)
        if not chunk:
            if length.isdigit() and received < int(length):  # urllib3 1.26 lets this pass
                raise http.client.IncompleteRead(b"", int(length) - received)
            return bytes(body)
        received += len(chunk)
        body += inflater.feed(chunk, cap + 1 - len(body)) if inflater else chunk
        if len(body) > cap:
            raise BadReply(f"reply too large (more than {cap} bytes)")


# ------------------------------------------------------------------ failures


def _caused_by(exc: BaseException, kind: type[BaseException] | tuple[type, ...]) -> bool:
    """Whether ``kind`` is anywhere in the exception's chain or urllib3 ``reason``."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        item = stack.pop()
        if item is None or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, kind):
            return True
        linked = [item.__cause__, item.__context__, getattr(item, "reason", None), *item.args]
        stack.extend(a for a in linked if isinstance(a, BaseException))
    return False


TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def sort_failure(exc: BaseException, deadline: Deadline | None = None) -> tuple[Failure, str]:
    """Map a transport error to a failure kind and a short plain reason."""
    text = str(exc)
    if _caused_by(exc, ConnectionRefusedError) or "Connection refused" in text:
        return Failure.REFUSED, "connection refused"
    # (not urllib3's TimeoutError: its NewConnectionError, any failed connect, is one)
    if (deadline is not None and deadline.expired) or _caused_by(
        exc, (TimeoutError, requests.Timeout, urllib3.exceptions.ReadTimeoutError)
    ):
        seconds = f" within {deadline.seconds:g} s" if deadline is not None else ""
        return Failure.TIMEOUT, f"no complete reply{seconds}"
    if isinstance(exc, requests.exceptions.SSLError) or _caused_by(exc, ssl.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
            detail = text.split("certificate verify failed:")[-1].strip(" ')\"")
            return Failure.TLS_CERT, detail or "certificate verify failed"
        plain = (
            "WRONG_VERSION_NUMBER",
            "wrong version number",
            "record layer failure",
            "packet length too long",
            "http request",
        )
        if any(marker in text for marker in plain):
            return Failure.TLS_PLAINTEXT, "the port answered without TLS"
        if _caused_by(exc, ssl.SSLEOFError) or "EOF occurred" in text:
            return Failure.CONNECTION, "the gateway closed the connection mid-reply"
        return Failure.TLS, text
    if _caused_by(exc, http.client.RemoteDisconnected):
        return Failure.CONNECTION, "the gateway closed the connection without a reply"
    if _caused_by(exc, ConnectionResetError):
        return Failure.CONNECTION, "the connection was reset"
    if _caused_by(exc, http.client.LineTooLong) or "more than 100 headers" in text:
        return Failure.BAD_REPLY, "its headers are too large"
    if _caused_by(exc, http.client.IncompleteRead) or "ended prematurely" in text:
        return Failure.CONNECTION, "the reply was cut short"
    if _caused_by(exc, http.client.HTTPException) or isinstance(exc, urllib3.exceptions.HTTPError):
        return Failure.BAD_REPLY, "it is not a well-formed HTTP reply"
    return Failure.CONNECTION, " ".join(text.split())[:200]
