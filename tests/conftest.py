"""Shared fixtures: an isolated environment, the simulator over real HTTPS, test CAs."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import socket
import ssl
import sys
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
        # a short poll: close() waits for the loop's next look (0.5 s by default)
        serve = lambda: self.server.serve_forever(poll_interval=0.02)  # noqa: E731
        threading.Thread(target=serve, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def plain_http() -> Iterator[PlainHTTPServer]:
    server = PlainHTTPServer()
    yield server
    server.close()


# The e2e mark's rule (pyproject.toml), checked: a test that starts cpgw-tray as a
# process of its own is end-to-end. Such a test pays a Python start-up per process and
# waits on the process in real time; the tests outside e2e stay in this process.
_SPAWNED: list[str] = []  # cpgw-tray processes started while a test outside e2e ran
_IN_E2E = [True]  # whether the running test is marked e2e (True between tests)
_SHELL_WORD = re.compile(r"(^|[\s/;&|(])cpgw-tray(\s|$)")


def starts_cpgw_tray(argv: list[str]) -> bool:
    """``python -m cpgw_tray …``, ``python -c '…cpgw_tray…'``, the ``cpgw-tray`` script,
    or a shell command line that runs it."""
    if argv and os.path.basename(argv[0]) == "cpgw-tray":
        return True
    for flag, word in itertools.pairwise(argv):
        if flag == "-m" and word.split(".")[0] == "cpgw_tray":
            return True
        if flag == "-c" and ("cpgw_tray" in word or _SHELL_WORD.search(word)):
            return True
    return False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "subprocess.Popen" or _IN_E2E[0]:
        return
    argv = args[1]
    words = [argv] if isinstance(argv, (str, bytes)) else list(argv or ())
    words = [os.fsdecode(w) if isinstance(w, bytes) else str(w) for w in words]
    if len(words) == 1:  # a shell command line
        words = ["sh", "-c", words[0]]
    if starts_cpgw_tray(words):
        _SPAWNED.append(" ".join(words)[:160])


sys.addaudithook(_audit)


@pytest.fixture(autouse=True)
def real_processes_are_e2e(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fails a test outside e2e that starts cpgw-tray as a process: mark it e2e."""
    _SPAWNED.clear()
    _IN_E2E[0] = request.node.get_closest_marker("e2e") is not None
    yield
    _IN_E2E[0] = True
    if _SPAWNED:
        pytest.fail(f"starts cpgw-tray as a process ({_SPAWNED[0]}): mark the test e2e")


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """Workers for ``-n auto``. The tests outside e2e compute and never wait on real
    time, so one worker per CPU runs them fastest (each more worker costs a collection
    of its own); e2e tests wait on processes, timers and sockets, so with them twice
    the CPUs, at most 8. At least 2; ``CPGW_TEST_WORKERS`` sets the number."""
    wanted = os.environ.get("CPGW_TEST_WORKERS")
    if wanted:
        return int(wanted)
    cpus = os.cpu_count() or 1
    without_e2e = re.search(r"\bnot\s+e2e\b", config.getoption("markexpr") or "")
    return max(2, cpus if without_e2e else min(8, 2 * cpus))


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
