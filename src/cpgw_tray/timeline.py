"""The history as a picture: a 24-hour band coloured by state (the contract's colours),
hour ticks in local time, the share of time ready, and IBKR's restart windows shaded;
the stretches when nothing was watching (see :func:`watched`) are drawn "not watched"."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from .status import LOOKS, State

if TYPE_CHECKING:
    from PIL import Image

    from .history import Row

WIDTH, HEIGHT = 960, 220
LEFT, RIGHT = 40, 20
BAND_TOP, BAND_BOTTOM = 70, 130
NO_DATA = (235, 235, 235)
SHADE = (40, 40, 40, 90)


STALE = timedelta(minutes=7)  # a live watcher saves its last check every 5 min


def watched(
    rows: Sequence[Row], seen: Mapping[str, datetime], end: datetime
) -> list[tuple[datetime, datetime]]:
    """When some watcher (tray or ``watch``) was running, up to ``end``, merged. A run
    begins at a ``started`` row (or a source's first row) and ends at its ``stopped``
    row; one still open ended at its last sign of life (its last row or its saved last
    check), unless that is recent enough for it to be running still."""
    runs: list[tuple[datetime, datetime]] = []
    began: dict[str, datetime] = {}
    alive: dict[str, datetime] = {}
    for row in rows:
        source = row.source
        if row.event == "stopped":
            if source in began:
                runs.append((began.pop(source), row.at))
            continue
        if row.event == "started" and source in began:
            runs.append((began.pop(source), alive[source]))  # ended without a word
        began.setdefault(source, row.at)
        alive[source] = row.at
    for source, first in began.items():
        last = max(alive[source], seen.get(source, alive[source]))
        runs.append((first, end if end - last <= STALE else last))
    merged: list[tuple[datetime, datetime]] = []
    for a, b in sorted(runs):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def gaps(
    rows: Sequence[Row], seen: Mapping[str, datetime], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The stretches of ``[start, end)`` after the first row when nothing watched."""
    if not rows:
        return []
    at = max(start, rows[0].at)
    out = []
    for a, b in [*watched(rows, seen, end), (end, end)]:
        if a > at and at < end:
            out.append((at, min(a, end)))
        at = max(at, b)
    return out


def spans(
    rows: Sequence[Row],
    start: datetime,
    end: datetime,
    seen: Mapping[str, datetime] | None = None,
) -> list[tuple[datetime, datetime, State | None]]:
    """The state in force over ``[start, end)`` as spans; None where nothing is known:
    before the first row, and while nothing watched (never the last state). Rows must be
    oldest first; ``seen``: each source's last finished check (:meth:`History.seen`)."""
    current: State | None = None
    at = start
    raw: list[tuple[datetime, datetime, State | None]] = []
    for row in rows:
        state = State(row.state) if row.state is not None else None
        if row.at <= start:
            current = state
            continue
        if row.at >= end:
            break
        if row.at > at:
            raw.append((at, row.at, current))
        current, at = state, row.at
    if end > at:
        raw.append((at, end, current))
    holes = gaps(rows, seen or {}, start, end)
    out: list[tuple[datetime, datetime, State | None]] = []
    for a, b, state in raw:
        for ga, gb in holes:
            if ga < b and gb > a:
                if ga > a:
                    out.append((a, ga, state))
                out.append((max(a, ga), min(b, gb), None))
                a = min(b, gb)
        if b > a:
            out.append((a, b, state))
    return out


def ready_share(parts: Sequence[tuple[datetime, datetime, State | None]]) -> float | None:
    """The share of the known time spent ``ready`` (None when nothing is known)."""
    known = sum((b - a).total_seconds() for a, b, s in parts if s is not None)
    ready = sum((b - a).total_seconds() for a, b, s in parts if s is State.READY)
    return ready / known if known else None


def render(
    rows: Sequence[Row],
    end: datetime,
    *,
    hours: int = 24,
    shade: Sequence[tuple[datetime, datetime]] = (),
    zone: tzinfo | None = None,
    seen: Mapping[str, datetime] | None = None,
) -> Image.Image:
    """The picture of the ``hours`` before ``end``."""
    from PIL import Image, ImageDraw, ImageFont

    start = end - timedelta(hours=hours)
    total = (end - start).total_seconds()

    def x(moment: datetime) -> float:
        share = (min(max(moment, start), end) - start).total_seconds() / total
        return LEFT + share * (WIDTH - LEFT - RIGHT)

    image = Image.new("RGB", (WIDTH, HEIGHT), (255, 255, 255))
    draw = ImageDraw.Draw(image, "RGBA")
    font = ImageFont.load_default(size=15)  # Pillow's own font: no system font needed
    small = ImageFont.load_default(size=12)
    parts = spans(rows, start, end, seen)
    for a, b, state in parts:
        colour = LOOKS[state].colour if state is not None else NO_DATA
        draw.rectangle([x(a), BAND_TOP, x(b), BAND_BOTTOM], fill=colour)
    for a, b in shade:
        if b > start and a < end:
            draw.rectangle([x(a), BAND_TOP - 12, x(b), BAND_BOTTOM], fill=SHADE)
    hour = (start.astimezone(zone) + timedelta(hours=1)).replace(minute=0, second=0, microsecond=0)
    while hour <= end.astimezone(zone):
        px = x(hour)
        draw.line([px, BAND_BOTTOM, px, BAND_BOTTOM + 6], fill=(0, 0, 0), width=1)
        if hour.hour % 3 == 0:
            draw.text((px - 7, BAND_BOTTOM + 8), f"{hour.hour:02d}", fill=(0, 0, 0), font=small)
        hour += timedelta(hours=1)
    share = ready_share(parts)
    known = sum((b - a).total_seconds() for a, b, s in parts if s is not None) / 3600
    ready = (
        "not watched"
        if share is None
        else f"ready {share * 100:.1f} % of the {known:.1f} h watched"
    )
    # plain ASCII punctuation: the bundled font has no dashes
    title = f"IBKR gateway, {hours} h to {end.astimezone(zone):%Y-%m-%d %H:%M}: {ready}"
    draw.text((LEFT, 18), title, fill=(0, 0, 0), font=font)
    if shade:
        draw.text((LEFT, 42), "shaded: IBKR restart windows", fill=(60, 60, 60), font=small)
    shown = [(LOOKS[s].colour, s.value) for s in State if any(p[2] is s for p in parts)]
    if any(p[2] is None for p in parts):
        shown.append((NO_DATA, "not watched"))
    lx = LEFT
    for colour, name in shown:
        draw.rectangle([lx, 170, lx + 12, 182], fill=colour, outline=(160, 160, 160))
        draw.text((lx + 16, 169), name, fill=(0, 0, 0), font=small)
        lx += 30 + 7 * len(name)
    return image
