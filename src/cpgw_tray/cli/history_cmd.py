"""``cpgw-tray history``: the state changes the tray and ``watch`` saw, as a table, as
JSON Lines, or as a picture (24 hours, or --since); stretches when nothing was watching are listed
and drawn as "not watched"."""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from .. import paths
from ..care.maintenance import IbkrClock
from ..model.ibkr_clock import windows
from ..outlets.history import History, Row, parse_since
from ..outlets.timeline import gaps, render
from .options import UsageError, gateways_of, resolve

if TYPE_CHECKING:
    from ..outlets.history import History, Row
    from ..settings.config import Config


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
        path = write_timeline(history, Path(args.png), now, resolve(args), since=since)
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


def of_gateway(row: Row, name: str | None) -> bool:
    """Whether ``row`` belongs with gateway ``name`` (None: every gateway); the watchers'
    own rows belong with each."""
    return name is None or row.state is None or row.gateway == name


def with_gaps(history: History, since: datetime, now: datetime) -> list[Row]:
    """The rows from ``since`` on, and a ``not_watched`` row for each stretch when
    nothing was watching (its ``until`` says when watching began again)."""

    every = list(history.rows())
    holes = [
        Row(a, None, None, f"until {b.astimezone():%Y-%m-%d %H:%M}", "", "", "not_watched", b)
        for a, b in gaps(every, history.seen(), since, now)
    ]
    return sorted([*(r for r in every if r.at >= since), *holes], key=lambda r: r.at)


def write_timeline(
    history: History, path: Path, now: datetime, config: Config, since: datetime | None = None
) -> Path:
    """Render the time from ``since`` (24 hours before ``now`` when not given) to ``path``
    as PNG, IBKR's restart windows for the configured region shaded."""

    start = now - timedelta(hours=24) if since is None else min(since, now)
    if now - start < timedelta(minutes=10):
        raise UsageError("--since: the picture needs at least 10 minutes before now")
    clock = IbkrClock.from_config(config)
    shade = [(w.start, w.end) for w in windows(clock.region, start, now)] if clock.enabled else []
    # the state in force before the window counts too; a named gateway's rows only
    rows = [row for row in history.rows() if of_gateway(row, config.gateway)]
    hours = (now - start).total_seconds() / 3600
    image = render(rows, now, hours=hours, shade=shade, seen=history.seen())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
