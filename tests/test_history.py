"""The history: one row per change, bounded and rotated, corrupt lines skipped; the
`history` command; the 24 h timeline picture, read back pixel by pixel."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray import paths
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.history import History, parse_since
from cpgw_tray.outlets.timeline import (
    BAND_BOTTOM,
    BAND_TOP,
    LEFT,
    NO_DATA,
    RIGHT,
    WIDTH,
    render,
    spans,
)

from .conftest import run_cli

START = datetime(2026, 11, 27, 0, 0, tzinfo=timezone.utc)
URL = "https://127.0.0.1:5000/v1/api/iserver/auth/status"


def status(state: State, at: datetime, detail: str = "d") -> Status:
    return Status(state, LOOKS[state].label, detail, checked_at=at, url=URL)


def simulated_day(history: History) -> list[tuple[datetime, State]]:
    """A trader's day: ready all day, a nightly drop, a login, a gateway restart."""
    day = [
        (START + timedelta(hours=0), State.READY),
        (START + timedelta(hours=5, minutes=15), State.NOT_AUTHENTICATED),
        (START + timedelta(hours=6, minutes=45), State.LOGGED_OUT),
        (START + timedelta(hours=8), State.READY),
        (START + timedelta(hours=14), State.GATEWAY_DOWN),
        (START + timedelta(hours=14, minutes=5), State.READY),
    ]
    for at, state in day:
        history.record(status(state, at))
        history.record(status(state, at + timedelta(seconds=15)))  # same state: no row
    history.record(status(State.READY, START + timedelta(hours=24)))  # watched all day
    return day


def test_one_row_per_change_with_the_previous_state(tmp_path: Path) -> None:
    history = History(tmp_path / "h.jsonl", source="watch")
    day = simulated_day(history)
    rows = list(history.rows())
    assert [(r.at, r.state) for r in rows] == [(at, s.value) for at, s in day]
    previous = [None, "ready", "not_authenticated", "logged_out", "ready", "gateway_down"]
    assert [r.previous for r in rows] == previous
    assert {r.source for r in rows} == {"watch"} and rows[0].url == "https://127.0.0.1:5000/"
    line = json.loads((tmp_path / "h.jsonl").read_text().splitlines()[0])
    assert set(line) == {"at", "state", "previous", "detail", "url", "source", "gateway"}
    assert line["gateway"] is None  # no table names it
    assert line["at"] == "2026-11-27T00:00:00.000Z"


def test_corrupt_lines_are_skipped_never_fatal(tmp_path: Path) -> None:
    path = tmp_path / "h.jsonl"
    history = History(path, source="tray")
    history.record(status(State.READY, START))
    with open(path, "a", encoding="utf-8") as out:
        out.write('{"at": "2026-11-27T01:00:00Z", "state": "rea')  # a crash mid-line
        out.write("\n\x00\xff garbage\n[1, 2]\n")
        out.write('{"at": "yesterday", "state": "ready"}\n{"at": "2026-11-27T01:00:00Z"}\n')
        out.write('{"at": "2026-11-27T01:00:00Z", "state": "no_such_state"}\n')
    history.record(status(State.LOGGED_OUT, START + timedelta(hours=2)))
    assert [r.state for r in history.rows()] == ["ready", "logged_out"]


def test_bounded_and_rotated(tmp_path: Path) -> None:
    history = History(tmp_path / "h.jsonl", source="watch", max_bytes=2000, backups=2)
    states = [State.READY, State.LOGGED_OUT]
    for n in range(200):
        history.record(status(states[n % 2], START + timedelta(minutes=n)))
    files = history.files()
    assert [p.name for p in files] == ["h.jsonl.2", "h.jsonl.1", "h.jsonl"]
    assert all(p.stat().st_size <= 2000 for p in files)
    rows = list(history.rows())
    assert rows and rows[-1].at == START + timedelta(minutes=199)
    assert all(a.at < b.at for a, b in itertools.pairwise(rows))  # oldest first
    assert len(rows) < 200  # the oldest were dropped


def test_a_history_that_cannot_be_written_costs_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    history = History(blocker / "h.jsonl", source="watch")
    assert history.record(status(State.READY, START)) is True
    assert "cannot write the history" in caplog.text


def test_parse_since() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=timezone.utc)
    assert parse_since("24h", now) == now - timedelta(hours=24)
    assert parse_since("90m", now) == now - timedelta(minutes=90)
    assert parse_since("7d", now) == now - timedelta(days=7)
    assert parse_since("2026-11-28T09:00", now) == datetime(2026, 11, 28, 9, tzinfo=timezone.utc)
    assert parse_since("2026-11-28T09:00+01:00", now).hour == 9
    with pytest.raises(ValueError, match="24h, 90m"):
        parse_since("yesterday", now)


def test_history_command_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    history = History(paths.history_file(), source="watch")  # the isolated test HOME's
    day = simulated_day(history)
    code, out = run_cli("history", "--since", "2026-11-26T00:00Z", "--json")
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["state"] for r in rows if "state" in r] == [s.value for _, s in day]
    code, out = run_cli("history", "--since", "2026-11-27T13:00Z")
    assert code == 0 and "gateway_down" in out and "not_authenticated" not in out
    code, _ = run_cli("history", "--since", "last week")
    assert code == 64 and "--since" in capsys.readouterr().err


def _colour_at(image: object, moment: datetime, end: datetime) -> tuple[int, int, int]:
    start = end - timedelta(hours=24)
    share = (moment - start).total_seconds() / (end - start).total_seconds()
    x = round(LEFT + share * (WIDTH - LEFT - RIGHT))
    return image.getpixel((x, (BAND_TOP + BAND_BOTTOM) // 2))  # type: ignore[attr-defined,no-any-return]


def test_timeline_has_a_band_per_state_in_the_contract_colours(tmp_path: Path) -> None:
    history = History(tmp_path / "h.jsonl", source="tray")
    simulated_day(history)
    end = START + timedelta(hours=24)
    image = render(list(history.rows()), end, seen=history.seen())
    assert _colour_at(image, START + timedelta(hours=3), end) == LOOKS[State.READY].colour
    yellow = LOOKS[State.NOT_AUTHENTICATED].colour
    assert _colour_at(image, START + timedelta(hours=6), end) == yellow
    assert _colour_at(image, START + timedelta(hours=7), end) == LOOKS[State.LOGGED_OUT].colour
    assert (
        _colour_at(image, START + timedelta(hours=14, minutes=2), end)
        == LOOKS[State.GATEWAY_DOWN].colour
    )
    assert _colour_at(image, START + timedelta(hours=20), end) == LOOKS[State.READY].colour
    # before the first row nothing is known: its own colour, no state's
    earlier = render(list(history.rows()), START + timedelta(hours=12))
    assert _colour_at(earlier, START - timedelta(hours=6), START + timedelta(hours=12)) == (NO_DATA)


def test_timeline_ready_share_and_shaded_windows(tmp_path: Path) -> None:
    history = History(tmp_path / "h.jsonl", source="tray")
    simulated_day(history)
    end = START + timedelta(hours=24)
    parts = spans(list(history.rows()), end - timedelta(hours=24), end, history.seen())
    from cpgw_tray.outlets.timeline import ready_share

    share = ready_share(parts)
    assert share is not None and abs(share - (24 - 2.75 - 5 / 60) / 24) < 1e-9
    window = (START + timedelta(hours=5), START + timedelta(hours=6))
    shaded = render(list(history.rows()), end, shade=[window], seen=history.seen())
    plain = _colour_at(
        render(list(history.rows()), end, seen=history.seen()),
        START + timedelta(hours=5, minutes=5),
        end,
    )
    dark = _colour_at(shaded, START + timedelta(hours=5, minutes=5), end)
    assert sum(dark) < sum(plain)  # shaded where IBKR restarts
    assert _colour_at(shaded, START + timedelta(hours=3), end) == LOOKS[State.READY].colour


def test_history_png_command(tmp_path: Path) -> None:
    from PIL import Image

    History(paths.history_file(), source="watch").record(
        status(State.READY, datetime.now(timezone.utc) - timedelta(hours=2))
    )
    target = tmp_path / "day.png"
    code, out = run_cli("history", "--png", str(target))
    assert code == 0 and str(target) in out
    with Image.open(target) as image:
        assert image.size == (WIDTH, 220)


def test_watch_and_tray_record_each_change_once(tmp_path: Path) -> None:
    """Both watchers hand every verdict to the history, which keeps the changes."""
    import io
    import threading

    from cpgw_tray.cli.watch import Printer
    from cpgw_tray.client.api import GatewayClient
    from cpgw_tray.settings.config import load
    from cpgw_tray.tray.backends.dummy import DummyBackend
    from cpgw_tray.tray.tray_app import TrayApp

    from .test_tray import IdlePoller

    watch_history = History(tmp_path / "w.jsonl", source="watch")
    printer = Printer(io.StringIO(), True, threading.Event(), watch_history)
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    tray_history = History(tmp_path / "t.jsonl", source="tray")
    app = TrayApp(
        config, GatewayClient(config.url, verify=False), poller=IdlePoller(), history=tray_history
    )
    app.start(DummyBackend())
    for n, state in enumerate([State.READY, State.READY, State.LOGGED_OUT, State.READY]):
        printer(status(state, START + timedelta(seconds=15 * n)))
        app.on_status(status(state, START + timedelta(seconds=15 * n)))
    for history, source in [(watch_history, "watch"), (tray_history, "tray")]:
        rows = list(history.rows())
        assert [r.state for r in rows] == ["ready", "logged_out", "ready"]
        assert {r.source for r in rows} == {source}


def test_history_png_shades_the_regions_restart_windows(tmp_path: Path) -> None:
    """The picture of a day in region na: 00:15–01:45 ET is shaded, noon is not."""
    from PIL import Image

    from cpgw_tray.outlets.timeline import write_timeline
    from cpgw_tray.settings.config import load

    history = History(tmp_path / "h.jsonl", source="tray")
    history.record(status(State.READY, datetime(2026, 11, 24, 12, tzinfo=timezone.utc)))
    end = datetime(2026, 11, 25, 18, 0, tzinfo=timezone.utc)  # Wednesday 13:00 ET
    history.record(status(State.READY, end))  # steady, and watched, until the end
    config = load({"region": "na", "restart_windows": True}, env={})
    path = write_timeline(history, tmp_path / "day.png", end, config)
    with Image.open(path) as image:
        inside = _colour_at(image, datetime(2026, 11, 25, 6, 0, tzinfo=timezone.utc), end)
        noon = _colour_at(image, datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc), end)
    assert noon == LOOKS[State.READY].colour and sum(inside) < sum(noon)
