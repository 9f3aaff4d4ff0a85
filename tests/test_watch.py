"""`cpgw-tray watch` as a real subprocess against the simulator (real time: marked e2e)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time

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
            seen = [json.loads(lines.get(timeout=10))["state"]]
            for scenario, state in [
                ("logged_out", "logged_out"),
                ("competing", "competing"),
                ("server_error", "error"),
                ("ready", "ready"),
            ]:
                control(sim.url, "/sim/state", {"scenario": scenario})
                seen.append(json.loads(lines.get(timeout=5))["state"])
                assert seen[-1] == state
            # nothing changes for more than two intervals: no line
            with pytest.raises(queue.Empty):
                lines.get(timeout=2.5)
            assert seen == ["ready", "logged_out", "competing", "error", "ready"]
            assert all(r.status != 429 for r in sim.requests())
            started = time.monotonic()
            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=3) == 0
            assert time.monotonic() - started < 1.5
        finally:
            proc.kill()
            proc.wait()
            assert proc.stderr is not None
            proc.stderr.close()
            assert proc.stdout is not None
            proc.stdout.close()
