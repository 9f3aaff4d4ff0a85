"""The command line: parse, then dispatch to the command's module. ``main(argv) -> int``;
every error becomes one stderr line and an exit code, never a traceback. A reader that
goes away (``cpgw-tray history | head -2``) ends any printing command quietly, exit 0.

Each command lives in its own module, which adds its sub-parser in ``register`` and runs
as ``func(args, out) -> exit code``; this module imports nothing heavy, so the tray
starts fast.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from . import (
    __version__,
    app,
    autostart,
    commands,
    config_cli,
    doctor,
    gateway_cli,
    history_cli,
    notify_cli,
    watch,
)
from .config import Config, ConfigError, load
from .constants import EXIT_INTERRUPTED, EXIT_USAGE
from .options import Parser, UsageError, add_shared, show_settings
from .simulator import command as sim_command

EPILOG = """\
examples:
  cpgw-tray                         show the tray icon (same as `cpgw-tray tray`)
  cpgw-tray --interval 5            the tray, checking every 5 s
  cpgw-tray status                  one check; exit 0 ready, 1 needs login, 2 down, 3 error
  cpgw-tray status --json           the same as one JSON object
  cpgw-tray watch --json            a JSON line at every change, until Ctrl-C
  cpgw-tray reauth                  restart the brokerage session; `logout` ends it
  cpgw-tray open                    the gateway's login page in the browser
  cpgw-tray --url https://127.0.0.1:5001 status
  cpgw-tray sim --port 5000         a simulated gateway to try things against
  cpgw-tray demo                    the tray and a simulated gateway together
  cpgw-tray config                  the settings that apply, and where each comes from
  cpgw-tray config --init           write the settings file (every key commented out)
  cpgw-tray autostart on            start the tray at login (`off`, `status`)
  cpgw-tray --notify ntfy://topic notify --test   a test message to the phone

settings: defaults, then config.toml in the user config folder (or --config),
then CPGW_TRAY_* environment variables, then the command line; a running tray
applies a saved change to the file within a few seconds.
"""

COMMANDS = (
    app,
    commands,
    watch,
    gateway_cli,
    history_cli,
    doctor,
    sim_command,
    config_cli,
    notify_cli,
    autostart,
)


def build_parser(argv: Sequence[str] = ()) -> Parser:
    """The parser; when ``argv`` asks for help, its shared options show the values the
    settings give (read with the ``--config`` given, if any)."""
    import argparse

    parser = Parser(
        prog="cpgw-tray",
        description="Tray indicator and checks for the IBKR Client Portal Gateway.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_shared(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for module in COMMANDS:
        module.register(sub)
    parser.set_defaults(func=app.cmd_tray)  # `cpgw-tray` alone is the tray
    if "-h" in argv or "--help" in argv:
        show_settings(parser, _settings(argv))
    return parser


def _settings(argv: Sequence[str]) -> Config:
    """The settings for ``--help``: the file's and the environment's (built-in ones when
    they are bad: the help still shows, the command then says what is wrong)."""
    given = [a.split("=", 1)[1] for a in argv if a.startswith("--config=")]
    given += [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--config"]
    try:
        return load(config_path=given[-1] if given else None)
    except ConfigError:
        return Config()


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit code."""
    from . import logs

    out = out or sys.stdout
    reconfigure = getattr(out, "reconfigure", None)
    if reconfigure is not None:  # a terminal that cannot show "—" gets "?", not an error
        reconfigure(errors="replace")
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(argv).parse_args(argv)
        args.command = args.command or "tray"
        logs.to_stderr(args.verbose)
        code = int(args.func(args, out))
        out.flush()  # here, not at exit: a closed pipe is caught below
        return code
    except BrokenPipeError:
        from .lifecycle import silence_stdout

        silence_stdout()  # the interpreter's last flush would complain again
        return 0
    except (UsageError, ConfigError) as exc:
        print(f"cpgw-tray: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())
