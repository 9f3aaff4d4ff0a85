"""The tray on a virtual desktop (the test fixture's Xvfb + bus + tray host), against a
bare pystray icon on the same backend: time until the tray host holds the icon, memory
(USS) after start, and growth over 1000+ checks.

Docked means: for XEmbed hosts (trayer; xorg and gtk icons), a window carrying
``_XEMBED_INFO`` reparented away from the root and viewable; for the StatusNotifier host
(xfce4-panel; appindicator icons), an item in the watcher's
``RegisteredStatusNotifierItems``. Both read from the host's side, not from pixels.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common import HERE, MB, PYTHON, child_env, scratch, server, stop

HOSTS = {"xorg": "trayer", "gtk": "trayer", "appindicator": "xfce4-panel"}

BARE_ICON = """
import pystray
from PIL import Image
icon = pystray.Icon("bare", Image.new("RGBA", (64, 64), (0, 128, 0, 255)), "bare")
icon.run(lambda i: setattr(i, "visible", True))
"""


def xembed_docked(display_name: str) -> Callable[[], bool]:
    """A probe: is an XEmbed icon embedded in the tray host and viewable?"""
    from Xlib import X, display

    d = display.Display(display_name)
    info = d.intern_atom("_XEMBED_INFO")
    root = d.screen().root

    def walk(window: Any, parent: Any) -> bool:
        for child in window.query_tree().children:
            try:
                if (
                    parent is not None
                    and child.get_full_property(info, X.AnyPropertyType) is not None
                    and child.get_attributes().map_state == X.IsViewable
                ):
                    return True
                if walk(child, window):
                    return True
            except Exception:  # a window went away while we looked
                continue
        return False

    return lambda: walk(root, None)


def sni_registered(bus_address: str) -> Callable[[], bool]:
    """A probe: has a StatusNotifierItem registered with the host's watcher?"""
    from gi.repository import Gio, GLib

    flags = (
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    )
    conn = Gio.DBusConnection.new_for_address_sync(bus_address, flags, None, None)
    watcher = "org.kde.StatusNotifierWatcher"

    def probe() -> bool:
        try:
            reply = conn.call_sync(
                watcher,
                "/StatusNotifierWatcher",
                "org.freedesktop.DBus.Properties",
                "Get",
                GLib.Variant("(ss)", (watcher, "RegisteredStatusNotifierItems")),
                None,
                Gio.DBusCallFlags.NONE,
                1000,
                None,
            )
        except GLib.Error:  # no watcher: the panel is restarting (or crashed)
            return False
        return bool(reply.unpack()[0])

    return probe


def wait(probe: Callable[[], bool], timeout: float, step: float = 0.005) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if probe():
            return True
        time.sleep(step)
    return False


def uss(pid: int) -> float:
    import psutil

    return float(psutil.Process(pid).memory_full_info().uss)


def sim_requests(url: str, clear: bool = False) -> int:
    """How many gateway requests the simulator has logged (after clearing its log)."""
    import ssl

    context = ssl._create_unverified_context()  # the simulator's own certificate
    request = urllib.request.Request(url + "/sim/requests", method="DELETE" if clear else "GET")
    with urllib.request.urlopen(request, context=context, timeout=5) as reply:
        return len(json.load(reply).get("requests", []))


@dataclass
class BackendFigures:
    backend: str
    first_bare: list[float] = field(default_factory=list)
    first_ours: list[float] = field(default_factory=list)
    uss_bare: list[float] = field(default_factory=list)
    uss_ours: list[float] = field(default_factory=list)
    growth: list[tuple[int, float, int]] = field(default_factory=list)  # checks, USS, blocks
    note: str = ""

    def median(self, values: list[float]) -> float | None:
        return statistics.median(values) if values else None

    def growth_slope(self) -> tuple[float, float] | None:
        """(USS MB per 1000 checks, Python blocks per check) from the end of the first
        1000 checks to the last figure: warm-up (first connections, caches) excluded."""
        if len(self.growth) < 3:
            return None
        (n0, u0, b0), (n1, u1, b1) = self.growth[1], self.growth[-1]
        return (u1 - u0) / MB / (n1 - n0) * 1000, (b1 - b0) / (n1 - n0)


def measure_backend(backend: str, sim_url: str, runs: int, growth_checks: int) -> BackendFigures:
    from tests.desktop import Desktop, missing_tools

    figures = BackendFigures(backend)
    host = HOSTS[backend]
    if missing := missing_tools(host):
        figures.note = f"skipped: needs {', '.join(missing)}"
        return figures
    with tempfile.TemporaryDirectory(prefix=f"cpgw-bench-{backend}-") as tmp:
        desktop = Desktop(Path(tmp), host)
        desktop.env.update({k: v for k, v in child_env().items() if k == "PYTHONPATH"})
        desktop.env["PYSTRAY_BACKEND"] = backend
        try:
            try:
                desktop.start()
            except TimeoutError:  # a host slow to start on a loaded machine: once more
                desktop.stop()
                desktop = Desktop(Path(tmp) / "again", host)
                desktop.env.update({k: v for k, v in child_env().items() if k == "PYTHONPATH"})
                desktop.env["PYSTRAY_BACKEND"] = backend
                desktop.start()
            if host == "trayer":
                docked = xembed_docked(desktop.env["DISPLAY"])
            else:
                docked = sni_registered(desktop.env["DBUS_SESSION_BUS_ADDRESS"])
            ours = [PYTHON, "-m", "cpgw_tray", "--url", sim_url, "--insecure", "tray"]
            # One start not counted: the first GTK process in a fresh home builds the
            # font and icon caches (10+ MB more USS, a slower first icon) for all after it.
            one_start([PYTHON, "-c", BARE_ICON], desktop.env, docked, "")
            lost = {"bare": 0, "ours": 0}
            for _ in range(runs):  # interleaved, so drift in the machine's load hits both
                for who, cmd in (("bare", [PYTHON, "-c", BARE_ICON]), ("ours", ours)):
                    for _attempt in range(3):
                        first, size = one_start(
                            cmd, desktop.env, docked, sim_url if who == "ours" else ""
                        )
                        if first is not None:
                            break
                        lost[who] += 1
                    if first is None:
                        continue
                    getattr(figures, f"first_{who}").append(first)
                    getattr(figures, f"uss_{who}").append(size)
            if any(lost.values()):
                # trayer now and then drops a dock request (the icon stays an unmapped
                # child of the root): that start is retried, and counted here
                figures.note = (
                    f"dock requests lost (retried): bare {lost['bare']}, ours {lost['ours']}"
                )
            figures.growth = growth(desktop.env, docked, sim_url, growth_checks)
        except Exception as exc:  # one backend's trouble must not hide the others' figures
            figures.note = f"failed: {type(exc).__name__}: {exc}"
        finally:
            desktop.stop()
    return figures


def one_start(
    cmd: list[str], env: dict[str, str], docked: Callable[[], bool], sim_url: str
) -> tuple[float | None, float]:
    """Seconds from launch until docked (None: not within 8 s), and USS once settled
    (ours: after its first check has been answered, and 1.5 s more)."""
    if docked():
        wait(lambda: not docked(), 5)  # the previous icon is still leaving
    if sim_url:
        sim_requests(sim_url, clear=True)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait(docked, 8):
            return None, 0.0
        first = time.monotonic() - started
        if sim_url:
            wait(lambda: sim_requests(sim_url) > 0, 20, step=0.1)
        time.sleep(1.5)
        return first, uss(proc.pid)
    finally:
        stop(proc)


def growth(
    env: dict[str, str], docked: Callable[[], bool], sim_url: str, checks: int
) -> list[tuple[int, float, int]]:
    """USS and Python's allocated blocks of the real tray (``tray_probe.py`` drives its
    poller) after its first checks and after each further ``checks`` checks, three times.
    USS moves by a few hundred KB with the allocator's arenas; the block count shows a
    leak of even one object per check."""
    if docked():
        wait(lambda: not docked(), 5)
    # --timeout 2: done requests' deadlines are let go when they would expire
    cmd = [PYTHON, str(HERE / "tray_probe.py"), "--url", sim_url, "--insecure", "--timeout", "2"]
    cmd.append("tray")
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    seen: list[tuple[int, float, int]] = []
    try:
        for batch in (10, checks, checks, checks):  # the first 10: caches, lazy imports
            proc.stdin.write(f"{batch}\n")
            proc.stdin.flush()
            done = proc.stdout.readline().split()  # "done TOTAL BLOCKS"
            if len(done) != 3 or done[0] != "done":
                break
            time.sleep(0.5)
            seen.append((int(done[1]), uss(proc.pid), int(done[2])))
    finally:
        stop(proc)
    return seen


def tray_figures(runs: int, growth_checks: int) -> list[BackendFigures]:
    found = []
    with server("--no-rate-limit", "--session-timeout", "0", sim=True) as url:
        for backend in HOSTS:
            found.append(measure_backend(backend, url, runs, growth_checks))
    return found


def print_tray(found: list[BackendFigures]) -> None:
    from common import table

    def s(values: list[float]) -> str:
        return " ".join(f"{v:.2f}" for v in values) or "–"

    def mbs(values: list[float]) -> str:
        return " ".join(f"{v / MB:.1f}" for v in values) or "–"

    rows: list[list[object]] = []
    for f in found:
        if not f.first_ours or not f.first_bare:
            rows.append([f.backend, HOSTS[f.backend], f.note or "no figures", "", "", "", ""])
            continue
        mb, mo = f.median(f.first_bare), f.median(f.first_ours)
        ub, uo = f.median(f.uss_bare), f.median(f.uss_ours)
        assert mb is not None and mo is not None and ub is not None and uo is not None
        rows.append(
            [
                f.backend,
                HOSTS[f.backend],
                f"{mb:.3f} ({s(f.first_bare)})",
                f"{mo:.3f} ({s(f.first_ours)})",
                f"{ub / MB:.1f} ({mbs(f.uss_bare)})",
                f"{uo / MB:.1f} ({mbs(f.uss_ours)})",
                f"+{(uo - ub) / MB:.1f}",
            ]
        )
    table(
        "Tray on a virtual desktop: first icon docked (s) and USS (MB), median (each run)",
        ["backend", "host", "bare icon", "cpgw-tray", "bare USS", "cpgw-tray USS", "over bare"],
        rows,
    )
    rows = []
    for f in found:
        slope = f.growth_slope()
        if slope is None:
            rows.append([f.backend, f.note or "no figures", "", "", ""])
            continue
        rows.append(
            [
                f.backend,
                " → ".join(f"{u / MB:.2f}" for _, u, _ in f.growth),
                " → ".join(f"{b}" for _, _, b in f.growth),
                f"{slope[0]:+.2f}",
                f"{slope[1]:+.2f}",
            ]
        )
    checks = " / ".join(str(n) for n, _, _ in next((f.growth for f in found if f.growth), []))
    table(
        f"Tray memory over many checks (after {checks} checks)",
        [
            "backend",
            "USS MB",
            "Python blocks",
            "USS MB per 1000 (after the first 1000)",
            "blocks per check (same)",
        ],
        rows,
    )
    for f in found:
        if f.note:
            print(f"\nNote ({f.backend}): {f.note}")


def process_cpu_ns(pid: int) -> tuple[int, int]:
    """(CPU ns, voluntary wake-ups) of every live thread of ``pid``, from /proc (the
    scheduler's ns run time, not 10 ms ticks)."""
    cpu = woke = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            cpu += int((task / "schedstat").read_text().split()[0])
            for line in (task / "status").read_text().splitlines():
                if line.startswith("voluntary_ctxt_switches"):
                    woke += int(line.split()[1])
        except (OSError, ValueError):  # the thread ended while we read
            continue
    return cpu, woke


class TrayIdle:
    """The real tray (xorg, in trayer) idling at its defaults, one per gateway behaviour,
    beside the CPU benchmark's idle window: its CPU read from outside, per thread."""

    def __init__(self) -> None:
        self.tmp = scratch("cpgw-bench-trayidle-")
        self.desktop: Any = None
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.marks: dict[str, tuple[float, int, int]] = {}
        self.note = ""

    def start(self, urls: dict[str, str]) -> TrayIdle:
        from tests.desktop import Desktop, missing_tools

        if missing := missing_tools("trayer"):
            self.note = f"skipped: needs {', '.join(missing)}"
            return self
        try:
            self.desktop = Desktop(self.tmp, "trayer")
            self.desktop.env.update(PYTHONPATH=child_env()["PYTHONPATH"], PYSTRAY_BACKEND="xorg")
            self.desktop.start()
            for behaviour, url in urls.items():
                cmd = [PYTHON, "-m", "cpgw_tray", "--url", url, "--insecure", "tray"]
                self.procs[behaviour] = subprocess.Popen(
                    cmd, env=self.desktop.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                )
        except Exception as exc:
            self.note = f"failed: {type(exc).__name__}: {exc}"
        return self

    def mark(self) -> None:
        """The window starts: the trays are up and have checked."""
        for behaviour, proc in self.procs.items():
            self.marks[behaviour] = (time.monotonic(), *process_cpu_ns(proc.pid))

    def finish(self) -> dict[str, tuple[float, float]]:
        """(CPU-s per hour, wake-ups per hour) by gateway behaviour."""
        found: dict[str, tuple[float, float]] = {}
        try:
            for behaviour, proc in self.procs.items():
                if proc.poll() is not None or behaviour not in self.marks:
                    self.note = f"the tray for {behaviour!r} ended early"
                    continue
                at, cpu, woke = self.marks[behaviour]
                cpu_now, woke_now = process_cpu_ns(proc.pid)
                hours = (time.monotonic() - at) / 3600
                found[behaviour] = ((cpu_now - cpu) / 1e9 / hours, (woke_now - woke) / hours)
        finally:
            self.close()
        return found

    def close(self) -> None:
        """Stop the trays and the desktop; idempotent."""
        for proc in self.procs.values():
            stop(proc)
        if self.desktop is not None:
            self.desktop.stop()
            self.desktop = None
