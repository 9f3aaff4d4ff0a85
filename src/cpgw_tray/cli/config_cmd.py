"""``cpgw-tray config``: the settings that apply and where each came from; ``--path``
prints the file's path, ``--init`` writes the commented default file, ``--edit`` opens
it ($VISUAL, else $EDITOR, else the system's opener, else it prints the path)."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import TextIO

from ..constants import EXIT_CANT_CREATE, EXIT_OK
from ..redaction import redact_url
from ..settings.config import KEYS, Config, file_path
from ..settings.file import init_file, toml_value
from ..settings.gateways import PER_GATEWAY
from ..tray.opener import open_path
from .options import gateways_of


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show the settings that apply and where each comes from: the default, "
        "the file and line, an environment variable or the command line."
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--path", action="store_true", help="print the settings file's path")
    what.add_argument(
        "--init",
        action="store_true",
        help="write the default file, every key commented out (an existing file is kept)",
    )
    what.add_argument(
        "--edit", action="store_true", help="open the file in $VISUAL, $EDITOR or the system app"
    )
    parser.set_defaults(func=cmd_config)


def cmd_config(args: argparse.Namespace, out: TextIO) -> int:
    path = file_path(getattr(args, "config", None))
    if args.path:
        out.write(f"{path}\n")
        return EXIT_OK
    if args.init or args.edit:
        try:
            created = init_file(path)
        except OSError as exc:
            print(f"cpgw-tray: cannot write {path}: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_CANT_CREATE
        if created:
            out.write(f"Wrote {path} (every key commented out: the defaults apply)\n")
        elif args.init:
            out.write(f"{path} already exists: left untouched\n")
        return _edit(path, out) if args.edit else EXIT_OK
    gateways = gateways_of(args)
    if gateways[0].name is None:
        out.write(render(gateways[0].config, path))
        return EXIT_OK
    shared = [key for key in KEYS if key not in PER_GATEWAY]
    out.write(render(gateways[0].config, path, shared))
    for gateway in gateways:
        out.write(f"\n[gateways.{gateway.name}]\n")
        out.write(render(gateway.config, None, PER_GATEWAY))
    return EXIT_OK


def render(config: Config, path: Path | None, keys: Iterable[str] = KEYS) -> str:
    """One line per key: ``name = value  # where it came from``; the file's path first
    (none: a gateway's table, under the file's)."""

    lines = []
    if path is not None:
        there = (
            "" if path.is_file() else " (not there: the defaults apply; `config --init` writes it)"
        )
        lines.append(f"# settings file: {path}{there}")
    for name in keys:
        value = getattr(config, name)
        if name == "notify_urls":  # their tokens and passwords stay hidden
            value = tuple(redact_url(url) for url in value)
        shown = "unset" if value is None else toml_value(value)
        where = config.sources.get(name, "default") if value is not None else "default"
        lines.append(f"{name} = {shown}".ljust(48) + f"  # {where}")
    return "\n".join(lines) + "\n"


def _edit(path: Path, out: TextIO) -> int:
    """The person's editor, waited for; else the system opener; else the path."""

    for variable in ("VISUAL", "EDITOR"):
        editor = os.environ.get(variable, "").strip()
        if not editor:
            continue
        try:
            return subprocess.call([*shlex.split(editor), str(path)])
        except (OSError, ValueError) as exc:
            print(f"cpgw-tray: cannot run ${variable} ({editor}): {exc}", file=sys.stderr)
    if open_path(path):
        out.write(f"Opened {path}\n")
        return EXIT_OK
    out.write(f"No editor ($VISUAL, $EDITOR) or opener found; the settings file is:\n{path}\n")
    return EXIT_OK
