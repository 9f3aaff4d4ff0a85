"""A hostile gateway on raw sockets: every byte it sends is under the test's control.

Serves TLS (a certificate from :func:`cpgw_tray.simulator.make_certificate`) on
127.0.0.1. What each request gets is a *behaviour* chosen per kind of path ("status":
auth/status and tickle; "accounts"; "other"), changeable at any time. Run as a program
(``python hostile.py --port P --cert-dir D``) it serves "ready" until killed: for the
kill -9 and restart test.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import ssl
import struct
import sys
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

READY = {
    "authenticated": True,
    "competing": False,
    "connected": True,
    "message": "",
    "MAC": "F4:03:43:CD:BD:C0",
    "serverInfo": {"serverName": "Hostile01", "serverVersion": "Build 10.25.0m"},
}
TICKLE_READY = {"session": "abc", "ssoExpires": 400000, "iserver": {"authStatus": READY}}
ACCOUNTS = {"accounts": ["DU1234567"], "isPaper": True}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def kind(self) -> str:
        if self.path.endswith(("/iserver/auth/status", "/tickle")):
            return "status"
        if self.path.endswith("/iserver/accounts"):
            return "accounts"
        return "other"


class Conn:
    """One accepted connection, as behaviours see it."""

    def __init__(self, sock: socket.socket, server: Hostile) -> None:
        self.sock = sock
        self.server = server

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def pause(self, seconds: float) -> bool:
        """Wait; False once the server is stopping (a behaviour should end then)."""
        return not self.server.stopping.wait(seconds)


# A behaviour answers one request; it returns whether the connection may be kept.
Behaviour = Callable[[Conn, Request], bool]


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def reply(status: int, body: bytes | str | Any, *, close: bool = False, **extra: str) -> Behaviour:
    """A complete reply in one write (JSON for anything not bytes or str)."""
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, bytes):
        data = body
    else:
        data = json.dumps(body).encode()
    headers = {
        "Content-Length": str(len(data)),
        **{k.replace("_", "-"): v for k, v in extra.items()},
    }
    if close:
        headers["Connection"] = "close"

    def behave(conn: Conn, request: Request) -> bool:
        conn.send(head(status, headers) + data)
        return not close

    return behave


def ready(close: bool = False) -> Behaviour:
    """auth/status or tickle, fully ready."""
    status_reply, tickle_reply = (
        reply(200, READY, close=close),
        reply(200, TICKLE_READY, close=close),
    )

    def behave(conn: Conn, request: Request) -> bool:
        return (tickle_reply if request.path.endswith("/tickle") else status_reply)(conn, request)

    return behave


def trickle_body(every: float = 0.25) -> Behaviour:
    """Headers at once, then the body a byte at a time."""

    def behave(conn: Conn, request: Request) -> bool:
        conn.send(head(200, {"Content-Length": "1000"}))
        while conn.pause(every):
            conn.send(b"[")
        return False

    return behave


def trickle_headers(every: float = 0.25) -> Behaviour:
    """The status line, then the headers a byte at a time, never ending."""

    def behave(conn: Conn, request: Request) -> bool:
        conn.send(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        while conn.pause(every):
            conn.send(b"a")
        return False

    return behave


def endless_chunked(piece: bytes = b"[" * 65536) -> Behaviour:
    """A chunked body that never ends, as fast as the client reads."""

    def behave(conn: Conn, request: Request) -> bool:
        conn.send(head(200, {"Transfer-Encoding": "chunked"}))
        chunk = b"%x\r\n" % len(piece) + piece + b"\r\n"
        while not conn.server.stopping.is_set():
            conn.send(chunk)
        return False

    return behave


def gzip_bomb(size: int = 1 << 30) -> bytes:
    """A valid gzip body of ``size`` zero bytes (1 GiB: about 1 MB), built in a blink:
    after a full flush, each MiB of zeros compresses to the same bytes."""
    mib = bytes(1 << 20)
    count = size >> 20
    deflater = zlib.compressobj(9, zlib.DEFLATED, 31)
    first = deflater.compress(mib) + deflater.flush(zlib.Z_FULL_FLUSH)
    again = deflater.compress(mib) + deflater.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(count):
        crc = zlib.crc32(mib, crc)
    final_block = b"\x03\x00"  # an empty last block
    return first + again * (count - 1) + final_block + struct.pack("<II", crc, size & 0xFFFFFFFF)


def compressed(body: bytes, encoding: str = "gzip") -> Behaviour:
    return reply(200, body, Content_Encoding=encoding)


def huge_headers(line: int = 200_000) -> Behaviour:
    """One header line far longer than any parser keeps."""

    def behave(conn: Conn, request: Request) -> bool:
        conn.send(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"h" * line + b"\r\n\r\n")
        return False

    return behave


def many_headers(count: int = 10_000) -> Behaviour:
    def behave(conn: Conn, request: Request) -> bool:
        lines = b"".join(b"X-H%d: v\r\n" % i for i in range(count))
        conn.send(b"HTTP/1.1 200 OK\r\n" + lines + b"Content-Length: 2\r\n\r\n{}")
        return False

    return behave


def reset_mid_reply() -> Behaviour:
    """Half a reply, then a TCP reset."""

    def behave(conn: Conn, request: Request) -> bool:
        conn.send(head(200, {"Content-Length": "500"}) + b'{"authenticated": tr')
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.sock.close()
        return False

    return behave


def silence() -> Behaviour:
    """Read the request, answer nothing, keep the connection open."""

    def behave(conn: Conn, request: Request) -> bool:
        conn.server.stopping.wait()
        return False

    return behave


class Hostile:
    """The hostile gateway. ``start()`` serves on threads; ``stop()`` ends everything."""

    def __init__(self, cert_dir: Path, port: int = 0) -> None:
        from cpgw_tray.simulator import make_certificate

        cert, key = (
            (cert_dir / "cert.pem", cert_dir / "key.pem")
            if (cert_dir / "cert.pem").exists()
            else make_certificate(cert_dir)
        )
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.port: int = self.listener.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.behaviours: dict[str, Behaviour] = {
            "status": ready(),
            "accounts": reply(200, ACCOUNTS),
            "other": reply(404, "Not Found"),
        }
        self.seen: list[str] = []  # request paths, in order
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def set(self, behaviour: Behaviour, kind: str = "status") -> None:
        self.behaviours[kind] = behaviour

    def start(self) -> Hostile:
        self._spawn(self._accept)
        return self

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(sock)
                self.connections += 1
            self._spawn(self._serve, sock)

    def _serve(self, raw: socket.socket) -> None:
        try:
            raw.settimeout(30)
            sock = self.context.wrap_socket(raw, server_side=True)
            with self._lock:
                self._open.add(sock)
            conn = Conn(sock, self)
            while not self.stopping.is_set():
                request = _read_request(sock)
                if request is None:
                    return
                with self._lock:
                    self.seen.append(request.path)
                if not self.behaviours[request.kind](conn, request):
                    return
        except (OSError, ssl.SSLError):
            return
        finally:
            with contextlib.suppress(OSError):
                raw.close()

    def stop(self) -> None:
        self.stopping.set()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self._lock:
            sockets, threads = list(self._open), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
        for thread in threads:
            thread.join(timeout=5)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> Hostile:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_request(sock: socket.socket) -> Request | None:
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        if not piece or len(data) > 1 << 20:
            return None
        data += piece
    top, rest = data.split(b"\r\n\r\n", 1)
    lines = top.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers = {
        k.strip().lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:] if ":" in x)
    }
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        piece = sock.recv(65536)
        if not piece:
            return None
        rest += piece
    return Request(method, path, headers)


def main() -> None:
    """Serve "ready" until killed (``--close``: one reply per connection); print the
    port once listening."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--cert-dir", type=Path, required=True)
    parser.add_argument("--close", action="store_true", help="close after each reply")
    args = parser.parse_args()
    server = Hostile(args.cert_dir, args.port).start()
    server.set(ready(close=args.close))
    print(server.port, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    sys.exit(main())
