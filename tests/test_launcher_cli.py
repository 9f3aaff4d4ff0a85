"""``cpgw-tray gateway ...`` as a person runs it, in real subprocesses: which gateway a
command acts on, one start at a time, Ctrl-C, bad input, and the exit-code table. Every
test uses its own folders and ports, and looks only at its own processes."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from cpgw_tray.cli.gateway_cmd import EXIT_CODES
from cpgw_tray.process import identity
from cpgw_tray.process.identity import gateway_in
from cpgw_tray.process.launcher import port_answers

from .conftest import run_cli, wait_for
from .gwprocs import (
    cli,
    cli_env,
    gateways_in,
    gw_dir_fixture,  # noqa: F401  (fixture)
    make_dir_fixture,  # noqa: F401  (fixture)
    port_of,
    procs_in,
)

REAL = pytest.mark.e2e
README = Path(__file__).resolve().parent.parent / "README.md"


def only_under(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Let in-process commands see only this test's gateways, whatever else runs here."""
    everything = identity.running_gateways
    root = str(tmp_path.resolve())

    def ours() -> list[identity.Gateway]:
        return [g for g in everything() if g.folder and g.folder.startswith(root)]

    monkeypatch.setattr(identity, "running_gateways", ours)


@REAL
def test_two_folders_on_two_ports_run_side_by_side(
    make_dir: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    live, paper = make_dir("live"), make_dir("paper")
    for folder in (live, paper):
        done = cli("gateway", "start", "--dir", str(folder), "--wait")
        assert done.returncode == 0 and "Gateway ready" in done.stdout, done.stderr
    assert port_answers(port_of(live)) and port_answers(port_of(paper))
    # with both running and none named: exit 64, naming both
    bare = cli("gateway", "stop")
    assert bare.returncode == 64 and "--dir" in bare.stderr
    assert str(live.resolve()) in bare.stderr and str(paper.resolve()) in bare.stderr
    assert len(bare.stderr.strip().splitlines()) == 1
    listed = cli("gateway", "status", "--json")
    assert listed.returncode == 0
    folders = {g["dir"] for g in json.loads(listed.stdout)}
    assert {str(live.resolve()), str(paper.resolve())} <= folders
    one = cli("gateway", "status", "--json", "--dir", str(paper))
    data = json.loads(one.stdout)
    assert one.returncode == 0 and data["running"] and data["port"] == port_of(paper)
    assert data["dir"] == str(paper.resolve()) and data["ours"] is True
    # stop --dir paper leaves live running
    stop = cli("gateway", "stop", "--dir", str(paper))
    assert stop.returncode == 0, stop.stderr
    assert gateways_in(paper) == [] and not port_answers(port_of(paper))
    assert len(gateways_in(live)) == 1 and port_answers(port_of(live))
    # now the only one (seen from here): bare commands act on it
    only_under(tmp_path, monkeypatch)
    code, out = run_cli("gateway", "status")
    assert code == 0 and str(live.resolve()) in out
    code, out = run_cli("gateway", "stop")
    assert code == 0 and "Stopped the gateway" in out
    assert gateways_in(live) == [] and not port_answers(port_of(live))
    code, out = run_cli("gateway", "status", "--json")
    assert code == 1 and json.loads(out) == []


@REAL
def test_six_concurrent_starts_launch_one(gw_dir: Path) -> None:
    starts = [
        subprocess.Popen(
            [sys.executable, "-m", "cpgw_tray", "gateway", "start", "--dir", str(gw_dir), "--wait"],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(6)
    ]
    results = [(p.wait(60), *p.communicate()) for p in starts]
    assert [code for code, _, _ in results] == [0] * 6, results
    outs = [out for _, out, _ in results]
    assert sum("Gateway ready" in out for out in outs) == 1, outs
    assert sum("already running" in out for out in outs) == 5, outs
    assert len(gateways_in(gw_dir)) == 1
    assert cli("gateway", "stop", "--dir", str(gw_dir)).returncode == 0
    assert procs_in(gw_dir) == []


@REAL
def test_ctrl_c_during_start_wait_stops_what_it_started(gw_dir: Path) -> None:
    run_sh = gw_dir / "bin" / "run.sh"
    run_sh.write_text('echo "Open https://localhost:1 to login"\nsleep 600\necho never\n')
    start = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "gateway", "start", "--dir", str(gw_dir), "--wait"],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: any("sleep" in p.name() for p in procs_in(gw_dir)))
    wait_for(identity.record_path(gw_dir).is_file)  # on record: the wait for ready follows
    start.send_signal(signal.SIGINT)
    out, err = start.communicate(timeout=30)
    assert start.returncode == 130, (out, err)
    assert "Traceback" not in err and "stopped" in err.lower()
    assert procs_in(gw_dir) == []
    assert gateway_in(gw_dir) is None


@pytest.mark.e2e  # cpgw-tray runs as a process
def test_a_conf_yaml_that_is_not_utf8_is_exit_64_naming_it(gw_dir: Path) -> None:
    conf = gw_dir / "root" / "conf.yaml"
    conf.write_bytes(conf.read_bytes() + b"    # caf\xe9\n")
    for argv in (
        ("gateway", "start", "--dir", str(gw_dir)),
        ("gateway", "status", "--dir", str(gw_dir)),
        ("gateway", "stop", "--dir", str(gw_dir)),
        ("sim", "--conf", str(conf)),
    ):
        done = cli(*argv, timeout=30)
        assert done.returncode == 64, (argv, done.stderr)
        assert str(conf) in done.stderr and "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert procs_in(gw_dir) == []


@pytest.mark.e2e  # cpgw-tray runs as a process
def test_make_gateway_dir_never_clobbers(tmp_path: Path) -> None:
    folder = tmp_path / "clientportal.gw"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "run.sh").write_text("the real one\n")
    done = cli("sim", "--make-gateway-dir", str(folder), timeout=30)
    assert done.returncode == 64 and str(folder) in done.stderr and "not empty" in done.stderr
    assert (folder / "bin" / "run.sh").read_text() == "the real one\n"
    assert not (folder / "root").exists()
    fresh = cli("sim", "--make-gateway-dir", str(tmp_path / "new"), timeout=30)
    assert fresh.returncode == 0 and (tmp_path / "new" / "bin" / "run.sh").is_file()


def test_a_missing_folder_is_a_usage_error(tmp_path: Path) -> None:
    for action in ("start", "stop", "status", "restart", "logs"):
        code, _ = run_cli("gateway", action, "--dir", str(tmp_path / "nowhere"))
        assert code == 64, action


@REAL
def test_a_gateway_that_fails_to_start_is_exit_1_with_its_last_lines(gw_dir: Path) -> None:
    (gw_dir / "bin" / "run.sh").write_text(
        'for i in 1 2 3 4 5 6 7; do echo "line $i"; done\necho "boom: no such thing" >&2\nexit 3\n'
    )
    done = cli("gateway", "start", "--dir", str(gw_dir), "--wait")
    assert done.returncode == 1 and "exited with code 3" in done.stderr
    assert "boom: no such thing" in done.stderr and "line 7" in done.stderr
    assert procs_in(gw_dir) == []


@REAL
def test_not_permitted_is_exit_3(
    gw_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Another user's gateway: stopping it is refused by the system; one line, exit 3."""
    import os

    import psutil

    from .gwprocs import start_outside

    # ours (on record): the signal to its group is refused
    assert cli("gateway", "start", "--dir", str(gw_dir)).returncode == 0
    wait_for(lambda: gateway_in(gw_dir) is not None)

    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    with monkeypatch.context() as m:
        m.setattr(os, "killpg", refuse)
        m.setattr(psutil.Process, "terminate", lambda self: refuse())
        code, _ = run_cli("gateway", "stop", "--dir", str(gw_dir))
    err = capsys.readouterr().err
    assert code == 3 and "not permitted" in err and len(err.strip().splitlines()) == 1
    assert gateway_in(gw_dir) is not None
    assert cli("gateway", "stop", "--dir", str(gw_dir)).returncode == 0
    # adopted (started elsewhere): psutil says access denied
    other = start_outside(gw_dir)
    wait_for(lambda: gateway_in(gw_dir) is not None)

    def denied(self: psutil.Process) -> None:
        raise psutil.AccessDenied(self.pid)

    with monkeypatch.context() as m:
        m.setattr(psutil.Process, "terminate", denied)
        m.setattr(psutil.Process, "kill", denied)
        code, _ = run_cli("gateway", "stop", "--dir", str(gw_dir))
    err = capsys.readouterr().err
    assert code == 3 and "not permitted" in err and "Traceback" not in err
    assert other.poll() is None


@pytest.mark.e2e  # cpgw-tray runs as a process
def test_the_readme_table_is_the_commands_table() -> None:
    """The README's exit-code table for `gateway` is exactly the one the code states."""
    text = README.read_text()
    section = text.split("Exit codes of the `gateway` commands", 1)[1]
    rows = re.findall(r"^\| (\d+) \| (.+?) \|$", section.split("\n\n\n")[0], re.M)
    assert rows and [(int(code), meaning) for code, meaning in rows[: len(EXIT_CODES)]] == [
        (code, meaning) for code, meaning in EXIT_CODES
    ]
    assert {code for code, _ in EXIT_CODES} == {0, 1, 3, 64, 69, 130}
    helped = cli("gateway", "--help", timeout=30)
    assert helped.returncode == 0
    flat = " ".join(helped.stdout.split())
    assert all(" ".join(meaning.replace("`", "").split()) in flat for _, meaning in EXIT_CODES)
