"""How soon a bot hears of a logout: `cpgw-tray watch --serve --exec` against the simulator.

    python benchmarks/health.py                 # --interval 2, 5 logouts
    python benchmarks/health.py --interval 5 --rounds 3

Each round logs the simulated gateway in, waits until /readyz answers 200, logs it out,
and times (from the logout) the first /readyz 503 and the start of the hook's run. The
target is interval + 0.5 s (issue 14). Prints a table; asserts nothing. The simulator
and `watch` run as separate processes, as a bot would see them.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.common import start_sim  # noqa: E402

HOOK = """\
import os, sys, time
with open(sys.argv[1], "a") as f:
    f.write(f"{time.time()} {os.environ['CPGW_PREVIOUS']} {os.environ['CPGW_STATE']}\\n")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def until(probe: Callable[[], float | None], timeout: float) -> float | None:
    """Poll every 5 ms until ``probe`` gives a time; that time, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.005)
    return None


def answers(port: int, code: int) -> float | None:
    """The wall-clock time /readyz answered ``code``, or None."""
    return time.time() if readyz(port) == code else None


def switch(sim_url: str, scenario: str) -> float:
    import requests

    at = time.time()
    requests.post(sim_url + "/sim/state", json={"scenario": scenario}, verify=False, timeout=5)
    return at


def hook_start(runs: Path, state: str, after: float) -> float | None:
    if not runs.exists():
        return None
    for line in runs.read_text().splitlines():
        at, _, new = line.split()
        if new == state and float(at) >= after:
            return float(at)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    import urllib3

    urllib3.disable_warnings()
    sim, url = start_sim("--no-rate-limit")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        hook, runs = Path(tmp) / "hook.py", Path(tmp) / "runs.txt"
        hook.write_text(HOOK)
        watch = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cpgw_tray",
                "--url",
                url,
                "watch",
                "--interval",
                str(args.interval),
                "--serve",
                f"127.0.0.1:{port}",
                "--exec",
                f"{sys.executable} {hook} {runs}",
            ],
            stdout=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        )
        ready_ms: list[float] = []
        hook_ms: list[float] = []
        try:
            for round_ in range(args.rounds):
                switch(url, "ready")
                if until(lambda: answers(port, 200), args.interval + 10) is None:
                    raise SystemExit("watch never reported ready")
                # Logouts spread over the poll cycle (ready was seen just after a check):
                # the worst case is one just after a check, a whole interval to wait.
                time.sleep(args.interval * (round_ + 0.5) / args.rounds)
                at = switch(url, "logged_out")
                seen = until(lambda: answers(port, 503), args.interval + 10)
                ran = until(lambda at=at: hook_start(runs, "logged_out", at), args.interval + 10)
                ready_ms.append((seen - at) * 1000 if seen else float("nan"))
                hook_ms.append((ran - at) * 1000 if ran else float("nan"))
        finally:
            watch.terminate()
            watch.wait()
            sim.terminate()
            sim.wait()
    target = (args.interval + 0.5) * 1000
    print(f"logout -> seen, `watch --interval {args.interval:g}`, {args.rounds} rounds")
    print(f"{'what':<22}{'median ms':>11}{'max ms':>9}{'target ms':>11}")
    for what, values in (("/readyz answers 503", ready_ms), ("hook run starts", hook_ms)):
        print(
            f"{what:<22}{statistics.median(values):>11.0f}{max(values):>9.0f}{target:>11.0f}"
            f"  {'ok' if max(values) <= target else 'MISSED'}"
        )
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
