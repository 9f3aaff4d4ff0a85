"""Shared by the benchmark modules: paths, the child processes' environment, starting
and stopping what a benchmark runs (by its own pid only), and printing tables."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
MB = 1024 * 1024


SCRATCH: list[Path] = []  # removed when the benchmark ends


@atexit.register
def _remove_scratch() -> None:
    for folder in SCRATCH:
        shutil.rmtree(folder, ignore_errors=True)


def scratch(prefix: str) -> Path:
    """A temporary folder, removed when the benchmark ends (an interrupted run too)."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    SCRATCH.append(folder)
    return folder


def child_env(**extra: str) -> dict[str, str]:
    """This checkout's code first, and a private home of its own (no user config, logs
    or state; no pacing shared with another child), removed when the benchmark ends."""
    home = scratch("cpgw-bench-home-")
    env = dict(os.environ)
    env.pop("CPGW_TRAY_URL", None)
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        PYTHONWARNINGS="ignore",
    )
    env.update(extra)
    return env


def stop(proc: subprocess.Popen[str] | subprocess.Popen[bytes]) -> None:
    """End a process this benchmark started: SIGTERM, then SIGKILL after a grace."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def server(*args: str, sim: bool = False) -> Iterator[str]:
    """A gateway in its own process (``hostile.py`` with ``args``, or the simulator when
    ``sim``); yields its URL and stops it afterwards."""
    if sim:
        cmd = [PYTHON, "-m", "cpgw_tray", "sim", "--port", "0", "--state", "ready", *args]
    else:
        cmd = [PYTHON, str(HERE / "hostile.py"), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        # the simulator says "... on https://127.0.0.1:PORT ...", hostile.py the URL alone
        url = next(word for word in line.split() if word.startswith("https://"))
        yield url.rstrip(".,;")
    finally:
        stop(proc)


def start_sim(*extra: str) -> tuple[subprocess.Popen[str], str]:
    """The simulator (ready, on a free port) in its own process, as ``health.py`` uses it:
    (process, URL); the caller stops it."""
    proc = subprocess.Popen(
        [PYTHON, "-m", "cpgw_tray", "sim", "--port", "0", "--state", "ready", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.split(" on ", 1)[1].split()[0]
    return proc, url


def ms(ns: float) -> str:
    return f"{ns / 1e6:.2f}"


def mean_median(samples: Sequence[float]) -> tuple[float, float]:
    return statistics.fmean(samples), statistics.median(samples)


def table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table under a heading, so the output can go into the README as is."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    sys.stdout.flush()


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"
