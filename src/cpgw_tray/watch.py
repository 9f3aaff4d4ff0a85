"""``cpgw-tray watch``: the tray without a display. Checks and keeps the session alive
like the tray (IBKR's restart windows included: no reauthentication and one request a
minute inside them), prints a line (or a JSON line) at each change — of the state, or of
``maintenance_until``/``next_maintenance``/``paused_until`` — and one at each of the person
policy's events (login needed, reminders, a competing session, a takeover, a drop: the tray's
policies, :mod:`cpgw_tray.person_care`, honouring a pause made in the tray), logs to
``cpgw-tray.log`` as well as stderr, and ends at once and quietly on Ctrl-C, SIGTERM or
a closed pipe. With ``--serve``, ``--exec``, ``--on-event`` and ``notify_urls`` it also
answers health probes, runs a command at each change or event, and messages the phone
(:mod:`.outlets`). With ``push`` it holds the gateway's websocket (:mod:`.push_link`):
drops seen at once, IBKR's bulletins printed as event lines.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from .commands import human
from .lifecycle import silence_stdout, stop_on_signals, wait_until
from .options import add_outlets, add_shared, resolve
from .status import Status

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path

    from .config import Config
    from .gateway import GatewayClient
    from .history import History
    from .outlets import Outlets
    from .person import Event
    from .poller import Poller
    from .push_link import Bulletin, PushLink

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    watch = sub.add_parser("watch", help="check repeatedly and print a line at each change")
    add_shared(watch)
    watch.add_argument("--json", action="store_true", help="print JSON Lines")
    add_outlets(watch)
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
        from .maintenance import note

        if self.history is not None:
            self.history.record(status)
        with self._lock:
            times = (status.maintenance_until, status.next_maintenance, status.paused_until)
            key = (*status.view_key(), *times, status.push)
            if self.stop.is_set() or key == self._last:
                return
            self._last = key
            if self.as_json:
                line = json.dumps(status.to_json())
            else:
                line = f"{_stamp(status.checked_at)} {human(status)}{note(status)}"
                if status.paused_until is not None:
                    line += f" [paused until {status.paused_until.astimezone():%H:%M}]"
                if status.push is not None:
                    line += f" [push {status.push}]"
            self._write(line)

    def event(self, event: Event) -> None:
        """A line for the person policy's event: ``{"event": "login_needed", …}``."""
        with self._lock:
            if self.stop.is_set():
                return
            if self.as_json:
                self._write(json.dumps(event.to_json()))
            else:
                self._write(f"{_stamp(event.at)} {event.kind}: {event.message}")

    def _write(self, line: str) -> None:
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except (BrokenPipeError, ValueError):  # the reader went away (`| head -1`)
            self.pipe_closed = True
            self.stop.set()


def _stamp(at: datetime | None) -> str:
    return at.astimezone().strftime("%H:%M:%S") if at else "--:--:--"


def watch_poller(
    config: Config,
    client: GatewayClient,
    on_status: Callable[[Status], None],
    clock: Callable[[], float] = time.monotonic,
    log_path: Path | None = None,
    *,
    on_event: Callable[[Event], None] = lambda event: None,
    pause_file: Path | None = None,
    wall: Callable[[], datetime] | None = None,
) -> Poller:
    """What ``watch`` runs: checks and keep-alive with session care, IBKR's clock and
    the person policy (its events to ``on_event``; a pause read from ``pause_file``)."""
    from .maintenance import IbkrClock
    from .person_care import PersonCare
    from .poller import Poller
    from .session import SessionCare

    ibkr = IbkrClock.from_config(config)
    care = SessionCare(client, auto_reauth=config.auto_reauth, ibkr=ibkr, clock=clock)
    extra = {"wall": wall} if wall is not None else {}
    person = PersonCare.from_config(care, config, on_event, pause_file=pause_file, **extra)
    poller = Poller(
        person.check,
        on_status,
        interval=config.interval,
        tickle=person.tickle,
        keepalive=config.keepalive,
        timeout=config.timeout,
        clock=clock,
        log_path=log_path,
        url=config.url,
    )
    poller.keepalive_paused = person.paused
    return poller


def push_link(
    config: Config,
    client: GatewayClient,
    poller: Poller,
    on_event: Callable[[Event], None],
    history: History,
    outlets: Outlets,
) -> PushLink:
    """The websocket for ``watch``: each new bulletin an event (a line, the event hooks,
    the phone if ``notify_on`` names it), a history event row and one more on the
    metrics' counter."""
    from . import paths
    from .bulletins import Bulletins
    from .push_link import PushLink

    def on_bulletin(bulletin: Bulletin) -> None:
        on_event(bulletin)
        history.record_event("bulletin", bulletin.at, bulletin.message, config.url, bulletin.ident)
        if outlets.metrics is not None:
            outlets.metrics.bulletin()

    bulletins = Bulletins(paths.bulletins_file(), config.url)
    return PushLink(
        config,
        client,
        poller,
        bulletins,
        on_bulletin=on_bulletin,
        paused=lambda: poller.keepalive_paused(),
    )


def cmd_watch(args: argparse.Namespace, out: TextIO) -> int:
    """Print a line at each change until stopped; exit 0."""
    from . import logs, paths
    from .gateway import client_for
    from .history import History
    from .outlets import Outlets, poller_view
    from .person_care import pause_path

    config = resolve(args)
    log_path = logs.to_file(config.log_level)
    logs.catch_uncaught()
    stop = threading.Event()
    history = History(paths.history_file(), "watch")
    printer = Printer(out, args.json, stop, history)
    outlets = Outlets(config, lambda: poller_view(poller))  # binds --serve's port now
    links: list[PushLink] = []

    def on_status(status: Status) -> None:
        printer(status)
        outlets(status)
        for link in links:
            link.saw(status)

    def on_event(event: Event) -> None:
        printer.event(event)
        outlets.event(event)

    client = client_for(config)
    outlets.attach(client)
    poller = watch_poller(
        config,
        client,
        on_status,
        log_path=log_path,
        on_event=on_event,
        pause_file=pause_path(),
    )
    if config.push:
        links.append(push_link(config, client, poller, on_event, history, outlets))
    restore = stop_on_signals(stop)
    outlets.start()
    history.started()
    poller.start()
    for link in links:
        link.start()
    try:
        wait_until(stop)
    except KeyboardInterrupt:  # Ctrl-C before the handler was in place, or on Windows
        pass
    finally:
        for link in links:
            link.stop()
        poller.stop()
        history.stopped()
        outlets.stop()
        restore()
    if printer.pipe_closed and out is sys.stdout:
        silence_stdout()
    return 0
