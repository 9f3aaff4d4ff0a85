"""Stopping a gateway, all of it: the process group our launcher started (or, on Windows,
its members one by one), an adopted gateway's run-script tree; terminate first, kill what
outlives the grace; another user's gateway is refused (:class:`~.identity.NotPermitted`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from pathlib import Path

import psutil

from .identity import Gateway, NotPermitted, forget

log = logging.getLogger(__name__)

STOP_GRACE = 5.0  # seconds between terminate and kill


def _refused(gateway: Gateway) -> NotPermitted:
    return NotPermitted(
        f"not permitted to stop the gateway in {gateway.where()} (pid {gateway.pid}): "
        "it runs as another user; stop it as that user"
    )


def tree(pid: int) -> list[psutil.Process]:
    """The process and all its descendants."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _each(procs: list[psutil.Process], how: str, gateway: Gateway) -> None:
    for proc in procs:
        try:
            getattr(proc, how)()
        except psutil.NoSuchProcess:
            pass
        except (psutil.AccessDenied, PermissionError):
            raise _refused(gateway) from None


def _signal_group(gateway: Gateway, hard: bool) -> None:
    """POSIX: SIGTERM (or SIGKILL when ``hard``) to the process group we started.
    Windows has no process groups to signal: its members are stopped one by one."""
    if sys.platform != "win32" and gateway.ours and gateway.pgid is not None:
        try:
            os.killpg(gateway.pgid, signal.SIGKILL if hard else signal.SIGTERM)
        except ProcessLookupError:
            pass  # the group ended already
        except PermissionError:
            raise _refused(gateway) from None


def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait up to ``timeout`` s for ``procs`` to end (a zombie has); those still running."""
    deadline, alive = time.monotonic() + timeout, procs
    while True:
        left = max(deadline - time.monotonic(), 0.0)
        _, alive = psutil.wait_procs(alive, timeout=min(left, 0.1))
        alive = [p for p in alive if _status(p) not in (psutil.STATUS_ZOMBIE, None)]
        if not alive or left == 0.0:
            return alive


def _status(proc: psutil.Process) -> str | None:
    with contextlib.suppress(psutil.NoSuchProcess):
        return proc.status()
    return None


def stop_gateway(gateway: Gateway, grace: float = STOP_GRACE) -> None:
    """Stop a gateway, all of it. Ours: the process group we started (and any member of
    the launch that left it), so nothing is orphaned when run.sh died first. Adopted:
    its run script's tree, or its own. Terminate first; kill what outlives ``grace``.
    Raises :class:`NotPermitted` when the system refuses."""
    if gateway.ours and gateway.members:
        procs = []
        for pid in gateway.members:
            with contextlib.suppress(psutil.NoSuchProcess):
                procs.append(psutil.Process(pid))
    else:
        procs = tree(gateway.root_pid or gateway.pid)
    _signal_group(gateway, hard=False)
    _each(list(reversed(procs)), "terminate", gateway)
    alive = wait_gone(procs, grace)
    if alive:
        _signal_group(gateway, hard=True)
        _each(alive, "kill", gateway)
        wait_gone(alive, grace)
    if gateway.ours and gateway.folder:
        forget(Path(gateway.folder))
    log.info("stopped the gateway in %s (pid %s)", gateway.where(), gateway.pid)
