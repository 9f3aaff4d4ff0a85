"""How a foreground command waits and ends: until Ctrl-C, SIGTERM or a closed output
pipe, at once and quietly.

On Windows waits loop on a short timeout instead of blocking for good: there a plain
``Event.wait()`` without a timeout cannot be interrupted by Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import stat
import sys
import threading
from collections.abc import Callable
from typing import TextIO

# How soon a wait notices Ctrl-C on Windows, which delivers it only between waits.
# Elsewhere a signal interrupts the wait itself: no slices, no wake-ups while idle.
SLICE = 0.5 if sys.platform == "win32" else None


def wait_until(stop: threading.Event, slice_s: float | None = SLICE) -> None:
    """Block until ``stop`` is set, waking every ``slice_s`` (on Windows) so a pending
    Ctrl-C can be raised."""
    while not stop.wait(slice_s):
        pass


def stop_on_signals(stop: threading.Event) -> Callable[[], None]:
    """Set ``stop`` on SIGINT and SIGTERM (main thread only); returns a function that
    puts the previous handlers back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, object] = {}
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        number = getattr(signal, name, None)
        if number is None:
            continue
        with contextlib.suppress(ValueError, OSError):
            previous[number] = signal.signal(number, lambda *_: stop.set())

    def restore() -> None:
        for number, handler in previous.items():
            with contextlib.suppress(ValueError, OSError, TypeError):
                signal.signal(number, handler)  # type: ignore[arg-type]

    return restore


def silence_stdout() -> None:
    """After the reader of stdout went away: point stdout at the null device, so the
    interpreter's last flush does not print a BrokenPipeError on the way out."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _pipe_fd(stream: TextIO) -> int | None:
    """The descriptor of an output that is a pipe or a socket (whose reader can be seen to
    leave); None for a terminal, a file, or on Windows."""
    if sys.platform == "win32":
        return None
    else:
        try:
            fd = stream.fileno()
            kind = os.fstat(fd).st_mode
        except (OSError, ValueError, AttributeError):
            return None
        return fd if stat.S_ISFIFO(kind) or stat.S_ISSOCK(kind) else None


def hangup_probe(stream: TextIO) -> Callable[[], bool] | None:
    """For an output that is a pipe or a socket: a function that says, without writing
    and without waiting, whether its reader went away (``| head -1`` ended). None where
    that cannot be asked (a terminal, a file, Windows): a write then tells."""
    fd = _pipe_fd(stream)
    if sys.platform == "win32" or fd is None:
        return None
    else:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)

        def gone() -> bool:
            try:
                return bool(poller.poll(0))
            except OSError:
                return True

        return gone


class WakingStop(threading.Event):
    """A stop event that a ``poll()`` can wait on beside other descriptors: :meth:`set`
    also writes a byte to a pipe (:meth:`fileno` is its reading end). :meth:`close` gives
    the pipe back; a later ``set`` still sets the event."""

    def __init__(self) -> None:
        super().__init__()
        self._guard = threading.Lock()
        self._pipe: tuple[int, int] | None = os.pipe()

    def set(self) -> None:
        super().set()
        with self._guard:
            if self._pipe is not None:
                with contextlib.suppress(OSError):
                    os.write(self._pipe[1], b"x")

    def fileno(self) -> int:
        if self._pipe is None:
            raise ValueError("closed")
        return self._pipe[0]

    def close(self) -> None:
        with self._guard:
            pipe, self._pipe = self._pipe, None
        for fd in pipe or ():
            with contextlib.suppress(OSError):
                os.close(fd)


def wait_for_stop_or_hangup(stop: WakingStop, stream: TextIO) -> bool:
    """Block until ``stop`` is set (False) or the reader of ``stream``, a pipe or a socket,
    went away (True), without waking in between: one ``poll()`` on both, no timeout.
    On Windows, in slices of :data:`SLICE` until ``stop`` (Ctrl-C comes between waits)."""
    gone = hangup_probe(stream)
    if sys.platform == "win32":
        wait_until(stop)
        return False
    else:
        import select

        poller = select.poll()
        poller.register(stop.fileno(), select.POLLIN)
        out = _pipe_fd(stream) if gone is not None else None
        if out is not None:
            poller.register(out, select.POLLERR | select.POLLHUP)
        while not stop.is_set():
            ready = {fd for fd, _ in poller.poll()}
            if out in ready and gone is not None and gone():
                return True
            if out in ready:  # an event that is not a hang-up: stop asking this descriptor
                poller.unregister(out)
                out = None
        return False


def tell(text: str) -> None:
    """A progress line for a person at a terminal, on stderr (stdout is for scripts and
    stays as it was); nothing when stderr is not a terminal."""
    stream = sys.stderr
    if stream is not None and stream.isatty():
        stream.write(text + "\n")
        stream.flush()
