"""End-to-end, issue 26: on a real StatusNotifier host (xfce4-panel), the demo's menu as
the panel reads it over D-Bus keeps its actions at the same rows in every state, a
state change sends at most one layout over D-Bus, and a countdown step sends only the
changed labels (``ItemsPropertiesUpdated``), never a layout (``LayoutUpdated``)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .desktop import Desktop, wait_for
from .menu_bus import Signals, about_to_show, top_rows
from .test_e2e_tray import HOST, host_crash, need
from .test_tray_positions import ACTIONS

pytestmark = pytest.mark.e2e

STEPS = [  # Simulate entry, the status row it brings: the nine states the demo can play
    # (gateway_down and unknown need no gateway / no check: tests/test_tray_positions.py)
    ("ready", "Status: Ready"),
    ("competing", "Status: Competing session"),
    ("disconnected", "Status: Disconnected from IBKR"),
    ("not_authenticated", "Status: Brokerage session not started"),
    ("logged_out", "Status: Logged out"),
    ("server_error", "Status: Gateway error"),
    ("rate_limited", "Status: Rate limited"),
    ("access_denied", "Status: Access denied by the gateway"),
    ("hang", "Status: Gateway not responding"),
]


@pytest.fixture
def xfce(tmp_path: Path) -> Iterator[Desktop]:
    """A virtual desktop with xfce4-panel's StatusNotifier host, stopped after."""
    need("appindicator")
    desktop = Desktop(tmp_path / "desk", HOST["appindicator"]).start()
    yield desktop
    desktop.stop()


def actions_at(rows: list[str]) -> dict[str, int]:
    return {name: n for n, row in enumerate(rows) for name in ACTIONS if row.startswith(name)}


def test_demo_menu_stays_put_and_sends_only_what_changed(xfce: Desktop) -> None:
    desktop = xfce
    log_path = desktop.workdir / "demo.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "demo"],
        env=dict(desktop.env, PYSTRAY_BACKEND="appindicator"),
        stdout=open(log_path, "wb"),  # noqa: SIM115 - open while the demo runs
        stderr=subprocess.STDOUT,
    )
    signals = Signals(desktop)
    try:
        wait_for(lambda: "Simulate" in desktop.dbusmenu_labels(), 15, "the Simulate menu")
        places, sent = {}, {}
        for entry, status_line in STEPS:
            signals.settled()
            mark = signals.mark()
            desktop.dbusmenu_click(entry + ":")
            wait_for(lambda s=status_line: s in top_rows(desktop), 5, status_line, step=0.05)
            signals.settled()
            sent[entry] = signals.since(mark)
            rows = top_rows(desktop)
            places[entry] = actions_at(rows)
            assert places[entry].keys() == set(ACTIONS), rows
        print(f"signals per state change: {sent}")
        first = places["ready"]
        assert {e: p for e, p in places.items() if p != first} == {}
        assert all(counts["LayoutUpdated"] <= 1 for counts in sent.values()), sent

        # a countdown step: "Next check in 9 s" while the panel shows the menu
        desktop.dbusmenu_click("rate_limited:")
        wait_for(lambda: "Status: Rate limited" in top_rows(desktop), 5, "rate limited")
        signals.settled()
        about_to_show(desktop)
        mark = signals.mark()
        shown = [r for r in top_rows(desktop) if r.startswith("Next check in")]
        assert shown, top_rows(desktop)
        for _ in range(2):  # two steps of the countdown, seen by the panel
            wait_for(
                lambda s=shown: [r for r in top_rows(desktop) if r.startswith("Next check")] != s,
                5,
                "the countdown's next step",
                step=0.1,
            )
            shown = [r for r in top_rows(desktop) if r.startswith("Next check")]
        counts = signals.since(mark)
        print(f"signals over two countdown steps: {counts}")
        assert counts["LayoutUpdated"] == 0 and counts["ItemsPropertiesUpdated"] >= 2
        assert host_crash(desktop) is None
    finally:
        signals.stop()
        proc.terminate()
        proc.wait(5)
    assert "Traceback" not in log_path.read_text(errors="replace")
