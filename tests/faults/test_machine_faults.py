"""cpgw-tray against a hostile machine, as real processes: settings and state paths that
are FIFOs, devices, folders or symlink loops; a reader that goes away; two processes
asking one gateway in the same second.

Real processes and real time: marked e2e.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray.simulator import Simulator

from ..conftest import wait_for
from .conftest import cli, reap

pytestmark = pytest.mark.e2e


def run(*argv: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """``cpgw-tray ARGV`` to its end (killed by group if it outlives ``timeout``)."""
    proc = cli(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        reap(proc)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------- settings paths


def test_config_naming_a_fifo_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    done = run("--config", str(fifo), "config", timeout=15)
    assert done.returncode == 64
    assert str(fifo) in one_line(done.stderr) and "FIFO" in done.stderr


def test_config_naming_a_device_is_refused_without_reading_it() -> None:
    done = run("--config", "/dev/zero", "status", timeout=15)
    assert done.returncode == 64
    assert "/dev/zero" in one_line(done.stderr) and "device" in done.stderr


def test_config_over_a_mebibyte_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "config.toml"
    big.write_text("# padding\n" * 120_000)
    done = run("--config", str(big), "config")
    assert done.returncode == 64 and "too large" in one_line(done.stderr)


@pytest.mark.parametrize("kind", ["folder", "fifo", "symlink-loop"])
def test_a_default_config_of_the_wrong_kind_is_reported(kind: str) -> None:
    path = Path(os.environ["XDG_CONFIG_HOME"]) / "cpgw-tray" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to(path)
    done = run("config", timeout=15)
    assert done.returncode == 64
    assert str(path) in one_line(done.stderr)


def test_a_pacing_file_of_the_wrong_kind_costs_one_line_not_the_check() -> None:
    shared = Path(os.environ["XDG_STATE_HOME"]) / "cpgw-tray" / "shared"
    with Simulator(port=0, rate_limit=False, scenario="ready") as sim:
        from cpgw_tray.client.shared_state import url_key

        (shared / f"pacing-{url_key(sim.url)}.json").mkdir(parents=True)
        done = run("--url", sim.url, "status", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["state"] == "ready"
    assert "pacing" in one_line(done.stderr) and "folder" in done.stderr


def test_a_start_lock_that_is_a_folder_is_one_line(tmp_path: Path) -> None:
    from cpgw_tray.process.identity import LaunchError, folder_lock, lock_path

    lock_path(tmp_path).mkdir(parents=True)
    with pytest.raises(LaunchError, match="folder"), folder_lock(tmp_path, timeout=1):
        pass


def test_the_settings_watcher_never_waits_on_a_fifo(tmp_path: Path) -> None:
    from cpgw_tray.settings.watcher import fingerprint

    fifo = tmp_path / "config.toml"
    os.mkfifo(fifo)
    assert fingerprint(fifo) is None  # returns at once: loading reports what it is


def test_a_history_file_that_is_a_fifo_is_reported_not_waited_on() -> None:
    path = Path(os.environ["XDG_STATE_HOME"]) / "cpgw-tray" / "history.jsonl"
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    done = run("history", timeout=15)
    assert "FIFO" in one_line(done.stderr) and "Traceback" not in done.stderr


# ---------------------------------------------------------------- a closed pipe


def _history_rows(count: int) -> None:
    path = Path(os.environ["XDG_STATE_HOME"]) / "cpgw-tray" / "history.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    start = datetime.now(timezone.utc) - timedelta(hours=20)
    states = ("ready", "logged_out")
    with path.open("w") as out:
        for n in range(count):
            at = (start + timedelta(seconds=n)).isoformat()
            row = {"at": at, "state": states[n % 2], "previous": states[(n + 1) % 2]}
            out.write(json.dumps({**row, "detail": "d" * 60, "url": "u", "source": "t"}) + "\n")


@pytest.mark.parametrize("argv", [["history"], ["history", "--json"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(argv: list[str]) -> None:
    """One place (the CLI's main) for every printing command; the history prints most."""
    _history_rows(3000)  # well over a pipe's buffer
    proc = cli(*argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.readline()  # `| head -1`
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=20)
    finally:
        reap(proc)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert proc.returncode == 0


# ---------------------------------------------------------------- pacing across processes


def test_two_status_runs_in_one_second_share_the_budget_instead_of_a_429() -> None:
    with Simulator(port=0, rate_limit=True, penalty=60, scenario="ready") as sim:
        first = cli("--url", sim.url, "status", "--json", stdout=subprocess.PIPE)
        second = cli("--url", sim.url, "status", "--json", stdout=subprocess.PIPE)
        try:
            outs = [proc.communicate(timeout=30)[0] for proc in (first, second)]
        finally:
            reap(first)
            reap(second)
        states = [json.loads(out)["state"] for out in outs]
        assert states == ["ready", "ready"], outs
        assert [first.returncode, second.returncode] == [0, 0]
        third = run("--url", sim.url, "status", "--json")  # and no penalty box left behind
    assert json.loads(third.stdout)["state"] == "ready"


def test_status_behind_a_queue_of_other_processes_waits_its_turn() -> None:
    """Other processes booked the next slots (6 s of them, over the client's usual
    5 s): `status` waits for its own instead of a traceback."""
    from cpgw_tray.client.shared_state import SharedSlots

    with Simulator(port=0, rate_limit=True, penalty=60, scenario="ready") as sim:
        SharedSlots.for_gateway(sim.url).book("iserver/auth/status", 6.0, 1.1, 60.0)
        done = run("--url", sim.url, "status", "--json", timeout=40)
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0 and json.loads(done.stdout)["state"] == "ready"


def test_status_behind_a_queue_over_a_minute_says_so_at_once() -> None:
    from cpgw_tray.client.shared_state import SharedSlots

    with Simulator(port=0, rate_limit=True, penalty=60, scenario="ready") as sim:
        SharedSlots.for_gateway(sim.url).book("iserver/auth/status", 90.0, 1.1, 120.0)
        done = run("--url", sim.url, "status", "--json")
        sent = [r for r in sim.requests() if r.path.endswith("auth/status")]
    assert "Traceback" not in done.stderr, done.stderr
    data = json.loads(done.stdout)
    assert done.returncode == 3 and data["state"] == "rate_limited" and sent == []
    assert 80 < data["retry_after_s"] <= 91


def test_the_pacing_is_per_gateway() -> None:
    """Two gateways are two budgets: a check of one never waits for the other."""
    with (
        Simulator(port=0, rate_limit=True, penalty=60, scenario="ready") as one,
        Simulator(port=0, rate_limit=True, penalty=60, scenario="ready") as two,
    ):
        from cpgw_tray.client.shared_state import url_key

        assert url_key(one.url) != url_key(two.url)
        for sim in (one, two):
            done = run("--url", sim.url, "status", "--json")
            assert json.loads(done.stdout)["state"] == "ready"
        shared = Path(os.environ["XDG_STATE_HOME"]) / "cpgw-tray" / "shared"
        assert sorted(p.name for p in shared.iterdir()) == sorted(
            f"pacing-{url_key(sim.url)}.json" for sim in (one, two)
        )


# ---------------------------------------------------------------- one takeover limit


class Lines:
    """A process's stdout lines as JSON, read on a thread of their own."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.seen: list[dict[str, object]] = []
        self._proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            with contextlib.suppress(ValueError):
                self.seen.append(json.loads(line))

    def count(self, key: str, value: str) -> int:
        return sum(1 for line in list(self.seen) if line.get(key) == value)


def test_a_tray_and_a_watch_never_both_take_over(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two `watch` processes set to take_back on one machine: when TWS takes the session
    twice within 5 minutes, one takeover between them, not one each."""
    monkeypatch.setenv("CPGW_TRAY_ON_COMPETING", "take_back")
    with Simulator(port=0, rate_limit=False, scenario="ready") as sim:
        argv = ("--url", sim.url, "watch", "--json", "--interval", "1")
        procs = [cli(*argv, stdout=subprocess.PIPE) for _ in range(2)]
        try:
            outs = [Lines(proc) for proc in procs]
            wait_for(lambda: all(out.count("state", "ready") for out in outs))
            sim.taken_over("TWS")

            def takeovers() -> list[object]:
                return [r.body for r in sim.requests() if r.path.endswith("ssodh/init")]

            wait_for(takeovers)
            wait_for(lambda: sim.state()["scenario"] == "ready")  # taken back

            def checks() -> int:
                return sum(1 for r in sim.requests() if r.path.endswith("auth/status"))

            sim.taken_over("TWS")  # again, within 5 minutes: both must leave it
            before = checks()
            wait_for(lambda: checks() >= before + 6, 30)  # three more checks each
            assert takeovers() == [{"publish": True, "compete": True}]
            assert sum(out.count("event", "take_over") for out in outs) == 1
            assert all(out.count("state", "competing") for out in outs)  # both left it
        finally:
            for proc in procs:
                reap(proc)


if sys.platform == "win32":  # FIFOs, devices and symlink loops are POSIX tests
    pytestmark = [pytestmark, pytest.mark.skip(reason="POSIX file kinds")]
