"""A gateway stand-in with a chosen connection behaviour, for the CPU benchmarks.

The simulator keeps connections open for 120 s; real gateways and proxies do not always.
This server answers ``/v1/api/...`` with the simulator's own replies (a ready session,
no rate limit) over TLS with the simulator's kind of certificate, and either

- ``keep``: keeps idle connections open (10 minutes),
- ``close``: sends ``Connection: close`` and closes after every reply,
- ``idle``: closes a connection idle for ``--idle`` seconds (10 s like a proxy; the
  per-check benchmark shortens it so each check meets a dropped connection).

Run in its own process so only the client's CPU is measured::

    python benchmarks/hostile.py --mode idle --idle 10     # prints its URL, serves until killed
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import ssl
import sys
import tempfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cpgw_tray.simulator.certs import make_certificate
from cpgw_tray.simulator.model import SimulatedGateway


def make_handler(gateway: SimulatedGateway, mode: str, idle: float) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # BaseHTTPRequestHandler ends a connection whose next request does not start
        # within ``timeout`` seconds: that is the idle drop.
        timeout = idle if mode == "idle" else 600.0

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            self._answer()

        def do_POST(self) -> None:
            self._answer()

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            path = self.path.split("?", 1)[0]
            endpoint = path.removeprefix("/v1/api/").strip("/")
            status, reply, headers = gateway.answer(
                self.command, endpoint, body, self.client_address[0]
            )
            data = reply if isinstance(reply, str) else json.dumps(reply)
            self.send_response(status or 500)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json;charset=utf-8")
            self.send_header("Content-Length", str(len(data.encode())))
            if mode == "close":
                self.send_header("Connection", "close")
                self.close_connection = True
            # headers and body in one write (no Nagle stall on kept connections)
            self._headers_buffer.append(b"\r\n" + data.encode())  # type: ignore[attr-defined]
            self.flush_headers()

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type, context: ssl.SSLContext) -> None:
        self.context = context
        super().__init__(("127.0.0.1", 0), handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            request = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        self.RequestHandlerClass(request, client_address, self)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("keep", "close", "idle"), default="keep")
    parser.add_argument("--idle", type=float, default=10.0, help="idle seconds before a drop")
    args = parser.parse_args()
    gateway = SimulatedGateway(scenario="ready", session_timeout=0, rate_limit=False)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with tempfile.TemporaryDirectory(prefix="cpgw-bench-") as tmp:
        cert, key = make_certificate(Path(tmp))
        context.load_cert_chain(cert, key)
    server = Server(make_handler(gateway, args.mode, args.idle), context)
    print(f"https://127.0.0.1:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    sys.exit(0)


if __name__ == "__main__":
    main()
