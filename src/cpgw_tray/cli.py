"""Command line: ``main(argv) -> int``. Errors become one stderr line and an exit code."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, NoReturn, TextIO

from . import __version__
from .config import Config, ConfigError, load, read_conf_yaml
from .gateway import GatewayClient
from .status import Status

log = logging.getLogger(__name__)

EXIT_USAGE = 64  # EX_USAGE: a usage or config error
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no display for the tray
LISTEN_FAILED = "Server listen failed"  # the real gateway's words on a taken port
LOG_FORMAT = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s"

EPILOG = """\
examples:
  cpgw-tray                         show the tray icon (same as `cpgw-tray tray`)
  cpgw-tray status                  one check; exit 0 ready, 1 needs login, 2 down, 3 error
  cpgw-tray status --json           the same as one JSON object
  cpgw-tray watch --json            a JSON line at every change, until Ctrl-C
  cpgw-tray reauth                  restart the brokerage session; `logout` ends it
  cpgw-tray open                    the gateway's login page in the browser
  cpgw-tray --url https://127.0.0.1:5001 status
  cpgw-tray sim --port 5000         a simulated gateway to try things against
  cpgw-tray demo                    the tray and a simulated gateway together

settings: defaults, then config.toml in the user config folder (or --config),
then CPGW_TRAY_* environment variables, then the command line.
"""


class UsageError(Exception):
    """Bad command-line usage; exit 64."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _shared(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Options that ``tray``, ``status`` and ``watch`` share. Subcommands use SUPPRESS so
    they do not overwrite a value given before the subcommand."""
    default = argparse.SUPPRESS if suppress else None
    group = parser.add_argument_group("gateway options")
    group.add_argument(
        "--url", default=default, help="gateway root URL (default: https://127.0.0.1:5000)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=default,
        metavar="S",
        help="seconds to wait for a reply (10)",
    )
    group.add_argument(
        "--ca-bundle",
        default=default,
        metavar="PATH",
        help="verify TLS against this CA or certificate",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=default,
        help="do not verify TLS (the default for loopback)",
    )
    group.add_argument(
        "--config", default=default, metavar="PATH", help="config file (default: user config dir)"
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS if suppress else 0,
        help="more log detail",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="cpgw-tray",
        description="Tray indicator and checks for the IBKR Client Portal Gateway.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _shared(parser, suppress=False)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        _shared(p, suppress=True)
        return p

    tray = command("tray", "show the tray icon (the default)")
    tray.add_argument("--interval", type=float, metavar="S", help="seconds between checks (15)")
    tray.add_argument(
        "--keepalive", type=float, metavar="S", help="seconds between tickles, 0 = off (60)"
    )

    status = command("status", "check once, print the state, exit with its code")
    status.add_argument("--json", action="store_true", help="print one JSON object")

    command("reauth", "start the brokerage session again (ssodh/init)")
    command("logout", "end the gateway session")
    command("open", "open the gateway's login page in the browser")

    watch = command("watch", "check repeatedly and print a line at each change")
    watch.add_argument("--json", action="store_true", help="print JSON Lines")
    watch.add_argument("--interval", type=float, metavar="S", help="seconds between checks (15)")
    watch.add_argument(
        "--keepalive", type=float, metavar="S", help="seconds between tickles, 0 = off (60)"
    )

    gateway = sub.add_parser(
        "gateway",
        help="start, stop and inspect the gateway process",
        description="Start, stop and inspect the Client Portal Gateway process.",
    )
    gsub = gateway.add_subparsers(
        dest="gateway_command", metavar="ACTION", parser_class=_Parser, required=True
    )
    for name, text in [
        ("start", "launch the gateway from its folder (bin/run.sh root/conf.yaml)"),
        ("stop", "stop the gateway and every process it started"),
        ("restart", "stop the gateway, then start it again"),
        ("status", "is a gateway running: pid, folder, port, uptime"),
        ("logs", "the gateway's output, as launched by cpgw-tray"),
    ]:
        action = gsub.add_parser(name, help=text, description=text)
        action.add_argument(
            "--dir",
            metavar="D",
            help="the clientportal.gw folder (default: gateway_dir, else the usual places)",
        )
        action.add_argument(
            "--config", default=argparse.SUPPRESS, metavar="PATH", help="config file"
        )
        action.add_argument(
            "-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log detail"
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

    sim = sub.add_parser(
        "sim",
        help="run the built-in gateway simulator",
        description="Run a simulated gateway on 127.0.0.1 (HTTPS, self-signed).",
    )
    sim.add_argument(
        "--port", type=int, default=5000, help="port to listen on; 0 = any free port (5000)"
    )
    sim.add_argument(
        "--state", default="logged_out", metavar="S", help="starting scenario (logged_out)"
    )
    sim.add_argument(
        "--session-timeout",
        type=float,
        default=360.0,
        metavar="S",
        help="idle seconds before the session drops, 0 = never (360)",
    )
    sim.add_argument(
        "--penalty",
        type=float,
        default=900.0,
        metavar="S",
        help="seconds in the penalty box after a rate-limit breach (900)",
    )
    sim.add_argument(
        "--no-rate-limit", action="store_true", help="do not enforce the gateway's rate limits"
    )
    sim.add_argument(
        "--conf",
        metavar="PATH",
        help="take port and TLS from a gateway conf.yaml; on a taken port, act like the gateway",
    )
    sim.add_argument(
        "--make-gateway-dir",
        metavar="DIR",
        help="write a clientportal.gw-shaped folder that runs this simulator, then exit",
    )
    sim.add_argument("--main-class", help=argparse.SUPPRESS)  # mimics the gateway's command line
    sim.add_argument("-v", "--verbose", action="count", default=0, help="log every request")

    demo = command("demo", "the tray with a simulated gateway, for a first look")
    demo.add_argument(
        "--interval", type=float, metavar="S", help="seconds between checks (5 in the demo)"
    )
    demo.add_argument("--keepalive", type=float, metavar="S", help="seconds between tickles (60)")
    return parser


def setup_logging(verbosity: int, stream: TextIO | None = None) -> None:
    """Log to stderr: warnings by default, ``-v`` info, ``-vv`` debug."""
    level = logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setLevel(level)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)


def resolve(args: argparse.Namespace, **extra: Any) -> Config:
    """Settings from every source, the command line last."""
    overrides = {
        "url": getattr(args, "url", None),
        "timeout": getattr(args, "timeout", None),
        "ca_bundle": getattr(args, "ca_bundle", None),
        "insecure": True if getattr(args, "insecure", None) else None,
        "interval": getattr(args, "interval", None),
        "keepalive": getattr(args, "keepalive", None),
        **extra,
    }
    return load(overrides, config_path=getattr(args, "config", None))


def make_client(config: Config) -> GatewayClient:
    return GatewayClient(config.url, timeout=config.timeout, verify=config.verify)


def human(status: Status) -> str:
    """One line for people: state, label, what to do."""
    latency = f", {status.latency_ms:.0f} ms" if status.latency_ms is not None else ""
    return f"{status.state.value}: {status.label} — {status.detail} [{status.url}{latency}]"


def cmd_status(config: Config, as_json: bool, out: TextIO) -> int:
    from .session import SessionCare

    client = make_client(config)
    try:
        # One check: no automatic reauthentication, and no /sso/validate (limited to
        # one a minute, which scripts calling `status` in a loop would exceed).
        status = SessionCare(client, auto_reauth=False, validate=False).check()
    finally:
        client.close()
    out.write((json.dumps(status.to_json()) if as_json else human(status)) + "\n")
    return status.exit_code


def cmd_watch(config: Config, as_json: bool, out: TextIO) -> int:
    """Print a line at each change until Ctrl-C; keeps the session alive like the tray."""
    from .poller import Poller
    from .session import SessionCare

    client = make_client(config)
    last: list[tuple[object, ...]] = []
    lock = threading.Lock()

    def on_status(status: Status) -> None:
        with lock:
            if last and last[0] == status.view_key():
                return
            last[:] = [status.view_key()]
            if as_json:
                out.write(json.dumps(status.to_json()) + "\n")
            else:
                stamp = (
                    status.checked_at.astimezone().strftime("%H:%M:%S") if status.checked_at else ""
                )
                out.write(f"{stamp} {human(status)}\n")
            out.flush()

    care = SessionCare(client, auto_reauth=config.auto_reauth)
    poller = Poller(
        care.check,
        on_status,
        interval=config.interval,
        tickle=care.tickle,
        keepalive=config.keepalive,
    )
    poller.start()
    try:
        threading.Event().wait()  # until Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        poller.stop()
    return 0


def cmd_action(config: Config, command: str, out: TextIO) -> int:
    """``reauth`` or ``logout``: exit 0 when the gateway took it, 1 when not."""
    client = make_client(config)
    try:
        outcome = client.reauthenticate() if command == "reauth" else client.logout()
    finally:
        client.close()
    out.write(outcome.message + "\n")
    return 0 if outcome.ok else 1


def cmd_open(config: Config, out: TextIO) -> int:
    import webbrowser

    from .status import gateway_root

    url = gateway_root(config.url)
    out.write(f"Opening {url}\n")
    return 0 if webbrowser.open(url) else 1


def cmd_gateway(args: argparse.Namespace, out: TextIO) -> int:
    """``gateway start|stop|restart|status|logs``: exit 0 on success, 1 with the reason."""
    from .launcher import Launcher, find_directory, find_running, gateway_log_path

    config = load({"gateway_dir": args.dir}, config_path=getattr(args, "config", None))
    action = args.gateway_command
    log_path = gateway_log_path()
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


def cmd_sim(args: argparse.Namespace, out: TextIO) -> int:
    from .simulator import SCENARIOS, Simulator, make_gateway_dir

    if args.make_gateway_dir:
        path = make_gateway_dir(Path(args.make_gateway_dir), port=args.port)
        out.write(
            f"Wrote a simulated gateway folder: {path}\n"
            f"Start it like IBKR's: cd {path} && bash bin/run.sh root/conf.yaml\n"
        )
        return 0
    port, tls = args.port, True
    if args.conf:
        try:
            port, tls = read_conf_yaml(str(Path(args.conf).resolve().parent.parent))
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        # Like the real gateway: the banner comes before the port listens.
        out.write(f"Open https://localhost:{port} to login\n")
        out.flush()
    try:
        sim = Simulator(
            port,
            tls=tls,
            scenario=args.state,
            session_timeout=args.session_timeout,
            rate_limit=not args.no_rate_limit,
            penalty=args.penalty,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        sim.start()
    except OSError as exc:
        if args.conf:
            # What the real gateway does on a taken port: say so, and keep running.
            print(f"{LISTEN_FAILED} {exc.strerror}", file=sys.stderr, flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
            return 1
        raise UsageError(
            f"cannot listen on 127.0.0.1:{port}: {exc.strerror}; try --port 0"
        ) from None
    out.write(
        f"Simulated gateway on {sim.url} (scenario: {sim.session.scenario})\n"
        f"  log in:       {sim.url}/\n"
        f"  check it:     cpgw-tray --url {sim.url} status\n"
        f'  switch state: curl -sk -X POST {sim.url}/sim/state -d \'{{"scenario":"ready"}}\'\n'
        f"  scenarios:    {', '.join(SCENARIOS)}\n"
        "Ctrl-C stops it.\n"
    )
    out.flush()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sim.stop()
    return 0


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    out = out or sys.stdout
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        command = args.command or "tray"
        setup_logging(getattr(args, "verbose", 0) or 0)
        if command == "sim":
            return cmd_sim(args, out)
        if command == "status":
            return cmd_status(resolve(args), args.json, out)
        if command == "watch":
            return cmd_watch(resolve(args), args.json, out)
        if command in ("reauth", "logout"):
            return cmd_action(resolve(args), command, out)
        if command == "open":
            return cmd_open(resolve(args), out)
        if command == "gateway":
            from .launcher import LaunchError

            try:
                return cmd_gateway(args, out)
            except LaunchError as exc:
                print(f"cpgw-tray: {exc}", file=sys.stderr)
                return 1
        if command in ("tray", "demo"):
            from .tray import run_demo, run_tray

            if command == "demo":
                return run_demo(args)
            return run_tray(resolve(args))
        raise UsageError(f"unknown command {command}")
    except (UsageError, ConfigError) as exc:
        print(f"cpgw-tray: {exc}", file=sys.stderr)
        return EXIT_USAGE


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
