"""Start at login, per platform, and ``cpgw-tray autostart on|off|status``.

- Linux: ``$XDG_CONFIG_HOME/autostart/cpgw-tray.desktop`` — the name of the packaged
  desktop entry, so a person never gets two icons.
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/cpgw-tray.plist``, and
  ``launchctl enable`` for it, so an old ``launchctl disable`` cannot keep it from loading.
- Windows: the ``cpgw-tray`` value under
  ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``; in the packaged app it
  starts the windowed ``cpgw-tray-tray.exe`` (no console window), not the console CLI.

What cpgw-tray writes carries a marker of ours; ``off`` removes only that, never a file
or value a person made. Each writer takes its folder (or registry) as an argument, so
all three are tested on any platform.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from .constants import APP_NAME, EXIT_FAILED

log = logging.getLogger(__name__)

MARKER = "X-cpgw-tray-autostart"  # in our desktop file and plist; a registry value on Windows
WINDOWED_EXE = "cpgw-tray-tray.exe"  # the packaged tray on Windows, beside the console CLI


@dataclass(frozen=True)
class Result:
    """The outcome of turning start at login on or off, in one line for people."""

    ok: bool
    message: str


class Autostart(Protocol):
    """Start at login on one platform."""

    where: str
    file: Path | None  # the file that holds it, for the tray to watch; None: the registry

    def status(self) -> bool: ...
    def enable(self, command: list[str]) -> Result: ...
    def disable(self) -> Result: ...


def launch_command(
    argv0: str | None = None, executable: str | None = None, frozen: bool | None = None
) -> list[str]:
    """How to start this cpgw-tray again: the absolute path of the running entry point,
    or ``python -m cpgw_tray`` when run as a module. The packaged app on Windows: its
    windowed tray executable where it has one, so login opens no console window."""
    argv0 = sys.argv[0] if argv0 is None else argv0
    executable = executable or sys.executable
    if getattr(sys, "frozen", False) if frozen is None else frozen:
        windowed = Path(executable).with_name(WINDOWED_EXE)
        if sys.platform == "win32" and windowed.is_file():
            return [str(windowed)]
        return [executable]  # a PyInstaller app is its own executable
    if not argv0 or argv0 in ("-c", "-m") or argv0.endswith(".py"):
        return [str(Path(executable).absolute()), "-m", "cpgw_tray"]
    path = Path(argv0)
    if not path.exists():
        found = shutil.which(argv0)
        path = Path(found) if found else path
    return [str(path.resolve())]


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(data)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- Linux


def desktop_exec(command: list[str]) -> str:
    """``Exec=`` per the Desktop Entry spec: reserved characters quoted, then the
    string escapes (a backslash doubled), ``%`` doubled."""
    words = []
    for arg in command:
        arg = arg.replace("%", "%%")
        if re.search(r"[\s\"'\\><~|&;$*?#()`]", arg):
            arg = '"' + re.sub(r"([\"`$\\])", r"\\\1", arg) + '"'
        words.append(arg.replace("\\", "\\\\"))
    return " ".join(words)


class XdgAutostart:
    """Linux and other XDG desktops: a desktop entry in the autostart folder."""

    def __init__(self, folder: Path | None = None) -> None:
        from . import paths

        self.path = (folder or paths.autostart_dir()) / f"{APP_NAME}.desktop"
        self.where = str(self.path)
        self.file: Path | None = self.path

    def _lines(self) -> dict[str, str] | None:
        try:
            text = self.path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return None
        pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
        return {key.strip(): value.strip() for key, value in pairs}

    def ours(self) -> bool:
        lines = self._lines()
        return lines is not None and lines.get(MARKER) == "true"

    def status(self) -> bool:
        lines = self._lines()
        if lines is None:
            return False
        hidden = lines.get("Hidden", "false").lower() == "true"
        return not hidden and lines.get("X-GNOME-Autostart-enabled", "true").lower() != "false"

    def enable(self, command: list[str]) -> Result:
        if self._lines() is not None and not self.ours():
            if self.status():
                return Result(True, f"Already on: {self.path} (not written by cpgw-tray; kept)")
            return Result(
                False,
                f"{self.path} was not written by cpgw-tray and turns start at login off: "
                "left alone (remove it, or turn it on in your desktop's startup settings)",
            )
        text = (
            "[Desktop Entry]\n"
            "Type=Application\n"
            "Name=IBKR Gateway Tray\n"
            "Comment=Shows whether the IBKR Client Portal Gateway session is usable\n"
            f"Exec={desktop_exec(command)}\n"
            "Icon=cpgw-tray\n"
            "Terminal=false\n"
            "X-GNOME-Autostart-enabled=true\n"
            f"{MARKER}=true\n"
        )
        _replace(self.path, text.encode("utf-8"))
        return Result(True, f"Start at login: on ({self.path})")

    def disable(self) -> Result:
        if self._lines() is None:
            return Result(True, "Start at login: already off")
        if not self.ours():
            return Result(False, _not_ours(self.path))
        self.path.unlink(missing_ok=True)
        return Result(True, f"Start at login: off (removed {self.path})")


def _not_ours(where: object) -> str:
    return (
        f"{where} was not written by cpgw-tray: left alone "
        "(remove it yourself, or turn it off in your desktop's startup settings)"
    )


# ---------------------------------------------------------------------------- macOS


def _launchctl(argv: list[str]) -> int:
    """Run ``launchctl``; its exit code (an error of its own is logged, not raised)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.warning("%s: %s", " ".join(argv), exc)
        return -1
    if done.returncode != 0:
        log.warning("%s: exit %s: %s", " ".join(argv), done.returncode, done.stderr.strip())
    return done.returncode


class LaunchAgent:
    """macOS: a LaunchAgent that runs cpgw-tray at login (from the next login on: it is
    not loaded now, which would start a second tray beside this one)."""

    LABEL = "cpgw-tray"

    def __init__(
        self,
        folder: Path | None = None,
        launchctl: Callable[[list[str]], int] = _launchctl,
        uid: int | None = None,
    ) -> None:
        from . import paths

        self.path = (folder or paths.launch_agents_dir()) / f"{self.LABEL}.plist"
        self.where = str(self.path)
        self.file: Path | None = self.path
        self._launchctl = launchctl
        if uid is None and sys.platform != "win32":  # os.getuid is POSIX's
            uid = os.getuid()
        self.service = f"gui/{uid}/{self.LABEL}"  # the login session's launchd domain

    def _plist(self) -> dict[str, object] | None:
        import plistlib

        try:
            data = plistlib.loads(self.path.read_bytes())
        except FileNotFoundError:
            return None
        except (plistlib.InvalidFileException, ValueError):
            return {}  # unreadable: someone's, not ours
        return data if isinstance(data, dict) else {}

    def status(self) -> bool:
        data = self._plist()
        return data is not None and data.get("Disabled") is not True

    def enable(self, command: list[str]) -> Result:
        data = self._plist()
        if data is not None and data.get(MARKER) is not True:
            return Result(data.get("Disabled") is not True, _not_ours(self.path))
        import plistlib

        plist = {
            "Label": self.LABEL,
            "ProgramArguments": command,
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            MARKER: True,
        }
        _replace(self.path, plistlib.dumps(plist))
        self._launchctl(["launchctl", "enable", self.service])  # clears a disabled override
        return Result(True, f"Start at login: on ({self.path})")

    def disable(self) -> Result:
        data = self._plist()
        if data is None:
            return Result(True, "Start at login: already off")
        if data.get(MARKER) is not True:
            return Result(False, _not_ours(self.path))
        self.path.unlink(missing_ok=True)
        return Result(True, f"Start at login: off (removed {self.path})")


# ---------------------------------------------------------------------------- Windows


class Registry(Protocol):
    """The few HKEY_CURRENT_USER operations the Run value needs."""

    def get(self, key: str, name: str) -> str | None: ...
    def set(self, key: str, name: str, value: str) -> None: ...
    def delete(self, key: str, name: str) -> None: ...


def _winreg() -> Any:
    """``winreg``, typed loosely: its stubs exist only when checking for Windows."""
    import importlib

    return importlib.import_module("winreg")


class WinRegistry:
    """:class:`Registry` on the real HKEY_CURRENT_USER (Windows only)."""

    def get(self, key: str, name: str) -> str | None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:
                value, _ = winreg.QueryValueEx(handle, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, key: str, name: str, value: str) -> None:
        winreg = _winreg()
        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
            winreg.SetValueEx(handle, name, 0, winreg.REG_SZ, value)

    def delete(self, key: str, name: str) -> None:
        winreg = _winreg()
        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:
                winreg.DeleteValue(handle, name)
        except FileNotFoundError:
            pass


class RunValue:
    """Windows: the ``cpgw-tray`` Run value; our marker is a copy of the command we
    wrote, kept under ``HKCU\\Software\\cpgw-tray``, so a value a person wrote differs."""

    RUN = r"Software\Microsoft\Windows\CurrentVersion\Run"
    OURS = r"Software\cpgw-tray"

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or WinRegistry()
        self.where = rf"HKEY_CURRENT_USER\{self.RUN}\{APP_NAME}"
        self.file: Path | None = None

    def _ours(self, value: str) -> bool:
        return self.registry.get(self.OURS, MARKER) == value

    def status(self) -> bool:
        return self.registry.get(self.RUN, APP_NAME) is not None

    def enable(self, command: list[str]) -> Result:
        value = self.registry.get(self.RUN, APP_NAME)
        if value is not None and not self._ours(value):
            return Result(True, _not_ours(self.where))
        import subprocess

        line = subprocess.list2cmdline(command)
        self.registry.set(self.RUN, APP_NAME, line)
        self.registry.set(self.OURS, MARKER, line)
        return Result(True, f"Start at login: on ({self.where})")

    def disable(self) -> Result:
        value = self.registry.get(self.RUN, APP_NAME)
        if value is None:
            return Result(True, "Start at login: already off")
        if not self._ours(value):
            return Result(False, _not_ours(self.where))
        self.registry.delete(self.RUN, APP_NAME)
        self.registry.delete(self.OURS, MARKER)
        return Result(True, f"Start at login: off (removed {self.where})")


def for_platform() -> Autostart:
    """The writer for this platform (asked at each call, so tests can fake it)."""
    if sys.platform == "darwin":
        return LaunchAgent()
    elif sys.platform == "win32":
        return RunValue()
    else:
        return XdgAutostart()


# ---------------------------------------------------------------------------- CLI


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = "Start the tray at login (on), stop doing so (off), or say which (status)."
    parser.add_argument("action", choices=("on", "off", "status"))
    parser.set_defaults(func=cmd_autostart)


def cmd_autostart(args: argparse.Namespace, out: TextIO) -> int:
    """``status`` prints on or off and exits 0; ``on``/``off`` exit 1 where they left
    someone else's entry alone."""
    writer = for_platform()
    if args.action == "status":
        out.write(("on" if writer.status() else "off") + "\n")
        return 0
    try:
        result = writer.enable(launch_command()) if args.action == "on" else writer.disable()
    except OSError as exc:
        result = Result(False, f"cannot change {writer.where}: {exc.strerror or exc}")
    if not result.ok:
        print(f"cpgw-tray: {result.message}", file=sys.stderr)
        return EXIT_FAILED
    out.write(result.message + "\n")
    return 0
