"""The launcher with real subprocesses: the simulator's gateway folder is launched exactly
as IBKR's (``bash bin/run.sh root/conf.yaml`` from inside the folder). Every test works in
its own folder on its own port and looks only at its own processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from cpgw_tray.client.api import GatewayClient
from cpgw_tray.constants import MAIN_CLASS
from cpgw_tray.process.identity import gateway_in, record_path, running_gateways
from cpgw_tray.process.launcher import (
    AlreadyRunning,
    Exited,
    Launcher,
    LaunchError,
    find_directory,
    needs_java,
    port_answers,
    tree,
)
from cpgw_tray.process.stopping import wait_gone
from cpgw_tray.simulator import make_gateway_dir

from .conftest import PlainHTTPServer, free_port, run_cli, wait_for
from .gwprocs import (
    alive,
    cli,
    gateways_in,
    gw_dir_fixture,  # noqa: F401  (fixture)
    procs_in,
    start_outside,
)
from .gwprocs import port_of as port_of

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


def make_launcher(directory: Path, tmp_path: Path, **kwargs: object) -> Launcher:
    return Launcher(directory, tmp_path / "gateway.log", timeout=20, **kwargs)  # type: ignore[arg-type]


@REAL
def test_start_ready_then_stop_leaves_nothing(gw_dir: Path, tmp_path: Path) -> None:
    launcher = make_launcher(gw_dir, tmp_path)
    proc = launcher.start()
    ready = launcher.wait_ready()
    port = port_of(gw_dir)
    assert ready.port == port and ready.ours and ready.folder == str(gw_dir.resolve())
    pids = [p.pid for p in tree(proc.pid)]
    assert len(pids) == 2  # bash run.sh and its child, like run.sh and java
    assert ready.pid == pids[1]  # the process that names the main class
    assert record_path(gw_dir).is_file()  # ours: the launch is on record
    client = GatewayClient(f"https://127.0.0.1:{port}", verify=False)
    assert client.auth_status().state.value == "logged_out"
    launcher.stop()
    assert not any(alive(pid) for pid in pids)
    assert not port_answers(port)
    assert not record_path(gw_dir).exists()
    assert client.auth_status().state.value == "gateway_down"
    client.close()
    assert "Open https://localhost:" in launcher.output()  # the banner went to the log


@REAL
def test_second_start_reports_the_running_one(gw_dir: Path, tmp_path: Path) -> None:
    launcher = make_launcher(gw_dir, tmp_path)
    launcher.start()
    first = launcher.wait_ready()
    with pytest.raises(AlreadyRunning, match="already running") as caught:
        make_launcher(gw_dir, tmp_path).start()
    assert caught.value.running.pid == first.pid
    done = cli("gateway", "start", "--dir", str(gw_dir))
    assert done.returncode == 0, done.stderr
    assert "already running" in done.stdout and str(first.pid) in done.stdout
    assert [p.pid for p in gateways_in(gw_dir)] == [first.pid]
    launcher.stop()


def test_busy_port_found_by_preflight(gw_dir: Path, tmp_path: Path) -> None:
    port = port_of(gw_dir)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        with pytest.raises(LaunchError, match=f"port {port} is already in use by"):
            make_launcher(gw_dir, tmp_path).start()
    assert procs_in(gw_dir) == []


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
        assert procs_in(gw_dir) == []
        assert port_answers(other.port)  # the other program is untouched
    finally:
        other.close()


def test_java_missing_is_explained_and_nothing_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
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
    assert launcher.proc is None and procs_in(directory) == []
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    code, _ = run_cli("gateway", "start", "--dir", str(directory))
    assert code == 69 and "Java not found" in capsys.readouterr().err


def test_simulator_folder_needs_no_java(gw_dir: Path) -> None:
    assert not needs_java(gw_dir)
    run_sh = gw_dir / "bin" / "run.sh"
    assert not run_sh.stat().st_mode & 0o111  # shipped without an execute bit, like IBKR's


def test_a_zombie_has_ended_for_a_stop(tmp_path: Path) -> None:
    """A stopped gateway whose parent (not us) has not read its exit code yet is gone:
    a stop does not wait out its grace, then kill, then wait again, for it."""
    child = subprocess.Popen(["true"], cwd=tmp_path)  # we do not reap it
    proc = psutil.Process(child.pid)
    wait_for(lambda: proc.status() == psutil.STATUS_ZOMBIE)
    try:
        assert wait_gone([proc], timeout=60) == []
    finally:
        child.wait()


@REAL
def test_gateway_started_elsewhere_is_adopted_and_stopped(gw_dir: Path) -> None:
    outside = start_outside(gw_dir)
    port = port_of(gw_dir)
    wait_for(lambda: port_answers(port))
    found = gateway_in(gw_dir)
    assert found is not None and not found.ours
    assert found.folder == str(gw_dir.resolve()) and found.root_pid == outside.pid
    assert found.port == port
    done = cli("gateway", "stop", "--dir", str(gw_dir))
    assert done.returncode == 0 and "Stopped the gateway" in done.stdout, done.stderr
    assert outside.wait(5) is not None
    assert not alive(found.pid) and not port_answers(port)


@REAL
def test_a_main_class_substring_is_never_the_gateway(gw_dir: Path) -> None:
    """`tail -f notes-<main class>.txt` in the gateway folder, and a python whose argv
    merely contains the main class, are neither found, nor stopped."""
    notes = gw_dir / f"notes-{MAIN_CLASS}.txt"
    notes.write_text("todo\n")
    impostors = [
        subprocess.Popen(["tail", "-f", notes.name], cwd=gw_dir, start_new_session=True),
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)", f"--x={MAIN_CLASS}"],
            cwd=gw_dir,
            start_new_session=True,
        ),
    ]
    wait_for(lambda: all(alive(p.pid) for p in impostors))
    assert gateway_in(gw_dir) is None
    assert not [g for g in running_gateways() if g.folder == str(gw_dir.resolve())]
    status = cli("gateway", "status", "--dir", str(gw_dir), "--json")
    assert status.returncode == 1 and '"running": false' in status.stdout
    stop = cli("gateway", "stop", "--dir", str(gw_dir))
    assert stop.returncode == 0 and "No gateway is running" in stop.stdout
    assert all(alive(p.pid) for p in impostors)


@REAL
def test_stop_ends_the_group_when_run_sh_died_first(gw_dir: Path) -> None:
    done = cli("gateway", "start", "--dir", str(gw_dir), "--wait")
    assert done.returncode == 0, done.stderr
    port = port_of(gw_dir)
    found = gateway_in(gw_dir)
    assert found is not None and found.ours and found.root_pid is not None
    os.kill(found.root_pid, signal.SIGKILL)  # run.sh dies; its child keeps serving
    wait_for(lambda: not alive(found.root_pid))  # type: ignore[arg-type]
    assert port_answers(port) and alive(found.pid)
    lone = gateway_in(gw_dir)
    assert lone is not None and lone.ours and lone.lone and lone.pid == found.pid
    status = cli("gateway", "status", "--dir", str(gw_dir))
    assert status.returncode == 0 and "still running" in status.stdout
    stop = cli("gateway", "stop", "--dir", str(gw_dir))
    assert stop.returncode == 0, stop.stderr
    assert not alive(found.pid) and not port_answers(port) and procs_in(gw_dir) == []


@REAL
def test_a_stale_record_is_not_trusted(gw_dir: Path, tmp_path: Path) -> None:
    """A record whose pid now belongs to another process (same number, other start time)
    names nothing: that process is not ours and is not stopped."""
    launcher = make_launcher(gw_dir, tmp_path)
    proc = launcher.start()
    launcher.wait_ready()
    launcher.stop()
    record = record_path(gw_dir)
    other = subprocess.Popen(["sleep", "60"], cwd=tmp_path, start_new_session=True)
    try:
        record.write_text(
            json.dumps(
                {
                    "folder": str(gw_dir.resolve()),
                    "pid": other.pid,
                    "pgid": other.pid,
                    "sid": other.pid,
                    "create_time": psutil.Process(other.pid).create_time() - 100,
                    "port": port_of(gw_dir),
                    "log": str(tmp_path / "gateway.log"),
                }
            )
        )
        assert gateway_in(gw_dir) is None
        assert cli("gateway", "stop", "--dir", str(gw_dir)).returncode == 0
        assert alive(other.pid)
    finally:
        other.kill()
        other.wait()
    assert proc.poll() is not None


def watch_ended() -> None:
    """Wait until the crash watch has judged the gateway's end (its thread is done)."""
    wait_for(lambda: not [t for t in threading.enumerate() if t.name == "gateway-watch"])


@REAL
def test_crash_watch_reports_an_exit_on_its_own(gw_dir: Path, tmp_path: Path) -> None:
    exits: list[Exited] = []
    launcher = make_launcher(gw_dir, tmp_path, on_exit=exits.append)
    proc = launcher.start()
    launcher.wait_ready()
    for child in tree(proc.pid)[1:]:
        child.kill()  # the gateway dies; run.sh, like IBKR's, ends with it
    wait_for(lambda: exits, 10)
    assert exits[0].code != 0 and exits[0].survivors == []
    assert "Ctrl-C stops it." in exits[0].last_lines  # the last lines of its output
    # a stop we asked for is not a crash
    exits.clear()
    launcher.start()
    launcher.wait_ready()
    launcher.stop()
    watch_ended()
    assert exits == []


@REAL
def test_crash_watch_reports_a_lone_child_honestly(gw_dir: Path, tmp_path: Path) -> None:
    exits: list[Exited] = []
    launcher = make_launcher(gw_dir, tmp_path, on_exit=exits.append)
    proc = launcher.start()
    ready = launcher.wait_ready()
    proc.kill()  # run.sh dies first: the gateway itself keeps serving
    wait_for(lambda: exits, 10)
    assert exits[0].survivors == [ready.pid] and "still running" in exits[0].describe()
    assert port_answers(port_of(gw_dir))
    launcher.stop()  # the lone child is stopped with the group: a stop, not a crash
    wait_for(lambda: not alive(ready.pid), 10)
    watch_ended()
    assert len(exits) == 1 and procs_in(gw_dir) == []


def test_finding_the_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with pytest.raises(LaunchError, match="no gateway folder found"):
        find_directory(None, home)
    made = make_gateway_dir(home / "Downloads" / "clientportal.gw")
    assert find_directory(None, home) == (made, "found")
    broken = tmp_path / "broken"
    (broken / "bin").mkdir(parents=True)
    with pytest.raises(LaunchError, match=r"has no bin/run.sh and no root/conf.yaml") as caught:
        find_directory(str(broken), home)
    assert caught.value.exit_code == 64


def test_find_java_reports_the_version(tmp_path: Path) -> None:
    from cpgw_tray.process.launcher import find_java

    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.15\" 2025-04-15' >&2\n")
    java.chmod(0o755)
    found = find_java({"JAVA_HOME": str(home), "PATH": str(tmp_path / "empty")})
    assert found.path == str(java) and found.version == 'openjdk version "17.0.15" 2025-04-15'
