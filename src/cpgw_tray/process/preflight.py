"""Before a launch: find the gateway folder and its port, find the Java its run script
needs, and look at the port — who answers on it, who listens on it.

Facts this follows (IBKR's ``clientportal.gw``): launch from inside the folder with
``bin/run.sh root/conf.yaml`` (``bin\\run.bat`` on Windows); it is a Java program (8u192 or
newer, ``JAVA_HOME`` or ``java`` on PATH); the port comes from ``root/conf.yaml``.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..constants import EXIT_UNAVAILABLE, EXIT_USAGE
from ..settings.config import ConfigError, read_conf_yaml
from .folder import problems, run_script, usual_places
from .identity import LaunchError

# ------------------------------------------------------------------------ the folder


def find_directory(configured: str | None, home: Path | None = None) -> tuple[Path, str]:
    """The gateway folder and how it was found. Raises :class:`LaunchError` if none."""
    if configured:
        path = Path(configured).expanduser()
        wrong = problems(path)
        if wrong:
            raise LaunchError(
                f"the configured gateway folder is not usable: {wrong[0]}; "
                "set gateway_dir to the unpacked clientportal.gw folder",
                EXIT_USAGE,
            )
        return path, "configured"
    searched = usual_places(home or Path.home())
    for path in searched:
        if not problems(path):
            return path, "found"
    raise LaunchError(
        "no gateway folder found (looked in "
        + ", ".join(str(p) for p in searched)
        + "); download clientportal.gw from IBKR, unpack it, and set gateway_dir or use --dir",
        EXIT_USAGE,
    )


def gateway_port(directory: Path) -> tuple[int, bool]:
    """``listenPort`` and ``listenSsl`` of a gateway folder."""
    try:
        return read_conf_yaml(str(directory))
    except ConfigError as exc:
        raise LaunchError(str(exc), EXIT_USAGE) from None


# ------------------------------------------------------------------------ pre-flight


@dataclass(frozen=True)
class Java:
    path: str
    version: str


JAVA_HELP = {
    "linux": "install a Java runtime (8u192 or newer), e.g. `sudo apt install default-jre`",
    "darwin": "install a Java runtime (8u192 or newer), e.g. `brew install openjdk`",
    "win32": "install a Java runtime (8u192 or newer), "
    "e.g. `winget install EclipseAdoptium.Temurin.17.JRE`",
}


def needs_java(directory: Path) -> bool:
    """Whether the folder's run script starts java (IBKR's does; the simulator's not)."""
    try:
        text = (directory / run_script()).read_text(errors="replace")
    except OSError:
        return True
    code = [
        line for line in text.splitlines() if not line.lstrip().startswith(("#", "rem ", "REM "))
    ]
    return any(re.search(r"(^|[\s\"'/\\])java(\.exe)?([\s\"']|$)", line) for line in code)


def find_java(env: Mapping[str, str]) -> Java:
    """The java the run script will use: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    exe = "java.exe" if sys.platform == "win32" else "java"
    candidates = []
    if env.get("JAVA_HOME"):
        candidates.append(str(Path(env["JAVA_HOME"]) / "bin" / exe))
    found = shutil.which("java", path=env.get("PATH"))
    if found:
        candidates.append(found)
    for path in candidates:
        if os.access(path, os.X_OK):
            try:
                probe = subprocess.run(
                    [path, "-version"], capture_output=True, text=True, timeout=15
                )
            except (OSError, subprocess.TimeoutExpired):
                continue
            first = (probe.stderr or probe.stdout).strip().splitlines()
            return Java(path, first[0] if first else "unknown version")
    help_text = JAVA_HELP.get(sys.platform, JAVA_HELP["linux"])
    raise LaunchError(
        f"Java not found (no JAVA_HOME/bin/java, no java on PATH); the gateway is a Java "
        f"program: {help_text}",
        EXIT_UNAVAILABLE,
    )


def port_answers(port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def tls_answers(port: int, timeout: float = 2.0) -> bool:
    """Whether 127.0.0.1:``port`` completes a TLS handshake (any certificate)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1"),
        ):
            return True
    except (OSError, ssl.SSLError):
        return False


def listeners(port: int, pids: Iterable[int] | None = None) -> list[psutil.Process]:
    """Processes listening on ``port`` — among ``pids`` if given (works without root),
    else system-wide where the platform allows."""
    found = []
    if pids is not None:
        for pid in pids:
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(pid)
                if any(_listens(c, port) for c in proc.net_connections(kind="tcp")):
                    found.append(proc)
        return found
    try:
        conns = psutil.net_connections(kind="tcp")
    except psutil.AccessDenied:
        return []
    for conn in conns:
        if _listens(conn, port) and conn.pid:
            with contextlib.suppress(psutil.Error):
                found.append(psutil.Process(conn.pid))
    return found


def _listens(conn: object, port: int) -> bool:
    laddr = getattr(conn, "laddr", None)
    return getattr(conn, "status", "") == psutil.CONN_LISTEN and bool(laddr) and laddr.port == port  # type: ignore[union-attr]


def who_holds(port: int) -> str:
    """Words naming the program on ``port``, where the platform lets us see it."""
    for proc in listeners(port):
        with contextlib.suppress(psutil.Error):
            return f"{proc.name()} (pid {proc.pid})"
    return "another program"
