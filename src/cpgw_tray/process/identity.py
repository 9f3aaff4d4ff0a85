"""Which processes are a gateway, and whose: launch records, adoption and the per-folder
start lock (stopping one is :mod:`.stopping`'s).

A gateway is *ours* when our launcher started it: the launch (pid, process group and
session, start time, folder, port, log) is recorded in the state folder, one file per
gateway folder. A record is trusted only while its session still has members created
after the recorded start: the recorded pid with the same start time, or, when ``run.sh``
died first, the child it left (a session id is not reused while any member lives).
A gateway started elsewhere is *adopted* only when a process has an argv element exactly
equal to the main class and works in a gateway folder (IBKR's, with its jar, or our
simulator's) — never by a substring of a command line or from any folder, so
``tail -f notes-<main class>.txt`` or a ``grep <main class>`` in ~/notes is nobody's
gateway. Another user's process whose folder the system hides is listed (stopping it is
refused: exit 3), by a named folder only when it listens on that folder's port.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from .. import paths
from ..constants import EXIT_FAILED, EXIT_NOT_PERMITTED, MAIN_CLASS
from ..locks import held
from ..settings.config import ConfigError, read_conf_yaml
from ..smallfile import read_small
from .folder import is_gateway_folder

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 60.0  # seconds a start waits for another start of the same folder
# Seconds within which two start times are the same process's: psutil derives start
# times from the boot time in whole seconds, which moves when the wall clock is stepped.
SAME_START = 2.0


class LaunchError(Exception):
    """The gateway could not be started or stopped; the message says why and what to do.
    ``exit_code`` is the command line's exit code for it (see the README's table)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, exit_code: int | None = None) -> None:
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code


class NotPermitted(LaunchError):
    """The system refused to signal the gateway: it is another user's."""

    exit_code = EXIT_NOT_PERMITTED


# ------------------------------------------------------------------------ per-folder files


def folder_key(folder: Path) -> str:
    """A short stable name for a gateway folder (its resolved path, hashed)."""
    return hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]


def _records_dir() -> Path:
    return paths.state_dir() / "gateways"


def record_path(folder: Path) -> Path:
    """Where the launch of ``folder``'s gateway is recorded."""
    return _records_dir() / f"{folder_key(folder)}.json"


def lock_path(folder: Path) -> Path:
    return _records_dir() / f"{folder_key(folder)}.lock"


def log_for(folder: Path) -> Path:
    """The output of the gateway launched from ``folder``: one log per folder, so a live
    and a paper gateway keep theirs apart."""
    base = paths.gateway_log()
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in folder.resolve().name)
    return base.with_name(f"{base.stem}-{name}-{folder_key(folder)[:8]}{base.suffix}")


def log_of(folder: Path) -> Path:
    """The log of ``folder``'s gateway: the recorded one if we launched it, else the
    folder's usual log."""
    record = read_record(record_path(folder))
    return Path(record.log) if record is not None and record.log else log_for(folder)


@dataclass(frozen=True)
class Record:
    """One launch by our launcher."""

    folder: str  # resolved
    pid: int  # the run script's shell: leader of its own session and process group
    pgid: int
    sid: int
    create_time: float
    port: int | None
    log: str


def save_record(record: Record) -> None:
    path = record_path(Path(record.folder))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)


def read_record(path: Path) -> Record | None:
    try:
        data: dict[str, Any] = json.loads(read_small(path).decode("utf-8"))
        return Record(
            folder=str(data["folder"]),
            pid=int(data["pid"]),
            pgid=int(data["pgid"]),
            sid=int(data["sid"]),
            create_time=float(data["create_time"]),
            port=None if data.get("port") is None else int(data["port"]),
            log=str(data.get("log") or ""),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring the unreadable launch record %s: %s", path, exc)
        return None


def forget(folder: Path) -> None:
    record_path(folder).unlink(missing_ok=True)


# ------------------------------------------------------------------------ finding


@dataclass(frozen=True)
class Gateway:
    """A running gateway, ours (on record) or adopted (started elsewhere)."""

    pid: int  # the process that names the main class (else the run script)
    folder: str | None  # resolved; None when the system hides it (another user's)
    started: datetime
    ours: bool
    port: int | None = None
    root_pid: int | None = None  # the run.sh/run.bat shell, while it lives
    pgid: int | None = None  # ours: the process group we started
    members: tuple[int, ...] = ()  # ours: every live process of the launch
    lone: bool = False  # ours, and run.sh is gone while its child still runs

    def describe(self) -> str:
        text = f"pid {self.pid}, since {self.started:%H:%M}"
        if not self.ours:
            text += ", started elsewhere"
        if self.lone:
            text += "; its run.sh exited, the gateway itself is still running"
        return text

    def where(self) -> str:
        return self.folder or f"an unknown folder (pid {self.pid})"


def _snapshot() -> tuple[float, list[psutil.Process]]:
    """Every process, once, with what finding needs; and when the look began."""
    began = time.time()
    procs = []
    for proc in psutil.process_iter(["pid", "cmdline", "create_time", "status"]):
        if proc.info.get("status") != psutil.STATUS_ZOMBIE:
            procs.append(proc)
    return began, procs


def _session_members(record: Record, procs: list[psutil.Process]) -> list[psutil.Process]:
    """The live processes of a recorded launch: its session, created after it began —
    unless the recorded pid now names another process (then the launch is over)."""
    if sys.platform == "win32":  # no sessions: the recorded process and its tree, if the same
        leader = next((p for p in procs if p.pid == record.pid), None)
        created = leader.info["create_time"] if leader is not None else None
        if leader is None or abs((created or 0) - record.create_time) > SAME_START:
            return []
        with contextlib.suppress(psutil.Error):
            return [leader, *leader.children(recursive=True)]
        return []
    else:
        leader = next((p for p in procs if p.pid == record.pid), None)
        if (
            leader is not None
            and abs((leader.info["create_time"] or 0) - record.create_time) > SAME_START
        ):
            return []  # the number is another process's now: our launch ended long ago
        members = []
        for proc in procs:
            created = proc.info.get("create_time")
            if created is None or created < record.create_time - SAME_START:
                continue
            with contextlib.suppress(OSError):
                if os.getsid(proc.pid) == record.sid:
                    members.append(proc)
        return members


def _ours(began: float, procs: list[psutil.Process]) -> tuple[list[Gateway], set[int]]:
    found: list[Gateway] = []
    claimed: set[int] = set()
    directory = _records_dir()
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        record = read_record(path)
        if record is None:
            continue
        members = _session_members(record, procs)
        if not members:
            if record.create_time < began - 1:  # it would be in the snapshot if it lived
                path.unlink(missing_ok=True)
            continue
        leader = next(
            (
                p
                for p in members
                if p.pid == record.pid
                and abs((p.info["create_time"] or 0) - record.create_time) <= SAME_START
            ),
            None,
        )
        if leader is None and not any(_works_in(p, record.folder) for p in members):
            continue  # run.sh is gone and nothing of the session works in the folder
        claimed.update(p.pid for p in members)
        main = next((p for p in members if MAIN_CLASS in (p.info["cmdline"] or [])), None)
        chosen = main or leader or members[0]
        found.append(
            Gateway(
                pid=chosen.pid,
                folder=record.folder,
                started=datetime.fromtimestamp(record.create_time),
                ours=True,
                port=record.port,
                root_pid=leader.pid if leader else None,
                pgid=record.pgid,
                members=tuple(sorted(p.pid for p in members)),
                lone=leader is None,
            )
        )
    return found, claimed


def _works_in(proc: psutil.Process, folder: str) -> bool:
    with contextlib.suppress(psutil.Error, OSError):
        return str(Path(proc.cwd()).resolve()) == folder
    return False


def _run_script_parent(proc: psutil.Process, folder: str | None) -> int | None:
    """The ``run.sh``/``run.bat`` shell above an adopted gateway, in the same folder, so
    stopping takes it too."""
    with contextlib.suppress(psutil.Error, OSError):  # psutil 6.0: a vanished cwd is OSError
        parent = proc.parent()
        if (
            parent is not None
            and parent.cwd() == folder
            and any(
                part.replace("\\", "/").endswith(("bin/run.sh", "bin/run.bat"))
                for part in parent.cmdline()
            )
        ):
            return parent.pid
    return None


def _foreign(procs: list[psutil.Process], claimed: set[int]) -> list[Gateway]:
    """Gateways started elsewhere: the main class as an argv element of its own, in a
    gateway folder; or with the folder hidden (another user's), never stoppable by us."""
    found = []
    for proc in procs:
        if proc.pid in claimed or MAIN_CLASS not in (proc.info["cmdline"] or []):
            continue  # `in` on the argv list: an exact element, never a substring
        folder = None
        try:
            folder = str(Path(proc.cwd()).resolve())
        except psutil.AccessDenied:
            pass  # another user's: listed (stopping it is refused), its folder unknown
        except (psutil.Error, OSError):
            continue  # ended meanwhile
        if folder is not None and not is_gateway_folder(Path(folder)):
            continue  # `grep <main class>` in ~/notes is nobody's gateway
        port = None
        if folder is not None:
            with contextlib.suppress(ConfigError):
                port = read_conf_yaml(folder)[0]
        found.append(
            Gateway(
                pid=proc.pid,
                folder=folder,
                started=datetime.fromtimestamp(proc.info["create_time"] or 0),
                ours=False,
                port=port,
                root_pid=_run_script_parent(proc, folder),
            )
        )
    return found


def running_gateways() -> list[Gateway]:
    """Every gateway running on this machine: ours first, then adopted ones."""
    began, procs = _snapshot()
    ours, claimed = _ours(began, procs)
    return ours + _foreign(procs, claimed)


def gateway_in(folder: Path) -> Gateway | None:
    """The gateway running from ``folder`` (ours if there is one), else None. Another
    user's gateway, whose folder the system hides, counts when it listens on the
    folder's port: stopping it is then refused, as without a folder named."""
    resolved = str(folder.resolve())
    running = running_gateways()
    found = next((g for g in running if g.folder == resolved), None)
    hidden = [g for g in running if g.folder is None]
    if found is not None or not hidden:
        return found
    with contextlib.suppress(ConfigError):
        port = read_conf_yaml(resolved)[0]
        listeners = _listeners(port)
        return next((replace(g, port=port) for g in hidden if listeners & {g.pid, None}), None)
    return None


def _listeners(port: int) -> set[int | None]:
    """The pids listening on TCP ``port`` (None for a socket the system does not say
    whose it is: another user's)."""
    try:
        conns = psutil.net_connections("tcp")
    except (psutil.Error, OSError):
        return set()
    return {
        c.pid for c in conns if c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
    }


# ------------------------------------------------------------------------ one start at a time


@contextlib.contextmanager
def folder_lock(folder: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the start lock of ``folder`` (a lock file in the state folder, released by the
    system if this process dies), so concurrent starts launch one gateway."""
    path = lock_path(folder)
    try:
        with held(path, timeout):
            yield
    except TimeoutError:
        raise LaunchError(
            f"another start of the gateway in {folder} is still under way "
            f"(lock {path}); try again in a moment"
        ) from None
    except OSError as exc:  # a folder where the lock file belongs, a read-only disk
        raise LaunchError(f"cannot take the start lock {path}: {exc}") from None
