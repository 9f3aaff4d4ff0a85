"""The health endpoint under attack, the attacker in its own process: a flood of idle
connections against ``watch --serve`` running under ``ulimit -n 256`` never changes a
verdict (the cap keeps descriptors for the check loop) and ``/readyz`` answers once the
flood goes; a DNS-rebinding page's ``Host`` gets 421."""

from __future__ import annotations

import http.client
import json
import resource
import subprocess
import sys
import threading
import time

import psutil
import pytest

from cpgw_tray.simulator import Simulator

from ..conftest import free_port, wait_for
from .conftest import cli, reap

FILES = 256  # the watcher's descriptor limit in these tests
IDLE = 300  # connections the attacker holds: more than the cap, more than FILES
# Opens IDLE connections to the port and holds them, idle; says how many it opened; ends
# when its stdin closes.
ATTACKER = """\
import socket, sys
port, count = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(count):
    try:
        held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    except OSError:
        pass
print("held", len(held), flush=True)
sys.stdin.read()
"""


def low_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FILES, FILES))


def readyz(port: int, host: str | None = None) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.putrequest("GET", "/readyz", skip_host=host is not None)
        if host is not None:
            conn.putheader("Host", host)
        conn.endheaders()
        reply = conn.getresponse()
        return reply.status, reply.read()
    except OSError:
        return 0, b""
    finally:
        conn.close()


class Lines:
    """A process's stdout, line by line, collected on a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        stream = proc.stdout
        threading.Thread(target=lambda: self.lines.extend(stream), daemon=True).start()


def auth_checks(sim: Simulator) -> int:
    return sum(1 for r in sim.requests() if r.path.endswith("/iserver/auth/status"))


@pytest.mark.e2e  # a real watch process, flooded in real time
@pytest.mark.timeout(60)
def test_a_flood_of_idle_health_clients_never_changes_a_verdict(sim: Simulator) -> None:
    port = free_port()
    argv = ["--url", sim.url, "watch", "--json", "--interval", "1", "--serve", str(port)]
    watcher = cli(*argv, stdout=subprocess.PIPE, preexec_fn=low_files)
    attacker = None
    try:
        out = Lines(watcher)
        wait_for(lambda: readyz(port)[0] == 200, timeout=20)
        # the line may reach our reader after the health endpoint has the verdict
        wait_for(lambda: out.lines, timeout=10)
        assert [json.loads(line)["state"] for line in out.lines] == ["ready"]

        attacker = subprocess.Popen(
            [sys.executable, "-c", ATTACKER, str(port), str(IDLE)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert attacker.stdout is not None
        said = attacker.stdout.readline().split()
        assert said[0] == "held" and int(said[1]) > 64  # more than the cap got through
        me = psutil.Process(watcher.pid)
        seen, cpu, started = auth_checks(sim), sum(me.cpu_times()[:2]), time.monotonic()
        wait_for(lambda: auth_checks(sim) >= seen + 3, timeout=20)  # the check loop goes on
        spent = sum(me.cpu_times()[:2]) - cpu
        assert spent < 0.5 * (time.monotonic() - started), spent  # no spinning
        assert me.num_fds() < FILES - 64  # the cap holds: descriptors to spare
        assert me.num_threads() < 16  # no thread per connection

        assert attacker.stdin is not None
        attacker.stdin.close()
        attacker.wait(timeout=10)
        code, body = wait_for(lambda: (r := readyz(port))[0] and r, timeout=15)
        assert code == 200 and json.loads(body)["state"] == "ready"
        assert [json.loads(line)["state"] for line in out.lines] == ["ready"]  # no change
        assert watcher.poll() is None
    finally:
        if attacker is not None:
            reap(attacker)  # type: ignore[arg-type]
        reap(watcher)


@pytest.mark.e2e  # a real watch process
@pytest.mark.timeout(60)
def test_a_rebinding_host_gets_421_from_a_real_watch(sim: Simulator) -> None:
    port = free_port()
    argv = ["--url", sim.url, "watch", "--serve", str(port), "--serve-host", "proxy.lan"]
    watcher = cli(*argv, stdout=subprocess.DEVNULL)
    try:
        wait_for(lambda: readyz(port)[0] == 200, timeout=20)
        assert readyz(port, f"attacker.example:{port}") == (421, b"")
        assert readyz(port, f"localhost:{port}")[0] == 200
        assert readyz(port, "proxy.lan")[0] == 200
    finally:
        reap(watcher)
