"""The options every sub-command shares, and turning them into a :class:`Config`.

Each shared option may stand before or after the sub-command; a value after it wins.
(argparse trap: a sub-parser's default silently overwrites the value given before the
sub-command, so sub-parsers declare these options with ``argparse.SUPPRESS``.) The
repeatable ``--notify`` keeps both: URLs given before and after the sub-command add up.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, NoReturn

from ..settings.config import Config, ConfigError
from ..settings.gateways import Gateway, names, resolve_all
from ..settings.table import FLAGS


class UsageError(Exception):
    """Bad command-line usage; exit 64."""


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors become :class:`UsageError` (one line, exit 64)."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def add_shared(parser: argparse.ArgumentParser, *, top: bool = False) -> None:
    """Add the shared options: with real defaults on the top-level parser, with
    ``SUPPRESS`` on sub-parsers so an option given before the sub-command survives."""
    unset = None if top else argparse.SUPPRESS
    group = parser.add_argument_group("shared options (before or after the command)")
    group.add_argument(
        "--url", default=unset, help="gateway root URL (default: https://127.0.0.1:5000)"
    )
    group.add_argument(
        "--timeout", type=float, default=unset, metavar="S", help="seconds to wait for a reply (10)"
    )
    group.add_argument(
        "--ca-bundle",
        default=unset,
        metavar="PATH",
        help="verify TLS against this CA or certificate",
    )
    group.add_argument(
        "--insecure",
        action="store_true",
        default=unset,
        help="do not verify TLS (the default for loopback)",
    )
    group.add_argument(
        "--interval", type=float, default=unset, metavar="S", help="seconds between checks (15)"
    )
    group.add_argument(
        "--keepalive",
        type=float,
        default=unset,
        metavar="S",
        help="seconds between keep-alive tickles, 0 = off (60)",
    )
    group.add_argument(
        "--gateway",
        default=unset,
        metavar="NAME",
        help="the [gateways.NAME] table to act on, when the settings name several",
    )
    group.add_argument(
        "--config", default=unset, metavar="PATH", help="config file (default: user config dir)"
    )
    group.add_argument(
        "--notify",
        action="append",
        dest="notify_urls" if top else "notify_urls_after",
        default=unset,
        metavar="URL",
        help="also send phone/chat messages to this Apprise URL for this run (repeatable)",
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="more log detail (-vv: debug)",
    )


def shared_options() -> Parser:
    """The shared options as a parent for a sub-command's parser (``parents=``)."""
    parent = Parser(add_help=False)
    add_shared(parent)
    return parent


def add_outlets(parser: argparse.ArgumentParser) -> None:
    """``--serve``, ``--exec``, ``--on-event`` and ``--push``, for the commands that keep
    watching (tray, watch)."""
    group = parser.add_argument_group("for bots and servers")
    group.add_argument(
        "--serve",
        metavar="ADDR",
        help="serve /livez /readyz /status /metrics on PORT, HOST:PORT or [V6]:PORT "
        "(loopback when no host is given)",
    )
    group.add_argument(
        "--serve-host",
        dest="serve_hosts",
        action="append",
        metavar="NAME",
        help="another Host name --serve answers to on loopback, e.g. a proxy's (repeatable)",
    )
    group.add_argument(
        "--exec",
        dest="on_change",
        metavar="CMD",
        help="run CMD at each state change (no shell; env CPGW_STATE, CPGW_PREVIOUS, "
        "CPGW_DETAIL, CPGW_URL; the status JSON on stdin)",
    )
    group.add_argument(
        "--on-event",
        dest="on_event",
        metavar="CMD",
        help="run CMD at each event: login_needed, take_over… (no shell; env CPGW_EVENT, "
        "CPGW_MESSAGE, CPGW_AT; the event JSON on stdin)",
    )
    group.add_argument(
        "--push",
        action="store_true",
        default=None,
        help="also hold the gateway's websocket: a dropped session seen within a second, "
        "IBKR's bulletins shown (setting `push`)",
    )


SHOWN = {  # each shared option's help, with the value the settings give it
    "url": "gateway root URL (default: {})",
    "timeout": "seconds to wait for a reply ({})",
    "interval": "seconds between checks ({})",
    "keepalive": "seconds between keep-alive tickles, 0 = off ({})",
    "config": "config file (default: {})",
}


def show_settings(parser: argparse.ArgumentParser, config: Config) -> None:
    """Put the values the settings give (file, environment) in the shared options'
    help, on the parser and every sub-parser, so ``--help`` tells what applies."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                show_settings(child, config)
        elif action.dest in SHOWN:
            key = action.dest
            if key == "config":
                value = str(config.config_path)
            else:
                value = f"{getattr(config, key):g}" if key != "url" else config.url
                where = config.sources.get(key)
                value += f", from {where}" if where else ""
            action.help = SHOWN[key].format(value)


def resolve(args: argparse.Namespace, **extra: Any) -> Config:
    """Settings from every source, the command line last, for the one gateway a command
    acts on: several configured and none chosen is a settings error naming them."""
    gateways = gateways_of(args, **extra)
    if len(gateways) > 1:  # a settings error: a running tray shows it, keeps what it has
        raise ConfigError(
            f"{len(gateways)} gateways are configured: choose one with --gateway NAME "
            f"({names(gateways)})"
        )
    return gateways[0].config


def gateways_of(args: argparse.Namespace, **extra: Any) -> list[Gateway]:
    """Every gateway the settings name (or the one ``--gateway`` chose), in their order."""
    # every key with a flag (the outlets' only where add_outlets() added them)
    overrides: dict[str, Any] = {key: getattr(args, key, None) for key in FLAGS}
    urls = [
        *(getattr(args, "notify_urls", None) or ()),
        *(getattr(args, "notify_urls_after", None) or ()),
    ]
    overrides["notify_urls"] = urls or None
    overrides["insecure"] = True if overrides["insecure"] else None
    overrides.update(extra)
    return resolve_all(
        overrides,
        config_path=getattr(args, "config", None),
        env=os.environ,
        selected=getattr(args, "gateway", None),
    )
