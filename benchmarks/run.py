"""Figures for the design targets (DEVELOPERS.md). Prints numbers; asserts nothing.

    python benchmarks/run.py            # CPU per check, idle CPU of `watch`
    python benchmarks/run.py --tray     # also: first icon, change latency, memory (needs
                                        # the virtual desktop that .ci/run installs)

The simulator runs in a separate process so only the client's CPU is counted.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests
import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cpgw_tray.gateway import GatewayClient, RateGovernor  # noqa: E402


def start_sim(*extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "sim", "--port", "0", "--state", "ready", *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    url = line.split(" on ", 1)[1].split()[0]
    return proc, url


def cpu_per_check(url: str, n: int = 300) -> None:
    urllib3.disable_warnings()
    client = GatewayClient(url, verify=False, governor=RateGovernor(spacing=0, per_second=10**6))
    client.auth_status()  # connect once
    start = time.process_time()
    for _ in range(n):
        client.auth_status()
    keep = (time.process_time() - start) / n * 1000
    client.close()
    start = time.process_time()
    for _ in range(n // 5):
        requests.post(url + "/v1/api/iserver/auth/status", json={}, verify=False, timeout=10)
    fresh = (time.process_time() - start) / (n // 5) * 1000
    print(f"CPU per status check, one keep-alive session: {keep:.2f} ms  (target <= 2.7 ms)")
    print(f"CPU per status check, new connection each:    {fresh:.2f} ms  (the tutorial's way)")


def idle_cpu(url: str, seconds: float) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "--url", url, "watch", "--interval", "15"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(3)  # start-up and first check
    p = psutil.Process(proc.pid)
    before = sum(p.cpu_times()[:2])
    ctx_before = wakeups(proc.pid)
    time.sleep(seconds)
    used = sum(p.cpu_times()[:2]) - before
    switches = wakeups(proc.pid) - ctx_before
    proc.terminate()
    proc.wait()
    per_hour = used / seconds * 3600
    print(
        f"`watch` at the defaults: {used * 1000:.0f} ms CPU in {seconds:.0f} s "
        f"= {per_hour:.2f} CPU-s/hour  (target <= 1), {switches} voluntary wake-ups "
        f"(~{seconds / 15:.0f} polls)"
    )


def wakeups(pid: int) -> int:
    """Voluntary context switches of every thread (Linux): how often the process woke."""
    total = 0
    for status in Path(f"/proc/{pid}/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def tray_figures(url: str, sim_proc: subprocess.Popen[str]) -> None:
    from tests.desktop import Desktop, colour_box

    from cpgw_tray.status import GREEN, YELLOW

    backend = os.environ.get("PYSTRAY_BACKEND", "xorg")
    host = "xfce4-panel" if backend == "appindicator" else "trayer"
    with tempfile.TemporaryDirectory() as tmp:
        desktop = Desktop(Path(tmp), host).start()
        env = dict(desktop.env, PYSTRAY_BACKEND=backend)
        try:
            bare = subprocess.Popen([sys.executable, "-c", BARE_ICON], env=env)
            time.sleep(4)
            bare_rss = psutil.Process(bare.pid).memory_full_info().uss
            bare.terminate()
            bare.wait()
            time.sleep(0.5)
            started = time.monotonic()
            app = subprocess.Popen(
                [sys.executable, "-m", "cpgw_tray", "--url", url, "tray", "--interval", "2"],
                env=env,
            )
            shot = Path(tmp) / "s.png"
            first = None
            while time.monotonic() - started < 10:
                if colour_box(desktop.screenshot(shot), GREEN):
                    first = time.monotonic() - started
                    break
            requests.post(
                url + "/sim/state", json={"scenario": "logged_out"}, verify=False, timeout=5
            )
            switched = time.monotonic()
            change = None
            while time.monotonic() - switched < 10:
                if colour_box(desktop.screenshot(shot), YELLOW):
                    change = time.monotonic() - switched
                    break
            rss = [psutil.Process(app.pid).memory_full_info().uss]
            for _ in range(10):
                time.sleep(3)
                rss.append(psutil.Process(app.pid).memory_full_info().uss)
            app.terminate()
            app.wait()
        finally:
            desktop.stop()
    mb = 1024 * 1024
    tag = f"[{backend}]"
    print(
        f"{tag} first icon (start to green pixels): {first:.2f} s (target <= 1 s)"
        if first
        else f"{tag} first icon: not seen"
    )
    print(
        f"{tag} state change shown after {change:.2f} s with --interval 2 (target <= 2.5 s)"
        if change
        else f"{tag} state change: not seen"
    )
    print(
        f"{tag} memory (USS): bare pystray icon {bare_rss / mb:.1f} MB, "
        f"cpgw-tray {rss[0] / mb:.1f} MB (+{(rss[0] - bare_rss) / mb:.1f} MB, target <= +10), "
        f"after 30 s {rss[-1] / mb:.1f} MB"
    )


BARE_ICON = """
import pystray
from PIL import Image
icon = pystray.Icon("bare", Image.new("RGBA", (64, 64), (0, 128, 0, 255)), "bare")
icon.run(lambda i: setattr(i, "visible", True))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--tray", action="store_true", help="also measure the tray on a virtual desktop"
    )
    parser.add_argument("--idle-seconds", type=float, default=60)
    args = parser.parse_args()
    sim, url = start_sim("--no-rate-limit")
    try:
        cpu_per_check(url)
        idle_cpu(url, args.idle_seconds)
        if args.tray:
            tray_figures(url, sim)
    finally:
        sim.terminate()
        sim.wait()
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
