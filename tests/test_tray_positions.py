"""Issue 26: the menu's actions never move under the pointer. Across all states and the
restart window's look every action row keeps one index (the status rows above them have
a fixed count); a bad settings file says why on at most three rows."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray.model.ibkr_clock import next_window
from cpgw_tray.model.status import State, Status
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.menu import Entry
from cpgw_tray.tray.settings_menu import SettingsItems
from cpgw_tray.tray.tray_app import CLOCK_ROWS, STATUS_ROWS, TrayApp

from .test_settings_tray import tray_with_settings
from .test_tray import FACTS_KNOWN, snapshot

ACTIONS = (
    "Check now",
    "Open login page",
    "Reauthenticate",
    "Log out",
    "Session care",
    "Settings…",
    "Start at login",
    "Show history",
    "Save diagnostics",
    "Notifications",
    "Quit",
)


def action_rows(entries: list[Entry]) -> dict[str, int]:
    """Where each action sits, by the words it starts with."""
    found: dict[str, int] = {}
    for i, entry in enumerate(entries):
        for name in ACTIONS:
            if entry.text.startswith(name):
                assert name not in found, f"{name} twice"
                found[name] = i
    return found


def looks(tmp_path: Path) -> list[tuple[str, TrayApp, DummyBackend, Status]]:
    """Every state with every fact known and a long explanation, and the restart
    window's look."""
    path = tmp_path / "c.toml"
    path.write_text('on_competing = "take_back_after"\n')
    tray, backend, _ = tray_with_settings(path)
    long = "A much longer explanation of what happened and what to do next " * 4
    cases = [(s.value, tray, backend, snapshot(s, detail=long, **FACTS_KNOWN)) for s in State]
    start = datetime(2026, 11, 26, 12, 0, tzinfo=timezone.utc)
    restart = next_window(tray.ibkr.region, start, tray.ibkr.schedule)
    at = restart.start + timedelta(minutes=1)
    window = replace(snapshot(State.LOGGED_OUT), checked_at=at, maintenance_until=restart.end)
    cases.append(("maintenance", tray, backend, window))
    return cases


def test_actions_keep_one_position_in_every_state(tmp_path: Path) -> None:
    places = {}
    for name, tray, backend, status in looks(tmp_path):
        backend.drain()
        tray.apply(status)
        menu = list(backend.menu)
        places[name] = action_rows(menu)
        assert places[name].keys() == set(ACTIONS), name
        size = STATUS_ROWS - (0 if tray.ibkr.enabled else CLOCK_ROWS)
        assert menu[size].separator, name  # the status rows: a fixed count
        assert tray.view().expected is (name == "maintenance"), name  # its own look
    first = places[State.READY.value]
    assert {name: where for name, where in places.items() if where != first} == {}


def test_log_in_now_is_a_status_row_and_the_snooze_too(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("")
    tray, backend, _ = tray_with_settings(tmp_path / "c.toml")
    backend.drain()
    tray.apply(snapshot(State.LOGGED_OUT))
    texts = [e.text for e in backend.menu]
    assert texts[0] == "Log in now…"
    assert texts.index("Snooze login reminders for 1 hour") < STATUS_ROWS


@pytest.mark.parametrize("lines", [1, 22])
def test_a_bad_settings_file_moves_no_action_and_takes_at_most_three_rows(
    tmp_path: Path, lines: int
) -> None:
    cases = looks(tmp_path)
    _, tray, backend, ready = cases[0]
    backend.drain()
    tray.apply(ready)
    good = action_rows(list(backend.menu))  # a good file, ready
    items = next(s for s in tray.sections if isinstance(s, SettingsItems))
    items.failed("\n".join(f"key{n}: not a number (line {n})" for n in range(lines)))
    for name, tray, backend, status in cases:  # every state and the restart window's look
        backend.drain()
        tray.apply(status)
        assert action_rows(list(backend.menu)) == good, name
        texts = [e.text for e in backend.menu]
        note = backend.menu[texts.index("Start at login") + 1]
        assert note.text == "Settings file has an error; last good settings kept", name
        why = [e.text for e in note.submenu]
        assert 1 <= len(why) <= 3 and "key0" in why[0], why


def test_a_key_waiting_for_a_restart_moves_no_action(tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("")
    tray, backend, items = tray_with_settings(tmp_path / "c.toml")
    backend.drain()
    good = action_rows(list(backend.menu))
    items.restart_needed = ["url", "gateway_dir"]
    tray.refresh()
    backend.drain()
    assert action_rows(list(backend.menu)) == good
    assert "Restart cpgw-tray to apply: url, gateway_dir" in [e.text for e in backend.menu]
