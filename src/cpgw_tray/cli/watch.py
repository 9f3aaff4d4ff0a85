"""``cpgw-tray watch``: the tray without a display. Checks and keeps the session alive
like the tray (IBKR's restart windows included: no reauthentication and one request a
minute inside them), prints a line (or a JSON line) at each change — of the state, or of
``maintenance_until``/``next_maintenance``/``paused_until`` — and one at each of the person
policy's events (login needed, reminders, a competing session, a takeover, a drop: the tray's
policies, :mod:`cpgw_tray.care.person_care`, honouring a pause made in the tray), logs to
``cpgw-tray.log`` as well as stderr. With ``--serve``, ``--exec``, ``--on-event`` and
``notify_urls`` it also answers health probes, runs a command at each change or event,
and messages the phone (:mod:`.outlets`). With ``push`` it holds the gateway's websocket
(:mod:`.push_link`): drops seen at once, IBKR's bulletins printed as event lines. With
several gateways configured (and no ``--gateway``) it watches each with its own poller
and websocket (:mod:`.fleet`), every line naming it.

It never dies quietly: only Ctrl-C, SIGTERM or a closed pipe end it with 0, at once and
quietly (a reader that went away is noticed within an interval even when nothing is
printed). An output that cannot be written otherwise (a full disk) ends it with 74 and
one line; a failure outside the check loop (printing, a worker thread that died, the
start-up) with 70 after it is logged. A failure inside the check loop is the poller's:
published as ``error``, and the watch goes on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from ..constants import EXIT_IOERR, EXIT_SOFTWARE
from ..lifecycle import WakingStop, silence_stdout, stop_on_signals, wait_for_stop_or_hangup
from ..model.status import Status
from .commands import human
from .options import UsageError, add_outlets, gateways_of

if TYPE_CHECKING:
    from datetime import datetime

    from ..care.poller import Poller
    from ..care.push_link import Bulletin, PushLink
    from ..client.api import GatewayClient
    from ..model.person import Event
    from ..outlets.history import History
    from ..outlets.wiring import Outlets
    from ..settings.config import Config

log = logging.getLogger(__name__)


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``watch``'s own options (:mod:`cpgw_tray.cli.main`)."""
    parser.add_argument("--json", action="store_true", help="print JSON Lines")
    add_outlets(parser)
    parser.set_defaults(func=cmd_watch)


class Printer:
    """Writes a line per change. A closed output pipe ends the watch (``stop``) quietly;
    any other failure to print ends it with ``failed``: the exit code and one line."""

    def __init__(
        self, out: TextIO, as_json: bool, stop: threading.Event, history: History | None = None
    ) -> None:
        self.out, self.as_json, self.stop = out, as_json, stop
        self.history = history
        self._last: dict[str | None, tuple[object, ...]] = {}  # by gateway
        self._lock = threading.Lock()
        self.named = False  # several gateways: each line names its own
        self.pipe_closed = False
        self.failed: tuple[int, str] | None = None

    def __call__(self, status: Status) -> None:
        from ..care.maintenance import note

        if self.history is not None:
            self.history.record(status)
        with self._lock:
            times = (status.maintenance_until, status.next_maintenance, status.paused_until)
            key = (*status.view_key(), *times, status.push)
            if self.stop.is_set() or key == self._last.get(status.gateway):
                return
            self._last[status.gateway] = key
            try:
                if self.as_json:
                    line = json.dumps(status.to_json())
                else:
                    said = human(status, self.named)
                    line = f"{_stamp(status.checked_at)} {said}{note(status)}"
                    if status.paused_until is not None:
                        line += f" [paused until {status.paused_until.astimezone():%H:%M}]"
                    if status.push is not None:
                        line += f" [push {status.push}]"
            except Exception:
                self.fail(EXIT_SOFTWARE, "printing a status failed")
                return
            self._write(line)

    def event(self, event: Event) -> None:
        """A line for the person policy's event: ``{"event": "login_needed", …}``."""
        with self._lock:
            if self.stop.is_set():
                return
            try:
                line = json.dumps(event.to_json()) if self.as_json else None
                named = f"{event.gateway}: " if self.named and event.gateway else ""
                line = line or f"{_stamp(event.at)} {named}{event.kind}: {event.message}"
            except Exception:
                self.fail(EXIT_SOFTWARE, "printing an event failed")
                return
            self._write(line)

    def closed(self) -> None:
        """The reader went away (``| head -1``): end quietly."""
        self.pipe_closed = True
        self.stop.set()

    def fail(self, code: int, what: str) -> None:
        """End the watch with ``code``, logged (with the traceback being handled)."""
        if code == EXIT_IOERR:
            log.info("watch ends: %s", what)
        else:
            log.exception("watch ends: %s", what)
        if self.failed is None:
            self.failed = (code, f"cpgw-tray: {what}")
        self.stop.set()

    def _write(self, line: str) -> None:
        try:
            self.out.write(line + "\n")
            self.out.flush()
        except BrokenPipeError:
            self.closed()
        except OSError as exc:  # a full disk, a device error: not a reader that left
            self.fail(EXIT_IOERR, f"cannot write the output: {exc.strerror or exc}")
        except UnicodeError:
            self.fail(EXIT_SOFTWARE, "a line could not be encoded for the output")
        except ValueError:  # the output was closed under us
            self.closed()


def _stamp(at: datetime | None) -> str:
    return at.astimezone().strftime("%H:%M:%S") if at else "--:--:--"


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
    from .. import paths
    from ..care.bulletins import Bulletins
    from ..care.push_link import PushLink

    def on_bulletin(bulletin: Bulletin) -> None:  # the row first: a line's reader may look
        history.record_event("bulletin", bulletin.at, bulletin.message, config.url, bulletin.ident)
        on_event(bulletin)
        if outlets.metrics is not None:
            outlets.metrics.bulletin(config.gateway)

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
    """Print a line at each change until stopped: 0 for Ctrl-C, SIGTERM or a closed
    pipe; 74 for an output that cannot be written; 70 for an internal failure outside
    the check loop (a usage or settings error stays 64)."""
    from ..settings.config import ConfigError

    try:
        return _watch(args, out)
    except (UsageError, ConfigError):
        raise
    except Exception:
        log.exception("watch failed outside its check loop")
        print("cpgw-tray: internal error in watch; see cpgw-tray.log", file=sys.stderr)
        return EXIT_SOFTWARE


def _watch(args: argparse.Namespace, out: TextIO) -> int:
    from .. import logs, paths
    from ..care.fleet import Fleet
    from ..care.person_care import pause_path
    from ..care.pipeline import Pipeline
    from ..client.api import client_for
    from ..outlets.history import History
    from ..outlets.wiring import Outlets
    from ..settings.gateways import Gateway

    gateways = gateways_of(args)
    config = gateways[0].config  # the settings every gateway shares: outlets, the log
    log_path = logs.to_file(config.log_level)
    logs.catch_uncaught()
    stop = WakingStop()
    history = History(paths.history_file(), "watch")
    printer = Printer(out, args.json, stop, history)
    printer.named = len(gateways) > 1
    names = [gateway.name for gateway in gateways]
    outlets = Outlets(config, lambda: fleet.views(), gateways=names)  # binds --serve's port
    links: list[PushLink] = []

    def on_status(status: Status) -> None:
        printer(status)
        outlets(status)
        for link in links:
            link.saw(status)

    def on_event(event: Event) -> None:
        printer.event(event)
        outlets.event(event)

    def build(
        gateway: Gateway, to: Callable[[Status], None], events: Callable[[Event], None]
    ) -> Poller:
        client = client_for(gateway.config)
        outlets.attach(client, gateway.name)
        poller = Pipeline(
            gateway.config,
            client,
            to,
            log_path=log_path,
            on_event=events,
            pause_file=pause_path(gateway.name),
        ).poller
        if gateway.config.push:
            links.append(push_link(gateway.config, client, poller, events, history, outlets))
        return poller

    fleet = Fleet(gateways, build, on_status, on_event)
    restore = stop_on_signals(stop)
    try:
        with _deaths(stop, printer, lambda: [*fleet.threads, *outlets.threads()]):
            outlets.start()
            history.started()
            fleet.start()
            for link in links:
                link.start()
            # asleep until stopped: a signal, a closed reader, a failed print, a dead thread
            if wait_for_stop_or_hangup(stop, printer.out):
                printer.closed()
    except KeyboardInterrupt:  # Ctrl-C before the handler was in place, or on Windows
        pass
    finally:
        for link in links:
            link.stop()
        fleet.stop()
        history.stopped()
        outlets.stop()
        restore()
        stop.close()
    if (printer.pipe_closed or printer.failed) and out is sys.stdout:
        silence_stdout()  # no second complaint from the interpreter's last flush
    if printer.failed is not None:
        code, line = printer.failed
        print(line if code == EXIT_IOERR else f"{line}; see the log {log_path}", file=sys.stderr)
        return code
    return 0


@contextlib.contextmanager
def _deaths(
    stop: WakingStop, printer: Printer, threads: Callable[[], list[threading.Thread]]
) -> Iterator[None]:
    """While inside: a worker thread of ``threads()`` that dies (its uncaught error) stops
    the watch at once, which then ends with 70. Entered before the threads start, so one
    that dies at once counts; nothing polls them."""
    dead: list[str] = []
    previous = threading.excepthook

    def on_death(died: threading.ExceptHookArgs) -> None:
        previous(died)  # logged as every uncaught error is
        if died.thread is not None and any(died.thread is t for t in threads()):
            dead.append(died.thread.name)
            stop.set()

    threading.excepthook = on_death
    try:
        yield
    finally:
        threading.excepthook = previous
    if dead and not printer.pipe_closed and printer.failed is None:
        names = ", ".join(dict.fromkeys(dead))
        log.error("the %s thread stopped", names)
        printer.failed = (EXIT_SOFTWARE, f"cpgw-tray: internal error: the {names} thread stopped")
