"""Opening the login page where the desktop cannot: the address is given, with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cpgw_tray.tray import opener

GIO_FAILS = '#!/bin/sh\necho "gio: $1: Operation not supported" >&2\nexit 4\n'

pytestmark = pytest.mark.skipif(
    sys.platform in ("win32", "darwin"), reason="xdg-open is the Linux desktop's opener"
)


def failing_xdg_open(folder: Path) -> None:
    fake = folder / "xdg-open"
    fake.write_text(GIO_FAILS)
    fake.chmod(0o755)


def test_an_opener_that_fails_is_not_taken_for_a_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Python's webbrowser reports success as soon as xdg-open starts; gio then fails."""
    failing_xdg_open(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("BROWSER", raising=False)
    monkeypatch.setenv("DISPLAY", ":99")
    url = "https://127.0.0.1:5999/"
    assert opener.why_not_opened(url) == f"xdg-open failed: gio: {url}: Operation not supported"
    assert opener.open_url(url) is False


def run_open(tmp_path: Path, path: str, **more: str) -> subprocess.CompletedProcess[str]:
    """`cpgw-tray open` with ``path`` as the only programs there are."""
    env = {
        "PATH": path,
        "HOME": str(tmp_path),
        "PYTHONPATH": os.environ.get("PYTHONPATH", ""),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        **more,
    }
    return subprocess.run(
        [sys.executable, "-m", "cpgw_tray", "open", "--url", "https://127.0.0.1:5999"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.e2e  # cpgw-tray runs as a process
def test_open_prints_the_url_and_the_reason_and_exits_0(tmp_path: Path) -> None:
    failing_xdg_open(tmp_path)
    proc = run_open(tmp_path, f"{tmp_path}:/usr/bin:/bin", DISPLAY=":99")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == (
        "Not opened (xdg-open failed: gio: https://127.0.0.1:5999/: Operation not supported): "
        "open https://127.0.0.1:5999/ in a browser yourself.\n"
    )


@pytest.mark.e2e  # cpgw-tray runs as a process
def test_open_without_a_browser_prints_the_url_and_exits_0(tmp_path: Path) -> None:
    """`cpgw-tray open` with no browser and no xdg-open: the URL and a note, exit 0."""
    proc = run_open(tmp_path, str(tmp_path))  # nothing to open a URL with
    assert proc.returncode == 0, proc.stderr
    assert "https://127.0.0.1:5999/" in proc.stdout
    assert "no browser" in proc.stdout.lower()
