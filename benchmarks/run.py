"""Figures for issue 11's targets, in one run. Prints Markdown tables; asserts nothing.

    python benchmarks/run.py            # CPU per check, idle CPU per hour, import time
    python benchmarks/run.py --tray     # also the tray on a virtual desktop: first icon
                                        # docked, memory over a bare icon, growth
    python benchmarks/run.py --quick    # fewer samples and a 30 s idle window (a smoke run)

ibind is measured when installed (``pip install -e '.[bench]'``). Every client runs in
its own process against a gateway in another, so only the client's CPU is counted, read
from the ns process-CPU clock. Modules: ``cpu`` (checks and idling, via ``contenders``
against ``hostile``), ``desktop_bench`` (the tray, via ``tray_probe``), ``startup``.
Takes about 4–5 minutes with ``--tray``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.desktop
sys.path.insert(2, str(Path(__file__).resolve().parent.parent / "src"))

import cpu
import desktop_bench
import startup
from common import MB, load, table


def machine() -> list[tuple[str, str]]:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
    wanted = ("Model name", "CPU(s)", "Thread(s) per core", "CPU max MHz", "Hypervisor vendor")
    facts = [(k.strip(), v.strip()) for k, _, v in (x.partition(":") for x in lscpu)]
    rows = [("nproc", str(os.cpu_count()))]
    rows += [(k, v) for k, v in facts if k in wanted]
    rows.append(("python", f"{platform.python_implementation()} {platform.python_version()}"))
    rows.append(("OS", platform.platform()))
    versions = []
    for name in ("requests", "urllib3", "pystray", "ibind"):
        try:
            from importlib.metadata import version

            versions.append(f"{name} {version(name)}")
        except Exception:
            versions.append(f"{name} –")
    rows.append(("libraries", ", ".join(versions)))
    return rows


def verdict(ok: bool | None) -> str:
    return "–" if ok is None else ("met" if ok else "**not met**")


def targets(
    checks: cpu.PerCheck,
    idle: dict[tuple[float, str, str], float],
    tray_hour: dict[str, tuple[float, float]],
    tray: list[desktop_bench.BackendFigures],
    import_ms: float,
) -> None:
    rows: list[list[object]] = []
    reconnect = checks.median("close", "ours")
    bare = checks.median("close", "bare")
    dropped = checks.median("idle", "ours")
    if reconnect is not None:
        rows.append(
            [
                "reconnecting check ≤ 6 ms CPU",
                f"{reconnect / 1e6:.2f} ms",
                verdict(reconnect <= 6e6),
            ]
        )
    if reconnect is not None and bare:
        ratio = reconnect / bare
        rows.append(
            ["reconnecting check ≤ 0.3× bare requests", f"{ratio:.2f}×", verdict(ratio <= 0.3)]
        )
    if dropped is not None:
        rows.append(
            [
                "check after an idle drop ≤ 6 ms CPU",
                f"{dropped / 1e6:.2f} ms",
                verdict(dropped <= 6e6),
            ]
        )
    kept, ibind = checks.median("keep", "ours"), checks.median("keep", "ibind")
    if kept is not None and ibind is not None:
        rows.append(
            [
                "kept-alive check ≤ ibind's",
                f"{kept / 1e6:.2f} vs {ibind / 1e6:.2f} ms",
                verdict(kept <= ibind),
            ]
        )
    for behaviour, limit in (("keep", 1.0), ("idle", 1.5)):
        value = idle.get((15.0, behaviour, "ours"))
        if value is not None:
            what = "kept" if behaviour == "keep" else "dropped after 10 s"
            rows.append(
                [
                    f"`watch` idle at defaults ≤ {limit:g} CPU-s/hour ({what})",
                    f"{value:.2f}",
                    verdict(value <= limit),
                ]
            )
    for behaviour, limit in (("keep", 1.0), ("idle", 1.5)):
        if behaviour in tray_hour:
            what = "kept" if behaviour == "keep" else "dropped after 10 s"
            value = tray_hour[behaviour][0]
            rows.append(
                [
                    f"tray idle at defaults ≤ {limit:g} CPU-s/hour ({what}; xorg)",
                    f"{value:.2f}",
                    verdict(value <= limit),
                ]
            )
    for f in tray:
        ub, uo = f.median(f.uss_bare), f.median(f.uss_ours)
        if ub is not None and uo is not None:
            over = (uo - ub) / MB
            rows.append(
                [f"tray USS ≤ bare + 12 MB ({f.backend})", f"+{over:.1f} MB", verdict(over <= 12)]
            )
        slope = f.growth_slope()
        if slope is not None:
            rows.append(
                [
                    f"no growth over 1000+ checks ({f.backend}: < 1 Python block per check, "
                    "USS ≤ +0.25 MB per 1000)",
                    f"{slope[1]:+.2f} blocks/check, {slope[0]:+.2f} MB/1000",
                    verdict(slope[1] < 1 and slope[0] <= 0.25),
                ]
            )
        first = f.median(f.first_ours)
        if f.backend == "xorg" and first is not None:
            rows.append(
                ["first icon docked ≤ 0.35 s (xorg)", f"{first:.3f} s", verdict(first <= 0.35)]
            )
    rows.append(
        [
            "`cpgw_tray.cli.main` import, least of the runs (no target; was 235 ms)",
            f"{import_ms:.0f} ms",
            "–",
        ]
    )
    table("Targets (issue 11)", ["target", "measured", "verdict"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tray", action="store_true", help="also the tray on a virtual desktop")
    parser.add_argument("--quick", action="store_true", help="fewer samples, a 30 s idle window")
    parser.add_argument(
        "--idle-seconds", type=float, help="real-time idle window (default 120, --quick 30)"
    )
    args = parser.parse_args()
    # SIGTERM ends the run like Ctrl-C: the clean-up below stops what it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    seconds = args.idle_seconds or (30.0 if args.quick else 120.0)
    began = time.monotonic()
    table("Machine", ["", ""], [*machine(), ("load average at start (1/5/15 min)", load())])

    imports = startup.import_figures(runs=3 if args.quick else 7)
    startup.print_imports(imports)
    startup.print_memory_steps(startup.memory_steps())

    who_all = cpu.contenders()
    idle_run = cpu.IdleRun(who_all, warmup=10.0, seconds=seconds)
    tray_idle = desktop_bench.TrayIdle() if args.tray else None
    try:
        idle_run.start()
        if tray_idle is not None:  # the real tray idles beside them, in trayer
            tray_idle.start({k: idle_run.urls[k] for k in ("keep", "idle")})
        time.sleep(idle_run.warmup)  # let the idle contenders start before the busy loops
        if tray_idle is not None:
            tray_idle.mark()
        checks = cpu.per_check(who_all, args.quick)
        cpu.print_per_check(checks, who_all)
        print(f"\nload average after the checks: {load()}")
        per_hour = idle_run.finish()
        cpu.print_idle(per_hour, idle_run)
        tray_hour: dict[str, tuple[float, float]] = {}
        if tray_idle is not None:
            tray_hour = tray_idle.finish()
            cpu.print_tray_idle(tray_hour, tray_idle.note)
        print(f"\nload average after the idle window: {load()}")
    finally:  # interrupted: nothing started here outlives the run
        idle_run.close()
        if tray_idle is not None:
            tray_idle.close()

    tray: list[desktop_bench.BackendFigures] = []
    if args.tray:
        tray = desktop_bench.tray_figures(runs=2 if args.quick else 5, growth_checks=1000)
        desktop_bench.print_tray(tray)
        print(f"\nload average after the tray: {load()}")
    targets(checks, per_hour, tray_hour, tray, imports.least_import_ms)
    print(f"\nwhole run: {time.monotonic() - began:.0f} s; load average at the end: {load()}")


if __name__ == "__main__":
    main()
