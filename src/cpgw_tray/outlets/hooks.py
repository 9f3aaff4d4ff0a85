"""Hooks: a command run at every state change (``on_change``, ``--exec``), and one run
at every event (``on_event``, ``--on-event``), each one run at a time.

The command is a list of strings, or one string split like a shell would (``shlex``) but
run without a shell. It gets ``CPGW_STATE``, ``CPGW_PREVIOUS``, ``CPGW_DETAIL``,
``CPGW_URL`` and ``CPGW_GATEWAY`` (the gateway's name, empty when none is named) in its
environment and the status JSON on stdin. The first verdict counts as a change from
``unknown``. Changes of one gateway that happen while a run is going collapse into one
run with its latest state, whose ``CPGW_PREVIOUS`` is the state the last run was given:
runs come in order and never repeat a transition.

A run past the timeout is killed with its whole process group; whatever a hook leaves
running in its group when it exits is ended too, so nothing it started is orphaned
(a hook that means to start something lasting uses ``setsid`` or ``systemd-run``).
Its stdout and stderr are read in bounded chunks into a 64 KiB ring each (the tail kept,
the rest dropped and counted; nothing goes to disk; :mod:`.children`); exit codes, the
end of stderr (redacted) and the bytes dropped are logged; a failing hook never stops the
watcher. Windows has no process groups to signal: there the run's process tree is killed,
and it runs without a console window.

Event hooks get ``CPGW_EVENT``, ``CPGW_MESSAGE``, ``CPGW_AT``, ``CPGW_GATEWAY`` and the
event's JSON on stdin. Their queue is their own and nothing in it collapses: every event
runs once, in order (at most :data:`EVENT_QUEUE` wait; the oldest is dropped and logged when full).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..model.status import State, Status, iso_utc
from ..model.urls import gateway_root
from ..process.children import Ring, detached, feed, kill_group

if TYPE_CHECKING:
    from ..model.person import Event

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0
EVENT_QUEUE = 100  # events waiting for their hook


class _Runner:
    """Runs ``argv`` one job at a time on its own thread; :meth:`stop` ends a run in
    progress. Subclasses say what the next job is (:meth:`_next`) and run it."""

    name = "hooks"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.argv = list(argv)
        self.timeout = timeout
        self._env = dict(os.environ if env is None else env)
        self._cond = threading.Condition()
        self._stopped = threading.Event()
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    @property
    def thread(self) -> threading.Thread:
        """The worker thread (a watcher checks that it still runs)."""
        return self._thread

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Start no more runs and kill the one in progress with its process group."""
        with self._cond:
            self._stopped.set()
            proc = self._proc
            self._cond.notify()
        if proc is not None:
            kill_group(proc)
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)

    def _next(self) -> tuple[dict[str, str], bytes, str] | None:
        """The next run's environment, stdin and name for the log; None once stopped."""
        raise NotImplementedError

    def _run(self) -> None:
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._execute(*job)
            except Exception:  # a broken hook run must not end the hooks thread
                log.exception("hook %s failed to run", self.argv[0])

    def _execute(self, extra: dict[str, str], data: bytes, what: str) -> None:
        env = {**self._env, **extra}
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
                    **detached(),
                )
            except OSError as exc:
                log.warning("hook (%s) could not start %s: %s", what, self.argv[0], exc)
                return
            self._proc = proc
        out, err = Ring(), Ring()
        readers = [out.drain(proc.stdout, "hook-stdout"), err.drain(proc.stderr, "hook-stderr")]
        try:
            feed(proc, data)
            proc.wait(timeout=self.timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_group(proc)  # a timed-out run, or what a finished one left behind
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


class Hooks(_Runner):
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
        super().__init__(argv, timeout=timeout, env=env)
        self.url = url
        # By gateway name (collapsing per gateway): the newest status offered, and the
        # state the last run was given.
        self._latest: dict[str | None, Status] = {}
        self._given: dict[str | None, State] = {}

    def offer(self, status: Status) -> None:
        """The watcher's latest status; a run follows if its state differs from the one
        the last run for its gateway was given."""
        with self._cond:
            before = self._latest.get(status.gateway)
            self._latest[status.gateway] = status
            if before is None or status.state is not before.state:
                self._cond.notify()

    def _next(self) -> tuple[dict[str, str], bytes, str] | None:
        """Wait for a gateway's status whose state differs from its last run's (the
        gateways in the order first offered); None once stopped."""
        with self._cond:
            while not self._stopped.is_set():
                for name, latest in self._latest.items():
                    previous = self._given.get(name, State.UNKNOWN)
                    if latest.state is not previous:
                        self._given[name] = latest.state
                        return self._job(latest, previous)
                self._cond.wait()
            return None

    def _job(self, status: Status, previous: State) -> tuple[dict[str, str], bytes, str]:
        env = {
            "CPGW_STATE": status.state.value,
            "CPGW_PREVIOUS": previous.value,
            "CPGW_DETAIL": status.detail,
            "CPGW_URL": gateway_root(status.url) if status.gateway else self.url,
            "CPGW_GATEWAY": status.gateway or "",
        }
        named = f"{status.gateway}: " if status.gateway else ""
        what = f"{named}{previous.value} -> {status.state.value}"
        return env, (json.dumps(status.to_json()) + "\n").encode(), what


class EventHooks(_Runner):
    """Runs ``argv`` once for each event, in order, on its own thread (see the module).
    :meth:`offer` every event from any thread; it returns at once."""

    name = "event-hooks"

    def __init__(
        self,
        argv: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        env: Mapping[str, str] | None = None,
        limit: int = EVENT_QUEUE,
    ) -> None:
        super().__init__(argv, timeout=timeout, env=env)
        self._queue: deque[Event] = deque()
        self._limit = limit
        self.dropped = 0

    def offer(self, event: Event) -> None:
        with self._cond:
            if len(self._queue) >= self._limit:
                self._queue.popleft()
                self.dropped += 1
                log.warning("event hook queue full: %d oldest events dropped", self.dropped)
            self._queue.append(event)
            self._cond.notify()

    def _next(self) -> tuple[dict[str, str], bytes, str] | None:
        with self._cond:
            while not self._stopped.is_set():
                if self._queue:
                    event = self._queue.popleft()
                    data = event.to_json()
                    env = {
                        "CPGW_EVENT": event.kind,
                        "CPGW_MESSAGE": event.message,
                        "CPGW_AT": iso_utc(event.at),
                        "CPGW_GATEWAY": event.gateway or "",
                    }
                    return env, (json.dumps(data) + "\n").encode(), f"event {event.kind}"
                self._cond.wait()
            return None
