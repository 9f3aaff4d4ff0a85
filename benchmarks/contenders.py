"""One contender doing the tray's job, in a process of its own, measured in nanoseconds
of this process's CPU (``time.process_time_ns``: every thread, not 10 ms ticks).

Contenders: ``ours`` (cpgw-tray's ``GatewayClient.auth_status``, classification
included; in ``idle`` mode the real ``cpgw-tray watch`` command), ``bare`` (a
``requests.Session`` posting the same request with ``verify=False``) and ``ibind``
(``IbkrClient.authentication_status``). Two modes, each writing JSON to ``--out``:

    contenders.py percheck --who ours --url U --n 200 [--pause 0.4]
        CPU of each check (after 3 unmeasured ones): {"ns": [...]}
    contenders.py idle --who ours --url U --interval 15 --warmup 5 --seconds 120
        the real-time loop; CPU used in the window after the warm-up, and wake-ups (voluntary
        context switches): {"ns": N, "wakeups": W}
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

AUTH_STATUS = "/v1/api/iserver/auth/status"


def check_for(who: str, url: str) -> Callable[[], object]:
    """A callable doing one status check the contender's way."""
    if who == "ours":
        from cpgw_tray.client.api import GatewayClient, RateGovernor

        # The governor paces to the real gateway's 1 request/s; the benchmark measures
        # the check, not the pacing.
        client = GatewayClient(
            url, verify=False, governor=RateGovernor(spacing=0, per_second=10**9)
        )
        return client.auth_status
    if who == "bare":
        import requests
        import urllib3

        urllib3.disable_warnings()
        session = requests.Session()

        def bare() -> object:
            reply = session.post(url + AUTH_STATUS, json={}, verify=False, timeout=10)
            return reply.json()

        return bare
    if who == "ibind":
        from ibind import IbkrClient

        ib = IbkrClient(
            url=url + "/v1/api/", cacert=False, timeout=10, auto_register_shutdown=False
        )
        check: Callable[[], object] = ib.authentication_status
        return check
    raise SystemExit(f"unknown contender {who!r}")


def per_check(who: str, url: str, n: int, pause: float) -> dict[str, object]:
    check = check_for(who, url)
    for _ in range(3):  # connect, fill caches, import lazily loaded parts
        check()
        time.sleep(pause)
    samples = []
    for _ in range(n):
        start = time.process_time_ns()
        check()
        samples.append(time.process_time_ns() - start)
        if pause:
            time.sleep(pause)
    return {"ns": samples}


def wakeups() -> int:
    """Voluntary context switches of this process's threads (Linux): how often it slept
    and woke. 0 where /proc is missing."""
    total = 0
    for status in Path("/proc/self/task").glob("*/status"):
        for line in status.read_text().splitlines():
            if line.startswith("voluntary_ctxt_switches"):
                total += int(line.split()[1])
    return total


def idle(who: str, url: str, interval: float, warmup: float, seconds: float, out: Path) -> None:
    """Run the contender's loop on real time; a timer thread reads this process's CPU at
    the end of the warm-up and ``seconds`` later, writes it and ends the process."""

    def timer() -> None:
        time.sleep(warmup)
        start, woke = time.process_time_ns(), wakeups()
        time.sleep(seconds)
        used, woke = time.process_time_ns() - start, wakeups() - woke - 1  # less our own
        out.write_text(json.dumps({"ns": used, "wakeups": woke}))
        os._exit(0)

    threading.Thread(target=timer, daemon=True).start()
    if who == "ours":
        from cpgw_tray.cli.main import main

        argv = ["--url", url, "--insecure", "--interval", str(interval), "watch"]
        main(argv, out=open(os.devnull, "w"))  # noqa: SIM115 - lives until os._exit
        return
    check = check_for(who, url)
    while True:
        check()
        time.sleep(interval)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=("percheck", "idle"))
    parser.add_argument("--who", required=True, choices=("ours", "bare", "ibind"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=120.0)
    args = parser.parse_args()
    if args.mode == "percheck":
        args.out.write_text(json.dumps(per_check(args.who, args.url, args.n, args.pause)))
    else:
        idle(args.who, args.url, args.interval, args.warmup, args.seconds, args.out)
    sys.exit(0)


if __name__ == "__main__":
    main()
