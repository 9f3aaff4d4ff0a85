"""One-shot commands against the gateway: ``status``, ``reauth``, ``logout``, ``open``.

Each is registered on the CLI's sub-parsers by :func:`register` and runs as
``func(args, out) -> exit code``.
"""

from __future__ import annotations

import argparse
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, TextIO

from ..care.maintenance import IbkrClock
from ..care.person_care import pause_path, read_pause
from ..care.session import SessionCare
from ..client.api import AUTH_STATUS, Deferred, client_for
from ..lifecycle import tell
from ..model.status import LOOKS, State, Status
from ..model.urls import gateway_root
from ..tray.opener import why_not_opened
from .options import gateways_of, resolve

if TYPE_CHECKING:
    from ..settings.config import Config

QUEUE_WAIT = 60.0  # the longest `status` waits behind other processes' booked checks


def human(status: Status, named: bool = False) -> str:
    """One line for people: state, label, what to do; ``named`` (several gateways shown):
    the gateway's name first."""
    latency = f", {status.latency_ms:.0f} ms" if status.latency_ms is not None else ""
    name = f"{status.gateway}: " if named and status.gateway else ""
    return f"{name}{status.state.value}: {status.label} — {status.detail} [{status.url}{latency}]"


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``status``, ``reauth``, ``logout`` and ``open``: their own options."""
    if name == "status":
        parser.add_argument("--json", action="store_true", help="print one JSON object")
    if name == "reauth":
        parser.add_argument(
            "--take-over",
            action="store_true",
            help="take the session over from TWS, the phone or the web (logs them out)",
        )
    funcs = {"status": cmd_status, "reauth": cmd_action, "logout": cmd_action}
    parser.set_defaults(func=funcs.get(name, cmd_open))


def held_back(url: str, wait: float) -> Status:
    """The verdict of a check that never went: the requests other cpgw-tray processes
    booked, or a 429 one of them got, hold it back longer than ``status`` waits (exit 3,
    like a 429; nothing was sent)."""

    detail = (
        f"Not checked: cpgw-tray holds requests to this gateway back for {wait:.0f} s more "
        "(other cpgw-tray processes' checks, one a second, or a 429 one of them got); "
        "asking now would earn a 429."
    )
    look = LOOKS[State.RATE_LIMITED]
    return Status(
        State.RATE_LIMITED,
        look.label,
        detail,
        url=url,
        retry_after_s=wait,
        checked_at=datetime.now(timezone.utc),
    )


def cmd_status(args: argparse.Namespace, out: TextIO) -> int:
    """One line (or JSON object) per gateway, in the settings' order, all checked at
    once; the exit code is the highest of theirs."""
    gateways = gateways_of(args)
    with ThreadPoolExecutor(max_workers=len(gateways)) as pool:
        statuses = list(pool.map(lambda gateway: check_once(gateway.config), gateways))
    for status in statuses:  # a pause made in the tray (or for `watch`): scripts see it too
        paused = read_pause(pause_path(status.gateway), datetime.now(timezone.utc))
        status = replace(status, paused_until=paused)
        line = json.dumps(status.to_json()) if args.json else human(status, len(statuses) > 1)
        out.write(line + "\n")
    return max(status.exit_code for status in statuses)


def check_once(config: Config) -> Status:
    """One check of one gateway, its name on the verdict."""
    client = client_for(config)
    client.max_wait = QUEUE_WAIT  # behind other processes' checks: wait for our turn
    tell(f"asking {config.url} … up to {config.timeout:g} s")
    try:
        # One check: no automatic reauthentication, and no /sso/validate (limited to
        # one a minute, which scripts calling `status` in a loop would exceed).
        care = SessionCare(
            client, auto_reauth=False, validate=False, ibkr=IbkrClock.from_config(config)
        )
        status = care.check()
    except Deferred as held:
        status = held_back(client.url_for(AUTH_STATUS), held.wait)
    finally:
        client.close()
    return replace(status, gateway=config.gateway)


def cmd_action(args: argparse.Namespace, out: TextIO) -> int:
    """``reauth`` or ``logout``: exit 0 when the gateway took it, 1 when not."""

    client = client_for(resolve(args))
    try:
        if args.command == "reauth":
            outcome = client.reauthenticate(take_over=args.take_over)
        else:
            outcome = client.logout()
    finally:
        client.close()
    out.write(outcome.message + "\n")
    return 0 if outcome.ok else 1


def cmd_open(args: argparse.Namespace, out: TextIO) -> int:
    """The login page in the browser; where there is none, the URL to copy (exit 0 either
    way: the person has what they asked for)."""

    url = gateway_root(resolve(args).url)
    why = why_not_opened(url)
    if why is None:
        out.write(f"Opening {url}\n")
    else:
        out.write(f"Not opened ({why}): open {url} in a browser yourself.\n")
    return 0
