"""End-to-end: `cpgw-tray tray` started (as at login) with a typo in its settings file,
on an AppIndicator desktop: a red icon whose menu says what is wrong, not a silent exit;
fixing the file starts the tray; Quit ends it. Read from what the tray publishes on
D-Bus, as the panel does."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cpgw_tray.simulator import Simulator

from .desktop import Desktop, missing_tools, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    missing = missing_tools("xfce4-panel")
    probe = subprocess.run([sys.executable, "-c", "import gi"], capture_output=True)
    missing += [] if probe.returncode == 0 else ["python3-gi"]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (see .ci/run)")
    started = Desktop(tmp_path / "desk", "xfce4-panel").start()
    yield started
    started.stop()


def test_bad_settings_at_start_show_why_then_the_fixed_file_starts_the_tray(
    desktop: Desktop, sim: Simulator
) -> None:
    settings = desktop.workdir / "config" / "cpgw-tray" / "config.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text(f'# mine\nurl = "{sim.url}"\ntimout = 5\n')
    log_path = desktop.workdir / "tray.log"
    env = dict(desktop.env, PYSTRAY_BACKEND="appindicator")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cpgw_tray", "tray"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: desktop.sni_icon_name() == "cpgw-tray-settings", 15, "the red icon")
        # what the panel shows on hovering it: the settings, not the gateway
        desc = desktop._sni_property("IconAccessibleDesc")
        assert desc is not None and desc[1] == "Settings error"
        labels = wait_for(
            # dbusmenu doubles underscores (mnemonics); textwrap may break after a hyphen
            lambda: [x.replace("__", "_") for x in desktop.dbusmenu_labels() if x] or None,
            5,
            "the menu",
        )
        text = " ".join(labels)
        assert "cpgw-tray cannot start: bad settings" in labels
        assert "timout" in text and "line 3" in text and f"File: {settings}" in text
        assert "Open settings file" in labels and "Quit" in labels
        assert proc.poll() is None  # showing it, not gone
        line = f"cpgw-tray: unknown key 'timout' in {settings} line 3"
        assert line in log_path.read_text(errors="replace")  # and on stderr

        settings.write_text(f'# mine\nurl = "{sim.url}"\ntimeout = 5\n')  # fixed
        wait_for(lambda: "Status: Ready" in desktop.dbusmenu_labels(), 15, "the tray started")
        assert desktop.sni_icon_name() == "cpgw-tray-ready"
        desktop.dbusmenu_click("Quit")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
