"""The command line: version, help, usage errors, human output."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

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


def test_shared_options_before_or_after_any_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each shared option works before or after the sub-command; the later one wins,
    and `cpgw-tray` alone (with options) is the tray."""
    from cpgw_tray import app
    from cpgw_tray.cli.main import build_parser
    from cpgw_tray.cli.options import resolve

    def parse(argv: list[str]) -> argparse.Namespace:
        return build_parser(argv).parse_args(argv)

    args = parse(["--interval", "5"])
    assert args.func is app.cmd_tray and resolve(args).interval == 5
    args = parse(["--url", "https://127.0.0.1:5001", "--interval", "1", "watch", "--json"])
    config = resolve(args)
    assert (config.url, config.interval, args.json) == ("https://127.0.0.1:5001", 1, True)
    args = parse(["--interval", "7", "--keepalive", "30", "watch", "--interval", "2"])
    assert (resolve(args).interval, resolve(args).keepalive) == (2, 30)
    args = parse(["-v", "status", "--timeout", "3", "--insecure", "-vv"])
    assert args.verbose == 2 and resolve(args).timeout == 3 and resolve(args).insecure is True
    args = parse(["--config", "/nowhere.toml", "gateway", "status", "--json"])
    assert args.config == "/nowhere.toml"


def test_top_level_help_lists_shared_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run_cli("--help")
    text = capsys.readouterr().out
    for option in ("--url", "--timeout", "--ca-bundle", "--insecure", "--config", "--verbose"):
        assert option in text
    assert "--interval" in text and "--keepalive" in text


@pytest.mark.e2e  # a fresh process's start-up
def test_the_parser_imports_only_the_command_that_runs() -> None:
    """Issue 22: `cli` named every command by importing its module; now only the module of
    the command that runs is imported (a fresh interpreter, so nothing was imported yet)."""
    code = (
        "import sys; from cpgw_tray.cli.main import build_parser; "
        "build_parser(['status', '--json']); "
        "print(sorted(m for m in sys.modules if m.startswith('cpgw_tray.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    loaded = set(ast.literal_eval(done.stdout))
    assert "cpgw_tray.cli.commands" in loaded
    for other in ("app", "demo", "watch", "gateway_cli", "doctor", "history_cli", "autostart"):
        assert f"cpgw_tray.{other}" not in loaded, other


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_reauth_never_takes_over_unless_asked(sim: Simulator) -> None:
    """`reauth` sends compete:false (a competing session stays); `--take-over` takes it."""
    sim.set_scenario("competing")
    code, _ = run_cli("--url", sim.url, "reauth")
    assert code == 1 and sim.session.competing
    code, _ = run_cli("--url", sim.url, "reauth", "--take-over")
    assert code == 0 and not sim.session.competing and sim.session.authenticated


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_reauth_says_what_to_do(sim: Simulator) -> None:
    sim.set_scenario("logged_out")
    code, out = run_cli("--url", sim.url, "reauth")
    assert code == 1 and f"not logged in. Log in at {sim.url}/ first" in out
    sim.set_scenario("competing")
    code, out = run_cli("--url", sim.url, "reauth")
    assert code == 1 and "another session" in out and "--take-over" in out


@pytest.mark.parametrize("where", [[], ["status"]])
def test_help_shows_the_defaults_the_settings_give(
    where: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = tmp_path / "cpgw.toml"
    settings.write_text('url = "https://127.0.0.1:5123"\ninterval = 7\n')
    monkeypatch.setenv("CPGW_TRAY_TIMEOUT", "4")
    monkeypatch.setenv("COLUMNS", "500")  # no wrapping (it breaks paths at hyphens)
    with pytest.raises(SystemExit) as done:
        run_cli("--config", str(settings), *where, "--help")
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert f"(default: https://127.0.0.1:5123, from {settings} line 1)" in shown
    assert f"seconds between checks (7, from {settings} line 2)" in shown
    assert "seconds to wait for a reply (4, from env CPGW_TRAY_TIMEOUT)" in shown
    assert "keep-alive tickles, 0 = off (60)" in shown
    assert f"config file (default: {settings})" in shown
