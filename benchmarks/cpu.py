"""CPU of a status check and of a day's idling, for three gateway behaviours, ours
against a bare ``requests.Session`` loop and ibind. Each contender runs in its own
process (``contenders.py``) against a gateway in another (``hostile.py``), so only the
client's CPU is counted, in nanoseconds of process CPU."""

from __future__ import annotations

import contextlib
import json
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import HERE, PYTHON, child_env, mean_median, ms, scratch, server, stop, table

BEHAVIOURS = {
    "keep": "kept alive",
    "close": "closed after each reply",
    "idle": "dropped after 10 s idle",
}


def contenders() -> list[str]:
    try:
        import ibind  # noqa: F401
    except ImportError:
        print("\nNote: ibind is not installed (pip install -e '.[bench]'): its column is skipped.")
        return ["ours", "bare"]
    return ["ours", "bare", "ibind"]


def launch(mode: str, who: str, url: str, out: Path, *args: str) -> subprocess.Popen[bytes]:
    cmd = [PYTHON, str(HERE / "contenders.py"), mode, "--who", who, "--url", url]
    return subprocess.Popen([*cmd, "--out", str(out), *args], env=child_env())


def collect(proc: subprocess.Popen[bytes], out: Path, timeout: float) -> dict[str, Any]:
    try:
        proc.wait(timeout=timeout)
    finally:
        stop(proc)
    if proc.returncode != 0 or not out.exists():
        return {}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


@dataclass
class PerCheck:
    """ns of CPU per check: results[behaviour][contender] = samples."""

    results: dict[str, dict[str, list[int]]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def median(self, behaviour: str, who: str) -> float | None:
        samples = self.results.get(behaviour, {}).get(who)
        return mean_median(samples)[1] if samples else None


def per_check(who_all: list[str], quick: bool) -> PerCheck:
    """Back-to-back checks on a kept connection and with a close after each reply, one
    contender at a time; the idle drop with its timeout shortened to 0.2 s and 0.35 s
    between checks (all contenders at once: they mostly sleep), so that each check
    meets a dropped connection as a check every 15 s meets one dropped after 10 s."""
    found = PerCheck()
    plans = {
        "keep": (["--mode", "keep"], ["--n", "100" if quick else "500"]),
        "close": (["--mode", "close"], ["--n", "20" if quick else "80"]),
        "idle": (
            ["--mode", "idle", "--idle", "0.2"],
            ["--n", "10" if quick else "40", "--pause", "0.35"],
        ),
    }
    with tempfile.TemporaryDirectory(prefix="cpgw-bench-cpu-") as tmp:
        for behaviour, (server_args, run_args) in plans.items():
            found.results[behaviour] = {}
            with server(*server_args) as url:
                concurrent = behaviour == "idle"
                running = []
                for who in who_all:
                    out = Path(tmp) / f"{behaviour}-{who}.json"
                    proc = launch("percheck", who, url, out, *run_args)
                    running.append((who, proc, out))
                    if not concurrent:
                        result = collect(proc, out, 180)
                        found.results[behaviour][who] = list(result.get("ns", []))
                for who, proc, out in running if concurrent else []:
                    result = collect(proc, out, 180)
                    found.results[behaviour][who] = list(result.get("ns", []))
    return found


def print_per_check(found: PerCheck, who_all: list[str]) -> None:
    rows = []
    for behaviour, label in BEHAVIOURS.items():
        medians = {who: found.median(behaviour, who) for who in who_all}
        row: list[object] = [label]
        for who in who_all:
            samples = found.results[behaviour].get(who)
            if not samples:
                row.append("failed")
                continue
            mean, median = mean_median(samples)
            row.append(f"{ms(mean)} / {ms(median)} (n={len(samples)})")
        ours = medians["ours"]
        for other in who_all[1:]:
            theirs = medians.get(other)
            row.append(f"{ours / theirs:.2f}×" if ours and theirs else "–")
        rows.append(row)
    header = ["gateway connection", *(f"{w}: mean / median ms CPU" for w in who_all)]
    header += [f"ours / {w} (medians)" for w in who_all[1:]]
    table("CPU per status check (process CPU, ns clock)", header, rows)
    print(
        "\n'dropped after 10 s idle' is measured with the idle timeout shortened to 0.2 s and "
        "0.35 s between checks: every check meets a dropped connection, as each check every "
        "15 s does against a 10 s idle timeout."
    )


IDLE_PLANS = [  # (interval, server behaviour)
    (15.0, "keep"),
    (15.0, "idle"),
    (15.0, "close"),
    (1.0, "keep"),
    (1.0, "idle"),
    (1.0, "close"),
]


class IdleRun:
    """Every contender at both intervals against the three behaviours, all at once, on
    real time: started by :meth:`start`, read by :meth:`finish` once the window ends."""

    def __init__(self, who_all: list[str], warmup: float, seconds: float) -> None:
        self.who_all, self.warmup, self.seconds = who_all, warmup, seconds
        self.tmp = scratch("cpgw-bench-idle-")
        self.stack = contextlib.ExitStack()
        self.runs: list[tuple[float, str, str, subprocess.Popen[bytes], Path]] = []
        self.started = 0.0
        self.urls: dict[str, str] = {}  # gateway stand-ins by behaviour
        self.wakeups: dict[tuple[float, str, str], float] = {}  # per hour

    def start(self) -> IdleRun:
        urls = {
            "keep": self.stack.enter_context(server("--mode", "keep")),
            "idle": self.stack.enter_context(server("--mode", "idle", "--idle", "10")),
            "close": self.stack.enter_context(server("--mode", "close")),
        }
        self.urls = urls
        self.started = time.monotonic()
        for interval, behaviour in IDLE_PLANS:
            for who in self.who_all:
                out = self.tmp / f"{interval:g}-{behaviour}-{who}.json"
                args = ["--interval", f"{interval:g}", "--warmup", f"{self.warmup:g}"]
                args += ["--seconds", f"{self.seconds:g}"]
                proc = launch("idle", who, urls[behaviour], out, *args)
                self.runs.append((interval, behaviour, who, proc, out))
        return self

    def close(self) -> None:
        """Stop whatever of the run still runs (an interrupted benchmark); idempotent."""
        for *_, proc, _out in self.runs:
            stop(proc)
        self.stack.close()

    def finish(self) -> dict[tuple[float, str, str], float]:
        """CPU-seconds per hour, by (interval, behaviour, contender)."""
        per_hour: dict[tuple[float, str, str], float] = {}
        try:
            for interval, behaviour, who, proc, out in self.runs:
                left = self.started + self.warmup + self.seconds + 60 - time.monotonic()
                result = collect(proc, out, max(left, 1))
                if "ns" in result:
                    used = float(result["ns"])
                    per_hour[(interval, behaviour, who)] = used / 1e9 * 3600 / self.seconds
                    woke = float(result["wakeups"])
                    self.wakeups[(interval, behaviour, who)] = woke * 3600 / self.seconds
        finally:
            self.stack.close()
        return per_hour


def print_idle(per_hour: dict[tuple[float, str, str], float], run: IdleRun) -> None:
    rows = []
    for interval, behaviour in IDLE_PLANS:
        row: list[object] = [f"{interval:g} s", BEHAVIOURS[behaviour]]
        values = [per_hour.get((interval, behaviour, who)) for who in run.who_all]
        row += [f"{v:.2f}" if v is not None else "failed" for v in values]
        ours = values[0]
        for other in values[1:]:
            row.append(f"{ours / other:.2f}×" if ours and other else "–")
        woke = [run.wakeups.get((interval, behaviour, who)) for who in run.who_all]
        row.append(" / ".join(f"{w:.0f}" if w is not None else "–" for w in woke))
        rows.append(row)
    header = ["interval", "gateway connection", *(f"{w} CPU-s/hour" for w in run.who_all)]
    header += [f"ours / {w}" for w in run.who_all[1:]]
    header.append(f"wake-ups/hour ({' / '.join(run.who_all)})")
    table("Idle cost: CPU-seconds per hour, real time", header, rows)
    print(
        f"\nEach contender in its own process, all {len(run.runs)} at once for "
        f"{run.seconds:g} s of real time after a {run.warmup:g} s warm-up (start-up and "
        "first check excluded), process CPU (ns) over that window scaled to an hour. "
        "Ours is the real `cpgw-tray watch` (auth/status every interval, a tickle in its "
        "place every 60 s); bare and ibind post auth/status every interval. Wake-ups: "
        "voluntary context switches of all the process's threads."
    )


def print_tray_idle(found: dict[str, tuple[float, float]], note: str) -> None:
    rows = [
        ("15 s (defaults)", BEHAVIOURS[b], f"{cpu:.2f}", f"{woke:.0f}")
        for b, (cpu, woke) in found.items()
    ]
    table(
        "Idle cost of the tray itself (`cpgw-tray tray`, xorg in trayer), same window",
        ["interval", "gateway connection", "CPU-s/hour", "wake-ups/hour"],
        rows or [("–", note or "no figures", "", "")],
    )
    if note and rows:
        print(f"\nNote: {note}")
