"""The history tried as a careless neighbour would: a crash mid-row, a full disk, two
writers rotating at once, a symlink in its place, and watchers that died; gaps in
watching are told as "not watched", never as the last state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray import paths
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.history import History
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

from ..conftest import run_cli

URL = "https://127.0.0.1:5000/v1/api/iserver/auth/status"
DAY = datetime(2026, 11, 27, tzinfo=timezone.utc)


def status(state: State, at: datetime) -> Status:
    return Status(state, LOOKS[state].label, "d", checked_at=at, url=URL)


def test_a_cut_last_line_costs_no_row_written_after_it() -> None:
    path = paths.history_file()
    History(path, "watch").record(status(State.READY, DAY))
    with open(path, "ab") as cut:
        cut.write(b'{"at": "2026-11-27T01:00:00.000Z", "state": "logged_o')  # a crash
    history = History(path, "watch")
    later = [State.LOGGED_OUT, State.READY, State.GATEWAY_DOWN]
    for n, state in enumerate(later, start=2):
        history.record(status(state, DAY + timedelta(hours=n)))
    assert path.read_bytes().endswith(b"\n")
    code, out = run_cli("history", "--since", "2026-11-26T00:00Z", "--json")
    states = [json.loads(line).get("state") for line in out.splitlines()]
    assert code == 0 and [s for s in states if s] == ["ready", *(s.value for s in later)]


def test_a_symlink_in_the_historys_place_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    link = tmp_path / "state" / "history.jsonl"
    link.parent.mkdir()
    link.symlink_to(precious)
    history = History(link, "tray")
    history.record(status(State.READY, DAY))
    history.record(status(State.LOGGED_OUT, DAY + timedelta(minutes=1)))
    history.started()
    assert precious.read_text() == "mine\n" and link.is_symlink()
    refusals = [r for r in caplog.records if "symbolic link" in r.getMessage()]
    assert len(refusals) == 1


FULL_DISK = """
import resource, signal, sys
from datetime import datetime, timezone
from pathlib import Path
from cpgw_tray.outlets.history import History
from cpgw_tray.model.status import LOOKS, State, Status
path = Path(sys.argv[1])
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a refused write is EFBIG, not a signal
size = path.stat().st_size
resource.setrlimit(resource.RLIMIT_FSIZE, (size + 40, size + 40))  # room for part of a row
at = datetime(2026, 11, 27, 3, tzinfo=timezone.utc)
History(path, "watch").record(Status(State.LOGGED_OUT, "x", "d" * 200, checked_at=at))
"""


@pytest.mark.e2e  # cpgw-tray runs as a process
@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_full_disk_leaves_the_file_at_a_row_boundary(
    tmp_path: Path,
) -> None:
    path = tmp_path / "h.jsonl"
    History(path, "watch").record(status(State.READY, DAY))
    before = path.read_bytes()
    done = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(path)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "cannot write the history" in done.stderr and "File too large" in done.stderr
    assert path.read_bytes() == before  # no part of the refused row is left
    History(path, "watch").record(status(State.GATEWAY_DOWN, DAY + timedelta(hours=4)))
    assert [r.state for r in History(path, "").rows()] == ["ready", "gateway_down"]


WRITER = """
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from cpgw_tray.outlets.history import History
from cpgw_tray.model.status import LOOKS, State, Status
history = History(Path(sys.argv[1]), sys.argv[2], max_bytes=600, backups=400)
start = datetime(2026, 11, 27, tzinfo=timezone.utc)
for n in range(300):
    state = (State.READY, State.LOGGED_OUT)[n % 2]
    at = start + timedelta(seconds=n)
    history.record(Status(state, "x", "d", checked_at=at))
"""


@pytest.mark.e2e  # two writers run as processes
def test_two_writers_rotating_lose_no_row(tmp_path: Path) -> None:
    """The tray and `watch` write and rotate the same history at once: every row kept."""
    path = tmp_path / "h.jsonl"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), source],
            stderr=subprocess.PIPE,
            text=True,
        )
        for source in ("tray", "watch")
    ]
    errors = [w.communicate(timeout=60)[1] for w in writers]
    assert all(w.returncode == 0 for w in writers) and errors == ["", ""]
    rows = list(History(path, "", backups=400).rows())
    assert len(rows) == 600 and len(History(path, "", backups=400).files()) > 2
    for source in ("tray", "watch"):
        assert len([r for r in rows if r.source == source]) == 300


def _colour_at(image: object, moment: datetime, end: datetime) -> tuple[int, int, int]:
    start = end - timedelta(hours=24)
    share = (moment - start).total_seconds() / (end - start).total_seconds()
    x = round(LEFT + share * (WIDTH - LEFT - RIGHT))
    return image.getpixel((x, (BAND_TOP + BAND_BOTTOM) // 2))  # type: ignore[attr-defined,no-any-return]


def test_a_watcher_that_died_leaves_a_gap_not_the_last_state(tmp_path: Path) -> None:
    """One `ready` row 20 h ago and nothing since: not watched, not "ready 100 %"."""
    now = [DAY]
    history = History(tmp_path / "h.jsonl", "tray", now=lambda: now[-1])
    history.started()
    for minutes in range(0, 61, 1):  # an hour of steady checks, then the process died
        history.record(status(State.READY, DAY + timedelta(minutes=minutes)))
    end = DAY + timedelta(hours=21)
    rows, seen = list(history.rows()), history.seen()
    parts = spans(rows, end - timedelta(hours=24), end, seen)
    assert (DAY + timedelta(hours=1), end, None) in parts
    image = render(rows, end, seen=seen)
    assert _colour_at(image, DAY + timedelta(minutes=30), end) == LOOKS[State.READY].colour
    for hours in (2, 10, 20.9):
        assert _colour_at(image, DAY + timedelta(hours=hours), end) == NO_DATA
    # the next start tells the old run's end, at its last saved check
    now.append(end)
    History(tmp_path / "h.jsonl", "tray", now=lambda: now[-1]).started()
    events = [(r.event, r.at) for r in History(tmp_path / "h.jsonl", "").rows() if r.event]
    assert events == [
        ("started", DAY),
        ("stopped", DAY + timedelta(hours=1)),
        ("started", end),
    ]


def test_a_clean_stop_and_the_history_command_tell_the_gap(tmp_path: Path) -> None:
    now = [DAY]
    path = paths.history_file()
    tray = History(path, "tray", now=lambda: now[-1])
    tray.started()
    tray.record(status(State.READY, DAY))
    now.append(DAY + timedelta(hours=2))
    tray.stopped()
    now.append(DAY + timedelta(hours=22))
    watch = History(path, "watch", now=lambda: now[-1])
    watch.started()
    watch.record(status(State.READY, now[-1]))
    end = DAY + timedelta(hours=22, minutes=3)
    parts = spans(list(watch.rows()), end - timedelta(hours=24), end, watch.seen())
    watched = [(a, b, s) for a, b, s in parts if a >= DAY]
    assert watched == [
        (DAY, DAY + timedelta(hours=2), State.READY),
        (DAY + timedelta(hours=2), DAY + timedelta(hours=22), None),
        (DAY + timedelta(hours=22), end, State.READY),
    ]
    # `history` lists the gap; its JSON says when watching began again
    code, out = run_cli("history", "--since", "2026-11-26T00:00Z", "--json")
    lines = [json.loads(line) for line in out.splitlines()]
    gaps = [line for line in lines if line.get("event") == "not_watched"]
    assert code == 0 and len(gaps) >= 1
    assert gaps[0]["at"] == "2026-11-27T02:00:00.000Z"
    assert gaps[0]["until"] == "2026-11-27T22:00:00.000Z"
    assert [line["event"] for line in lines if "event" in line][:3] == [
        "started",
        "stopped",
        "not_watched",
    ]
    code, out = run_cli("history", "--since", "2026-11-26T00:00Z")
    assert code == 0 and "not watched" in out and "started" in out


def test_steady_checks_save_the_last_check_at_most_every_5_minutes(tmp_path: Path) -> None:
    history = History(tmp_path / "state" / "h.jsonl", "watch")
    saved = []
    for n in range(61):  # 15 minutes of checks 15 s apart
        history.record(status(State.READY, DAY + timedelta(seconds=15 * n)))
        saved.append(history.seen()["watch"])
    assert sorted(set(saved)) == [DAY + timedelta(minutes=m) for m in (0, 5, 10, 15)]
    assert len(os.listdir(tmp_path / "state")) == 3  # the history, its lock, its seen file
