"""End-to-end: ``cpgw-tray demo --gateways 2`` (a live and a paper simulated gateway) in
xfce4-panel's StatusNotifier host: one icon, the worst gateway's with the several mark,
a first row saying which is worst, and each section's Simulate menu acting on its own
gateway. Read from what the tray publishes over D-Bus; screenshots in ``tests/artifacts/``.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cpgw_tray.model.status import YELLOW
from cpgw_tray.simulator import Simulator

from .desktop import Desktop, colour_box, wait_for
from .test_e2e_tray import ARTIFACTS, HOST, need

pytestmark = pytest.mark.e2e


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    need("appindicator")
    started = Desktop(tmp_path / "desk", HOST["appindicator"]).start()
    yield started
    started.stop()


def test_demo_of_two_gateways_shows_the_worst_and_acts_per_section(desktop: Desktop) -> None:
    shots = ARTIFACTS / "several"
    shots.mkdir(parents=True, exist_ok=True)
    log_path = desktop.workdir / "demo-two.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "demo", "--gateways", "2", "--interval", "1"],
        env=dict(desktop.env, PYSTRAY_BACKEND="appindicator"),
        stdout=open(log_path, "wb"),  # noqa: SIM115 - open while the demo runs
        stderr=subprocess.STDOUT,
    )

    def shows(icon: str, first_row: str) -> bool:
        labels = desktop.dbusmenu_labels()
        return desktop.sni_icon_name() == f"cpgw-tray-{icon}" and first_row in labels

    try:
        # live starts ready, paper logged out: yellow (logged out's look), marked
        wait_for(
            lambda: shows("several-logged_out", "paper: logged out · live: ready"), 15, "yellow"
        )
        labels = desktop.dbusmenu_labels()
        assert labels.index("Gateway live") < labels.index("Gateway paper")
        assert labels.count("Open login page") == 2 and labels.count("Quit") == 1
        wait_for(
            lambda: colour_box(desktop.screenshot(shots / "yellow.png"), YELLOW) is not None,
            5,
            "the yellow icon drawn",
        )
        # paper's Simulate menu (the second) logs paper in: all green, still marked
        desktop.dbusmenu_click("ready:", nth=1)
        wait_for(lambda: shows("several-ready", "live: ready · paper: ready"), 5, "all ready")
        # live's Simulate menu (the first) hangs live: red, and the row names live
        desktop.dbusmenu_click("hang:", nth=0)
        wait_for(
            lambda: shows("several-not_responding", "live: gateway not responding · paper: ready"),
            10,
            "live not responding",
        )
    finally:
        proc.terminate()
        proc.wait(10)
    assert "Traceback" not in log_path.read_text(errors="replace")


def test_tray_of_two_tables_has_each_gateway_s_items(desktop: Desktop, tmp_path: Path) -> None:
    """``cpgw-tray tray`` with two ``[gateways.NAME]`` tables: one icon, and each section
    with its own gateway items."""
    with (
        Simulator(0, scenario="ready") as live,
        Simulator(0, scenario="logged_out") as paper,
    ):
        config = tmp_path / "config.toml"
        config.write_text(
            f'[gateways.live]\nurl = "{live.url}"\ninsecure = true\n'
            f'[gateways.paper]\nurl = "{paper.url}"\ninsecure = true\n'
        )
        log_path = desktop.workdir / "tray-two.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpgw_tray", "--config", str(config), "tray"],
            env=dict(desktop.env, PYSTRAY_BACKEND="appindicator"),
            stdout=open(log_path, "wb"),  # noqa: SIM115 - open while the tray runs
            stderr=subprocess.STDOUT,
        )
        try:
            wait_for(
                lambda: (
                    desktop.sni_icon_name() == "cpgw-tray-several-logged_out"
                    and "paper: logged out · live: ready" in desktop.dbusmenu_labels()
                ),
                15,
                "yellow, marked",
            )
            labels = desktop.dbusmenu_labels()
            assert labels.count("Launch gateway") == 2 and labels.count("Check now") == 2
        finally:
            proc.terminate()
            proc.wait(10)
    assert "Traceback" not in log_path.read_text(errors="replace")
