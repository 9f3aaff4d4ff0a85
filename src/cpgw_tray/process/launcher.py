"""Launching the gateway: find its folder, check what can be checked first (Java, the
port), launch it as IBKR documents, wait until it really listens, watch for a crash.
Which processes are a gateway, and stopping them, is :mod:`cpgw_tray.process.identity`'s.

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
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil

from ..constants import EXIT_USAGE, LISTEN_FAILED
from .children import detached
from .folder import problems
from .identity import Gateway, LaunchError, Record, folder_lock, gateway_in, log_for, save_record
from .output import Follower, rotate, tail
from .preflight import (
    Java,
    find_directory,
    find_java,
    gateway_port,
    listeners,
    needs_java,
    port_answers,
    tls_answers,
    who_holds,
)
from .stopping import stop_gateway, tree

log = logging.getLogger(__name__)

# Launching needs the folder and port checks (preflight) and process identity; callers
# may take those names from here too.
__all__ = [
    "AlreadyRunning",
    "Cancelled",
    "Exited",
    "Gateway",
    "Java",
    "LaunchError",
    "Launcher",
    "find_directory",
    "find_java",
    "gateway_port",
    "listeners",
    "needs_java",
    "port_answers",
    "problems",
    "tls_answers",
    "tree",
    "who_holds",
]


# ------------------------------------------------------------------------ launching


class AlreadyRunning(LaunchError):
    """A gateway already runs from this folder: reported, not started again."""

    def __init__(self, running: Gateway) -> None:
        super().__init__(
            f"a gateway is already running in {running.where()} ({running.describe()}); "
            "not starting another"
        )
        self.running = running


class Cancelled(LaunchError):
    """The wait was cancelled (Ctrl-C, Stop, quitting); what was started still runs."""


@dataclass(frozen=True)
class Exited:
    """What the crash watch saw: the run script ended by itself. ``survivors`` names the
    gateway process it left running (run.sh died first), else it is empty."""

    code: int | None
    last_lines: str
    survivors: list[int] = field(default_factory=list)

    def describe(self) -> str:
        if self.survivors:
            return (
                f"its run script exited (code {self.code}), but the gateway itself is still "
                f"running (pid {', '.join(map(str, self.survivors))})"
            )
        return "it exited by itself" + (f" (code {self.code})" if self.code is not None else "")


class Launcher:
    """Starts, watches and stops the gateway of one folder. Thread-safe; its blocking
    calls belong on worker threads, never on the tray's."""

    def __init__(
        self,
        directory: Path,
        log_path: Path | None = None,
        *,
        timeout: float = 60.0,
        env: Mapping[str, str] | None = None,
        on_exit: Callable[[Exited], None] | None = None,
    ) -> None:
        self.directory = directory
        self.log_path = log_path or log_for(directory)
        self.timeout = timeout
        self.env = dict(os.environ if env is None else env)
        self.on_exit = on_exit
        self.proc: subprocess.Popen[bytes] | None = None
        self.follower: Follower | None = None
        self.java: Java | None = None
        self._stopping = False
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return gateway_port(self.directory)[0]

    def preflight(self) -> Java | None:
        """Check what can be checked before starting anything; returns the Java the run
        script will use (None when it needs none)."""
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
        if sys.platform == "win32":
            return ["cmd", "/c", "bin\\run.bat", "root\\conf.yaml"]
        else:
            return ["bash", "bin/run.sh", "root/conf.yaml"]

    def start(self) -> subprocess.Popen[bytes]:
        """Launch from inside the folder, in a session and process group of its own,
        output to a freshly rotated log; the launch goes on record. One start at a time
        per folder: raises :class:`AlreadyRunning` if a gateway runs from it. Returns at
        once; see :meth:`wait_ready`."""
        wrong = problems(self.directory)
        if wrong:
            raise LaunchError(f"not a gateway folder: {wrong[0]}", EXIT_USAGE)
        port = self.port
        with folder_lock(self.directory):
            running = gateway_in(self.directory)
            if running is not None:
                raise AlreadyRunning(running)
            self.java = self.preflight()
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            rotate(self.log_path)
            with self._lock, open(self.log_path, "ab") as out:
                self._stopping = False
                out.write(
                    f"=== {datetime.now():%Y-%m-%d %H:%M:%S} starting gateway in "
                    f"{self.directory}\n".encode()
                )
                out.flush()
                self.follower = Follower(self.log_path, offset=out.tell())
                proc: subprocess.Popen[bytes] = subprocess.Popen(
                    self.command(),
                    cwd=self.directory,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    **detached(),
                )
                self.proc = proc
            created = time.time()
            with contextlib.suppress(psutil.Error):
                created = psutil.Process(proc.pid).create_time()
            save_record(
                Record(
                    folder=str(self.directory.resolve()),
                    pid=proc.pid,
                    pgid=proc.pid,  # start_new_session: leader of its own group and session
                    sid=proc.pid,
                    create_time=created,
                    port=port,
                    log=str(self.log_path),
                )
            )
        log.info("launched gateway pid %s in %s", proc.pid, self.directory)
        threading.Thread(
            target=self._watch, args=(proc,), name="gateway-watch", daemon=True
        ).start()
        return proc

    def output(self, lines: int | None = None) -> str:
        """This launch's output (the log's end if nothing was launched here), the last
        ``lines`` of it."""
        if self.follower is None:
            return "\n".join(tail(self.log_path, lines or 40))
        self.follower.read()
        text = self.follower.text()
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    def wait_ready(self, stop: threading.Event | None = None, poll: float = 0.25) -> Gateway:
        """Wait until the port answers from our launch. Reads only what this launch
        wrote, each byte once. Raises :class:`Cancelled` when ``stop`` is set (what was
        started keeps running: the caller decides), :class:`LaunchError` (after stopping
        what was started) when the gateway exits, reports a failed listen, or is not
        ready within the time limit."""
        proc, follower = self.proc, self.follower
        assert proc is not None and follower is not None, "start() first"
        port, ssl_on = gateway_port(self.directory)
        deadline = time.monotonic() + self.timeout
        while True:
            if stop is not None and stop.is_set():
                raise Cancelled("launch cancelled")
            failed = [x for x in follower.read().splitlines() if LISTEN_FAILED in x]
            if failed:
                self.stop(check_port=False)  # the port is someone else's
                raise LaunchError(
                    f"the gateway could not listen on port {port} ({failed[0].strip()}): "
                    f"it is taken by {who_holds(port)}; nothing left running"
                )
            code = proc.poll()
            if code is not None and gateway_in(self.directory) is None:
                last = "\n".join("  " + x for x in self.output(lines=5).splitlines())
                raise LaunchError(
                    f"the gateway exited with code {code} before it listened. "
                    + (f"Last lines:\n{last}" if last else "It printed nothing.")
                )
            if tls_answers(port) if ssl_on else port_answers(port):
                ours = gateway_in(self.directory)
                if ours is not None and ours.ours and listeners(port, ours.members):
                    return ours
                log.debug("port %s answers, but not from our launch yet", port)
            if time.monotonic() > deadline:
                self.stop(check_port=False)
                raise LaunchError(
                    f"the gateway did not listen on port {port} within "
                    f"{self.timeout:g} s; stopped it. Last output: {self.output(lines=3)}"
                )
            (stop or threading.Event()).wait(poll)

    def stop(self, running: Gateway | None = None, check_port: bool = True) -> None:
        """Stop this folder's gateway (or ``running``), all of it; then, if
        ``check_port``, make sure the port is free."""
        with self._lock:
            self._stopping = True
            proc = self.proc
        target = running or gateway_in(self.directory)
        if target is None:
            if proc is None or proc.poll() is not None:
                raise LaunchError(f"no gateway is running in {self.directory}")
            # launched, not yet on record (or its record is unreadable): its tree
            target = Gateway(proc.pid, str(self.directory), datetime.now(), ours=False)
        stop_gateway(target)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(1)  # reap our child
        if check_port:
            port = target.port
            if port is None:
                with contextlib.suppress(LaunchError):
                    port = self.port
            if port is not None:
                deadline = time.monotonic() + 5
                while port_answers(port, 0.2) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if port_answers(port, 0.2):
                    raise LaunchError(
                        f"the gateway was stopped, but port {port} is still taken by "
                        f"{who_holds(port)}"
                    )

    def _expected(self, proc: subprocess.Popen[bytes]) -> bool:
        with self._lock:
            return self._stopping or proc is not self.proc

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        """Crash watch: tell ``on_exit`` when our gateway ends by itself, and, honestly,
        when run.sh ended but left the gateway running (then keep watching that)."""
        try:
            code = proc.wait()
            if self._expected(proc) or self.on_exit is None:
                return
            left = gateway_in(self.directory)
            if left is None or not left.ours:
                self.on_exit(Exited(code, self.output(lines=5)))
                return
            self.on_exit(Exited(code, self.output(lines=5), [left.pid]))
            procs = []
            for pid in left.members:
                with contextlib.suppress(psutil.Error):
                    procs.append(psutil.Process(pid))
            psutil.wait_procs(procs)
            if not self._expected(proc):
                self.on_exit(Exited(None, self.output(lines=5)))
        except Exception:  # the watch must not die silently
            log.exception("the gateway's crash watch failed")
