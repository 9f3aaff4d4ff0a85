"""``cpgw-tray doctor``: the set-up checks (:mod:`cpgw_tray.outlets.doctor`), each verdict printed
as it comes, and with ``--bundle`` the diagnostics bundle for support."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from ..constants import EXIT_NOT_PERMITTED
from ..outlets.doctor import Check, Doctor, save_bundle
from .options import gateways_of


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="D", help="the clientportal.gw folder to check")
    parser.add_argument(
        "--bundle", metavar="FILE.zip", help="also write a diagnostics bundle for support"
    )
    parser.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:

    gateways = gateways_of(args, gateway_dir=args.dir)  # two on one port: exit 64 naming both
    checks: list[Check] = []
    for gateway in gateways:  # each gateway the settings name, in their order
        config = gateway.config
        folder = config.gateway_dir or "looked for in the usual places"
        named = f"gateway {gateway.name}: " if gateway.name else ""
        out.write(
            f"Checking {named}{config.url} (from {config.url_source}); gateway folder: {folder}\n"
        )
        for check in Doctor(config).checks():  # each verdict as it comes
            checks.append(check)
            out.write(check.line() + "\n")
            out.flush()
    failed = [c for c in checks if c.ok is False]
    skipped = [c.name for c in checks if c.ok is None]
    if failed:
        out.write(f"{len(failed)} problem(s) found: {', '.join(c.name for c in failed)}.\n")
    elif skipped:
        out.write(f"No problems found; not checked now: {', '.join(skipped)}.\n")
    else:
        out.write("All checks passed.\n")
    if args.bundle:
        path = save_bundle(Path(args.bundle), gateways[0].config, checks)
        out.write(f"Diagnostics bundle: {path}\n")
    return EXIT_NOT_PERMITTED if failed else 0
