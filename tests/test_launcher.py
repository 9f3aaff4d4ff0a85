"""The launcher with real subprocesses: the simulator's gateway folder is launched exactly
as IBKR's (``bash bin/run.sh root/conf.yaml`` from inside the folder)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from cpgw_tray.config import load
from cpgw_tray.gateway import GatewayClient
from cpgw_tray.gatewayctl import GatewayControl
from cpgw_tray.launcher import (
    MAIN_CLASS,
    AlreadyRunning,
    Launcher,
    LaunchError,
    find_directory,
    find_running,
    needs_java,
    port_answers,
    tree,
)
from cpgw_tray.simulator import make_gateway_dir
from cpgw_tray.tray import TrayApp

from .conftest import PlainHTTPServer, free_port, run_cli
from .test_tray import FakeBackend, IdlePoller

REAL = pytest.mark.e2e  # real gateway processes, waited for in real time

IBKR_RUN_SH = """\
#!/bin/bash

RUNTIME_PATH="root:dist/ibgroup.web.core.iblink.router.clientportal.gw.jar:build/lib/runtime/*"

config_file=$1

if [ ! -f $config_file ]; then
  echo "config file does not exist: $config_file"
  exit 1
fi

echo "running "
echo " runtime path : $RUNTIME_PATH"
echo " config file  : $config_file"

java -server -Dvertx.disableDnsResolver=true -Djava.net.preferIPv4Stack=true -Dvertx.logger-delegate-factory-class-name=io.vertx.core.logging.SLF4JLogDelegateFactory -Dnologback.statusListenerClass=ch.qos.logback.core.status.OnConsoleStatusListener -Dnolog4j.debug=true -Dnolog4j2.debug=true -cp "${RUNTIME_PATH}" ibgroup.web.core.clientportal.gw.GatewayStart --conf ../$config_file
"""


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def kill_leftovers(directory: Path) -> None:
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(MAIN_CLASS in p for p in proc.info["cmdline"] or []) and proc.cwd() == str(
                directory
            ):
                proc.kill()
        except psutil.Error:
            pass


@pytest.fixture
def gw_dir(tmp_path: Path) -> Iterator[Path]:
    directory = make_gateway_dir(tmp_path / "clientportal.gw", port=free_port())
    assert find_running() is None, "a gateway is already running on this machine"
    yield directory
    kill_leftovers(directory)


def make_launcher(directory: Path, tmp_path: Path, **kwargs: object) -> Launcher:
    return Launcher(directory, tmp_path / "gateway.log", timeout=20, **kwargs)  # type: ignore[arg-type]


def port_of(directory: Path) -> int:
    text = (directory / "root" / "conf.yaml").read_text()
    return int(text.split("listenPort:")[1].split()[0])


@REAL
def test_start_ready_then_stop_leaves_nothing(gw_dir: Path, tmp_path: Path) -> None:
    launcher = make_launcher(gw_dir, tmp_path)
    proc = launcher.start()
    ready = launcher.wait_ready()
    port = port_of(gw_dir)
    assert ready.port == port and ready.pid == proc.pid
    pids = [p.pid for p in tree(proc.pid)]
    assert len(pids) == 2  # bash run.sh and its child, like run.sh and java
    client = GatewayClient(f"https://127.0.0.1:{port}", verify=False)
    assert client.auth_status().state.value == "logged_out"
    launcher.stop()
    assert not any(alive(pid) for pid in pids)
    assert not port_answers(port)
    assert client.auth_status().state.value == "gateway_down"
    client.close()
    assert "Open https://localhost:" in launcher.output()  # the banner went to the log


@REAL
def test_second_start_adopts_and_starts_nothing(
    gw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    launcher = make_launcher(gw_dir, tmp_path)
    launcher.start()
    launcher.wait_ready()
    before = {p.pid for p in psutil.process_iter()}
    with pytest.raises(AlreadyRunning, match="already running"):
        make_launcher(gw_dir, tmp_path).start()
    code, _ = run_cli("gateway", "start", "--dir", str(gw_dir))
    assert code == 1 and "already running" in capsys.readouterr().err
    new = {p.pid for p in psutil.process_iter()} - before
    assert not [
        pid for pid in new if alive(pid) and MAIN_CLASS in " ".join(psutil.Process(pid).cmdline())
    ]
    launcher.stop()


def test_busy_port_found_by_preflight(gw_dir: Path, tmp_path: Path) -> None:
    port = port_of(gw_dir)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(LaunchError, match=f"port {port} is already in use by"):
            make_launcher(gw_dir, tmp_path).start()
    assert find_running() is None


@REAL
def test_port_taken_between_preflight_and_bind(
    gw_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = PlainHTTPServer()
    try:
        conf = gw_dir / "root" / "conf.yaml"
        conf.write_text(
            conf.read_text().replace(f"listenPort: {port_of(gw_dir)}", f"listenPort: {other.port}")
        )
        launcher = make_launcher(gw_dir, tmp_path)
        monkeypatch.setattr(launcher, "preflight", lambda: None)  # the port was free a moment ago
        proc = launcher.start()
        pids = [p.pid for p in tree(proc.pid)]
        with pytest.raises(
            LaunchError, match=f"could not listen on port {other.port}.*Server listen failed"
        ):
            launcher.wait_ready()
        assert not any(alive(pid) for pid in pids)
        assert find_running() is None
        assert port_answers(other.port)  # the other program is untouched
    finally:
        other.close()


def test_java_missing_is_explained_and_nothing_starts(tmp_path: Path) -> None:
    directory = make_gateway_dir(tmp_path / "clientportal.gw", port=free_port())
    (directory / "bin" / "run.sh").write_text(IBKR_RUN_SH)
    assert needs_java(directory)
    empty = tmp_path / "empty-path"
    empty.mkdir()
    launcher = Launcher(
        directory, tmp_path / "gateway.log", env={"PATH": str(empty), "HOME": str(tmp_path)}
    )
    with pytest.raises(LaunchError, match=r"Java not found.*install a Java runtime"):
        launcher.start()
    assert launcher.proc is None and find_running() is None


def test_simulator_folder_needs_no_java(gw_dir: Path) -> None:
    assert not needs_java(gw_dir)
    run_sh = gw_dir / "bin" / "run.sh"
    assert not run_sh.stat().st_mode & 0o111  # shipped without an execute bit, like IBKR's


@REAL
def test_gateway_started_elsewhere_is_adopted_and_stopped(
    gw_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = subprocess.Popen(
        ["bash", "bin/run.sh", "root/conf.yaml"],
        cwd=gw_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    port = port_of(gw_dir)
    deadline = time.monotonic() + 15
    while not port_answers(port) and time.monotonic() < deadline:
        time.sleep(0.05)
    found = find_running()
    assert found is not None and found.directory == str(gw_dir) and found.root_pid == outside.pid
    code, out = run_cli("gateway", "status", "--json")
    data = json.loads(out)
    assert code == 0 and data["running"] and data["port"] == port and data["pid"] == found.pid
    code, out = run_cli("gateway", "stop")
    assert code == 0 and "Stopped the gateway" in out
    assert outside.wait(5) is not None
    assert not alive(found.pid) and not port_answers(port)
    code, out = run_cli("gateway", "status", "--json")
    assert code == 1 and json.loads(out) == {"running": False}


@REAL
def test_cli_start_wait_and_logs(gw_dir: Path, isolated_env: Path) -> None:
    code, out = run_cli("gateway", "start", "--dir", str(gw_dir), "--wait")
    assert code == 0 and f"Gateway ready on port {port_of(gw_dir)}" in out
    code, out = run_cli("gateway", "logs", "-n", "50")
    assert code == 0 and "Open https://localhost:" in out and "=== " in out
    assert run_cli("gateway", "stop")[0] == 0


def test_finding_the_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(LaunchError, match="no gateway folder found"):
        find_directory(None, home)
    made = make_gateway_dir(home / "Downloads" / "clientportal.gw")
    assert find_directory(None, home) == (made, "found")
    broken = tmp_path / "broken"
    (broken / "bin").mkdir(parents=True)
    with pytest.raises(LaunchError, match=r"has no bin/run.sh and no root/conf.yaml"):
        find_directory(str(broken), home)


@REAL
def test_tray_stays_responsive_while_a_launch_waits(gw_dir: Path, tmp_path: Path) -> None:
    run_sh = gw_dir / "bin" / "run.sh"
    run_sh.write_text(run_sh.read_text().replace('echo "running"', 'sleep 2\necho "running"'))
    config = load(
        {
            "url": f"https://127.0.0.1:{port_of(gw_dir)}",
            "gateway_dir": str(gw_dir),
            "open_browser_on_launch": False,
        },
        env={},
    )
    poller = IdlePoller()
    app = TrayApp(config, GatewayClient(config.url, verify=False), poller=poller)
    backend = FakeBackend()
    app.backend = backend
    control = GatewayControl(app, log_path=tmp_path / "gateway.log")
    app.gateway = control
    app.refresh()
    launch = next(e for e in backend.menu if e.text == "Launch gateway")
    assert launch.enabled and launch.action is not None
    launch.action()
    started = time.monotonic()
    backend.drain()  # the tray's thread is free: it redraws at once
    texts = [e.text for e in backend.menu]
    assert "Launching gateway…" in texts
    assert not next(e for e in backend.menu if e.text == "Launch gateway").enabled
    next(e for e in backend.menu if e.text == "Check now").action()  # type: ignore[misc]
    assert poller.now_calls == 1 and time.monotonic() - started < 1
    deadline = time.monotonic() + 20
    while control.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    assert control.running is not None and app.last_action and "ready" in app.last_action
    backend.drain()
    assert any(t.startswith("Gateway running (pid") for t in (e.text for e in backend.menu))
    next(e for e in backend.menu if e.text == "Stop gateway").action()  # type: ignore[misc]
    deadline = time.monotonic() + 20
    while (control.busy or control.running) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert control.running is None and find_running() is None


@REAL
def test_crash_watch_reports_an_exit_on_its_own(gw_dir: Path, tmp_path: Path) -> None:
    exits: list[tuple[int, str]] = []
    launcher = make_launcher(
        gw_dir, tmp_path, on_exit=lambda code, lines: exits.append((code, lines))
    )
    proc = launcher.start()
    launcher.wait_ready()
    for child in tree(proc.pid)[1:]:
        child.kill()  # the gateway dies; run.sh, like IBKR's, ends with it
    deadline = time.monotonic() + 10
    while not exits and time.monotonic() < deadline:
        time.sleep(0.05)
    assert exits and exits[0][0] != 0
    assert "Ctrl-C stops it." in exits[0][1]  # the last lines of its output
    # a stop we asked for is not a crash
    exits.clear()
    launcher.start()
    launcher.wait_ready()
    launcher.stop()
    time.sleep(0.3)
    assert exits == []


def test_find_java_reports_the_version(tmp_path: Path) -> None:
    from cpgw_tray.launcher import find_java

    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    java.chmod(0o755)
    found = find_java({"JAVA_HOME": str(home), "PATH": str(tmp_path / "empty")})
    assert found.path == str(java) and found.version == 'openjdk version "17.0.15" 2025-04-15'
