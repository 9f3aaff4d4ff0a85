"""The freshness watchdog's alarm: a thread sleeps until the alarm rings or is stopped,
and another thread can move the alarm without waking it.

So the watchdog wakes only when a verdict really goes stale, not at each check that
moves the deadline on (an idle ``watch`` wakes only for its own checks). On Linux this is
a ``timerfd`` on ``CLOCK_BOOTTIME`` (through libc: ``os.timerfd_*`` arrived only in
Python 3.13), which also counts a suspend, so a verdict that went stale while the machine
slept is shown stale on resume. Elsewhere, or when libc will not give one, a condition
with a timed wait: moving the alarm later is seen when the old time comes (one wake),
moving it earlier wakes the sleeper at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import sys
import threading
import time

CLOCK_BOOTTIME = 7  # linux/time.h; counts a suspend, as the wall clock does


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


def _timerfd() -> tuple[int, ctypes._CFuncPtr] | None:  # type: ignore[name-defined]
    """A non-blocking timerfd and libc's ``timerfd_settime``; None where there is none."""
    if sys.platform != "linux":
        return None
    else:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = libc.timerfd_create(CLOCK_BOOTTIME, os.O_CLOEXEC | os.O_NONBLOCK)
            settime = libc.timerfd_settime
        except (OSError, AttributeError):
            return None
        if fd < 0:
            return None
        settime.argtypes = [
            ctypes.c_int,
            ctypes.c_int,
            ctypes.POINTER(_Itimerspec),
            ctypes.c_void_p,
        ]
        return fd, settime


class Alarm:
    """Rings ``seconds`` after the last :meth:`set` (never, after ``set(None)``)."""

    def __init__(self) -> None:
        self._timer = _timerfd()
        self._stopped = False
        self._cond = threading.Condition()  # also guards the timer against close
        self._at: float | None = None  # the fallback's ring time, monotonic
        self._pipe = os.pipe() if self._timer is not None else None  # wakes a poll on stop

    def set(self, seconds: float | None) -> None:
        """Ring in ``seconds`` (at once for 0 or less), or never (None)."""
        with self._cond:
            if self._timer is not None:
                fd, settime = self._timer
                spec = _Itimerspec()
                if seconds is not None:
                    seconds = max(seconds, 1e-6)  # an all-zero value disarms
                    spec.it_value.tv_sec = int(seconds)
                    spec.it_value.tv_nsec = int((seconds - int(seconds)) * 1e9)
                settime(fd, 0, ctypes.byref(spec), None)
                return
            at = None if seconds is None else time.monotonic() + seconds
            earlier = at is not None and (self._at is None or at < self._at)
            self._at = at
            if earlier:
                self._cond.notify_all()

    def wait(self) -> bool:
        """Block until the alarm rings (True) or :meth:`stop` (False)."""
        timer, pipe = self._timer, self._pipe
        if sys.platform != "win32" and timer is not None and pipe is not None:
            poller = select.poll()
            poller.register(timer[0], select.POLLIN)
            poller.register(pipe[0], select.POLLIN)
            while not self._stopped:
                ready = {fd for fd, _ in poller.poll()}
                if timer[0] in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(timer[0], 8)
                    return not self._stopped
            return False
        with self._cond:
            while not self._stopped:
                at = self._at
                if at is not None and time.monotonic() >= at:
                    self._at = None
                    return True
                self._cond.wait(None if at is None else at - time.monotonic())
            return False

    def stop(self) -> None:
        """Wake the sleeper for good; :meth:`wait` returns False from now on."""
        self._stopped = True
        with self._cond:
            if self._pipe is not None:
                with contextlib.suppress(OSError):
                    os.write(self._pipe[1], b"x")
            self._cond.notify_all()

    def close(self) -> None:
        """Give the descriptors back (the sleeper is gone); a later :meth:`set` is a no-op
        on the condition."""
        with self._cond:
            fds = [*(self._pipe or ()), *(self._timer[:1] if self._timer else ())]
            self._timer, self._pipe = None, None
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
