"""Push (issue 24): how soon a dropped session shows with ``push`` on at interval 15, and
what holding the websocket costs at idle. Prints Markdown tables; asserts nothing.

    python benchmarks/push.py               # 10 drops, then a 120 s idle window
    python benchmarks/push.py --quick       # 3 drops, a 30 s idle window (a smoke run)

Drops: ``cpgw-tray watch --json --push --interval 15`` against the simulator, each in
its own process; the simulator's session is dropped over its control API and the delay
is the time until watch prints ``logged_out`` (target: median ≤ 1 s, max ≤ 2 s). The
session comes back and the next drop waits until push is connected again.

Idle: two ``watch`` processes at the defaults, push off and push on, side by side
against one simulator (its websocket beating every 10 s, as the gateway's does), their
process CPU and voluntary context switches (all threads) read with psutil over the same
window and scaled to an hour (target: push on ≤ 1.5× push off on both).
"""

from __future__ import annotations

import argparse
import json
import queue
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, child_env, load, start_sim, stop, table


def control(url: str, path: str, body: dict[str, Any]) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, context=context, timeout=5):
        pass


def watch(url: str, *extra: str) -> subprocess.Popen[str]:
    cmd = [PYTHON, "-m", "cpgw_tray", "watch", "--json", "--url", url, *extra]
    env = child_env(PYTHONUNBUFFERED="1", CPGW_TRAY_RESTART_WINDOWS="false")
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def lines_of(proc: subprocess.Popen[str]) -> queue.Queue[tuple[float, dict[str, Any]]]:
    lines: queue.Queue[tuple[float, dict[str, Any]]] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put((time.monotonic(), json.loads(line)))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def until(lines: queue.Queue[tuple[float, dict[str, Any]]], key: str, value: str) -> float:
    """When the next status line with ``key`` = ``value`` came (within 60 s)."""
    deadline = time.monotonic() + 60
    while True:
        at, line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        if line.get(key) == value:
            return at


def drops(count: int) -> list[float]:
    sim, url = start_sim("--no-rate-limit")
    proc = watch(url, "--push", "--interval", "15")
    delays: list[float] = []
    try:
        lines = lines_of(proc)
        for _ in range(count):
            until(lines, "push", "connected")
            time.sleep(1.2)  # past the gateway's 1 request/s pacing of the last check
            dropped = time.monotonic()
            control(url, "/sim/state", {"scenario": "logged_out"})
            delays.append(until(lines, "state", "logged_out") - dropped)
            control(url, "/sim/state", {"scenario": "ready"})
            until(lines, "state", "ready")  # the next poll: IBKR never pushes a login
    finally:
        stop(proc)
        stop(sim)
    return delays


def wakeups(pid: int) -> int:
    """Voluntary context switches of all of a process's threads (Linux /proc)."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def idle(seconds: float, warmup: float = 10.0) -> dict[str, tuple[float, float]]:
    import psutil

    sim, url = start_sim("--session-timeout", "0", "--no-rate-limit")
    procs = {"push off": watch(url), "push on": watch(url, "--push")}
    found: dict[str, tuple[float, float]] = {}
    try:
        time.sleep(warmup)
        watched = {name: psutil.Process(p.pid) for name, p in procs.items()}
        start = {name: (sum(p.cpu_times()[:2]), wakeups(p.pid)) for name, p in watched.items()}
        time.sleep(seconds)
        for name, p in watched.items():
            cpu, woke = sum(p.cpu_times()[:2]), wakeups(p.pid)
            found[name] = (
                (cpu - start[name][0]) * 3600 / seconds,
                (woke - start[name][1]) * 3600 / seconds,
            )
    finally:
        for proc in procs.values():
            stop(proc)
        stop(sim)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 drops, a 30 s idle window")
    args = parser.parse_args()
    delays = drops(3 if args.quick else 10)
    median, worst = statistics.median(delays), max(delays)
    table(
        "Push: a dropped session shown by `watch --push` at interval 15",
        ["drops", "median delay", "max delay", "target"],
        [(len(delays), f"{median:.2f} s", f"{worst:.2f} s", "median ≤ 1 s, max ≤ 2 s")],
    )
    seconds = 30.0 if args.quick else 120.0
    found = idle(seconds)
    off, on = found.get("push off"), found.get("push on")
    rows = [(name, f"{cpu:.3f}", f"{woke:.0f}") for name, (cpu, woke) in found.items()]
    if off and on:
        ratios = [
            f"{b / a:.2f}×" if a else "– (off used none)" for a, b in zip(off, on, strict=True)
        ]
        rows.append(("on / off", *ratios))
    table(
        f"Push: idle at the defaults, {seconds:g} s of real time",
        ["watch", "CPU-s/hour", "wake-ups/hour"],
        rows,
    )
    print(f"\nload average: {load()}")


if __name__ == "__main__":
    main()
