"""`cpgw-tray watch` as a real subprocess against the simulator (real time: marked e2e)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from cpgw_tray.simulator import Simulator

from .conftest import control


def reader(stream: object) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines


@pytest.mark.e2e
def test_watch_prints_one_line_per_change_and_exits_on_ctrl_c() -> None:
    # Rate limits stay on: watch must respect them by itself.
    with Simulator(0, scenario="ready", rate_limit=True) as sim:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cpgw_tray",
                "watch",
                "--json",
                "--interval",
                "1",
                "--url",
                sim.url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            lines = reader(proc.stdout)
            events: list[str] = []

            def next_state(timeout: float) -> str:
                """The next status line's state; the person policy's event lines
                between them are collected."""
                while "state" not in (line := json.loads(lines.get(timeout=timeout))):
                    events.append(line["event"])
                return str(line["state"])

            seen = [next_state(10)]
            for scenario, state in [
                ("logged_out", "logged_out"),
                ("competing", "competing"),
                ("server_error", "error"),
                ("ready", "ready"),
            ]:
                control(sim.url, "/sim/state", {"scenario": scenario})
                seen.append(next_state(5))
                assert seen[-1] == state
            # a ready session logged out (a drop, an event line too), then taken over: the
            # person is called, in order
            assert events == ["login_needed", "dropped", "competing", "logged_in"]
            # nothing changes for more than two intervals: no line
            with pytest.raises(queue.Empty):
                lines.get(timeout=2.5)
            assert seen == ["ready", "logged_out", "competing", "error", "ready"]
            assert all(r.status != 429 for r in sim.requests())
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=3) == 0
        finally:
            proc.kill()
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
            assert proc.stdout is not None
            proc.stdout.close()


def _watch(url: str, *extra: str, **popen: object) -> subprocess.Popen[str]:
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        [sys.executable, "-m", "cpgw_tray", "--url", url, "watch", "--interval", "1", *extra],
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        **popen,
    )


@pytest.mark.e2e
def test_watch_exits_0_at_once_and_quietly_on_sigterm() -> None:
    with Simulator(0, scenario="ready", rate_limit=False) as sim:
        proc = _watch(sim.url, "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert proc.stdout is not None
            assert json.loads(proc.stdout.readline())["state"] == "ready"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=3) == 0
            _, err = proc.communicate(timeout=3)
            assert "Traceback" not in err and err.strip() == ""
        finally:
            proc.kill()
            proc.communicate()


@pytest.mark.e2e
def test_watch_into_a_closed_pipe_ends_with_0_and_no_message() -> None:
    """`watch --json | head -1`: once the reader has gone, watch ends by itself."""
    with Simulator(0, scenario="ready", rate_limit=False) as sim:
        read_end, write_end = os.pipe()
        proc = _watch(sim.url, "--json", stdout=write_end, stderr=subprocess.PIPE)
        os.close(write_end)
        try:
            with os.fdopen(read_end) as head:
                assert json.loads(head.readline())["state"] == "ready"  # head -1, then gone
            control(sim.url, "/sim/state", {"scenario": "logged_out"})  # a change to print
            assert proc.wait(timeout=5) == 0
            _, err = proc.communicate(timeout=3)
            assert "Traceback" not in err and "Broken pipe" not in err, err
        finally:
            proc.kill()
            proc.communicate()
