"""A hook that floods its outputs: the watcher keeps 64 KiB of each (the tail), counts the
rest in the log line, holds its memory flat and writes nothing to disk; a secret in the
tail is redacted."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import psutil
import pytest

from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.hooks import Hooks
from cpgw_tray.process.children import RING

from ..conftest import wait_for

MB = 1024 * 1024
# Writes 200 MB to stderr and 50 MB to stdout in 1 MiB blocks, the last stderr line
# carrying a secret; first it says whether its outputs are pipes (nothing on disk).
FLOOD = """\
import os, stat, sys
kinds = [stat.S_ISFIFO(os.fstat(fd).st_mode) for fd in (1, 2)]
open(sys.argv[1], "w").write(repr(kinds))
block = b"x" * (1024 * 1024 - 1) + b"\\n"
for _ in range(50):
    os.write(1, block)
for _ in range(200):
    os.write(2, block)
os.write(2, b"curl: (22) https://hooks.slack.com/services/T0/B0/s3cretHOOK failed\\n")
sys.exit(2)
"""


class PeakRss:
    """The test process's resident memory, sampled until stopped; its peak growth."""

    def __init__(self) -> None:
        self.me = psutil.Process()
        self.base = self.me.memory_info().rss
        self.peak = self.base
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, self.me.memory_info().rss)

    def growth_mb(self) -> float:
        self.done.set()
        self.thread.join()
        return (self.peak - self.base) / MB


@pytest.mark.timeout(60)
def test_a_hook_flooding_its_outputs_costs_no_memory_and_no_disk(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    script = tmp_path / "flood.py"
    script.write_text(FLOOD)
    kinds = tmp_path / "kinds"
    caplog.set_level(logging.INFO, logger="cpgw_tray.outlets.hooks")
    hooks = Hooks([sys.executable, str(script), str(kinds)], url="https://127.0.0.1:5000")
    rss = PeakRss()
    hooks.start()
    try:
        hooks.offer(Status(State.READY, LOOKS[State.READY].label, "ready"))
        wait_for(lambda: "failed: exit 2" in caplog.text, timeout=50)
    finally:
        hooks.stop()
    assert rss.growth_mb() < 32
    assert kinds.read_text() == "[True, True]"  # pipes read in chunks, no spool file
    line = next(r.getMessage() for r in caplog.records if "exit 2" in r.getMessage())
    err_total = 200 * MB + len(
        b"curl: (22) https://hooks.slack.com/services/T0/B0/s3cretHOOK failed\n"
    )
    assert f"{err_total - RING} bytes of stderr dropped, the last {RING} kept" in line
    assert f"stdout: {50 * MB} bytes ({50 * MB - RING} bytes of stdout dropped" in line
    assert "curl: (22) https://hooks.slack.com/<removed>" in line  # the tail, redacted
    assert "s3cretHOOK" not in line
    assert len(line) < 3000
