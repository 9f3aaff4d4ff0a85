"""What starting costs: ``import cpgw_tray.cli.main`` timed by ``python -X importtime`` (the
module's cumulative time) and as a whole process against ``python -c pass``, which heavy
modules that import pulls in; and where the tray's memory over a bare icon goes (USS
after each step of what the tray loads once its icon shows)."""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass

from common import MB, PYTHON, child_env, server, table

HEAVY = (
    "requests",
    "urllib3",
    "ssl",
    "psutil",
    "PIL",
    "cryptography",
    "yaml",
    "tomlkit",
    "pystray",
)


@dataclass
class Imports:
    importtime_ms: list[float]
    process_ms: list[float]
    baseline_ms: list[float]
    heavy: list[str]

    @property
    def least_import_ms(self) -> float:
        """The least of the runs: the import's own cost, least disturbed by other load."""
        return min(self.importtime_ms)


def cumulative_ms(stderr: str, module: str) -> float:
    """The cumulative microseconds ``-X importtime`` reports for ``module``, in ms."""
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == module:
            return int(line.split("|")[1]) / 1000
    raise ValueError(f"{module} not in the -X importtime report")


def wall(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([PYTHON, "-c", code], env=env, check=True)
    return (time.perf_counter() - started) * 1000


def import_figures(runs: int) -> Imports:
    env = child_env()
    found = Imports([], [], [], [])
    for _ in range(runs):
        probe = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", "import cpgw_tray.cli.main"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        found.importtime_ms.append(cumulative_ms(probe.stderr, "cpgw_tray.cli.main"))
        found.baseline_ms.append(wall("pass", env))
        found.process_ms.append(wall("import cpgw_tray.cli.main", env))
    listing = subprocess.run(
        [
            PYTHON,
            "-c",
            f"import sys, cpgw_tray.cli.main; print(*(m for m in {HEAVY!r} if m in sys.modules))",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    found.heavy = listing.stdout.split()
    return found


def print_imports(found: Imports) -> None:
    med = statistics.median
    table(
        "Start-up: `import cpgw_tray.cli.main`",
        ["figure", "least / median ms", "runs"],
        [
            (
                "-X importtime, cumulative for cpgw_tray.cli.main",
                f"{min(found.importtime_ms):.0f} / {med(found.importtime_ms):.0f}",
                " ".join(f"{v:.0f}" for v in found.importtime_ms),
            ),
            (
                "process `python -c 'import cpgw_tray.cli.main'` minus `python -c pass`",
                f"{min(found.process_ms) - min(found.baseline_ms):.0f} / "
                f"{med(found.process_ms) - med(found.baseline_ms):.0f}",
                f"least {min(found.process_ms):.0f} − {min(found.baseline_ms):.0f}, "
                f"median {med(found.process_ms):.0f} − {med(found.baseline_ms):.0f}",
            ),
            ("heavy modules it loads", ", ".join(found.heavy) or "none", ""),
        ],
    )


MEMORY_STEPS = """
import importlib, sys
def uss():  # Private_Clean + Private_Dirty: what psutil calls USS, without importing it
    fields = dict(line.split(":") for line in open("/proc/self/smaps_rollup") if ":" in line)
    return sum(int(fields[k].split()[0]) * 1024 for k in ("Private_Clean", "Private_Dirty"))
def step(label, *modules):
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    print(uss(), label, flush=True)
step("python")
step("pillow (drawing the icon)", "PIL.Image", "PIL.ImageDraw")
step("cpgw_tray.cli.main (what runs before the icon)", "cpgw_tray.cli.main")
step("requests (urllib3, ssl, charset_normalizer, idna)", "requests")
step("psutil", "psutil")
step("the rest of the tray's modules", "cpgw_tray.client.api", "cpgw_tray.care.session",
     "cpgw_tray.tray.tray_app", "cpgw_tray.tray.gateway_menu", "cpgw_tray.process.launcher",
     "cpgw_tray.outlets.history")
from cpgw_tray.client.api import GatewayClient
client = GatewayClient(sys.argv[1], verify=False)
step("a client (session, TLS context)")
client.auth_status()
step("a first check (TLS connection)")
"""


def memory_steps() -> list[tuple[str, float]]:
    """(step, USS in bytes) after each step, in a headless process."""
    with server("--mode", "keep") as url:
        probe = subprocess.run(
            [PYTHON, "-c", MEMORY_STEPS, url],
            env=child_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    steps = []
    for line in probe.stdout.splitlines():
        size, _, label = line.partition(" ")
        steps.append((label, float(size)))
    return steps


def print_memory_steps(steps: list[tuple[str, float]]) -> None:
    rows = []
    previous = None
    for label, size in steps:
        delta = "" if previous is None else f"+{(size - previous) / MB:.1f}"
        rows.append((label, f"{size / MB:.1f}", delta))
        previous = size
    table(
        "Where the tray's memory goes: USS (MB) after each step, headless",
        ["step", "USS", "added"],
        rows,
    )
