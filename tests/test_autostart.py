"""Start at login: the Linux desktop entry for real (in the test's own XDG_CONFIG_HOME),
the macOS LaunchAgent in a temporary folder, the Windows Run value in a registry fake."""

from __future__ import annotations

import configparser
import plistlib
import shlex
import sys
from pathlib import Path

import pytest

from cpgw_tray.autostart import (
    MARKER,
    LaunchAgent,
    RunValue,
    XdgAutostart,
    desktop_exec,
    launch_command,
)

from .conftest import run_cli

PACKAGED = Path(__file__).parent.parent / "packaging" / "linux" / "cpgw-tray.desktop"


def desktop_file(home: Path) -> Path:
    return home / "config" / "autostart" / "cpgw-tray.desktop"


def read_desktop(path: Path) -> dict[str, str]:
    parser = configparser.RawConfigParser()
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    parser.read(path)
    return dict(parser["Desktop Entry"])


def test_autostart_on_off_status_write_and_remove_the_linux_file(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = desktop_file(isolated_env)
    assert run_cli("autostart", "status") == (0, "off\n")
    code, out = run_cli("autostart", "on")
    assert code == 0 and str(path) in out
    entry = read_desktop(path)
    assert entry[MARKER] == "true" and entry["Type"] == "Application"
    assert entry["Name"] == read_desktop(PACKAGED)["Name"]  # the packaged entry's name
    assert path.name == PACKAGED.name  # one name: a user entry overrides, never doubles
    # Exec is the running entry point, by absolute path.
    command = shlex.split(entry["Exec"])
    assert command == launch_command() and Path(command[0]).is_absolute()
    assert run_cli("autostart", "status") == (0, "on\n")
    code, out = run_cli("autostart", "off")
    assert code == 0 and "removed" in out and not path.exists()
    assert run_cli("autostart", "status") == (0, "off\n")
    assert run_cli("autostart", "off") == (0, "Start at login: already off\n")


def test_autostart_off_leaves_a_hand_written_file_alone(
    isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = desktop_file(isolated_env)
    path.parent.mkdir(parents=True)
    mine = "[Desktop Entry]\nType=Application\nExec=/opt/my/cpgw-tray --interval 5\n"
    path.write_text(mine)
    assert run_cli("autostart", "status") == (0, "on\n")
    code, out = run_cli("autostart", "off")
    err = capsys.readouterr().err
    assert code == 1 and out == "" and "not written by cpgw-tray: left alone" in err
    assert path.read_text() == mine
    code, out = run_cli("autostart", "on")  # already on, through the person's own file
    assert code == 0 and "not written by cpgw-tray" in out and path.read_text() == mine


def test_a_hidden_entry_counts_as_off_and_is_not_overwritten(tmp_path: Path) -> None:
    writer = XdgAutostart(tmp_path)
    writer.path.write_text("[Desktop Entry]\nType=Application\nExec=x\nHidden=true\n")
    assert not writer.status()
    result = writer.enable(["/usr/bin/cpgw-tray"])
    assert not result.ok and "turns start at login off" in result.message
    assert "Hidden=true" in writer.path.read_text()


@pytest.mark.parametrize(
    ("command", "line"),
    [
        (["/usr/bin/cpgw-tray"], "/usr/bin/cpgw-tray"),
        (
            ["/home/a b/venv/bin/python", "-m", "cpgw_tray"],
            '"/home/a b/venv/bin/python" -m cpgw_tray',
        ),
        (["/opt/100%/cpgw-tray"], "/opt/100%%/cpgw-tray"),
        (['/opt/"$x"/cpgw-tray'], '"/opt/\\\\"\\\\$x\\\\"/cpgw-tray"'),
    ],
)
def test_exec_line_quotes_as_the_desktop_entry_spec_says(command: list[str], line: str) -> None:
    assert desktop_exec(command) == line


def test_launch_command_is_the_running_entry_point(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "cpgw-tray"
    script.parent.mkdir()
    script.write_text("#!/bin/sh\n")
    link = tmp_path / "cpgw-tray"
    link.symlink_to(script)
    assert launch_command(str(link), "/venv/bin/python", frozen=False) == [str(script)]
    as_module = "/site-packages/cpgw_tray/__main__.py"
    assert launch_command(as_module, "/venv/bin/python", frozen=False) == [
        "/venv/bin/python",
        "-m",
        "cpgw_tray",
    ]
    assert launch_command("x", "/Apps/cpgw-tray.exe", frozen=True) == ["/Apps/cpgw-tray.exe"]


def test_macos_launch_agent_in_a_temporary_folder(tmp_path: Path) -> None:
    agent = LaunchAgent(tmp_path, launchctl=lambda argv: 0)  # never this machine's launchd
    assert not agent.status()
    assert agent.enable(["/Applications/cpgw-tray.app/Contents/MacOS/cpgw-tray"]).ok
    plist = plistlib.loads((tmp_path / "cpgw-tray.plist").read_bytes())
    assert plist["ProgramArguments"] == ["/Applications/cpgw-tray.app/Contents/MacOS/cpgw-tray"]
    assert plist["RunAtLoad"] is True and plist[MARKER] is True and plist["Label"] == "cpgw-tray"
    assert agent.status()
    result = agent.disable()
    assert result.ok and not (tmp_path / "cpgw-tray.plist").exists() and not agent.status()
    # A plist someone wrote by hand is left alone.
    theirs = plistlib.dumps({"Label": "cpgw-tray", "ProgramArguments": ["/x"], "RunAtLoad": True})
    (tmp_path / "cpgw-tray.plist").write_bytes(theirs)
    assert agent.status()
    result = agent.disable()
    assert not result.ok and "left alone" in result.message
    assert (tmp_path / "cpgw-tray.plist").read_bytes() == theirs


class FakeRegistry:
    """HKEY_CURRENT_USER as a dict: {key path: {value name: data}}."""

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, str]] = {}

    def get(self, key: str, name: str) -> str | None:
        return self.keys.get(key, {}).get(name)

    def set(self, key: str, name: str, value: str) -> None:
        self.keys.setdefault(key, {})[name] = value

    def delete(self, key: str, name: str) -> None:
        self.keys.get(key, {}).pop(name, None)


def test_windows_run_value_in_a_registry_fake() -> None:
    registry = FakeRegistry()
    run = RunValue(registry)
    assert not run.status()
    exe = r"C:\Program Files\cpgw-tray\cpgw-tray.exe"
    assert run.enable([exe]).ok
    assert registry.get(RunValue.RUN, "cpgw-tray") == f'"{exe}"'  # quoted: a space
    assert run.status()
    assert run.disable().ok and not run.status()
    assert registry.keys == {RunValue.RUN: {}, RunValue.OURS: {}}
    # A Run value a person made is left alone.
    registry.set(RunValue.RUN, "cpgw-tray", r"C:\tools\cpgw-tray.exe --interval 5")
    result = run.disable()
    assert not result.ok and "left alone" in result.message and run.status()


@pytest.mark.skipif(sys.platform != "linux", reason="the Linux writer is the platform's here")
def test_cli_status_on_this_platform_uses_the_xdg_folder(isolated_env: Path) -> None:
    assert XdgAutostart().path == desktop_file(isolated_env)
