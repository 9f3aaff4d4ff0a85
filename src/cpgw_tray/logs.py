"""Logging set-up: stderr for the CLI, a rotating ``cpgw-tray.log`` for the tray and
``watch``, and hooks that send any uncaught error, on any thread, to the log."""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import TextIO

from . import paths

LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"

log = logging.getLogger(__name__)


def level_for(verbosity: int) -> int:
    """Warnings by default, ``-v`` info, ``-vv`` debug."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


def _install(handler: logging.Handler, kind: str) -> None:
    """Add ``handler`` to the root logger in place of an earlier one of the same
    ``kind`` (a second ``main()`` in one process must not print every line twice)."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "cpgw_tray", None) == kind]:
        root.removeHandler(old)
        old.close()
    handler.cpgw_tray = kind  # type: ignore[attr-defined]
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root.addHandler(handler)
    root.setLevel(min(root.level or logging.WARNING, handler.level))


def to_stderr(verbosity: int, stream: TextIO | None = None) -> None:
    """Log to stderr at the level ``-v`` asks for."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setLevel(level_for(verbosity))
    _install(handler, "stderr")


def to_file(level: str, path: Path | None = None) -> Path:
    """Log to a rotating file (the platform's log folder by default); returns its path.
    A folder that cannot be written leaves logging on stderr only."""
    path = path or paths.log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
        )
    except OSError as exc:
        log.warning("cannot write the log file %s: %s", path, exc)
        return path
    handler.setLevel(getattr(logging, level))
    _install(handler, "file")
    return path


def catch_uncaught() -> None:
    """Uncaught errors, on the main thread or any other, go to the log with their
    traceback (a thread that dies silently would leave the icon lying)."""

    def on_thread(args: threading.ExceptHookArgs) -> None:
        if args.exc_type is SystemExit or args.exc_value is None:
            return
        name = args.thread.name if args.thread is not None else "?"
        logging.getLogger("cpgw_tray").error(
            "uncaught error on thread %s",
            name,
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    def on_main(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            return
        logging.getLogger("cpgw_tray").critical("uncaught error", exc_info=(kind, value, tb))

    threading.excepthook = on_thread
    sys.excepthook = on_main
