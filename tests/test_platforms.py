"""The Windows and macOS branches that can run here, with ``sys.platform`` faked: the
Windows stop (the tree terminated, then killed; no process groups), launch records
there, the hook timeout there, the ``run.bat`` command line and ``java.exe``, start at
login (the windowed executable, the LaunchAgent's ``launchctl`` call), the PyInstaller
spec's branches for each platform, opening files (``os.startfile``), the Java advice,
and the doctor's word on macOS's AirPlay receiver holding the port."""

from __future__ import annotations

import logging
import os
import plistlib
import subprocess
import sys
import textwrap
import types
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from cpgw_tray.autostart import MARKER, WINDOWED_EXE, LaunchAgent, launch_command
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets import hooks
from cpgw_tray.process import children, identity, launcher, preflight, stopping
from cpgw_tray.process import folder as gwfolder
from cpgw_tray.process.identity import Gateway, Record

from .conftest import wait_for

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "packaging" / "pyinstaller" / "cpgw-tray.spec"

# A parent and a forked child that both note SIGTERM in a file and keep running, so only
# a kill ends them; the parent reports both pids atomically.
STUBBORN = """\
import os, signal, sys, time
def noted(*_):
    open(f"{sys.argv[1]}.term.{os.getpid()}", "w").close()
signal.signal(signal.SIGTERM, noted)
child = os.fork()
if child == 0:
    while True:
        time.sleep(60)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child}\\n")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    time.sleep(60)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process looks like Windows to the code under test."""
    monkeypatch.setattr(sys, "platform", "win32")


@pytest.fixture
def stubborn(tmp_path: Path) -> Iterator[tuple[Path, list[int]]]:
    """The stubborn pair running: (the pids file's path, [parent, child])."""
    script = tmp_path / "stubborn.py"
    script.write_text(STUBBORN)
    pids_file = tmp_path / "pids"
    proc = subprocess.Popen([sys.executable, str(script), str(pids_file)])
    pids: list[int] = [proc.pid]
    try:
        text = wait_for(lambda: pids_file.exists() and pids_file.read_text().strip())
        pids[:] = [int(p) for p in text.split()]
        yield pids_file, pids
    finally:
        for pid in pids:
            if not gone(pid):
                os.kill(pid, 9)
        proc.wait(5)


# ------------------------------------------------------------------------ stopping


@pytest.mark.e2e  # waits out the real grace before the kill
def test_windows_stop_terminates_the_tree_then_kills_it(
    windows: None, stubborn: tuple[Path, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    pids_file, (parent, child) = stubborn

    def no_groups(*_: Any) -> None:
        raise AssertionError("Windows has no process groups to signal")

    monkeypatch.setattr(os, "killpg", no_groups)
    noted = [Path(f"{pids_file}.term.{pid}") for pid in (parent, child)]
    real_wait = stopping.wait_gone

    def once_noted(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
        # a busy machine may run the pair's handlers after the grace: the test is about
        # the order (terminate, then kill), so the grace starts once both noted it
        wait_for(lambda: all(path.exists() for path in noted))
        return real_wait(procs, timeout)

    monkeypatch.setattr(stopping, "wait_gone", once_noted)
    ours = Gateway(
        pid=parent,
        folder=None,
        started=datetime.now(),
        ours=True,
        root_pid=parent,
        pgid=parent,  # recorded, but not a thing to signal on Windows
        members=(parent, child),
    )
    stopping.stop_gateway(ours, grace=0.5)
    assert gone(parent) and gone(child)
    for pid in (parent, child):  # terminate came first: each noted it, then was killed
        assert Path(f"{pids_file}.term.{pid}").exists()


def test_windows_launch_record_is_the_recorded_process_and_its_tree(
    windows: None, stubborn: tuple[Path, list[int]]
) -> None:
    _, (parent, child) = stubborn
    created = psutil.Process(parent).create_time()
    record = Record("/gw", parent, parent, parent, created, 5000, "")
    _, procs = identity._snapshot()
    members = identity._session_members(record, procs)
    assert sorted(p.pid for p in members) == sorted([parent, child])
    older = Record("/gw", parent, parent, parent, created - 3600, 5000, "")
    assert identity._session_members(older, procs) == []  # the pid is another's now


# ------------------------------------------------------------------------ hooks


def test_windows_hooks_start_in_a_group_of_their_own_without_a_console(
    windows: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200, raising=False)
    monkeypatch.setattr(subprocess, "CREATE_NO_WINDOW", 0x8000000, raising=False)
    assert children.detached() == {"creationflags": 0x8000200}
    monkeypatch.setattr(sys, "platform", "linux")
    assert children.detached() == {"start_new_session": True}


@pytest.mark.e2e  # waits out a real 1 s timeout
def test_windows_hook_timeout_kills_the_hook_and_its_tree(
    windows: None,
    stubborn: tuple[Path, list[int]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(hooks, "detached", dict)  # Windows' flags: Popen here refuses them
    monkeypatch.setattr(os, "killpg", lambda *_: pytest.fail("no process groups on Windows"))
    script = tmp_path / "stubborn-hook.py"
    script.write_text(STUBBORN)
    pids_file = tmp_path / "hook-pids"
    run = hooks.Hooks(
        [sys.executable, str(script), str(pids_file)], url="https://127.0.0.1:1", timeout=1.0
    )
    run.start()
    try:
        run.offer(Status(State.READY, LOOKS[State.READY].label, "ok"))
        text = wait_for(lambda: pids_file.exists() and pids_file.read_text().strip())
        hook_pid, child_pid = map(int, text.split())
        wait_for(lambda: "killed after 1 s (hook_timeout)" in caplog.text)
        wait_for(lambda: gone(hook_pid) and gone(child_pid), timeout=5)
    finally:
        run.stop()


# ------------------------------------------------------------------------ launching


def test_windows_gateway_folder_run_bat_and_java_exe(windows: None, tmp_path: Path) -> None:
    folder = tmp_path / "clientportal.gw"
    (folder / "bin").mkdir(parents=True)
    (folder / "root").mkdir()
    (folder / "root" / "conf.yaml").write_text("listenPort: 5000\n")
    (folder / "bin" / "run.sh").write_text("#!/bin/sh\n")
    assert gwfolder.run_script() == Path("bin/run.bat")
    assert gwfolder.problems(folder) == [f"{folder} has no {Path('bin/run.bat')}"]
    (folder / "bin" / "run.bat").write_text("@echo off\r\njava -server %*\r\n")
    assert gwfolder.problems(folder) == []
    assert preflight.needs_java(folder)  # read from run.bat here
    assert launcher.Launcher(folder).command() == ["cmd", "/c", "bin\\run.bat", "root\\conf.yaml"]
    assert Path("C:/clientportal.gw") in gwfolder.usual_places(tmp_path)
    java = tmp_path / "jdk" / "bin" / "java.exe"  # JAVA_HOME\bin\java.exe, as there
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.9\"' >&2\n")
    java.chmod(0o755)
    found = preflight.find_java({"JAVA_HOME": str(tmp_path / "jdk"), "PATH": ""})
    assert found.path == str(java) and "17.0.9" in found.version


def test_posix_command_line_is_bash_run_sh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    assert launcher.Launcher(Path("/gw")).command() == ["bash", "bin/run.sh", "root/conf.yaml"]
    assert gwfolder.run_script() == Path("bin/run.sh")


# ------------------------------------------------------------------------ start at login


def test_windows_autostart_starts_the_windowed_tray(windows: None, tmp_path: Path) -> None:
    cli = tmp_path / "cpgw-tray" / "cpgw-tray.exe"
    cli.parent.mkdir()
    cli.write_text("")
    assert launch_command("x", str(cli), frozen=True) == [str(cli)]  # an older bundle
    (cli.parent / WINDOWED_EXE).write_text("")
    assert launch_command("x", str(cli), frozen=True) == [str(cli.parent / WINDOWED_EXE)]
    windowed = str(cli.parent / WINDOWED_EXE)  # started from the tray itself: the same
    assert launch_command("x", windowed, frozen=True) == [windowed]


def test_other_platforms_start_the_bundle_executable(tmp_path: Path) -> None:
    app = tmp_path / "cpgw-tray"
    app.mkdir()
    (app / WINDOWED_EXE).write_text("")  # not looked for off Windows
    assert launch_command("x", str(app / "cpgw-tray"), frozen=True) == [str(app / "cpgw-tray")]


def test_launch_agent_plist_and_its_launchctl_call(tmp_path: Path) -> None:
    calls: list[list[str]] = []

    def launchctl(argv: list[str]) -> int:
        calls.append(argv)
        return 0

    agent = LaunchAgent(tmp_path, launchctl=launchctl, uid=501)
    binary = "/Applications/cpgw-tray.app/Contents/MacOS/cpgw-tray"
    assert agent.enable([binary]).ok
    plist = plistlib.loads((tmp_path / "cpgw-tray.plist").read_bytes())
    assert plist["ProgramArguments"] == [binary] and plist["RunAtLoad"] is True
    assert plist["ProcessType"] == "Interactive" and plist[MARKER] is True
    # enabled in the login session's domain, never loaded now (a second tray)
    assert calls == [["launchctl", "enable", "gui/501/cpgw-tray"]]
    assert agent.disable().ok and not (tmp_path / "cpgw-tray.plist").exists()
    assert calls == [["launchctl", "enable", "gui/501/cpgw-tray"]]


def test_launch_agent_is_written_when_launchctl_fails(tmp_path: Path) -> None:
    agent = LaunchAgent(tmp_path, launchctl=lambda argv: 1, uid=501)
    assert agent.enable(["/x"]).ok and agent.status()
    assert LaunchAgent(tmp_path).service == f"gui/{os.getuid()}/cpgw-tray"


# ------------------------------------------------------------------------ the spec


class Built:
    """What the spec asked PyInstaller for."""

    def __init__(self) -> None:
        self.exes: list[dict[str, Any]] = []
        self.collected: list[Any] = []
        self.bundles: list[dict[str, Any]] = []


def run_spec(platform: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Built:
    """The spec run as PyInstaller runs it, with ``sys.platform`` faked and PyInstaller's
    build steps recording what they are given."""
    built = Built()
    icons: list[Path] = []
    hooks_module = types.ModuleType("PyInstaller.utils.hooks")
    hooks_module.collect_submodules = lambda name: [name]  # type: ignore[attr-defined]
    hooks_module.collect_data_files = lambda name, **_: []  # type: ignore[attr-defined]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks_module)
    fake_icons = types.ModuleType("make_icons")
    fake_icons.make = icons.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "make_icons", fake_icons)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setattr(sys, "platform", platform)

    def exe(*args: Any, **kwargs: Any) -> dict[str, Any]:
        built.exes.append(kwargs)
        return kwargs

    def collect(*args: Any, **kwargs: Any) -> str:
        built.collected = list(args)
        return "coll"

    def bundle(coll: str, **kwargs: Any) -> None:
        built.bundles.append({"coll": coll, **kwargs})

    namespace = {
        "SPECPATH": str(SPEC.parent),
        "Analysis": lambda *a, **k: types.SimpleNamespace(
            pure=[], scripts=[], binaries=["bin"], datas=["data"]
        ),
        "PYZ": lambda *a, **k: "pyz",
        "EXE": exe,
        "COLLECT": collect,
        "BUNDLE": bundle,
    }
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    assert icons == [ROOT / "build" / "icons"]
    return built


def test_spec_on_windows_builds_a_console_cli_and_a_windowed_tray(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = run_spec("win32", monkeypatch, tmp_path)
    consoles = {e["name"]: e["console"] for e in built.exes}
    assert consoles == {"cpgw-tray": True, Path(WINDOWED_EXE).stem: False}
    assert all(e["icon"].endswith("cpgw-tray.ico") for e in built.exes)
    assert built.collected[: len(built.exes)] == built.exes  # one folder, both executables
    assert built.bundles == []


def test_spec_on_macos_bundles_an_app_without_a_dock_icon(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = run_spec("darwin", monkeypatch, tmp_path)
    assert [e["name"] for e in built.exes] == ["cpgw-tray"]
    (bundle,) = built.bundles
    assert bundle["name"] == "cpgw-tray.app" and bundle["coll"] == "coll"
    assert bundle["info_plist"]["LSUIElement"] is True
    assert bundle["icon"].endswith("cpgw-tray.icns")


def test_spec_on_linux_builds_the_console_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    built = run_spec("linux", monkeypatch, tmp_path)
    assert [(e["name"], e["console"]) for e in built.exes] == [("cpgw-tray", True)]
    assert built.bundles == []


def test_windowed_entry_script_gives_missing_streams_the_null_device(tmp_path: Path) -> None:
    """As a windowed executable starts it: no stdout or stderr at all."""
    entry = ROOT / "packaging" / "pyinstaller" / "cpgw-tray.py"
    probe = textwrap.dedent(
        f"""\
        import runpy, sys
        sys.stdout = sys.stderr = None
        sys.argv = ["cpgw-tray-tray.exe", "--version"]
        try:
            runpy.run_path({str(entry)!r}, run_name="__main__")
        except SystemExit as exc:
            sys.__stdout__.write(f"exit {{exc.code}} {{sys.stdout.name}}")
        """
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout == f"exit 0 {os.devnull}", done.stderr


# ------------------------------------------------------------------------ the rest


def test_windows_opens_files_with_startfile(windows: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from cpgw_tray.tray.opener import open_path

    opened: list[Path] = []
    monkeypatch.setattr(os, "startfile", opened.append, raising=False)
    assert open_path(Path("C:/gw/logs/gw.log")) and opened == [Path("C:/gw/logs/gw.log")]

    def refused(path: Path) -> None:
        raise OSError(1155, "No application is associated with the specified file")

    monkeypatch.setattr(os, "startfile", refused)
    assert not open_path(Path("C:/gw/notes.xyz"))


@pytest.mark.parametrize(
    ("platform", "words"),
    [("win32", "winget install"), ("darwin", "brew install openjdk"), ("linux", "apt install")],
)
def test_java_help_is_the_platforms(
    platform: str, words: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(sys, "platform", platform)
    with pytest.raises(identity.LaunchError, match=words):
        preflight.find_java({"PATH": str(tmp_path)})


@pytest.fixture
def control_center(tmp_path: Path) -> Iterator[int]:
    """A process named like macOS's AirPlay receiver (ControlCenter) listening on a free
    port; the port."""
    name = tmp_path / "ControlCenter"
    name.symlink_to(sys.executable)
    listen = (
        "import socket, sys, time\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
        "print(s.getsockname()[1], flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([str(name), "-c", listen], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        yield int(proc.stdout.readline())
    finally:
        proc.kill()
        proc.wait(5)


@pytest.mark.parametrize(
    ("platform", "fix"),
    [("darwin", "macOS AirPlay Receiver holds it"), ("linux", "stop ControlCenter (pid")],
)
def test_macos_port_held_by_airplay_says_how_to_free_it(
    platform: str, fix: str, control_center: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cpgw_tray.outlets.doctor import Doctor
    from cpgw_tray.settings.config import load

    monkeypatch.setattr(sys, "platform", platform)
    check = Doctor(load({"url": f"https://127.0.0.1:{control_center}"}, env={})).port_holder()
    assert check.ok is False and "ControlCenter" in check.verdict
    assert check.fix.startswith(fix)


class FakeWinreg(types.ModuleType):
    """The part of ``winreg`` the Run value uses, over a dict of HKEY_CURRENT_USER:
    a missing key or value raises FileNotFoundError, as there."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_SET_VALUE = 2
    REG_SZ = 1

    def __init__(self) -> None:
        super().__init__("winreg")
        self.keys: dict[str, dict[str, tuple[str, int]]] = {}

    class Handle:
        def __init__(self, values: dict[str, tuple[str, int]]) -> None:
            self.values = values

        def __enter__(self) -> FakeWinreg.Handle:
            return self

        def __exit__(self, *_: object) -> None:
            pass

    def OpenKey(self, root: str, key: str, *_: int) -> Handle:  # winreg's names
        if key not in self.keys:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return self.Handle(self.keys[key])

    def CreateKeyEx(self, root: str, key: str, *_: int) -> Handle:
        return self.Handle(self.keys.setdefault(key, {}))

    def QueryValueEx(self, handle: Handle, name: str) -> tuple[str, int]:
        if name not in handle.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        return handle.values[name]

    def SetValueEx(self, handle: Handle, name: str, _: int, kind: int, value: str) -> None:
        handle.values[name] = (value, kind)

    def DeleteValue(self, handle: Handle, name: str) -> None:
        if name not in handle.values:
            raise FileNotFoundError(2, "The system cannot find the file specified")
        del handle.values[name]


def test_windows_autostart_cli_writes_the_run_value_through_winreg(
    windows: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from cpgw_tray.autostart import RunValue

    from .conftest import run_cli

    winreg = FakeWinreg()
    monkeypatch.setitem(sys.modules, "winreg", winreg)
    bundle = tmp_path / "Programs" / "cpgw-tray"
    bundle.mkdir(parents=True)
    for name in ("cpgw-tray.exe", WINDOWED_EXE):
        (bundle / name).write_text("")
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(bundle / "cpgw-tray.exe"))
    assert run_cli("autostart", "status") == (0, "off\n")
    code, out = run_cli("autostart", "on")
    assert code == 0 and "CurrentVersion\\Run" in out
    value, kind = winreg.keys[RunValue.RUN]["cpgw-tray"]
    assert value == subprocess.list2cmdline([str(bundle / WINDOWED_EXE)])
    assert kind == winreg.REG_SZ
    assert run_cli("autostart", "status") == (0, "on\n")
    assert run_cli("autostart", "off")[0] == 0
    assert winreg.keys[RunValue.RUN] == {} and run_cli("autostart", "status") == (0, "off\n")
