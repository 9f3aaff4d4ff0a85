"""The icon comes first: nothing that is not needed to draw it is imported before it
shows (requests, psutil, Tk, the launcher), and no process scan runs before it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from cpgw_tray import backends

class Probe:
    def __init__(self, title):
        print(" ".join(sorted(sys.modules)))
        raise SystemExit(0)

backends.create = Probe  # what app.py calls to make the icon
from cpgw_tray.cli import main
main(["--url", "https://127.0.0.1:5000", "tray"])
"""


def test_nothing_heavy_is_imported_before_the_icon(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "DISPLAY": ":99",  # only looked at; the probe stands in for the tray
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src"),
    }
    probe = subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    loaded = set(probe.stdout.split())
    assert "cpgw_tray.app" in loaded  # the probe ran where the icon is made
    for heavy in ("requests", "psutil", "tkinter", "cpgw_tray.launcher", "cpgw_tray.gateway"):
        assert heavy not in loaded, f"{heavy} is imported before the icon shows"
