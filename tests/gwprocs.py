"""Shared by the launcher tests: a simulated gateway folder per test on its own free port,
and clean-up by process group of everything that runs in the test's own folder, even
when the test failed. Nothing here looks at processes outside the test's folder."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from cpgw_tray.constants import MAIN_CLASS
from cpgw_tray.simulator import make_gateway_dir

from .conftest import free_port

SRC = str(Path(__file__).resolve().parent.parent / "src")


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def procs_in(folder: Path) -> list[psutil.Process]:
    """Live processes whose working folder is ``folder`` or below it."""
    root = str(folder.resolve())
    found = []
    for proc in psutil.process_iter():
        # psutil 6.0 raises FileNotFoundError, not NoSuchProcess, for a process that ends
        # while its cwd is read
        with contextlib.suppress(psutil.Error, OSError):
            cwd = proc.cwd()
            if (cwd == root or cwd.startswith(root + os.sep)) and alive(proc.pid):
                found.append(proc)
    return found


def gateways_in(folder: Path) -> list[psutil.Process]:
    """Processes in ``folder`` whose argv names the gateway's main class exactly."""
    found = []
    for proc in procs_in(folder):
        with contextlib.suppress(psutil.Error):
            if MAIN_CLASS in proc.cmdline():
                found.append(proc)
    return found


def kill_everything_in(folder: Path) -> None:
    """Kill every process working in ``folder``, with its process group unless that is
    the test runner's own."""
    mine = os.getpgid(0)
    for proc in procs_in(folder):
        with contextlib.suppress(psutil.Error, OSError):
            group = os.getpgid(proc.pid)
            if group != mine:
                os.killpg(group, signal.SIGKILL)
            proc.kill()


def port_of(directory: Path) -> int:
    text = (directory / "root" / "conf.yaml").read_text()
    return int(text.split("listenPort:")[1].split()[0])


def cli_env() -> dict[str, str]:
    """The test's environment (isolated HOME and XDG folders), this worktree's code first."""
    env = dict(os.environ)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    return env


def cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``cpgw-tray ARGV`` as a real subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "cpgw_tray", *argv],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_outside(directory: Path) -> subprocess.Popen[bytes]:
    """Start the folder's gateway the way a person would, not through cpgw-tray."""
    return subprocess.Popen(
        ["bash", "bin/run.sh", "root/conf.yaml"],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=cli_env(),
    )


@pytest.fixture(name="gw_dir")
def gw_dir_fixture(tmp_path: Path) -> Iterator[Path]:
    """A simulated gateway folder of this test's own, on a free port; whatever runs in
    it is killed afterwards, by process group."""
    directory = make_gateway_dir(tmp_path / "clientportal.gw", port=free_port())
    try:
        yield directory
    finally:
        kill_everything_in(tmp_path)


@pytest.fixture(name="make_dir")
def make_dir_fixture(tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """More gateway folders for the same test, each on its own free port."""

    def make(name: str) -> Path:
        return make_gateway_dir(tmp_path / name, port=free_port())

    try:
        yield make
    finally:
        kill_everything_in(tmp_path)
