"""The tray's gateway items with real gateway processes: the tray's own folder, the same
identity rules as the command line, and every failure shown."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from cpgw_tray.client.api import GatewayClient
from cpgw_tray.model.status import State
from cpgw_tray.process.identity import gateway_in
from cpgw_tray.process.launcher import Launcher
from cpgw_tray.settings.config import load
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.gateway_menu import GatewayControl
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import wait_for
from .gwprocs import (
    alive,
    cli,
    gw_dir_fixture,  # noqa: F401  (fixture)
    make_dir_fixture,  # noqa: F401  (fixture)
    port_of,
    procs_in,
)
from .test_tray import IdlePoller, snapshot

REAL = pytest.mark.e2e


def tray_for(directory: Path, tmp_path: Path) -> tuple[TrayApp, DummyBackend, GatewayControl]:
    config = load(
        {
            "url": f"https://127.0.0.1:{port_of(directory)}",
            "gateway_dir": str(directory),
            "open_browser_on_launch": False,
            "launch_timeout": 20,
        },
        env={},
    )
    app = TrayApp(
        config,
        GatewayClient(config.url, verify=False),
        sections=[lambda door: GatewayControl(door, log_path=tmp_path / "gateway.log")],
        poller=IdlePoller(),
    )
    backend = DummyBackend()
    app.backend = backend
    control = app.sections[0]
    assert isinstance(control, GatewayControl)
    control.rescan()
    app.refresh()
    backend.drain()
    return app, backend, control


def item(backend: DummyBackend, text: str) -> object:
    backend.drain()
    return next(e for e in backend.menu if e.text == text)


def click(backend: DummyBackend, text: str) -> None:
    entry = item(backend, text)
    assert entry.enabled and entry.action is not None, text  # type: ignore[attr-defined]
    entry.action()  # type: ignore[attr-defined]


def settle(control: GatewayControl) -> None:
    wait_for(lambda: control.busy is None, 30)


def test_a_state_change_reaches_the_tray_before_the_process_scan(
    gw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scan for the gateway process that follows a new state runs on a worker: the
    status is posted to the tray at once, the menu redrawn when the scan is done."""
    from cpgw_tray.process import identity

    app, backend, _control = tray_for(gw_dir, tmp_path)
    scanning, release = threading.Event(), threading.Event()

    def slow_scan(directory: Path) -> None:
        scanning.set()
        release.wait(30)

    monkeypatch.setattr(identity, "gateway_in", slow_scan)
    app.on_status(snapshot(State.LOGGED_OUT))  # as the poller thread does
    assert scanning.wait(10) and backend.pending() == 1  # posted while the scan runs
    backend.drain()
    assert app.status.state is State.LOGGED_OUT
    release.set()
    wait_for(backend.pending)  # the redraw after the scan
    backend.drain()


@REAL
def test_tray_stays_responsive_while_a_launch_waits(gw_dir: Path, tmp_path: Path) -> None:
    run_sh = gw_dir / "bin" / "run.sh"
    run_sh.write_text(run_sh.read_text().replace('echo "running"', 'sleep 2\necho "running"'))
    app, backend, control = tray_for(gw_dir, tmp_path)
    click(backend, "Launch gateway")
    backend.drain()  # the tray's thread is free: it redraws at once
    assert "Launching gateway…" in [e.text for e in backend.menu]
    assert not item(backend, "Launch gateway").enabled  # type: ignore[attr-defined]
    click(backend, "Check now")
    assert app.poller.now_calls == 1  # type: ignore[attr-defined]
    assert control.busy == "Launching gateway…"  # answered while the launch still waits
    settle(control)
    assert control.running is not None and control.running.ours
    assert app.last_action and "ready" in app.last_action
    backend.drain()
    assert any(e.text.startswith("Gateway running (pid") for e in backend.menu)
    click(backend, "Stop gateway")
    settle(control)
    assert control.running is None and gateway_in(gw_dir) is None and procs_in(gw_dir) == []


@REAL
def test_tray_acts_on_its_own_folder_only(make_dir: Callable[[str], Path], tmp_path: Path) -> None:
    live, paper = make_dir("live"), make_dir("paper")
    assert cli("gateway", "start", "--dir", str(live), "--wait").returncode == 0
    _, backend, control = tray_for(paper, tmp_path)
    assert control.running is None  # live's gateway is not the tray's
    assert not item(backend, "Stop gateway").enabled  # type: ignore[attr-defined]
    click(backend, "Launch gateway")  # paper starts while live runs
    settle(control)
    assert control.running is not None and control.running.folder == str(paper.resolve())
    click(backend, "Stop gateway")
    settle(control)
    assert gateway_in(paper) is None
    live_gateway = gateway_in(live)
    assert live_gateway is not None and alive(live_gateway.pid)


def test_a_failure_in_any_gateway_action_is_a_note_and_a_notification(
    gw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, backend, control = tray_for(gw_dir, tmp_path)

    def broken(self: Launcher) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Launcher, "start", broken)
    click(backend, "Launch gateway")
    settle(control)
    backend.drain()
    assert app.last_action is not None and "disk on fire" in app.last_action
    assert any(
        "disk on fire" in str(message) for kind, message in backend.calls if kind == "notify"
    )
    assert item(backend, "Launch gateway").enabled  # type: ignore[attr-defined]
    assert procs_in(gw_dir) == []


@REAL
def test_tray_keeps_stop_for_a_lone_child(gw_dir: Path, tmp_path: Path) -> None:
    app, backend, control = tray_for(gw_dir, tmp_path)
    click(backend, "Launch gateway")
    settle(control)
    running = control.running
    assert running is not None and running.root_pid is not None
    os.kill(running.root_pid, signal.SIGKILL)  # run.sh dies; the gateway itself lives on
    wait_for(lambda: app.last_action and "still running" in app.last_action, 10)
    wait_for(lambda: control.running is not None and control.running.lone, 10)
    assert not item(backend, "Launch gateway").enabled  # type: ignore[attr-defined]
    assert alive(running.pid)
    click(backend, "Stop gateway")
    settle(control)
    assert control.running is None and not alive(running.pid) and procs_in(gw_dir) == []


def test_a_failed_open_is_a_note_and_a_notification(
    gw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, backend, _ = tray_for(gw_dir, tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path / "no-programs-here"))  # no xdg-open
    click(backend, "Open gateway folder")
    for thread in [t for t in threading.enumerate() if t.name == "opener"]:
        thread.join(timeout=10)  # opening runs off the tray's thread
    backend.drain()
    assert app.last_action is not None and str(gw_dir) in app.last_action
    assert app.last_action.startswith("Nothing here opens files")
    assert any(kind == "notify" and str(gw_dir) in what for kind, what in backend.calls)
