"""``cpgw-tray watch``: the tray without a display. Checks and keeps the session alive
like the tray, prints a line (or a JSON line) at each change, logs to ``cpgw-tray.log``
as well as stderr, and ends at once and quietly on Ctrl-C, SIGTERM or a closed pipe.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
from typing import TYPE_CHECKING, TextIO

from .commands import human
from .lifecycle import silence_stdout, stop_on_signals, wait_until
from .options import add_shared, resolve
from .status import Status

if TYPE_CHECKING:
    from .history import History

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    watch = sub.add_parser("watch", help="check repeatedly and print a line at each change")
    add_shared(watch)
    watch.add_argument("--json", action="store_true", help="print JSON Lines")
    watch.set_defaults(func=cmd_watch)


class Printer:
    """Writes a line per change; a closed output pipe ends the watch (``stop``)."""

    def __init__(
        self, out: TextIO, as_json: bool, stop: threading.Event, history: History | None = None
    ) -> None:
        self.out, self.as_json, self.stop = out, as_json, stop
        self.history = history
        self._last: tuple[object, ...] | None = None
        self._lock = threading.Lock()
        self.pipe_closed = False

    def __call__(self, status: Status) -> None:
        if self.history is not None:
            self.history.record(status)
        with self._lock:
            if self.stop.is_set() or status.view_key() == self._last:
                return
            self._last = status.view_key()
            if self.as_json:
                line = json.dumps(status.to_json())
            else:
                at = status.checked_at
                stamp = at.astimezone().strftime("%H:%M:%S") if at else "--:--:--"
                line = f"{stamp} {human(status)}"
            try:
                self.out.write(line + "\n")
                self.out.flush()
            except (BrokenPipeError, ValueError):  # the reader went away (`| head -1`)
                self.pipe_closed = True
                self.stop.set()


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    """Print a line at each change until stopped; exit 0."""
    from . import logs, paths
    from .gateway import client_for
    from .history import History
    from .poller import Poller
    from .session import SessionCare

    config = resolve(args)
    log_path = logs.to_file(config.log_level)
    logs.catch_uncaught()
    stop = threading.Event()
    printer = Printer(out, args.json, stop, History(paths.history_file(), "watch"))
    client = client_for(config)
    care = SessionCare(client, auto_reauth=config.auto_reauth)
    poller = Poller(
        care.check,
        printer,
        interval=config.interval,
        tickle=care.tickle,
        keepalive=config.keepalive,
        timeout=config.timeout,
        log_path=log_path,
        url=config.url,
    )
    restore = stop_on_signals(stop)
    poller.start()
    try:
        wait_until(stop)
    except KeyboardInterrupt:  # Ctrl-C before the handler was in place, or on Windows
        pass
    finally:
        poller.stop()
        restore()
    if printer.pipe_closed and out is sys.stdout:
        silence_stdout()
    return 0
