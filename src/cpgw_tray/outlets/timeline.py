"""The history as a picture: a band coloured by state (the contract's colours; states of
one colour told apart by hatching, and named in words in a legend that wraps, never
cut), time ticks on the local clock with its zone, the share of time ready, IBKR's
restart windows shaded, and a zoomed strip of the last 2 hours when the state changed in
them; the stretches when nothing was watching (see :func:`watched`) are drawn "not
watched"."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta, tzinfo
from typing import TYPE_CHECKING

from ..care.maintenance import IbkrClock
from ..model.ibkr_clock import windows
from ..model.status import LOOKS, State
from .history import of_gateway

if TYPE_CHECKING:
    from pathlib import Path

    from PIL import Image, ImageDraw, ImageFont

    from ..settings.config import Config
    from .history import History, Row

WIDTH, HEIGHT = 960, 220  # HEIGHT: the least; the zoomed strip and the legend add rows
LEFT, RIGHT = 40, 20
BAND_TOP, BAND_BOTTOM = 70, 130
ZOOM = timedelta(hours=2)  # the zoomed strip: the last 2 h, when the state changed in them
ZOOM_HEIGHT = 40
NO_DATA = (235, 235, 235)
SHADE = (40, 40, 40, 90)
# The states that share a colour (the yellows, the reds, the oranges) are told apart by
# hatching in a darker shade of it: "/", "\" , "x" (both) or "|"; the first of each is plain.
HATCH: dict[State, str] = {
    State.DISCONNECTED: "/",
    State.LOGGED_OUT: "\\",
    State.NOT_RESPONDING: "/",
    State.ACCESS_DENIED: "x",
    State.ERROR: "\\",
    State.RATE_LIMITED: "|",
}
HATCH_EVERY = 9  # pixels between hatch lines
Box = tuple[float, float, float, float]


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


def _hatch(draw: ImageDraw.ImageDraw, box: Box, state: State | None) -> None:
    """Fill ``box`` with the state's colour and its hatching (see :data:`HATCH`)."""
    colour = LOOKS[state].colour if state is not None else NO_DATA
    draw.rectangle(box, fill=colour)
    pattern = HATCH.get(state) if state is not None else None
    if not pattern:
        return
    x0, y0, x1, y1 = box
    dark = tuple(int(c * 0.55) for c in colour)
    rise = y1 - y0
    for part in ("/", "\\") if pattern == "x" else (pattern,):
        for px in _steps(x0 - rise, x1):
            line: Box | None
            if part == "|":
                line = (float(px), y0, float(px), y1) if x0 <= px <= x1 else None
            elif part == "/":
                line = _clip(px, y1, px + rise, y0, x0, x1)
            else:
                line = _clip(px, y0, px + rise, y1, x0, x1)
            if line is not None:
                draw.line(line, fill=dark, width=2)


def _steps(lo: float, hi: float) -> range:
    """Hatch positions at fixed places on the picture (continuous across spans)."""
    return range(int(lo) // HATCH_EVERY * HATCH_EVERY, int(hi) + HATCH_EVERY, HATCH_EVERY)


def _clip(xa: float, ya: float, xb: float, yb: float, lo: float, hi: float) -> Box | None:
    """The segment (xa, ya)-(xb, yb), xa < xb, cut to ``lo <= x <= hi``."""
    if xb < lo or xa > hi:
        return None
    slope = (yb - ya) / (xb - xa)
    cx, dx = max(xa, lo), min(xb, hi)
    return (cx, ya + (cx - xa) * slope, dx, ya + (dx - xa) * slope)


def _ticks(
    draw: ImageDraw.ImageDraw,
    x: Callable[[datetime], float],
    span: tuple[datetime, datetime],
    zone: tzinfo | None,
    y: float,
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont,
) -> None:
    """Ticks on the local clock below ``y`` at a step that fits the span, labelled where
    there is room, and the zone's name at the axis' end."""
    start, end = span
    minutes = (end - start).total_seconds() / 60
    step = next((m for m in (15, 30, 60, 120, 180, 360, 720) if minutes / m <= 24), 1440)
    at = start.astimezone(zone).replace(minute=0, second=0, microsecond=0)
    if step == 1440:
        at = at.replace(hour=0)
    last = -1e9
    while at <= end.astimezone(zone):
        if at >= start and (at.hour * 60 + at.minute) % step == 0:
            px = x(at)
            draw.line([px, y, px, y + 6], fill=(0, 0, 0), width=1)
            text = f"{at:%d.%m}" if step >= 360 and at.hour == 0 else f"{at:%H:%M}"
            if px - last >= 48 and px <= WIDTH - RIGHT - 40:
                draw.text((px - 15, y + 8), text, fill=(0, 0, 0), font=font)
                last = px
        at += timedelta(minutes=15 if step < 60 else 60 if step < 1440 else 1440)
    name = end.astimezone(zone).tzname() or ""
    draw.text((WIDTH - RIGHT - 30, y + 8), name, fill=(90, 90, 90), font=font)


Key = State | str | None  # a state, "shade" (IBKR's windows) or None (not watched)


def legend(
    parts: Sequence[tuple[datetime, datetime, State | None]], shaded: bool
) -> list[tuple[Key, str]]:
    """The legend's entries, in words: each state shown, "not watched", the windows."""
    shown: list[tuple[Key, str]] = [
        (s, LOOKS[s].label) for s in State if any(p[2] is s for p in parts)
    ]
    if any(p[2] is None for p in parts):
        shown.append((None, "not watched"))
    if shaded:
        shown.append(("shade", "IBKR restart window"))
    return shown


def _legend_rows(
    entries: Sequence[tuple[Key, str]], font: ImageFont.ImageFont | ImageFont.FreeTypeFont
) -> list[list[tuple[Key, str, float]]]:
    """The entries in rows that fit the width (each with its x), so none is cut."""
    rows: list[list[tuple[Key, str, float]]] = [[]]
    lx = float(LEFT)
    for key, name in entries:
        width = 30 + font.getlength(name) + 20
        if rows[-1] and lx + width > WIDTH - RIGHT:
            rows.append([])
            lx = float(LEFT)
        rows[-1].append((key, name, lx))
        lx += width
    return rows


def span_text(span: timedelta) -> str:
    """ "24 h", "1.5 h", "7 d"."""
    hours = span.total_seconds() / 3600
    return f"{hours:g} h" if hours < 48 or hours % 24 else f"{hours / 24:g} d"


def render(
    rows: Sequence[Row],
    end: datetime,
    *,
    hours: float = 24,
    shade: Sequence[tuple[datetime, datetime]] = (),
    zone: tzinfo | None = None,
    seen: Mapping[str, datetime] | None = None,
) -> Image.Image:
    """The picture of the ``hours`` before ``end``."""
    from PIL import Image, ImageDraw, ImageFont

    start = end - timedelta(hours=hours)
    font = ImageFont.load_default(size=15)  # Pillow's own font: no system font needed
    small = ImageFont.load_default(size=12)
    parts = spans(rows, start, end, seen)
    windows = [(a, b) for a, b in shade if b > start and a < end]
    changed = any(r.state is not None and end - ZOOM <= r.at < end for r in rows)
    zoom = changed and end - start > ZOOM
    entries = _legend_rows(legend(parts, bool(windows)), small)
    zoom_top = BAND_BOTTOM + 55
    legend_top = zoom_top + ZOOM_HEIGHT + 35 if zoom else BAND_BOTTOM + 40
    image = Image.new("RGB", (WIDTH, max(HEIGHT, legend_top + 22 * len(entries) + 8)), "white")
    draw = ImageDraw.Draw(image, "RGBA")

    def band(lo: datetime, top: float, bottom: float) -> Callable[[datetime], float]:
        total = (end - lo).total_seconds()

        def x(moment: datetime) -> float:
            share = (min(max(moment, lo), end) - lo).total_seconds() / total
            return LEFT + share * (WIDTH - LEFT - RIGHT)

        for a, b, state in parts if lo == start else spans(rows, lo, end, seen):
            _hatch(draw, (x(a), top, x(b), bottom), state)
        for a, b in windows:
            draw.rectangle([x(a), top - 12, x(b), bottom], fill=SHADE)
        _ticks(draw, x, (lo, end), zone, bottom, small)
        return x

    x = band(start, BAND_TOP, BAND_BOTTOM)
    if zoom:
        draw.text((LEFT, zoom_top - 20), "The last 2 h, closer:", fill=(0, 0, 0), font=small)
        band(end - ZOOM, zoom_top, zoom_top + ZOOM_HEIGHT)
        mark = x(end - ZOOM)
        draw.line([mark, BAND_TOP - 4, mark, BAND_BOTTOM + 4], fill=(0, 0, 0), width=2)
    share = ready_share(parts)
    known = sum((b - a).total_seconds() for a, b, s in parts if s is not None) / 3600
    ready = (
        "not watched"
        if share is None
        else f"ready {share * 100:.1f} % of the {known:.1f} h watched"
    )
    # plain ASCII punctuation: the bundled font has no dashes
    when = end.astimezone(zone)
    title = f"IBKR gateway, {span_text(end - start)} to {when:%Y-%m-%d %H:%M} {when.tzname()}"
    draw.text((LEFT, 18), f"{title}: {ready}", fill=(0, 0, 0), font=font)
    if windows:
        draw.text((LEFT, 42), "shaded: IBKR restart windows", fill=(60, 60, 60), font=small)
    for n, line in enumerate(entries):
        y = legend_top + 22 * n
        for key, name, lx in line:
            box = (lx, y, lx + 24, y + 14)
            if key == "shade":
                draw.rectangle(box, fill=SHADE)
            else:
                _hatch(draw, box, key if isinstance(key, State) else None)
            draw.rectangle(box, outline=(160, 160, 160))
            draw.text((lx + 30, y), name, fill=(0, 0, 0), font=small)
    return image


def write_timeline(
    history: History, path: Path, now: datetime, config: Config, since: datetime | None = None
) -> Path:
    """Render the time from ``since`` (24 hours before ``now`` when not given) to ``path``
    as PNG, IBKR's restart windows for the configured region shaded; ValueError for a span
    under 10 minutes."""

    start = now - timedelta(hours=24) if since is None else min(since, now)
    if now - start < timedelta(minutes=10):
        raise ValueError("--since: the picture needs at least 10 minutes before now")
    clock = IbkrClock.from_config(config)
    shade = [(w.start, w.end) for w in windows(clock.region, start, now)] if clock.enabled else []
    # the state in force before the window counts too; a named gateway's rows only
    rows = [row for row in history.rows() if of_gateway(row, config.gateway)]
    hours = (now - start).total_seconds() / 3600
    image = render(rows, now, hours=hours, shade=shade, seen=history.seen())
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path
