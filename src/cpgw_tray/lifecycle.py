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


def hangup_probe(stream: TextIO) -> Callable[[], bool] | None:
    """For an output that is a pipe or a socket: a function that says, without writing
    and without waiting, whether its reader went away (``| head -1`` ended). None where
    that cannot be asked (a terminal, a file, Windows): a write then tells."""
    if sys.platform == "win32":
        return None
    else:
        import select

        try:
            fd = stream.fileno()
            kind = os.fstat(fd).st_mode
        except (OSError, ValueError, AttributeError):
            return None
        if not (stat.S_ISFIFO(kind) or stat.S_ISSOCK(kind)):
            return None
        poller = select.poll()
        poller.register(fd, select.POLLERR | select.POLLHUP)

        def gone() -> bool:
            try:
                return bool(poller.poll(0))
            except OSError:
                return True

        return gone


def tell(text: str) -> None:
    """A progress line for a person at a terminal, on stderr (stdout is for scripts and
    stays as it was); nothing when stderr is not a terminal."""
    stream = sys.stderr
    if stream is not None and stream.isatty():
        stream.write(text + "\n")
        stream.flush()
