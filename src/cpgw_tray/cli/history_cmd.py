"""``cpgw-tray history``: the state changes the tray and ``watch`` saw, as a table, as
JSON Lines, or as a picture (24 hours, or --since); stretches when nothing was watching are listed
and drawn as "not watched"."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import paths
from ..outlets.history import History, Row, of_gateway, parse_since
from ..outlets.timeline import gaps, write_timeline
from .options import UsageError, gateways_of, resolve

if TYPE_CHECKING:
    from ..outlets.history import History, Row


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default="24h", metavar="WHEN", help="24h, 90m, 7d or an ISO time (24h)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON Lines")
    parser.add_argument(
        "--png", metavar="FILE", help="write the timeline picture (of --since) to FILE instead"
    )
    parser.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace, out: TextIO) -> int:

    now = datetime.now(timezone.utc)
    try:
        since = parse_since(args.since, now)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    history = History(paths.history_file(), source="")
    if args.png:
        try:
            path = write_timeline(history, Path(args.png), now, resolve(args), since=since)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        out.write(f"Wrote {path}\n")
        return 0
    wanted = gateways_of(args)[0].name if getattr(args, "gateway", None) else None
    rows = [row for row in with_gaps(history, since, now) if of_gateway(row, wanted)]
    if args.json:
        for row in rows:
            out.write(json.dumps(row.to_json()) + "\n")
        return 0
    if not rows:
        out.write(f"No state changes since {since.astimezone():%Y-%m-%d %H:%M}.\n")
        return 0
    out.write(f"{'when':19}  {'state':17}  {'was':17}  {'by':5}  detail\n")
    for row in rows:
        detail = (f"{row.gateway}: " if row.gateway else "") + " ".join(row.detail.split())
        detail = detail if len(detail) <= 70 else detail[:69] + "…"
        what = row.state or (row.event or "").replace("_", " ")
        out.write(
            f"{row.at.astimezone():%Y-%m-%d %H:%M:%S}  {what:17}  "
            f"{row.previous or '-':17}  {row.source or '-':5}  {detail}\n"
        )
    return 0


def with_gaps(history: History, since: datetime, now: datetime) -> list[Row]:
    """The rows from ``since`` on, and a ``not_watched`` row for each stretch when
    nothing was watching (its ``until`` says when watching began again)."""

    every = list(history.rows())
    holes = [
        Row(a, None, None, f"until {b.astimezone():%Y-%m-%d %H:%M}", "", "", "not_watched", b)
        for a, b in gaps(every, history.seen(), since, now)
    ]
    return sorted([*(r for r in every if r.at >= since), *holes], key=lambda r: r.at)
