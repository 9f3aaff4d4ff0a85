"""End-to-end, issue 26: on a real StatusNotifier host (xfce4-panel), the menu as the
panel reads it over D-Bus keeps its actions at the same rows in all 11 states, the IBKR
restart window's look and with a bad settings file; a state change sends at most one
layout over D-Bus, and a countdown step sends only the changed labels
(``ItemsPropertiesUpdated``), never a layout (``LayoutUpdated``).

The demo plays ten states, the restart window (*nightly restart*) and a bad edit of its
settings file, at a fixed moment (``demo --clock``), never by the time of day; ``unknown``
(no check finished yet) is a ``cpgw-tray tray`` whose first check hangs on a simulator of
the test's own, then ``ready`` in the same tray."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray.model.ibkr_clock import windows
from cpgw_tray.simulator import Simulator

from .desktop import Desktop, wait_for
from .menu_bus import Signals, about_to_show, top_rows
from .test_e2e_tray import HOST, host_crash, need
from .test_tray_positions import ACTIONS

pytestmark = pytest.mark.e2e

STEPS = [  # Simulate entry, the status row it brings: the ten states the demo plays
    ("ready", "Status: Ready"),
    ("competing", "Status: Competing session"),
    ("disconnected", "Status: Disconnected from IBKR"),
    ("not_authenticated", "Status: Brokerage session not started"),
    ("logged_out", "Status: Logged out"),
    ("server_error", "Status: Gateway error"),
    ("rate_limited", "Status: Rate limited"),
    ("access_denied", "Status: Access denied by the gateway"),
    ("hang", "Status: Gateway not responding"),
    ("gateway down", "Status: Gateway not running"),
]
DEMO_AT = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)  # a Wednesday, 10:00 in New York
EXPECTED = "(expected during the restart)"  # the restart window's status row ends so
SETTINGS_ERROR = "Settings file has an error; last good settings kept"


@pytest.fixture
def xfce(tmp_path: Path) -> Iterator[Desktop]:
    """A virtual desktop with xfce4-panel's StatusNotifier host, stopped after."""
    need("appindicator")
    desktop = Desktop(tmp_path / "desk", HOST["appindicator"]).start()
    yield desktop
    desktop.stop()


def actions_at(rows: list[str]) -> dict[str, int]:
    return {name: n for n, row in enumerate(rows) for name in ACTIONS if row.startswith(name)}


def quiet_region(now: datetime) -> str | None:
    """A region with no IBKR restart window from 10 minutes ago to 15 ahead: its states
    look then as they do outside one (None on Saturday morning, when IBKR's weekend
    maintenance covers every region)."""
    span = (now - timedelta(minutes=10), now + timedelta(minutes=15))
    return next((region for region in ("na", "eu", "ap") if not windows(region, *span)), None)


def launch(desktop: Desktop, name: str, *argv: str, **env: str) -> subprocess.Popen[bytes]:
    """``cpgw-tray NAME ARGV`` on the desktop (appindicator), with a settings file of its
    own (``NAME.toml``), ``env`` added, and its output in ``NAME.log``."""
    settings = desktop.workdir / f"{name}.toml"
    settings.write_text("")
    env = dict(desktop.env, **env, PYSTRAY_BACKEND="appindicator", CPGW_TRAY_CONFIG=str(settings))
    with open(desktop.workdir / f"{name}.log", "wb") as log:  # the child keeps it open
        return subprocess.Popen(
            [sys.executable, "-m", "cpgw_tray", name, *argv],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def ended(desktop: Desktop, proc: subprocess.Popen[bytes], name: str) -> None:
    proc.terminate()
    proc.wait(5)
    assert "Traceback" not in (desktop.workdir / f"{name}.log").read_text(errors="replace")


def step(
    desktop: Desktop, signals: Signals, shown: Callable[[list[str]], bool], what: str
) -> dict[str, int]:
    """After the change just made: wait until the panel's menu shows it and the tray's
    signals settle; where the actions sit."""
    try:
        wait_for(lambda: shown(top_rows(desktop)), 15, what, step=0.05)
    except TimeoutError:
        raise AssertionError(f"{what}: {top_rows(desktop)}") from None
    signals.settled()
    rows = top_rows(desktop)
    assert actions_at(rows).keys() == set(ACTIONS), rows
    return actions_at(rows)


def click(desktop: Desktop, signals: Signals, entry: str) -> int:
    """A Simulate entry, once the tray's last update is done; the signals' mark."""
    signals.settled()
    mark = signals.mark()
    desktop.dbusmenu_click(entry)
    return mark


def test_demo_menu_stays_put_and_sends_only_what_changed(xfce: Desktop) -> None:
    desktop = xfce
    region = quiet_region(DEMO_AT)
    assert region is not None
    # the restart and weekly reset rows on, as for a trader: the status block is full size
    proc = launch(
        desktop,
        "demo",
        "--clock",
        DEMO_AT.isoformat(),
        CPGW_TRAY_RESTART_WINDOWS="true",
        CPGW_TRAY_REGION=region,
    )
    signals = Signals(desktop)
    try:
        wait_for(lambda: "Simulate" in desktop.dbusmenu_labels(), 15, "the Simulate menu")
        places, sent = {}, {}
        for entry, status_line in STEPS:
            mark = click(desktop, signals, entry + ":")
            places[entry] = step(desktop, signals, lambda r, s=status_line: s in r, entry)
            sent[entry] = signals.since(mark)
        print(f"signals per state change: {sent}")
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

        # the restart window's own look: the clock jumps into it from ready
        click(desktop, signals, "ready:")
        step(desktop, signals, lambda r: "Status: Ready" in r, "ready")
        mark = click(desktop, signals, "nightly restart:")
        places["maintenance"] = step(
            desktop, signals, lambda r: any(x.endswith(EXPECTED) for x in r), "the restart"
        )
        sent["maintenance"] = signals.since(mark)
        # a bad edit of the settings file: its error one row under Start at login
        signals.settled()
        mark = signals.mark()
        (desktop.workdir / "demo.toml").write_text('interval = "often"\n')
        places["bad settings"] = step(
            desktop, signals, lambda r: SETTINGS_ERROR in r, "the settings error"
        )
        sent["bad settings"] = signals.since(mark)
        more = {k: sent[k] for k in ("maintenance", "bad settings")}
        print(f"signals into the restart look, for a bad file: {more}")
        assert all(counts["LayoutUpdated"] <= 1 for counts in more.values()), more
        assert host_crash(desktop) is None
    finally:
        signals.stop()
        ended(desktop, proc, "demo")
    first = places["ready"]
    assert {e: p for e, p in places.items() if p != first} == {}

    # unknown: a tray whose first check hangs (no check finished yet), then ready. The
    # tray runs on real time: its restart rows on in a region quiet now; if none is
    # (Saturday morning), off. Either way its rows are compared with its own.
    here = quiet_region(datetime.now(timezone.utc))
    windows = {"CPGW_TRAY_RESTART_WINDOWS": "true", "CPGW_TRAY_REGION": here} if here else {}
    with Simulator(0, scenario="hang", rate_limit=False) as sim:
        argv = ("--url", sim.url, "--timeout", "60", "--interval", "1")
        proc = launch(desktop, "tray", *argv, **{"CPGW_TRAY_RESTART_WINDOWS": "false", **windows})
        try:
            unknown = wait_for(lambda: actions_at(checking(desktop)), 20, "Status: Checking…")
            assert unknown.keys() == set(ACTIONS), top_rows(desktop)
            sim.set_scenario("ready")  # the hung check ends; the next finds the session
            wait_for(lambda: "Status: Ready" in top_rows(desktop), 20, "Status: Ready")
            assert unknown == actions_at(top_rows(desktop)), top_rows(desktop)
        finally:
            ended(desktop, proc, "tray")


def checking(desktop: Desktop) -> list[str]:
    """The menu's rows while it says "Status: Checking…" (none otherwise)."""
    rows = top_rows(desktop)
    return rows if "Status: Checking…" in rows else []
