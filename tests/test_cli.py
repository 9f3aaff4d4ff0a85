"""The command line: version, help, usage errors, human output."""

from __future__ import annotations

import pytest

from cpgw_tray import __version__
from cpgw_tray.simulator import Simulator

from .conftest import run_cli


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        run_cli("--version")
    assert info.value.code == 0 and __version__ in capsys.readouterr().out


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli("--help")
    text = capsys.readouterr().out
    assert "examples:" in text and "cpgw-tray status --json" in text


def test_usage_error_is_64(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("status", "--bogus")
    assert code == 64 and "unrecognized arguments: --bogus" in capsys.readouterr().err
    code, _ = run_cli("frobnicate")
    assert code == 64


def test_human_status_line(sim: Simulator) -> None:
    code, out = run_cli("--url", sim.url, "status")
    assert code == 0 and out.startswith("ready: Ready — ") and sim.url in out


def test_options_after_the_subcommand(sim: Simulator) -> None:
    code, out = run_cli("status", "--url", sim.url, "--timeout", "3")
    assert code == 0 and out.startswith("ready")


def test_sim_refuses_unknown_scenario(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("sim", "--port", "0", "--state", "bogus")
    assert code == 64 and "unknown scenario 'bogus'" in capsys.readouterr().err
