"""The command line: parse, then dispatch to the command's module. ``main(argv) -> int``;
every error becomes one stderr line and an exit code, never a traceback. A reader that
goes away (``cpgw-tray history | head -2``) ends any printing command quietly, exit 0.

:data:`COMMANDS` names each command's module and help; the parser is built from it, and
only the module of the command that runs is imported (to add its own options with
``arguments(name, parser)`` and run it as ``func(args, out) -> exit code``): a first
pass finds the command, the second parses its options. The shared options come to each
command as a parent parser (:func:`~cpgw_tray.cli.options.shared_options`).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from .. import __version__
from ..constants import EXIT_INTERRUPTED, EXIT_USAGE
from ..settings.config import Config, ConfigError, load
from .options import Parser, UsageError, add_shared, shared_options, show_settings

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


@dataclass(frozen=True)
class Command:
    """A sub-command: its module (relative to this package), which adds its options with
    ``arguments(name, parser)``, and its help line; ``shared``: it takes the shared
    options."""

    module: str
    help: str
    shared: bool = True


COMMANDS = {
    "tray": Command("cpgw_tray.app", "show the tray icon (the default)"),
    "demo": Command("cpgw_tray.demo", "the tray with a simulated gateway, for a first look"),
    "status": Command("cpgw_tray.cli.commands", "check once, print the state, exit with its code"),
    "reauth": Command("cpgw_tray.cli.commands", "start the brokerage session again (ssodh/init)"),
    "logout": Command("cpgw_tray.cli.commands", "end the gateway session"),
    "open": Command("cpgw_tray.cli.commands", "open the gateway's login page in the browser"),
    "watch": Command("cpgw_tray.cli.watch", "check repeatedly and print a line at each change"),
    "gateway": Command("cpgw_tray.cli.gateway_cmd", "start, stop and inspect the gateway process"),
    "history": Command(
        "cpgw_tray.cli.history_cmd",
        "the state changes seen by the tray and watch (table, JSON, picture)",
    ),
    "doctor": Command(
        "cpgw_tray.cli.doctor",
        "check the set-up, each verdict with its fix; exit 0 all good, 3 not",
    ),
    "sim": Command("cpgw_tray.simulator.command", "run the built-in gateway simulator"),
    "config": Command(
        "cpgw_tray.cli.config_cmd",
        "show the settings and where each comes from (--path, --init, --edit)",
    ),
    "notify": Command(
        "cpgw_tray.cli.notify_cmd", "send a test message to each phone/chat URL (--test)"
    ),
    "autostart": Command(
        "cpgw_tray.autostart", "start the tray at login: on, off, or status", shared=False
    ),
}
DEFAULT = "tray"  # `cpgw-tray` alone


def _parser(loaded: str | None, help: bool = True) -> Parser:
    """The parser: every command named, only ``loaded``'s options (its module imported);
    ``help``: it answers ``--help`` itself."""
    parser = Parser(
        prog="cpgw-tray",
        description="Tray indicator and checks for the IBKR Client Portal Gateway.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        add_help=help,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    add_shared(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    shared = [shared_options()]
    for name, command in COMMANDS.items():
        child = sub.add_parser(
            name,
            help=command.help,
            parents=shared if command.shared else [],
            add_help=name == loaded,  # the others' --help is left for the second pass
        )
        if name == loaded:
            importlib.import_module(command.module).arguments(name, child)
            if name == DEFAULT:
                parser.set_defaults(func=child.get_default("func"))
    return parser


def build_parser(argv: Sequence[str] | None = None) -> Parser:
    """The parser for ``argv`` (default: the process's arguments): the command it names
    found first (help left for the second pass), then only that command's options added.
    When ``argv`` asks for help, the shared options show the values the settings give
    (read with the ``--config`` given, if any)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    found, _ = _parser(None, help=False).parse_known_args(argv)
    parser = _parser(found.command or DEFAULT)
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
    from .. import logs

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
        from ..lifecycle import silence_stdout

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
