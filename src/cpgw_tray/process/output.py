"""The gateway's output file: rotated at each launch (a few kept), followed incrementally
while a launch waits (each byte read once, from where this launch began), and read from
the end for ``gateway logs -n``. Memory stays bounded whatever the file's size."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

KEEP = 3  # rotated files kept: gateway.log.1 (newest) .. gateway.log.3
BLOCK = 64 * 1024  # bytes read at a time, backwards from the end
TAIL_LIMIT = 4 * 1024 * 1024  # at most this much is read for the last lines
KEEP_TEXT = 64 * 1024  # what a follower remembers of this launch's output
CHUNK = 1024 * 1024  # at most this much is read per follow step


def rotate(path: Path, keep: int = KEEP) -> None:
    """``gateway.log`` becomes ``gateway.log.1``, ``.1`` becomes ``.2``, …; the oldest
    beyond ``keep`` goes."""
    if not path.exists():
        return
    for n in range(keep, 0, -1):
        older = path if n == 1 else path.with_name(f"{path.name}.{n - 1}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n}"))


def tail_lines(f: BinaryIO, n: int, start: int = 0, limit: int = TAIL_LIMIT) -> list[str]:
    """The last ``n`` lines of ``f`` after byte ``start``, read backwards in blocks: never
    more than ``limit`` bytes (a cut first line then starts with "…")."""
    pos = f.seek(0, os.SEEK_END)
    chunks: list[bytes] = []
    newlines = size = 0
    while pos > start and size < limit and newlines <= n:
        step = min(BLOCK, pos - start, limit - size)
        pos -= step
        f.seek(pos)
        chunk = f.read(step)
        chunks.append(chunk)
        size += len(chunk)
        newlines += chunk.count(b"\n")
    lines = b"".join(reversed(chunks)).decode(errors="replace").splitlines()
    if pos > start and lines:
        if len(lines) > n:
            lines = lines[1:]  # the first one read is cut
        else:
            lines[0] = "…" + lines[0]
    return lines[-n:]


def tail(path: Path, n: int, start: int = 0) -> list[str]:
    """:func:`tail_lines` of a file by name; no file, no lines."""
    try:
        with open(path, "rb") as f:
            return tail_lines(f, n, start)
    except FileNotFoundError:
        return []


class Follower:
    """What one launch writes to its log, read as it comes: from ``offset`` on, each byte
    once, complete lines only; the last :data:`KEEP_TEXT` characters are remembered."""

    def __init__(self, path: Path, offset: int = 0) -> None:
        self.path = path
        self.offset = offset
        self.bytes_read = 0
        self._partial = b""
        self._text = ""

    def read(self) -> str:
        """The complete lines written since the last call."""
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read(CHUNK)
        except OSError:
            return ""
        self.offset += len(data)
        self.bytes_read += len(data)
        data = self._partial + data
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) > KEEP_TEXT:  # an endless line: take it as it is
            cut = len(data)
        self._partial = data[cut:]
        text = data[:cut].decode(errors="replace")
        self._text = (self._text + text)[-KEEP_TEXT:]
        return text

    def text(self) -> str:
        """This launch's output as far as read, the unfinished last line included."""
        return self._text + self._partial.decode(errors="replace")
