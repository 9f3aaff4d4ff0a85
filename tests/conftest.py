"""Shared fixtures: an isolated environment, the simulator over real HTTPS, test CAs."""

from __future__ import annotations

import io
import json
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cpgw_tray.cli.main import main
from cpgw_tray.simulator import Simulator

SYSTEM_CA = "/etc/ssl/certs/ca-certificates.crt"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads the user's config or environment."""
    for name in list(os.environ):
        if name.startswith("CPGW_TRAY_"):
            monkeypatch.delenv(name)
    # Real-time tests must not depend on the time of day: IBKR's restart windows are
    # off for them (and for the processes they start); tests of the windows turn them
    # on and inject the time.
    monkeypatch.setenv("CPGW_TRAY_RESTART_WINDOWS", "false")
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / "state"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / "cache"))
    return home


@pytest.fixture
def sim() -> Iterator[Simulator]:
    """A simulated gateway over HTTPS on 127.0.0.1, rate limits off (tests that check
    them turn them on)."""
    with Simulator(port=0, rate_limit=False, scenario="ready") as simulator:
        yield simulator


def wait_for(check: Callable[[], Any], timeout: float = 15.0, step: float = 0.02) -> Any:
    """The tests' one bounded wait, on published state (a process's or socket's effect,
    a thread's result): returns the first truthy value ``check`` gives. Tests wait on
    such events, never for a fixed time."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {check}")
        time.sleep(step)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), out=out)
    return code, out.getvalue()


def status_json(url: str, *extra: str) -> tuple[int, dict[str, Any]]:
    code, text = run_cli("--url", url, "status", "--json", *extra)
    return code, json.loads(text)


def control(
    sim_url: str, path: str, body: dict[str, Any] | None = None, method: str = "POST"
) -> Any:
    """Call the simulator's control API over real HTTPS, as an outside tool would."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(sim_url + path, data=data, method=method)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with urllib.request.urlopen(request, context=context, timeout=5) as reply:
        return json.loads(reply.read())


class PlainHTTPServer:
    """Another program on the port: answers plain HTTP, as on macOS port 5000."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"hello")

            do_POST = do_GET

            def log_message(self, *args: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plain_http() -> Iterator[PlainHTTPServer]:
    server = PlainHTTPServer()
    yield server
    server.close()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``: twice the CPUs, at least 2 and at most 8. Most tests
    wait on sockets, timers and child processes rather than compute, so more workers
    than CPUs shorten the run; ``CPGW_TEST_WORKERS`` sets the number."""
    wanted = os.environ.get("CPGW_TEST_WORKERS")
    if wanted:
        return int(wanted)
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    """The same for a whole module skipped as it is collected (``importorskip``)."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("CI") == "true":
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {report.longrepr}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Under CI=true a skip is a failure: CI installs everything the tests need, so a
    skipped desktop test there means the set-up broke, not that the test may pass."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if report.skipped and os.environ.get("CI") == "true":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"
