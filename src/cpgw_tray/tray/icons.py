"""Tray icons: the state's colour fills most of the icon; a white glyph, whose shape
differs between colour groups (and between the two orange states), makes each state
readable without colour vision. Beside the states' icons there is one more: an expected
drop during an IBKR restart window (:data:`cpgw_tray.care.maintenance.ICON`, a clock face on
blue). With several gateways watched the icon is the worst one's with a mark: a small
white ring in the top-right corner (:func:`several_icon`).

Drawn at 4x and scaled down for clean edges at 16-64 px; each (icon, size) is drawn
once and cached. :func:`xorg_icon` fills the whole square: pystray's xorg backend pastes
the image on a black canvas without its alpha, so a disc would get black corners.
"""

from __future__ import annotations

from functools import lru_cache

from PIL import Image, ImageDraw

from ..care import maintenance
from ..model.status import LOOKS, Glyph, Look, State

SUPERSAMPLE = 4
WHITE = (255, 255, 255, 255)

Icon = State | str  # a state, maintenance.ICON, SETTINGS_ICON or a several_icon(...)
SETTINGS_ICON = "settings"  # settings too bad to start with (named so, not "Gateway error")
SETTINGS_LOOK = Look(LOOKS[State.ERROR].colour, Glyph.CROSS, None, "Settings error")
ICONS: tuple[Icon, ...] = (*State, maintenance.ICON, SETTINGS_ICON)


def icon_name(icon: Icon) -> str:
    """The icon's file name part: the state's value, "maintenance" or "settings"."""
    return icon.value if isinstance(icon, State) else icon


SEVERAL = "several-"  # the prefix of a several gateways' icon: the worst one's, marked


def several_icon(icon: Icon) -> str:
    """The icon of several gateways whose worst look is ``icon``'s: it, with the mark."""
    return f"{SEVERAL}{icon_name(icon)}"


def _unmarked(icon: Icon) -> Icon:
    if isinstance(icon, str) and icon.startswith(SEVERAL):
        name = icon[len(SEVERAL) :]
        return next((s for s in State if s.value == name), name)
    return icon


SEVERAL_ICONS: tuple[str, ...] = tuple(several_icon(icon) for icon in ICONS)


def look_of(icon: Icon) -> Look:
    icon = _unmarked(icon)
    if isinstance(icon, State):
        return LOOKS[icon]
    if icon == maintenance.ICON:
        return maintenance.LOOK
    if icon == SETTINGS_ICON:
        return SETTINGS_LOOK
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
    elif glyph is Glyph.ARROWS:  # two arrows pulling opposite ways: competing sessions
        for y, (tail, head) in ((0.37, (0.24, 0.76)), (0.63, (0.76, 0.24))):
            draw.line([p(tail, y), p(head, y)], fill=WHITE, width=w)
            back = 0.15 if head > tail else -0.15
            draw.polygon(
                [p(head + back * 0.35, y), p(head - back, y - 0.11), p(head - back, y + 0.11)],
                fill=WHITE,
            )
    elif glyph is Glyph.HOURGLASS:  # wait
        top, bottom, left, right = 0.2, 0.8, 0.3, 0.7
        draw.line([p(left - 0.04, top), p(right + 0.04, top)], fill=WHITE, width=w)
        draw.line([p(left - 0.04, bottom), p(right + 0.04, bottom)], fill=WHITE, width=w)
        thin = max(1, round(w * 0.6))
        draw.line([p(left, top), p(right, bottom)], fill=WHITE, width=thin)
        draw.line([p(right, top), p(left, bottom)], fill=WHITE, width=thin)
        draw.polygon([p(0.5, 0.56), p(right - 0.02, bottom), p(left + 0.02, bottom)], fill=WHITE)
        draw.polygon([p(left + 0.1, 0.33), p(right - 0.1, 0.33), p(0.5, 0.45)], fill=WHITE)
    else:  # QUESTION
        draw.arc([p(0.34, 0.2), p(0.66, 0.5)], start=180, end=90, fill=WHITE, width=w)
        draw.line([p(0.5, 0.49), p(0.5, 0.6)], fill=WHITE, width=w)
        r = w * 0.62
        cx, cy = p(0.5, 0.75)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=WHITE)


@lru_cache(maxsize=64)
def icon_image(icon: Icon, size: int = 64, *, square: bool = False) -> Image.Image:
    """The tray icon for a state (or the restart icon): a disc (or a full square) of its
    colour with its glyph."""
    look = look_of(icon)
    n = size * SUPERSAMPLE
    image = Image.new("RGBA", (n, n), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    if square:
        draw.rectangle([0, 0, n, n], fill=(*look.colour, 255))
    else:
        margin = n * 0.02
        draw.ellipse([margin, margin, n - margin, n - margin], fill=(*look.colour, 255))
    _glyph(draw, look.glyph, n)
    if _unmarked(icon) != icon:  # several gateways: a white ring, top right
        r, w = n * 0.17, max(1, round(n * 0.05))
        cx, cy = n * 0.8, n * 0.2
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=(0, 0, 0, 255), outline=WHITE, width=w)
    return image.resize((size, size), Image.Resampling.BOX)  # no ringing at the edges


def xorg_icon(icon: Icon) -> Image.Image:
    """The icon for pystray's xorg backend: the full square in the icon's colour.

    pystray 0.19.5 paints an XEmbed window of the root's depth, pasting the image on a
    black RGB canvas with its alpha dropped, so transparent corners show black. Filling
    the square works on every XEmbed host; the tray's ARGB visual (where a host offers
    one) would need pystray's window made again with another visual and colormap.
    """
    return icon_image(icon, 64, square=True)


def fit(image: Image.Image, width: int, height: int) -> Image.Image:
    """What an XEmbed window of ``width`` x ``height`` shows of a square icon: the icon
    at the window's shorter side, centred, the rest filled with the icon's own edge
    colour, so a tall slot (trayer gives 24 x 62) is neither stretched nor black."""
    side = max(1, min(width, height))
    square = image.convert("RGB").resize((side, side), Image.Resampling.BOX)
    canvas = Image.new("RGB", (width, height), square.getpixel((0, 0)))
    canvas.paste(square, ((width - side) // 2, (height - side) // 2))
    return canvas
