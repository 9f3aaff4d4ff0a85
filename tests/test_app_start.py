"""The icon comes first: nothing that is not needed to draw it is imported before it
shows (requests, psutil, Tk, the launcher), and no process scan runs before it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROBE = """
import sys
from cpgw_tray.tray import backends

class Probe:
    def __init__(self, title):
        print(" ".join(sorted(sys.modules)))
        raise SystemExit(0)

backends.create = Probe  # what app.py calls to make the icon
from cpgw_tray.cli.main import main
main(["--url", "https://127.0.0.1:5000", "tray"])
"""


@pytest.mark.e2e  # a fresh process's start-up
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
    for heavy in (
        "requests",
        "psutil",
        "tkinter",
        "cpgw_tray.process.launcher",
        "cpgw_tray.client.api",
        "cpgw_tray.demo",  # the demo and its simulator: never the tray's
    ):
        assert heavy not in loaded, f"{heavy} is imported before the icon shows"


ORDER_PROBE = """
import os, queue, sys, threading

seen = []


class ImportWatch:  # the first import of requests, as it starts
    def find_spec(self, name, path=None, target=None):
        if name == "requests" and "requests" not in seen:
            seen.append("requests")
        return None


sys.meta_path.insert(0, ImportWatch())

from cpgw_tray.tray import backends
from cpgw_tray.tray.backends.base import PystrayBackend


class Menu:
    SEPARATOR = None

    def __init__(self, *items):
        self.items = items


class Icon:
    \"\"\"pystray's icon as a tray sees it: shown when ``visible`` is set, changed only on
    its own thread, which comes round every 50 ms (a real one is busy embedding).\"\"\"

    HAS_MENU = True
    HAS_NOTIFICATION = False
    HAS_MENU_RADIO = True
    HAS_DEFAULT_ACTION = True

    def __init__(self, name, image, title):
        self.posted = queue.SimpleQueue()
        self.icon, self.title, self.menu = image, title, None

    @property
    def visible(self):
        return "visible" in seen

    @visible.setter
    def visible(self, value):
        if value and "visible" not in seen:
            seen.append("visible")

    def run(self, setup):
        threading.Thread(target=setup, args=(self,), daemon=True).start()
        idle = threading.Event()
        while not {"visible", "requests"} <= set(seen):
            idle.wait(0.05)
            while not self.posted.empty():
                self.posted.get()()
        print(" ".join(seen), flush=True)
        os._exit(0)


class Pystray:
    Icon, Menu = Icon, Menu

    @staticmethod
    def MenuItem(*args, **kwargs):
        return args


class Backend(PystrayBackend):
    def post(self, fn):
        self.icon.posted.put(fn)


backends.create = lambda title: Backend(Pystray, title)
from cpgw_tray.cli.main import main
main(["--url", "https://127.0.0.1:9", "tray"])
"""


@pytest.mark.e2e  # a fresh process's start-up
def test_the_icon_shows_before_requests_starts_importing(tmp_path: Path) -> None:
    """Seen from the tray's side: the icon becomes visible (on the tray's thread) before
    the set-up thread so much as starts importing requests."""
    home = tmp_path / "home"
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "DISPLAY": ":99",  # only looked at; the probe's pystray stands in for the tray
        "PYTHONPATH": str(Path(__file__).resolve().parent.parent / "src"),
    }
    probe = subprocess.run(
        [sys.executable, "-c", ORDER_PROBE], env=env, capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["visible", "requests"], probe.stderr


@pytest.mark.e2e  # a fresh process's imports
def test_the_websocket_library_is_imported_only_when_push_opens_a_socket() -> None:
    """Push is off by default: the tray and watch do not carry the websocket library
    (about 1 MB) until a socket is opened."""
    code = (
        "import sys, cpgw_tray.app, cpgw_tray.cli.watch, cpgw_tray.tray.tray_app\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'websockets'))"
    )
    src = str(Path(__file__).resolve().parent.parent / "src")
    probe = subprocess.run(
        [sys.executable, "-c", code],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": src},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.strip() == "[]"
