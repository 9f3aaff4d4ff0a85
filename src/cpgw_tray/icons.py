"""Tray icons: the state's colour fills most of the icon; a white glyph, whose shape
differs between colour groups, makes each state readable without colour vision. Beside
the states' icons there is one more: an expected drop during an IBKR restart window
(:data:`cpgw_tray.maintenance.ICON`, a clock face on blue).

Drawn at 4x and scaled down for clean edges at 16-64 px; each (icon, size) is drawn
once and cached.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

from . import maintenance
from .status import LOOKS, Glyph, Look, State

SUPERSAMPLE = 4
WHITE = (255, 255, 255, 255)

Icon = State | str  # a state, or maintenance.ICON
ICONS: tuple[Icon, ...] = (*State, maintenance.ICON)


def icon_name(icon: Icon) -> str:
    """The icon's file name part: the state's value, or "maintenance"."""
    return icon.value if isinstance(icon, State) else icon


def look_of(icon: Icon) -> Look:
    if isinstance(icon, State):
        return LOOKS[icon]
    if icon == maintenance.ICON:
        return maintenance.LOOK
    raise ValueError(f"no icon named {icon!r}")


def _glyph(draw: ImageDraw.ImageDraw, glyph: Glyph, n: int) -> None:
    """Draw ``glyph`` in white on an ``n``-pixel canvas."""
    w = max(1, round(n * 0.12))  # stroke width

    def p(x: float, y: float) -> tuple[float, float]:
        return (x * n, y * n)

    if glyph is Glyph.CHECK:
        draw.line([p(0.27, 0.52), p(0.44, 0.69), p(0.74, 0.33)], fill=WHITE, width=w, joint="curve")
    elif glyph is Glyph.CROSS:
        draw.line([p(0.31, 0.31), p(0.69, 0.69)], fill=WHITE, width=w)
        draw.line([p(0.69, 0.31), p(0.31, 0.69)], fill=WHITE, width=w)
    elif glyph is Glyph.WARNING:  # an exclamation mark
        draw.line([p(0.5, 0.22), p(0.5, 0.58)], fill=WHITE, width=w)
        r = w * 0.62
        cx, cy = p(0.5, 0.74)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=WHITE)
    elif glyph is Glyph.CLOCK:  # a clock face: a restart on IBKR's timetable
        r, thin = n * 0.28, round(w * 0.65)
        cx, cy = p(0.5, 0.5)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=WHITE, width=thin)
        draw.line([p(0.5, 0.52), p(0.5, 0.33)], fill=WHITE, width=thin)
        draw.line([p(0.5, 0.52), p(0.62, 0.58)], fill=WHITE, width=thin)
    else:  # QUESTION
        draw.arc([p(0.34, 0.2), p(0.66, 0.5)], start=180, end=90, fill=WHITE, width=w)
        draw.line([p(0.5, 0.49), p(0.5, 0.6)], fill=WHITE, width=w)
        r = w * 0.62
        cx, cy = p(0.5, 0.75)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=WHITE)


@lru_cache(maxsize=64)
def icon_image(icon: Icon, size: int = 64) -> Image.Image:
    """The tray icon for a state (or the restart icon): a disc of its colour with its
    glyph."""
    look = look_of(icon)
    n = size * SUPERSAMPLE
    image = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    margin = n * 0.02
    draw.ellipse([margin, margin, n - margin, n - margin], fill=(*look.colour, 255))
    _glyph(draw, look.glyph, n)
    return image.resize((size, size), Image.Resampling.LANCZOS)
