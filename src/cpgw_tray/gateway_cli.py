"""``cpgw-tray gateway start|stop|restart|status|logs``: the gateway process from a
terminal, through :mod:`cpgw_tray.launcher`."""

from __future__ import annotations

import argparse
import contextlib
import json
from datetime import datetime
from pathlib import Path
from typing import TextIO

from .config import ConfigError, load, read_conf_yaml
from .options import Parser, UsageError, add_shared

ACTIONS = [
    ("start", "launch the gateway from its folder (bin/run.sh root/conf.yaml)"),
    ("stop", "stop the gateway and every process it started"),
    ("restart", "stop the gateway, then start it again"),
    ("status", "is a gateway running: pid, folder, port, uptime"),
    ("logs", "the gateway's output, as launched by cpgw-tray"),
]


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    gateway = sub.add_parser(
        "gateway",
        help="start, stop and inspect the gateway process",
        description="Start, stop and inspect the Client Portal Gateway process.",
    )
    add_shared(gateway)
    gsub = gateway.add_subparsers(
        dest="gateway_command", metavar="ACTION", parser_class=Parser, required=True
    )
    for name, text in ACTIONS:
        action = gsub.add_parser(name, help=text, description=text)
        add_shared(action)
        action.add_argument(
            "--dir",
            metavar="D",
            help="the clientportal.gw folder (default: gateway_dir, else the usual places)",
        )
        if name in ("start", "restart"):
            action.add_argument(
                "--wait", action="store_true", help="wait until it listens; exit 0 ready, 1 not"
            )
        if name == "status":
            action.add_argument("--json", action="store_true", help="print one JSON object")
        if name == "logs":
            action.add_argument(
                "-n", "--lines", type=int, default=40, metavar="N", help="last N lines (40)"
            )
    gateway.set_defaults(func=cmd_gateway)


def cmd_gateway(args: argparse.Namespace, out: TextIO) -> int:
    """``gateway start|stop|restart|status|logs``: exit 0 on success, 1 with the reason."""
    import sys

    from .launcher import LaunchError

    try:
        return _gateway(args, out)
    except LaunchError as exc:
        print(f"cpgw-tray: {exc}", file=sys.stderr)
        return 1


def _gateway(args: argparse.Namespace, out: TextIO) -> int:
    from . import paths
    from .launcher import Launcher, find_directory, find_running

    config = load({"gateway_dir": args.dir}, config_path=getattr(args, "config", None))
    action = args.gateway_command
    log_path = paths.gateway_log()
    if action == "logs":
        try:
            lines = log_path.read_text(errors="replace").splitlines()
        except OSError:
            raise UsageError(
                f"no gateway log yet ({log_path}): cpgw-tray has not launched a gateway"
            ) from None
        out.write("\n".join(lines[-args.lines :]) + "\n")
        return 0
    running = find_running()
    if action == "status":
        data = (
            None
            if running is None
            else {
                "pid": running.pid,
                "dir": running.directory,
                "started": running.started.isoformat(timespec="seconds"),
                "uptime_s": round((datetime.now() - running.started).total_seconds()),
            }
        )
        if data is not None and running is not None and running.directory:
            with contextlib.suppress(ConfigError):
                data["port"] = read_conf_yaml(running.directory)[0]
        if args.json:
            out.write(json.dumps({"running": data is not None, **(data or {})}) + "\n")
        elif running is None:
            out.write("No gateway is running.\n")
        else:
            where = running.directory or "an unknown folder"
            out.write(
                f"Gateway running ({running.describe()}) in {where}"
                + (f", port {data['port']}" if data and "port" in data else "")
                + "\n"
            )
        return 0 if running is not None else 1
    if action == "stop":
        if running is None:
            out.write("No gateway is running.\n")
            return 0
        directory = Path(running.directory) if running.directory else Path.cwd()
        Launcher(directory, log_path).stop(running)
        out.write(f"Stopped the gateway ({running.describe()}).\n")
        return 0
    # start / restart
    directory, how = find_directory(config.gateway_dir)
    if how == "found":
        out.write(f"Using the gateway folder {directory}\n")
    launcher = Launcher(directory, log_path, timeout=config.launch_timeout)
    if action == "restart" and running is not None:
        launcher.stop(running)
        out.write(f"Stopped the gateway ({running.describe()}).\n")
    proc = launcher.start()
    if launcher.java is not None:
        out.write(f"Java: {launcher.java.path} ({launcher.java.version})\n")
    if not args.wait:
        out.write(f"Started the gateway (pid {proc.pid}); output goes to {log_path}\n")
        return 0
    ready = launcher.wait_ready()
    out.write(
        f"Gateway ready on port {ready.port} ({ready.describe()}); log in at "
        f"https://localhost:{ready.port}\n"
    )
    return 0
