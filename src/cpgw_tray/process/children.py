"""Child processes cpgw-tray starts (hooks, the gateway's run script): a process group of
their own (on Windows, no console window); a hook's stdout and stderr read in bounded
chunks into a ring each; killed as one group (on Windows, as a tree)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from typing import IO, Any

import psutil

from ..redaction import redact

STDERR_TAIL = 2000  # bytes of a hook's stderr shown in the log line
RING = 64 * 1024  # bytes kept of each of a hook's stdout and stderr (the tail)
CHUNK = 16 * 1024  # bytes read at a time


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


def feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """The status JSON on the hook's stdin; a hook that does not read it is fine."""
    if proc.stdin is None:
        return
    with contextlib.suppress(BrokenPipeError, OSError), proc.stdin:
        proc.stdin.write(data)


def detached() -> dict[str, Any]:
    """How a child is started. POSIX: a session and process group of its own, killed as
    one. Windows: a process group of its own and no console window (the windowed tray has
    none to share; ``run.bat`` would open one)."""
    if sys.platform == "win32":
        flags = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        return {"creationflags": flags}
    else:
        return {"start_new_session": True}


def kill_group(proc: subprocess.Popen[bytes]) -> None:
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
