"""Gateway process management: find the gateway folder, launch it as IBKR documents,
wait until it really listens, adopt one started elsewhere, stop the whole tree.

Facts this follows (IBKR's ``clientportal.gw``): launch from inside the folder with
``bin/run.sh root/conf.yaml`` through ``bash`` (the script ships without its execute
bit) or ``cmd /c bin\\run.bat root\\conf.yaml``; ``run.sh`` starts java as a child and
does not exec it, so stopping means stopping the whole tree; the banner comes before
the port listens, so readiness is the port answering TLS from *our* process; on a taken
port it prints ``Server listen failed ... Address already in use`` and keeps running.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psutil

from .config import ConfigError, read_conf_yaml
from .constants import LISTEN_FAILED, MAIN_CLASS

log = logging.getLogger(__name__)

WINDOWS = sys.platform == "win32"
RUN_SCRIPT = Path("bin/run.bat") if WINDOWS else Path("bin/run.sh")
STOP_GRACE = 5.0  # seconds between terminate and kill


class LaunchError(Exception):
    """The gateway could not be started or stopped; the message says why and what to do."""


@dataclass(frozen=True)
class GatewayProcess:
    """A running gateway, ours or adopted."""

    pid: int
    directory: str | None
    started: datetime
    port: int | None = None
    root_pid: int | None = None  # the run.sh/run.bat shell that started it, if any

    def describe(self) -> str:
        return f"pid {self.pid}, since {self.started.strftime('%H:%M')}"


# ------------------------------------------------------------------------ the folder


def usual_places(home: Path) -> list[Path]:
    """Where people unpack ``clientportal.gw``, in the order we look."""
    places = [
        home / "clientportal.gw",
        home / "Downloads" / "clientportal.gw",
        home / "gateway",
        home / "clientportal",
        home / "ibkr" / "clientportal.gw",
    ]
    if WINDOWS:
        places += [Path("C:/clientportal.gw"), Path("C:/gateway")]
    else:
        places += [Path("/opt/clientportal.gw")]
    return places


def problems(directory: Path) -> list[str]:
    """What a gateway folder lacks (empty when it looks right)."""
    if not directory.is_dir():
        return [f"{directory} is not a folder"]
    missing = [
        str(p) for p in (RUN_SCRIPT, Path("root/conf.yaml")) if not (directory / p).is_file()
    ]
    return [f"{directory} has no {' and no '.join(missing)}"] if missing else []


def find_directory(configured: str | None, home: Path | None = None) -> tuple[Path, str]:
    """The gateway folder and how it was found. Raises :class:`LaunchError` if none."""
    if configured:
        path = Path(configured).expanduser()
        wrong = problems(path)
        if wrong:
            raise LaunchError(
                f"the configured gateway folder is not usable: {wrong[0]}; "
                "set gateway_dir to the unpacked clientportal.gw folder"
            )
        return path, "configured"
    searched = usual_places(home or Path.home())
    for path in searched:
        if not problems(path):
            return path, "found"
    raise LaunchError(
        "no gateway folder found (looked in "
        + ", ".join(str(p) for p in searched)
        + "); download clientportal.gw from IBKR, unpack it, and set gateway_dir or use --dir"
    )


def gateway_port(directory: Path) -> tuple[int, bool]:
    """``listenPort`` and ``listenSsl`` of a gateway folder."""
    try:
        return read_conf_yaml(str(directory))
    except ConfigError as exc:
        raise LaunchError(str(exc)) from None


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
        text = (directory / RUN_SCRIPT).read_text(errors="replace")
    except OSError:
        return True
    code = [
        line for line in text.splitlines() if not line.lstrip().startswith(("#", "rem ", "REM "))
    ]
    return any(re.search(r"(^|[\s\"'/\\])java(\.exe)?([\s\"']|$)", line) for line in code)


def find_java(env: Mapping[str, str]) -> Java:
    """The java the run script will use: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    exe = "java.exe" if WINDOWS else "java"
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
        f"program: {help_text}"
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


# ------------------------------------------------------------------------ finding


def find_running() -> GatewayProcess | None:
    """A running gateway, whoever started it: its command line names the main class."""
    for proc in psutil.process_iter(["pid", "cmdline", "create_time"]):
        cmdline = proc.info.get("cmdline") or []
        if any(MAIN_CLASS in part for part in cmdline):
            directory = None
            with contextlib.suppress(psutil.Error):
                directory = proc.cwd()
            started = datetime.fromtimestamp(proc.info["create_time"])
            return GatewayProcess(proc.pid, directory, started, root_pid=_run_script_parent(proc))
    return None


def _run_script_parent(proc: psutil.Process) -> int | None:
    """The ``run.sh``/``run.bat`` shell above the gateway, so stopping takes it too."""
    with contextlib.suppress(psutil.Error):
        parent = proc.parent()
        if parent is not None and any(
            part.replace("\\", "/").endswith(("bin/run.sh", "bin/run.bat"))
            for part in parent.cmdline()
        ):
            return parent.pid
    return None


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def stop_tree(pid: int, port: int | None = None, grace: float = STOP_GRACE) -> None:
    """Terminate the whole tree (``run.sh`` does not exec java: stopping only the shell
    leaves java holding the port), kill what outlives ``grace``, then check the port."""
    procs = tree(pid)
    for proc in reversed(procs):
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for proc in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(alive, timeout=grace)
    if port is not None:
        deadline = time.monotonic() + grace
        while port_answers(port, 0.2) and time.monotonic() < deadline:
            time.sleep(0.1)
        if port_answers(port, 0.2):
            raise LaunchError(
                f"the gateway was stopped, but port {port} is still taken by {who_holds(port)}"
            )


# ------------------------------------------------------------------------ launching


class Launcher:
    """Starts, watches and stops the gateway of one folder. Thread-safe; its blocking
    calls belong on worker threads, never on the tray's."""

    def __init__(
        self,
        directory: Path,
        log_path: Path,
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        on_exit: Callable[[int, str], None] | None = None,
    ) -> None:
        self.directory = directory
        self.log_path = log_path
        self.timeout = timeout
        self.env = dict(os.environ if env is None else env)
        self.on_exit = on_exit
        self.proc: subprocess.Popen[bytes] | None = None
        self.java: Java | None = None
        self._stopping = False
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return gateway_port(self.directory)[0]

    def preflight(self) -> Java | None:
        """Check everything that can be checked before starting anything; returns the
        Java the run script will use (None when it needs none)."""
        wrong = problems(self.directory)
        if wrong:
            raise LaunchError(f"not a gateway folder: {wrong[0]}")
        running = find_running()
        if running is not None:
            raise AlreadyRunning(running)
        java = find_java(self.env) if needs_java(self.directory) else None
        if java is not None:
            log.info("java: %s (%s)", java.path, java.version)
        port = self.port
        if port_answers(port):
            raise LaunchError(
                f"port {port} is already in use by {who_holds(port)}; stop it, or change "
                f"listenPort in {self.directory / 'root' / 'conf.yaml'}"
            )
        return java

    def command(self) -> list[str]:
        if WINDOWS:
            return ["cmd", "/c", "bin\\run.bat", "root\\conf.yaml"]
        return ["bash", "bin/run.sh", "root/conf.yaml"]

    def start(self) -> subprocess.Popen[bytes]:
        """Pre-flight, then launch from inside the folder, in its own process group,
        output appended to the gateway log. Returns at once; see :meth:`wait_ready`."""
        self.java = self.preflight()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._stopping = False
            with open(self.log_path, "ab") as out:
                out.write(
                    f"\n=== {datetime.now():%Y-%m-%d %H:%M:%S} starting gateway in "
                    f"{self.directory}\n".encode()
                )
                out.flush()
                flags: dict[str, object] = (
                    {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
                    if WINDOWS
                    else {"start_new_session": True}
                )
                self.proc = subprocess.Popen(
                    self.command(),
                    cwd=self.directory,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    **flags,  # type: ignore[call-overload]
                )
        log.info("launched gateway pid %s in %s", self.proc.pid, self.directory)
        threading.Thread(
            target=self._watch, args=(self.proc,), name="gateway-watch", daemon=True
        ).start()
        return self.proc

    def output(self, lines: int | None = None, since_start: bool = True) -> str:
        """The gateway's output (this launch only, if ``since_start``), last ``lines``."""
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        if since_start and self.proc is not None:
            marker = data.rfind(b"\n=== ")
            data = data[marker + 1 :] if marker >= 0 else data
        text = data.decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    def wait_ready(self, stop: threading.Event | None = None, poll: float = 0.25) -> GatewayProcess:
        """Wait until the port answers TLS from our process tree. Raises
        :class:`LaunchError` (after stopping what was started) when the gateway exits,
        reports a failed listen, or is not ready within the time limit."""
        proc = self.proc
        assert proc is not None, "start() first"
        port, ssl_on = gateway_port(self.directory)
        deadline = time.monotonic() + self.timeout
        while True:
            if stop is not None and stop.is_set():
                raise LaunchError("launch cancelled")
            output = self.output()
            if LISTEN_FAILED in output:
                self.stop(check_port=False)  # the port is someone else's
                line = next(x for x in output.splitlines() if LISTEN_FAILED in x)
                raise LaunchError(
                    f"the gateway could not listen on port {port} ({line.strip()}): "
                    f"it is taken by {who_holds(port)}; nothing left running"
                )
            code = proc.poll()
            if code is not None:
                raise LaunchError(
                    f"the gateway exited with code {code} before it listened: "
                    f"{self.output(lines=5) or 'no output'}"
                )
            answers = tls_answers(port) if ssl_on else port_answers(port)
            if answers:
                ours = listeners(port, [p.pid for p in tree(proc.pid)])
                if ours:
                    started = datetime.fromtimestamp(psutil.Process(proc.pid).create_time())
                    return GatewayProcess(proc.pid, str(self.directory), started, port)
                # Someone else answers: the real gateway is stuck on a taken port.
                if LISTEN_FAILED not in self.output():
                    log.debug("port %s answers, but not from our process yet", port)
            if time.monotonic() > deadline:
                self.stop(check_port=False)
                raise LaunchError(
                    f"the gateway did not listen on port {port} within "
                    f"{self.timeout:g} s; stopped it. Last output: {self.output(lines=3)}"
                )
            (stop or threading.Event()).wait(poll)

    def stop(self, running: GatewayProcess | None = None, check_port: bool = True) -> None:
        """Stop our gateway, or ``running`` (an adopted one), tree and all; then, if
        ``check_port``, make sure the port is free."""
        with self._lock:
            self._stopping = True
            if running is not None:
                target: int | None = running.root_pid or running.pid
            else:
                target = self.proc.pid if self.proc else None
        if target is None:
            found = find_running()
            if found is None:
                raise LaunchError("no gateway is running")
            target = found.root_pid or found.pid
        port = None
        if check_port:
            with contextlib.suppress(LaunchError):
                port = self.port
        stop_tree(target, port)
        log.info("stopped gateway pid %s", target)

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        """Crash watch: tell ``on_exit`` when our gateway ends by itself."""
        code = proc.wait()
        with self._lock:
            expected = self._stopping or proc is not self.proc
        if not expected and self.on_exit is not None:
            self.on_exit(code, self.output(lines=5))


class AlreadyRunning(LaunchError):
    """A gateway is running already (adopted, not started again)."""

    def __init__(self, running: GatewayProcess) -> None:
        where = f" in {running.directory}" if running.directory else ""
        super().__init__(
            f"a gateway is already running ({running.describe()}){where}; not starting another"
        )
        self.running = running


def open_path(path: Path) -> None:
    """Open a file or folder with the desktop's default program, without waiting."""
    if WINDOWS:
        os.startfile(path)  # type: ignore[attr-defined]
        return
    opener = "open" if sys.platform == "darwin" else "xdg-open"
    subprocess.Popen(
        [opener, str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
