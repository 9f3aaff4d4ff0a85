"""Fixtures for the fault suite: a hostile gateway on raw sockets, a client with short
timeouts, and cpgw-tray run as a real subprocess (reaped, its peak memory measured)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cpgw_tray.client.api import GatewayClient, RateGovernor

from .hostile import Hostile, gzip_bomb

TIMEOUT = 1.0  # the client's budget per request in these tests


@pytest.fixture(autouse=True)
def nothing_left_running() -> Iterator[None]:
    """After each fault test no process the test started is still running."""
    import psutil

    yield
    children = psutil.Process().children(recursive=True)
    _gone, alive = psutil.wait_procs(children, timeout=5)
    assert not alive, f"left running: {[p.cmdline() for p in alive]}"


@pytest.fixture(scope="session")
def cert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile-cert")


@pytest.fixture
def hostile(cert_dir: Path) -> Iterator[Hostile]:
    with Hostile(cert_dir) as server:
        yield server


@pytest.fixture(scope="session")
def bomb() -> bytes:
    return gzip_bomb()


@pytest.fixture
def client(hostile: Hostile) -> Iterator[GatewayClient]:
    gateway = GatewayClient(
        hostile.url, timeout=TIMEOUT, verify=False, governor=RateGovernor(spacing=0)
    )
    yield gateway
    gateway.close()


def cli(*argv: str, **popen: object) -> subprocess.Popen[str]:
    """``cpgw-tray ARGV`` as a real process, in its own process group."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "cpgw_tray", *argv],
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        **popen,
    )


def reap(proc: subprocess.Popen[str]) -> None:
    """End ``proc``'s process group if anything of it still runs, and reap it."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    for stream in (proc.stdout, proc.stderr, proc.stdin):
        if stream is not None:
            stream.close()


# Runs cpgw-tray as its child and reports that child's peak RSS. A direct child of the
# test run would not do: a forked child's peak starts at its parent's size (pytest's).
MEASURE = """
import os, subprocess, sys
proc = subprocess.Popen([sys.executable, "-m", "cpgw_tray", *sys.argv[1:]])
_pid, status, usage = os.wait4(proc.pid, 0)
print("peak-kb", usage.ru_maxrss, file=sys.stderr)
sys.exit(os.waitstatus_to_exitcode(status))
"""


def run_measured(argv: list[str], timeout: float) -> tuple[int, str, float, float]:
    """Run ``cpgw-tray ARGV`` to its end; return (exit code, stdout, seconds, peak RSS in
    MB of the cpgw-tray process itself)."""
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-c", MEASURE, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        reap(proc)
    seconds = time.monotonic() - started
    peak_kb = int(err.rsplit("peak-kb ", 1)[1].split()[0])
    scale = 1024 if sys.platform == "darwin" else 1  # ru_maxrss: bytes there, KiB here
    return proc.returncode, out, seconds, peak_kb / scale / 1024
