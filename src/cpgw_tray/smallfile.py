"""Reading the small files cpgw-tray owns or is pointed at (settings, state, markers):
regular files only, at most 1 MiB, and never a wait.

A FIFO, a device or a folder where a file belongs would hang a read forever or fill
memory (``--config /dev/zero``): :func:`read_small` opens without blocking, looks at
what it opened (``fstat``) and refuses anything but a regular file, in one line that
names the path.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_BYTES = 1024 * 1024

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotAFile(OSError):
    """The path is there but cannot be read as a small regular file; ``str()`` is one
    line for the user that names the path."""

    def __init__(self, path: Path | str, why: str) -> None:
        super().__init__(f"{path} {why}")
        self.path = str(path)
        self.why = why

    def __str__(self) -> str:
        return f"{self.path} {self.why}"


def kind(mode: int) -> str:
    """What a file of ``mode`` is, in words ("a folder", "a FIFO", …)."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "a regular file" if stat.S_ISREG(mode) else "not a regular file"


def present(path: Path) -> bool:
    """Something is at ``path`` (a dangling link is nothing; a symlink loop is
    something, reported when read)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except OSError:
        return True
    return True


def check_regular(path: Path) -> None:
    """Raise :class:`NotAFile` when ``path`` exists and is not a regular file (for a
    file about to be written or locked); nothing when it is missing."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise NotAFile(path, f"cannot be used: {exc.strerror}") from None
    if not stat.S_ISREG(mode):
        raise NotAFile(path, f"is {kind(mode)}, not a regular file")


def read_small(path: Path, cap: int = MAX_BYTES) -> bytes:
    """The bytes of the regular file at ``path``. Raises FileNotFoundError when it is
    missing and :class:`NotAFile` when it is something else, unreadable or over
    ``cap`` bytes."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise NotAFile(path, f"cannot be read: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotAFile(path, f"is {kind(mode)}, not a regular file")
        chunks: list[bytes] = []
        size = 0
        while size <= cap:
            chunk = os.read(fd, min(65536, cap + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > cap:
            raise NotAFile(path, f"is over {cap // 1024} KiB, too large to be ours")
        return b"".join(chunks)
    except NotAFile:
        raise
    except OSError as exc:
        raise NotAFile(path, f"cannot be read: {exc.strerror}") from None
    finally:
        os.close(fd)
