"""``cpgw-tray sim``: the simulated gateway on its own, or a gateway-shaped folder."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import Any, TextIO

from ..cli.options import UsageError
from ..constants import LISTEN_FAILED
from ..lifecycle import stop_on_signals, wait_until
from ..settings.config import ConfigError, read_conf_yaml
from .model import SCENARIOS
from .scaffold import FolderNotEmpty, make_gateway_dir
from .server import Simulator


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = "Run a simulated gateway on 127.0.0.1 (HTTPS, self-signed)."
    parser.add_argument(
        "--port",
        type=int,
        action="append",
        help="port to listen on; 0 = any free port (5000); repeat it for several gateways, "
        "each its own session",
    )
    parser.add_argument(
        "--state", default="logged_out", metavar="S", help="starting scenario (logged_out)"
    )
    parser.add_argument(
        "--session-timeout",
        type=float,
        default=360.0,
        metavar="S",
        help="idle seconds before the session drops, 0 = never (360)",
    )
    parser.add_argument(
        "--penalty",
        type=float,
        default=900.0,
        metavar="S",
        help="seconds in the penalty box after a rate-limit breach (900)",
    )
    parser.add_argument(
        "--no-rate-limit", action="store_true", help="do not enforce the gateway's rate limits"
    )
    parser.add_argument(
        "--clock",
        metavar="ISO",
        help="start the simulated time here (e.g. 2026-11-26T00:14-05:00) and play IBKR's "
        "restart windows and weekly token reset on it",
    )
    parser.add_argument(
        "--region",
        choices=("na", "eu", "ap"),
        default="na",
        help="IBKR region whose restart windows are played (na)",
    )
    parser.add_argument(
        "--conf",
        metavar="PATH",
        help="take port and TLS from a gateway conf.yaml; on a taken port, act like the gateway",
    )
    parser.add_argument(
        "--make-gateway-dir",
        metavar="DIR",
        help="write a clientportal.gw-shaped folder that runs this simulator, then exit",
    )
    parser.add_argument("--main-class", help=argparse.SUPPRESS)  # mimics the gateway's command line
    parser.set_defaults(func=cmd_sim)


def cmd_sim(args: argparse.Namespace, out: TextIO) -> int:

    ports = args.port or [5000]
    if args.make_gateway_dir:
        try:
            path = make_gateway_dir(Path(args.make_gateway_dir), port=ports[0])
        except FolderNotEmpty as exc:
            raise UsageError(str(exc)) from None
        out.write(
            f"Wrote a simulated gateway folder: {path}\n"
            f"Start it like IBKR's: cd {path} && bash bin/run.sh root/conf.yaml\n"
        )
        return 0
    tls = True
    if args.conf:
        try:
            port, tls = read_conf_yaml(str(Path(args.conf).resolve().parent.parent))
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        ports = [port]
        # Like the real gateway: the banner comes before the port listens.
        out.write(f"Open https://localhost:{port} to login\n")
        out.flush()
    try:
        sims = [
            Simulator(
                port,
                tls=tls,
                scenario=args.state,
                session_timeout=args.session_timeout,
                rate_limit=not args.no_rate_limit,
                penalty=args.penalty,
                region=args.region,
            )
            for port in ports
        ]
        for sim in sims:
            if args.clock:
                sim.set_clock(args.clock)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    stop = threading.Event()
    restore = stop_on_signals(stop)
    try:
        for sim, port in zip(sims, ports, strict=True):
            try:
                sim.start()
            except OSError as exc:
                if not args.conf:
                    raise UsageError(
                        f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; try --port 0"
                    ) from None
                # What the real gateway does on a taken port: say so, and keep running.
                print(f"{LISTEN_FAILED} {exc.strerror}", file=sys.stderr, flush=True)
                wait_until(stop)
                return 1
            out.write(_banner(sim))
        out.write("Ctrl-C stops it.\n")
        out.flush()
        wait_until(stop)
    except KeyboardInterrupt:
        pass
    finally:
        restore()
        for sim in sims:
            sim.stop()
    return 0


def _banner(sim: Any) -> str:
    """What one simulated gateway is and how to drive it."""
    return (
        f"Simulated gateway on {sim.url} (scenario: {sim.session.scenario})\n"
        f"  log in:       {sim.url}/\n"
        f"  check it:     cpgw-tray --url {sim.url} status\n"
        f'  switch state: curl -sk -X POST {sim.url}/sim/state -d \'{{"scenario":"ready"}}\'\n'
        f"  scenarios:    {', '.join(SCENARIOS)}\n"
        f"  IBKR's clock: {_clock_line(sim.clock_state())}\n"
    )


def _clock_line(clock: dict[str, Any]) -> str:
    if not clock["injected"]:
        return "real time, not played (set one: --clock ISO or POST /sim/clock)"
    now, region = clock["now"], clock["region"]
    if clock["window"]:
        return f"{now}, region {region}: inside the window, {clock['window']['label']}"
    upcoming = clock["next_window"]
    return f"{now}, region {region}: next window {upcoming['start']}, {upcoming['label']}"
