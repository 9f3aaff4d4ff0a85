"""The history picture reads on its own: each state its own swatch, named in words, the
legend whole, ticks that say their zone, a closer look at the last 2 hours, and the span
``--since`` asks for."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image, ImageDraw

from cpgw_tray import paths
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.history import History
from cpgw_tray.outlets.timeline import (
    BAND_BOTTOM,
    BAND_TOP,
    LEFT,
    RIGHT,
    WIDTH,
    ZOOM_HEIGHT,
    _hatch,
    _ticks,
    legend,
    render,
    spans,
)

from .conftest import run_cli

END = datetime(2026, 11, 28, tzinfo=timezone.utc)


def status(state: State, at: datetime) -> Status:
    return Status(state, LOOKS[state].label, "d", checked_at=at, url="https://127.0.0.1:5000")


def record(history: History, day: list[tuple[float, State]], end: datetime = END) -> None:
    for hours, state in day:
        history.record(status(state, end - timedelta(hours=hours)))
    history.record(status(State.READY, end))  # watched to the end


def every_state(history: History) -> None:
    record(history, [(24 - n, s) for n, s in enumerate(State) if s is not State.UNKNOWN])


def dominant(image: Any, box: tuple[int, int, int, int]) -> tuple[int, int, int]:
    """The commonest colour in ``box`` (hatching takes the rest)."""
    return max(image.crop(box).getcolors(1 << 16))[1]  # type: ignore[no-any-return]


def colours(image: Any) -> set[tuple[int, int, int]]:
    return {colour for _, colour in image.getcolors(1 << 20)}


def test_each_state_its_own_swatch_named_in_words() -> None:
    swatches = {}
    for state in State:
        image = Image.new("RGB", (40, 20), "white")
        _hatch(ImageDraw.Draw(image), (0, 0, 39, 19), state)
        swatches[state] = image.tobytes()
    assert len(set(swatches.values())) == len(State)  # the yellows and reds too
    parts = [(END, END, s) for s in State] + [(END, END, None)]
    words = [name for _, name in legend(parts, shaded=True)]
    assert "Brokerage session not started" in words and "Logged out" in words
    assert "Gateway not running" in words and "IBKR restart window" in words
    assert not any("_" in w for w in words)  # no raw state names


def test_the_legend_is_never_cut(tmp_path: Path) -> None:
    history = History(tmp_path / "h.jsonl", source="tray")
    every_state(history)
    image = render(list(history.rows()), END, shade=[(END - timedelta(hours=3), END)])
    parts = spans(list(history.rows()), END - timedelta(hours=24), END)
    assert len(legend(parts, shaded=True)) == len(State) - 1 + 1  # every state shown, windows
    right = image.crop((WIDTH - RIGHT + 4, 0, WIDTH, image.height))
    assert colours(right) == {(255, 255, 255)}  # nothing runs off the right edge
    bottom = image.crop((0, image.height - 6, WIDTH, image.height))
    assert colours(bottom) == {(255, 255, 255)}  # nor off the bottom


class Recorder:
    """Records what is drawn."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def text(self, at: object, text: str, **style: object) -> None:
        self.texts.append(text)

    def line(self, *args: object, **style: object) -> None:
        pass


def test_ticks_are_on_the_local_clock_and_say_its_zone() -> None:
    hk = ZoneInfo("Asia/Hong_Kong")
    for span, label in ((timedelta(hours=24), "08:00"), (timedelta(days=7), "27.11")):
        start, drawn = END - span, Recorder()

        def x(moment: datetime, start: datetime = start, span: timedelta = span) -> float:
            return LEFT + (moment - start) / span * (WIDTH - LEFT - RIGHT)

        _ticks(drawn, x, (start, END), hk, 0, None)  # type: ignore[arg-type]
        assert drawn.texts[-1] == "HKT"  # the zone, at the axis' end
        assert label in drawn.texts  # 00:00 UTC is 08:00 in Hong Kong


def test_a_zoomed_strip_of_the_last_2_hours_when_the_state_changed_in_them(
    tmp_path: Path,
) -> None:
    history = History(tmp_path / "h.jsonl", source="tray")
    record(history, [(20, State.READY)])
    calm = render(list(history.rows()), END)
    history.record(status(State.LOGGED_OUT, END - timedelta(minutes=60)))
    history.record(status(State.READY, END - timedelta(minutes=30)))
    history.record(status(State.READY, END))
    busy = render(list(history.rows()), END)
    assert busy.height > calm.height
    top = BAND_BOTTOM + 55  # the strip: the last 2 h across the whole width
    x = LEFT + (WIDTH - LEFT - RIGHT) * 0.6  # 48 min before the end: logged out
    box = (int(x) - 6, top + 5, int(x) + 6, top + ZOOM_HEIGHT - 5)
    assert dominant(busy, box) == LOOKS[State.LOGGED_OUT].colour
    assert dominant(calm, box) == (255, 255, 255)


def test_since_applies_to_the_picture(tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    history = History(paths.history_file(), source="watch")
    record(history, [(20, State.READY), (19, State.GATEWAY_DOWN), (18, State.READY)], now)
    red = LOOKS[State.GATEWAY_DOWN].colour
    for since, has_red in (("24h", True), ("6h", False)):
        target = tmp_path / f"{since}.png"
        code, _ = run_cli("history", "--since", since, "--png", str(target))
        assert code == 0
        with Image.open(target) as image:
            band = image.crop((LEFT, BAND_TOP + 5, WIDTH - RIGHT, BAND_BOTTOM - 5))
            assert (red in colours(band)) is has_red, since
