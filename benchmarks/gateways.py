"""How much a hanging gateway delays another's checks in one `watch` (issue 23).

    python benchmarks/gateways.py                  # --interval 2 for 20 s
    python benchmarks/gateways.py --interval 5 --seconds 60

`watch --serve` runs twice in its own process: with one gateway (the simulator, ready),
then with that one and a second whose port accepts connections and never answers (its
checks wait out their timeout). `/status/live` is read every 20 ms; each new `checked_at`
is a check. The delay of a check is its gap from the one before, less the interval.
Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from itertools import pairwise
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PYTHON, child_env, scratch, start_sim, stop, table


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def checks(sim_url: str, hang_port: int | None, interval: float, seconds: float) -> list[float]:
    """The wall times (s) of the live gateway's checks during ``seconds``."""
    folder = scratch("cpgw-bench-gateways-")
    text = f'[gateways.live]\nurl = "{sim_url}"\n'
    if hang_port is not None:
        text += f'[gateways.paper]\nurl = "https://127.0.0.1:{hang_port}"\n'
    (folder / "config.toml").write_text(text)
    serve = free_port()
    argv = ["--config", str(folder / "config.toml"), "watch", "--interval", str(interval)]
    proc = subprocess.Popen(
        [PYTHON, "-m", "cpgw_tray", *argv, "--timeout", "30", "--serve", str(serve)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=child_env(CPGW_TRAY_RESTART_WINDOWS="false"),
    )
    seen: list[float] = []
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{serve}/status/live") as reply:
                    at = json.loads(reply.read())["checked_at"]
            except OSError:
                at = None
            if at is not None:
                moment = datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp()
                if not seen or moment != seen[-1]:
                    seen.append(moment)
            time.sleep(0.02)
    finally:
        stop(proc)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    sim, url = start_sim("--no-rate-limit")
    hang = socket.socket()  # accepts (the backlog), never answers: a wedged gateway
    hang.bind(("127.0.0.1", 0))
    hang.listen(64)
    rows = []
    try:
        for label, port in (("alone", None), ("beside a hanging gateway", hang.getsockname()[1])):
            times = checks(url, port, args.interval, args.seconds)
            delays = [b - a - args.interval for a, b in pairwise(times)]
            worst = max(delays, default=float("nan"))
            mean = sum(delays) / len(delays) if delays else float("nan")
            rows.append((label, len(times), f"{mean:.3f}", f"{worst:.3f}"))
    finally:
        hang.close()
        stop(sim)
    table(
        f"A hanging gateway beside a ready one (interval {args.interval:g} s, {args.seconds:g} s)",
        ["live gateway", "checks", "mean delay (s)", "worst delay (s)"],
        rows,
    )


if __name__ == "__main__":
    main()
