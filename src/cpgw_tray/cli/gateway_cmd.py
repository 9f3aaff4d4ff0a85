"""``cpgw-tray gateway start|stop|restart|status|logs``: the gateway process from a
terminal, through :mod:`cpgw_tray.process.launcher` and :mod:`cpgw_tray.process.identity`.

Which gateway a command acts on: the folder named by ``--dir`` (or ``gateway_dir``);
with neither, the only gateway running (several: exit 64, naming their folders); for
``start``, the folder found in the usual places.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
import threading
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .. import paths
from ..constants import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_PERMITTED,
    EXIT_OK,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
)
from ..lifecycle import stop_on_signals
from ..process import identity
from ..process.folder import problems
from ..process.identity import LaunchError, log_of
from ..process.launcher import AlreadyRunning, Cancelled, Launcher, find_directory
from ..process.output import tail
from ..process.stopping import stop_gateway
from ..settings.gateways import names
from .options import Parser, UsageError, gateways_of, shared_options

if TYPE_CHECKING:
    from ..process.identity import Gateway

ACTS = ("start", "stop", "restart")  # these need one gateway when several are configured
ACTIONS = [
    ("start", "launch the gateway from its folder (bin/run.sh root/conf.yaml)"),
    ("stop", "stop the gateway and every process it started"),
    ("restart", "stop the gateway, then start it again"),
    ("status", "is a gateway running: pid, folder, port, uptime"),
    ("logs", "the gateway's output, as launched by cpgw-tray"),
]

# The exit codes of every `gateway` command; the README's table is this one.
EXIT_CODES = [
    (
        EXIT_OK,
        "done. `start`: a gateway for that folder runs at the end, started or already "
        "running (the message says which); `status`: a gateway runs",
    ),
    (
        EXIT_FAILED,
        "the gateway failed to start (its last lines are shown); `status`: no gateway runs",
    ),
    (EXIT_NOT_PERMITTED, "not permitted: the gateway is another user's"),
    (
        EXIT_USAGE,
        "usage or config error: a bad folder, `conf.yaml` or count; several gateways "
        "running and none named",
    ),
    (EXIT_UNAVAILABLE, "Java is missing"),
    (EXIT_INTERRUPTED, "interrupted (Ctrl-C): what the command had started is stopped"),
]


def _epilog() -> str:
    rows = [
        textwrap.fill(
            meaning.replace("`", ""),
            width=88,
            initial_indent=f"  {code:<4} ",
            subsequent_indent=" " * 7,
        )
        for code, meaning in EXIT_CODES
    ]
    return "exit codes:\n" + "\n".join(rows)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {value}")
    return value


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = "Start, stop and inspect the Client Portal Gateway process."
    parser.epilog = _epilog()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    gsub = parser.add_subparsers(
        dest="gateway_command", metavar="ACTION", parser_class=Parser, required=True
    )
    for name, text in ACTIONS:
        action = gsub.add_parser(
            name,
            help=text,
            description=text,
            epilog=_epilog(),
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[shared_options()],
        )
        action.add_argument(
            "--dir",
            metavar="D",
            help="the clientportal.gw folder (default: gateway_dir; else the only running "
            "gateway; for start, the usual places)",
        )
        if name in ("start", "restart"):
            action.add_argument(
                "--wait", action="store_true", help="wait until it listens; exit 0 ready, 1 not"
            )
        if name == "status":
            action.add_argument(
                "--json",
                action="store_true",
                help="JSON: one object for a named folder, else a list of every gateway",
            )
        if name == "logs":
            action.add_argument(
                "-n", "--lines", type=_positive, default=40, metavar="N", help="last N lines (40)"
            )
    parser.set_defaults(func=cmd_gateway)


def cmd_gateway(args: argparse.Namespace, out: TextIO) -> int:
    """``gateway start|stop|restart|status|logs``; exit codes as in :data:`EXIT_CODES`."""

    try:
        return _gateway(args, out)
    except LaunchError as exc:
        print(f"cpgw-tray: {exc}", file=sys.stderr)
        return exc.exit_code


def _gateway(args: argparse.Namespace, out: TextIO) -> int:
    gateways = gateways_of(args, gateway_dir=args.dir)
    action = args.gateway_command
    if len(gateways) > 1 and action in ACTS:
        raise UsageError(
            f"several gateways are configured: choose one with --gateway NAME ({names(gateways)})"
        )
    config = gateways[0].config
    if len(gateways) > 1:  # status and logs: every running gateway, as with no folder named
        config = replace(config, gateway_dir=None)
    elif gateways[0].name is not None and not config.gateway_dir and action in ACTS:
        raise UsageError(f"gateway '{gateways[0].name}' names no gateway_dir to {action}")
    named = Path(config.gateway_dir).expanduser() if config.gateway_dir else None
    if named is not None and action != "start":
        wrong = problems(named)
        if wrong:
            raise UsageError(f"not a gateway folder: {wrong[0]}")
    if action == "logs":
        return _logs(named, args.lines, out)
    if action == "status":
        return _status(named, args.json, out)
    if action == "stop":
        target = _pick(named)
        if target is None:
            out.write(f"No gateway is running{_in(named)}.\n")
            return EXIT_OK
        _stop(target, out)
        return EXIT_OK
    if action == "restart":
        target = _pick(named)
        if target is not None:
            _stop(target, out)
            if named is None and target.folder:
                named = Path(target.folder)
    return _start(named, args.wait, config.launch_timeout, out)


def _in(named: Path | None) -> str:
    return f" in {named}" if named is not None else ""


def _pick(named: Path | None) -> Gateway | None:
    """The gateway a command acts on: the named folder's, else the only one running."""

    if named is not None:
        return identity.gateway_in(named)
    running = identity.running_gateways()
    if len(running) > 1:
        raise UsageError(
            f"{len(running)} gateways are running ("
            + ", ".join(g.where() for g in running)
            + "); name one with --dir"
        )
    return running[0] if running else None


def _describe(gateway: Gateway) -> dict[str, Any]:
    return {
        "running": True,
        "pid": gateway.pid,
        "dir": gateway.folder,
        "port": gateway.port,
        "started": gateway.started.isoformat(timespec="seconds"),
        "uptime_s": round((datetime.now() - gateway.started).total_seconds()),
        "ours": gateway.ours,
        "lone": gateway.lone,
    }


def _status(named: Path | None, as_json: bool, out: TextIO) -> int:

    if named is not None:
        found = identity.gateway_in(named)
        gateways = [found] if found else []
    else:
        gateways = identity.running_gateways()
    if as_json:
        objects = [_describe(g) for g in gateways]
        if named is not None:
            out.write(json.dumps(objects[0] if objects else {"running": False}) + "\n")
        else:
            out.write(json.dumps(objects) + "\n")
    elif not gateways:
        out.write(f"No gateway is running{_in(named)}.\n")
    for gateway in gateways if not as_json else []:
        port = f", port {gateway.port}" if gateway.port else ""
        out.write(f"Gateway running in {gateway.where()}{port} ({gateway.describe()})\n")
    return EXIT_OK if gateways else EXIT_FAILED


def _stop(target: Gateway, out: TextIO) -> None:

    if target.folder:
        Launcher(Path(target.folder)).stop(target)
    else:
        stop_gateway(target)
    out.write(f"Stopped the gateway in {target.where()} ({target.describe()}).\n")


def _start(named: Path | None, wait: bool, timeout: float, out: TextIO) -> int:

    directory, how = find_directory(str(named) if named else None)
    if how == "found":
        out.write(f"Using the gateway folder {directory}\n")
    launcher = Launcher(directory, timeout=timeout)
    interrupted = threading.Event()
    restore = stop_on_signals(interrupted)  # Ctrl-C: undo what this command started
    try:
        try:
            proc = launcher.start()
        except AlreadyRunning as exc:
            out.write(
                f"A gateway is already running in {exc.running.where()} "
                f"({exc.running.describe()}); not starting another.\n"
            )
            return EXIT_OK
        if launcher.java is not None:
            out.write(f"Java: {launcher.java.path} ({launcher.java.version})\n")
        if not wait and not interrupted.is_set():
            out.write(f"Started the gateway (pid {proc.pid}); output goes to {launcher.log_path}\n")
            return EXIT_OK
        try:
            ready = launcher.wait_ready(stop=interrupted)
        except Cancelled:
            launcher.stop(check_port=False)
            print("cpgw-tray: interrupted: stopped the gateway it had started", file=sys.stderr)
            return EXIT_INTERRUPTED
        out.write(
            f"Gateway ready on port {ready.port} ({ready.describe()}); log in at "
            f"https://localhost:{ready.port}\n"
        )
        return EXIT_OK
    finally:
        restore()


def _logs(named: Path | None, lines: int, out: TextIO) -> int:

    if named is None:
        running = _pick(None)
        if running is not None and running.folder:
            named = Path(running.folder)
    if named is not None:
        path = log_of(named)
    else:
        logs = sorted(
            paths.log_dir().glob("gateway*.log"), key=lambda p: p.stat().st_mtime, reverse=True
        )
        if not logs:
            raise UsageError(
                f"no gateway log yet in {paths.log_dir()}: cpgw-tray has not launched a gateway"
            )
        path = logs[0]
    if not path.is_file():
        raise UsageError(f"no gateway log yet ({path}): cpgw-tray has not launched one there")
    for line in tail(path, lines):
        out.write(line + "\n")
    return EXIT_OK
