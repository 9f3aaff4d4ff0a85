"""Change hooks (``--exec``): a command run at every state change, one run at a time.

The command is a list of strings, or one string split like a shell would (``shlex``) but
run without a shell. It gets ``CPGW_STATE``, ``CPGW_PREVIOUS``, ``CPGW_DETAIL`` and
``CPGW_URL`` in its environment and the status JSON on stdin. The first verdict counts
as a change from ``unknown``. Changes that happen while a run is going collapse into one
run with the latest state, whose ``CPGW_PREVIOUS`` is the state the last run was given:
runs come in order and never repeat a transition.

A run past the timeout is killed with its whole process group; whatever a hook leaves
running in its group when it exits is ended too, so nothing it started is orphaned
(a hook that means to start something lasting uses ``setsid`` or ``systemd-run``).
Its stdout and stderr are read in bounded chunks into a 64 KiB ring each (the tail kept,
the rest dropped and counted; nothing goes to disk); exit codes, the end of stderr
(redacted) and the bytes dropped are logged; a failing hook never stops the watcher.
Windows has no process groups to signal: there the run's process tree is killed, and
it runs without a console window.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from typing import IO, Any

import psutil

from .redaction import redact
from .status import State, Status

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
STDERR_TAIL = 2000  # bytes of a hook's stderr shown in the log line
RING = 64 * 1024  # bytes kept of each of a hook's stdout and stderr (the tail)
CHUNK = 16 * 1024  # bytes read at a time


def parse_command(value: Any) -> list[str]:
    """A hook command from a string (split like a shell would) or a list of strings.
    Raises ValueError with one line."""
    if isinstance(value, str):
        try:
            argv = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot split {value!r} into words: {exc}") from None
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        argv = list(value)
    else:
        raise ValueError("expected a command: a string or a list of strings")
    if not argv or not argv[0]:
        raise ValueError("empty command")
    return argv


class Hooks:
    """Runs ``argv`` on state changes, on one worker thread. :meth:`offer` every status
    (from any thread; it returns at once); :meth:`stop` ends a run in progress."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        url: str,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.url = url
        self.timeout = timeout
        self._env = dict(os.environ if env is None else env)
        self._cond = threading.Condition()
        self._latest: Status | None = None  # the newest status offered
        self._given = State.UNKNOWN  # the state the last run was given
        self._stopped = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="hooks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, status: Status) -> None:
        """The watcher's latest status; a run follows if its state differs from the one
        the last run was given."""
        with self._cond:
            changed = self._latest is None or status.state is not self._latest.state
            self._latest = status
            if changed:
                self._cond.notify()

    def stop(self) -> None:
        """Start no more runs and kill the one in progress with its process group."""
        with self._cond:
            self._stopped.set()
            proc = self._proc
            self._cond.notify()
        if proc is not None:
            _kill_group(proc)
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _next(self) -> tuple[Status, State] | None:
        """Wait for a status whose state differs from the last run's; None once stopped."""
        with self._cond:
            while not self._stopped.is_set():
                latest = self._latest
                if latest is not None and latest.state is not self._given:
                    previous, self._given = self._given, latest.state
                    return latest, previous
                self._cond.wait()
            return None

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._execute(*job)
            except Exception:  # a broken hook run must not end the hooks thread
                log.exception("hook %s failed to run", self.argv[0])

    def _execute(self, status: Status, previous: State) -> None:
        env = {
            **self._env,
            "CPGW_STATE": status.state.value,
            "CPGW_PREVIOUS": previous.value,
            "CPGW_DETAIL": status.detail,
            "CPGW_URL": self.url,
        }
        what = f"{previous.value} -> {status.state.value}"
        data = (json.dumps(status.to_json()) + "\n").encode()
        started = time.monotonic()
        with self._cond:
            if self._stopped.is_set():
                return
            try:
                proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    env=env,
                    **_detached(),
                )
            except OSError as exc:
                log.warning("hook (%s) could not start %s: %s", what, self.argv[0], exc)
                return
            self._proc = proc
        out, err = Ring(), Ring()
        readers = [out.drain(proc.stdout, "hook-stdout"), err.drain(proc.stderr, "hook-stderr")]
        try:
            _feed(proc, data)
            proc.wait(timeout=self.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _kill_group(proc)  # a timed-out run, or what a finished one left behind
            proc.wait()
            # EOF once the group is gone; something the hook moved out of its group
            # (setsid) may hold a pipe open: its reader is left to end with it.
            until = time.monotonic() + 1.0
            for reader in readers:
                reader.join(timeout=max(0.0, until - time.monotonic()))
            with self._cond:
                self._proc = None
        took = time.monotonic() - started
        said = err.said("stderr") + out.said("stdout", tail=False)
        if self._stopped.is_set() and proc.returncode != 0:
            log.info("hook (%s) ended by stop", what)
        elif timed_out:
            log.warning(
                "hook (%s) killed after %g s (hook_timeout) with its process group: exit %s%s",
                what,
                self.timeout,
                proc.returncode,
                said,
            )
        elif proc.returncode != 0:
            log.warning(
                "hook (%s) failed: exit %s after %.2f s%s", what, proc.returncode, took, said
            )
        else:
            log.info("hook (%s) ran: exit 0 in %.2f s%s", what, took, said)


class Ring:
    """The last :data:`RING` bytes of one of a hook's outputs, read in chunks of at most
    :data:`CHUNK` bytes on a thread of its own: memory stays bounded whatever the hook
    writes, nothing goes to disk, and what was dropped is counted."""

    def __init__(self, size: int = RING) -> None:
        self.size = size
        self.data = bytearray()
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.data += chunk
        if len(self.data) > self.size:
            del self.data[: len(self.data) - self.size]

    @property
    def dropped(self) -> int:
        return self.total - len(self.data)

    def drain(self, pipe: IO[bytes] | None, name: str) -> threading.Thread:
        """Read ``pipe`` to its end into this ring, on a daemon thread (started)."""

        def run() -> None:
            if pipe is None:
                return
            with pipe:
                while chunk := pipe.read1(CHUNK):  # type: ignore[attr-defined]
                    self.add(chunk)

        thread = threading.Thread(target=run, name=name, daemon=True)
        thread.start()
        return thread

    def said(self, name: str, tail: bool = True) -> str:
        """For the log line: the tail (redacted, newlines folded; ``tail``) and what
        was dropped."""
        if not self.total:
            return ""
        text = self.data[-STDERR_TAIL:].decode("utf-8", "replace").strip()
        shown = f"; {name}: {redact(' | '.join(text.splitlines()))}" if tail and text else ""
        if not tail:
            shown = f"; {name}: {self.total} bytes"
        if self.dropped:
            shown += f" ({self.dropped} bytes of {name} dropped, the last {len(self.data)} kept)"
        return shown


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """The status JSON on the hook's stdin; a hook that does not read it is fine."""
    if proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, OSError), proc.stdin:
        proc.stdin.write(data)


def _detached() -> dict[str, Any]:
    """POSIX: a session and process group of its own, killed as one. Windows: a process
    group of its own and no console window (the tray has none to share)."""
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        return {"creationflags": flags}
    else:
        return {"start_new_session": True}


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the hook's process group (POSIX) or its process tree, children first
    (Windows, which has no groups to signal); gone is fine."""
    if sys.platform == "win32":
        with contextlib.suppress(psutil.Error):
            procs = psutil.Process(proc.pid).children(recursive=True)
            for child in reversed(procs):
                with contextlib.suppress(psutil.Error):
                    child.kill()
        with contextlib.suppress(OSError):
            proc.kill()
    else:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
