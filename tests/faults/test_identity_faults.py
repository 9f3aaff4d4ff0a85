"""What cpgw-tray stops is only ever a gateway: a `grep` of the main class in a notes
folder is nobody's; another user's gateway in a named folder is refused (exit 3), never
reported absent; the tray's items never reach a gateway on another port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from cpgw_tray.constants import MAIN_CLASS
from cpgw_tray.process import identity
from cpgw_tray.process.folder import is_gateway_folder
from cpgw_tray.process.launcher import port_answers
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import make_gateway_dir
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.gateway_menu import GatewayControl
from cpgw_tray.tray.tray_app import TrayApp

from ..conftest import free_port, run_cli, wait_for
from ..gwprocs import gw_dir_fixture, port_of, start_outside  # noqa: F401  (fixture)
from ..test_tray import IdlePoller

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


def test_a_grep_of_the_main_class_in_a_notes_folder_is_nobodys_gateway(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    pipe = subprocess.Popen(
        ["bash", "-c", f"tail -f /dev/null | grep {MAIN_CLASS}"],
        cwd=notes,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: any(MAIN_CLASS in p.cmdline() for p in psutil.Process(pipe.pid).children())
        )
        grep = next(p for p in psutil.Process(pipe.pid).children() if MAIN_CLASS in p.cmdline())
        assert grep.pid not in {g.pid for g in identity.running_gateways()}
        _, out = run_cli("gateway", "status", "--json")
        assert grep.pid not in {g["pid"] for g in json.loads(out)}
        assert grep.is_running() and not is_gateway_folder(notes)
    finally:
        os.killpg(pipe.pid, 9)
        pipe.wait(timeout=10)


def test_another_users_gateway_in_a_named_folder_is_exit_3(
    gw_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The system hides its folder and refuses signals; it listens on the folder's port."""
    other = start_outside(gw_dir)
    try:
        wait_for(lambda: port_answers(port_of(gw_dir)), 30)
        kids = psutil.Process(other.pid).children(recursive=True)
        theirs = {other.pid, *(p.pid for p in kids)}
        with monkeypatch.context() as m:
            hide_and_refuse(m, theirs)
            code, _ = run_cli("gateway", "stop", "--dir", str(gw_dir))
            err = capsys.readouterr().err
            assert code == 3 and "not permitted" in err and len(err.strip().splitlines()) == 1
            code, out = run_cli("gateway", "status", "--dir", str(gw_dir), "--json")
        found = json.loads(out)
        assert code == 0 and found["running"] is True and found["pid"] in theirs
        assert found["port"] == port_of(gw_dir)
        assert other.poll() is None
    finally:
        os.killpg(other.pid, 9)
        other.wait(timeout=10)


def hide_and_refuse(m: pytest.MonkeyPatch, theirs: set[int]) -> None:
    """As for another user's processes: the folder hidden, signals refused."""
    real_cwd = psutil.Process.cwd

    def hidden(self: psutil.Process) -> str:
        if self.pid in theirs:
            raise psutil.AccessDenied(self.pid)
        return real_cwd(self)

    def denied(self: psutil.Process) -> None:
        raise psutil.AccessDenied(self.pid)

    m.setattr(psutil.Process, "cwd", hidden)
    m.setattr(psutil.Process, "terminate", denied)
    m.setattr(psutil.Process, "kill", denied)


def test_the_trays_items_act_only_on_the_watched_ports_gateway(
    tmp_path: Path,
) -> None:
    folder = make_gateway_dir(tmp_path / "elsewhere", port=free_port())
    other = start_outside(folder)
    try:
        wait_for(lambda: port_answers(port_of(folder)), 30)
        for watched, expected in [(free_port(), None), (port_of(folder), other.pid)]:
            config = load({"url": f"https://127.0.0.1:{watched}"}, env={})
            app = TrayApp(config, None, sections=[GatewayControl], poller=IdlePoller())  # type: ignore[arg-type]
            app.backend = DummyBackend()
            control = app.sections[0]
            assert isinstance(control, GatewayControl)
            assert control.launcher is None  # no folder configured nor found
            control.rescan()
            if expected is None:
                assert control.running is None
                stop = next(e for e in control.entries() if e.text == "Stop gateway")
                assert not stop.enabled
            else:
                assert control.running is not None and control.running.port == watched
    finally:
        os.killpg(other.pid, 9)
        other.wait(timeout=10)
