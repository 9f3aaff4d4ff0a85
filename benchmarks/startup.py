"""What starting costs before the icon: ``import cpgw_tray.cli`` timed by
``python -X importtime`` (the module's cumulative time) and as a whole process against
``python -c pass``, and which heavy modules that import pulls in."""

from __future__ import annotations

import statistics
import subprocess
import time
from dataclasses import dataclass

from common import PYTHON, child_env, table

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
    def median_import_ms(self) -> float:
        return statistics.median(self.importtime_ms)


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
            [PYTHON, "-X", "importtime", "-c", "import cpgw_tray.cli"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        found.importtime_ms.append(cumulative_ms(probe.stderr, "cpgw_tray.cli"))
        found.baseline_ms.append(wall("pass", env))
        found.process_ms.append(wall("import cpgw_tray.cli", env))
    listing = subprocess.run(
        [
            PYTHON,
            "-c",
            f"import sys, cpgw_tray.cli; print(*(m for m in {HEAVY!r} if m in sys.modules))",
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
        "Start-up: `import cpgw_tray.cli`",
        ["figure", "median ms", "runs"],
        [
            (
                "-X importtime, cumulative for cpgw_tray.cli",
                f"{med(found.importtime_ms):.0f}",
                " ".join(f"{v:.0f}" for v in found.importtime_ms),
            ),
            (
                "process `python -c 'import cpgw_tray.cli'` minus `python -c pass`",
                f"{med(found.process_ms) - med(found.baseline_ms):.0f}",
                f"{med(found.process_ms):.0f} − {med(found.baseline_ms):.0f}",
            ),
            ("heavy modules it loads", ", ".join(found.heavy) or "none", ""),
        ],
    )
