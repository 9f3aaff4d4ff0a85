"""A hostile websocket on raw sockets: it never upgrades, trickles, sends a 10 MB frame,
invalid UTF-8, closes at once again and again, or floods pings. Push never hangs, never
grows, never reconnects in a storm, and never changes the verdict (only auth/status does).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cpgw_tray.care.bulletins import Bulletins
from cpgw_tray.care.poller import Poller
from cpgw_tray.care.push_link import PushLink
from cpgw_tray.client.push import Push, Sts
from cpgw_tray.model.status import State, Status
from cpgw_tray.settings.config import load

from ..conftest import wait_for

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STS_DROPPED = b'{"topic":"sts","args":{"authenticated":false,"connected":false,"competing":false}}'

Behaviour = Callable[[socket.socket], None]


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame (a test's own hostile bytes)."""
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x80 | opcode, size)
    elif size < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 126, size)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, size)
    return head + payload


@dataclass
class HostileWs:
    """Accepts on 127.0.0.1; each connection: read the request, then ``behaviour``."""

    behaviour: Behaviour
    upgrade: bool = True
    connections: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            if self.upgrade:
                key = next(
                    line.split(b":", 1)[1].strip()
                    for line in data.split(b"\r\n")
                    if line.lower().startswith(b"sec-websocket-key")
                )
                accept = base64.b64encode(hashlib.sha1(key + GUID.encode()).digest())
                conn.sendall(
                    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
                )
            try:
                self.behaviour(conn)
            except OSError as exc:
                self.errors.append(type(exc).__name__)

    def close(self) -> None:
        self.stop.set()
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., HostileWs]]:
    made: list[HostileWs] = []

    def make(behaviour: Behaviour, upgrade: bool = True) -> HostileWs:
        made.append(HostileWs(behaviour, upgrade))
        return made[-1]

    yield make
    for server in made:
        server.close()


def silent(conn: socket.socket) -> None:
    conn.settimeout(30)
    with contextlib.suppress(OSError):
        conn.recv(1)


def trickle(conn: socket.socket) -> None:
    """A frame that never ends: a byte every 0.2 s."""
    conn.sendall(struct.pack("!BB", 0x81, 100))
    for _ in range(150):
        conn.sendall(b"x")
        time.sleep(0.2)


def huge(conn: socket.socket) -> None:
    """A 10 MB text frame, streamed as fast as the client takes it."""
    conn.sendall(struct.pack("!BBQ", 0x81, 127, 10 * 1024 * 1024))
    piece = b"[" * 65536
    for _ in range(160):
        conn.sendall(piece)


def bad_utf8(conn: socket.socket) -> None:
    conn.sendall(frame(b'{"topic":"sts","args":"\xff\xfe"}'))
    silent(conn)


def close_at_once(conn: socket.socket) -> None:
    conn.sendall(frame(STS_DROPPED) + frame(struct.pack("!H", 1000), opcode=0x8))


def ping_flood(conn: socket.socket) -> None:
    """Pings without end and never a heartbeat; pongs are read and dropped."""
    burst = frame(b"p" * 100, opcode=0x9) * 100
    end = time.monotonic() + 5
    while time.monotonic() < end:
        conn.sendall(burst)
        with contextlib.suppress(BlockingIOError):
            conn.recv(1 << 20, socket.MSG_DONTWAIT)


def deaf_ping_flood(conn: socket.socket) -> None:
    """Pings without end, never reading the pongs: the client's writes back up."""
    conn.settimeout(2)
    burst = frame(b"p" * 100, opcode=0x9) * 100
    end = time.monotonic() + 8
    while time.monotonic() < end:
        conn.sendall(burst)


@dataclass
class Seen:
    lost: list[tuple[float, str]] = field(default_factory=list)
    sts: list[object] = field(default_factory=list)


def push_to(server: HostileWs, seen: Seen, gap: float = 1.5) -> Push:
    push = Push(
        server.url,
        verify=False,
        timeout=1.0,
        session_id=lambda: "abc",
        on_sts=seen.sts.append,
        on_lost=lambda reason: seen.lost.append((time.monotonic(), reason)),
        heartbeat_gap=gap,
        jitter=lambda: 1.0,
    )
    push.start()
    return push


@pytest.mark.e2e  # waits out real websocket deadlines
@pytest.mark.parametrize(
    ("behaviour", "upgrade", "why"),
    [
        (silent, False, "TimeoutError"),
        (trickle, True, "no heartbeat"),
        (huge, True, "1009"),
        (bad_utf8, True, "1007"),
        (ping_flood, True, "no heartbeat"),
        (deaf_ping_flood, True, "no heartbeat"),
    ],
    ids=["never-upgrades", "trickles", "10MB-frame", "invalid-utf8", "ping-flood", "deaf-flood"],
)
def test_a_hostile_socket_is_dropped_in_bounded_time(
    serve: Callable[..., HostileWs], behaviour: Behaviour, upgrade: bool, why: str
) -> None:
    import psutil

    server = serve(behaviour, upgrade)
    seen = Seen()
    before = psutil.Process().memory_info().rss
    started = time.monotonic()
    push = push_to(server, seen)
    try:
        wait_for(lambda: seen.lost, timeout=6)
        took = seen.lost[0][0] - started
        assert took < 4.0, f"{why}: {took:.1f} s"
        assert why in seen.lost[0][1]
        assert seen.sts == []  # nothing it sent was taken as a fact
        assert psutil.Process().memory_info().rss - before < 32 * 1024 * 1024
        assert push.state in ("off", "connecting")
    finally:
        push.stop()


def read_client_frame(conn: socket.socket) -> tuple[int, bytes]:
    """One masked client frame's opcode and unmasked payload (short frames only)."""

    def exactly(size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = conn.recv(size - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    head, size = exactly(2)
    mask = exactly(4)
    payload = exactly(size & 0x7F)
    return head & 0x0F, bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def test_one_thread_reads_the_socket_puts_fragments_together_and_answers_pings(
    serve: Callable[..., HostileWs],
) -> None:
    """An sts in two fragments arrives whole; a ping is answered with its pong; no thread
    but push's own reads the socket (each heartbeat wakes one thread, issue 24)."""
    pongs: list[tuple[int, bytes]] = []

    def fragments_then_ping(conn: socket.socket) -> None:
        half = len(STS_DROPPED) // 2
        first = struct.pack("!BB", 0x01, half) + STS_DROPPED[:half]  # text, not final
        rest = frame(STS_DROPPED[half:], opcode=0x0)  # the final continuation
        conn.sendall(first + rest + frame(b"are you there", opcode=0x9))
        conn.settimeout(5)
        pongs.append(read_client_frame(conn))
        silent(conn)

    before = set(threading.enumerate())
    server = serve(fragments_then_ping)
    seen = Seen()
    push = push_to(server, seen, gap=30)
    try:
        wait_for(lambda: seen.sts and pongs, timeout=5)
        assert seen.sts == [Sts(authenticated=False, connected=False, competing=False)]
        assert pongs == [(0xA, b"are you there")]
        assert push.state == "connected" and seen.lost == []
        new = set(threading.enumerate()) - before
        ours = [t for t in new if "(_" not in t.name]  # not the server's accept and serve

        assert ours == [push._thread]
    finally:
        push.stop()


@pytest.mark.e2e  # waits out the real pauses between reconnections
def test_a_close_storm_gets_growing_pauses(serve: Callable[..., HostileWs]) -> None:
    server = serve(close_at_once)
    seen = Seen()
    push = push_to(server, seen)
    try:
        wait_for(lambda: len(seen.lost) >= 3, timeout=10)
    finally:
        push.stop()
    gaps = [b[0] - a[0] for a, b in zip(seen.lost, seen.lost[1:], strict=False)]
    assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # 1 s, then 2 s: no storm
    assert server.connections <= len(seen.lost) + 1


@pytest.mark.e2e  # waits out the real pauses between reconnections
def test_forged_sts_and_a_close_storm_never_flip_the_verdict(
    serve: Callable[..., HostileWs], tmp_path: Path
) -> None:
    """The socket says the session is gone and closes, again and again; auth/status says
    ready: the verdict stays ready, and the checks it asks for are capped."""
    server = serve(close_at_once)
    checks: list[float] = []

    def check() -> Status:
        checks.append(time.monotonic())
        return Status(
            State.READY,
            "Ready",
            "d",
            authenticated=True,
            connected=True,
            competing=False,
            checked_at=datetime.now(timezone.utc),
        )

    published: list[Status] = []
    poller = Poller(check, published.append, interval=15, keepalive=0)

    class Client:
        push_session = "abc"

    config = load({"url": server.url, "push": True}, env={})
    link = PushLink(config, Client(), poller, Bulletins(tmp_path / "b.json", server.url))  # type: ignore[arg-type]
    link.push._jitter = lambda: 1.0
    poller.start()
    link.start()
    started = time.monotonic()
    try:
        wait_for(lambda: server.connections >= 3, timeout=10)
    finally:
        link.stop()
        poller.stop()
    elapsed = time.monotonic() - started
    assert {s.state for s in published} == {State.READY}
    # one check at start, then at most one evidence-asked check per 10 s
    assert 2 <= len(checks) <= 2 + int(elapsed // 10)
