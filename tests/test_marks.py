"""The e2e mark's rule as tests/conftest.py checks it: which command lines start
cpgw-tray as a process of its own (a test outside e2e that does so fails)."""

from __future__ import annotations

import sys

import pytest

from .conftest import starts_cpgw_tray


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "cpgw_tray", "watch"],
        [sys.executable, "-m", "cpgw_tray.cli.main"],
        ["/home/me/.venv/bin/cpgw-tray", "status"],
        [sys.executable, "-c", "from cpgw_tray.cli.main import main"],
        ["sh", "-c", "cpgw-tray status --json | jq .state"],
        ["bash", "-c", "cd /tmp && /usr/local/bin/cpgw-tray sim --port 5000"],
    ],
)
def test_these_start_cpgw_tray(argv: list[str]) -> None:
    assert starts_cpgw_tray(argv)


@pytest.mark.parametrize(
    "argv",
    [
        ["sh", "-c", "echo $CPGW_STATE >> /home/me/cpgw-tray/hook.log"],
        ["/home/me/src/cpgw-tray/tests/hook.sh", "ready"],
        [sys.executable, "/home/me/src/cpgw-tray/tests/stubborn.py"],
        ["notify-send", "IBKR gateway", "cpgw-tray: Ready"],
        ["xdg-open", "https://localhost:5000/"],
    ],
)
def test_these_do_not(argv: list[str]) -> None:
    assert not starts_cpgw_tray(argv)
