"""The history as a picture: a 24-hour band coloured by state (the contract's colours),
hour ticks in local time, the share of time ready, and IBKR's restart windows shaded."""

from __future__ import annotations

from collections.abc import Sequence
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


def spans(
    rows: Sequence[Row], start: datetime, end: datetime
) -> list[tuple[datetime, datetime, State | None]]:
    """The state in force over ``[start, end)`` as spans; None where nothing is known
    (before the first row). Rows must be oldest first."""
    current: State | None = None
    at = start
    out: list[tuple[datetime, datetime, State | None]] = []
    for row in rows:
        if row.at <= start:
            current = State(row.state)
            continue
        if row.at >= end:
            break
        if row.at > at:
            out.append((at, row.at, current))
        current, at = State(row.state), row.at
    if end > at:
        out.append((at, end, current))
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
    parts = spans(rows, start, end)
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
    ready = "no data" if share is None else f"ready {share * 100:.1f} % of the known time"
    # plain ASCII punctuation: the bundled font has no dashes
    title = f"IBKR gateway, {hours} h to {end.astimezone(zone):%Y-%m-%d %H:%M}: {ready}"
    draw.text((LEFT, 18), title, fill=(0, 0, 0), font=font)
    if shade:
        draw.text((LEFT, 42), "shaded: IBKR restart windows", fill=(60, 60, 60), font=small)
    seen = [s for s in State if any(p[2] is s for p in parts)]
    lx = LEFT
    for state in seen:
        draw.rectangle([lx, 170, lx + 12, 182], fill=LOOKS[state].colour)
        draw.text((lx + 16, 169), state.value, fill=(0, 0, 0), font=small)
        lx += 30 + 7 * len(state.value)
    return image
