"""Where a ``clientportal.gw`` folder usually is, and whether a folder is one: paths
only (no processes), so settings can find the gateway's port cheaply at start."""

from __future__ import annotations

import sys
from pathlib import Path


def run_script() -> Path:
    """The folder's run script on this system: ``bin/run.bat`` on Windows, else
    ``bin/run.sh``."""
    return Path("bin/run.bat") if sys.platform == "win32" else Path("bin/run.sh")


def usual_places(home: Path) -> list[Path]:
    """Where people unpack ``clientportal.gw``, in the order we look."""
    places = [
        home / "clientportal.gw",
        home / "Downloads" / "clientportal.gw",
        home / "gateway",
        home / "clientportal",
        home / "ibkr" / "clientportal.gw",
    ]
    if sys.platform == "win32":
        places += [Path("C:/clientportal.gw"), Path("C:/gateway")]
    else:
        places += [Path("/opt/clientportal.gw")]
    return places


def problems(directory: Path) -> list[str]:
    """What a gateway folder lacks (empty when it looks right)."""
    if not directory.is_dir():
        return [f"{directory} is not a folder"]
    missing = [
        str(p) for p in (run_script(), Path("root/conf.yaml")) if not (directory / p).is_file()
    ]
    return [f"{directory} has no {' and no '.join(missing)}"] if missing else []


def found_folder(home: Path | None = None) -> Path | None:
    """The first usual place that holds a gateway folder, or None."""
    for path in usual_places(home or Path.home()):
        if not problems(path):
            return path
    return None


GATEWAY_JAR = Path("dist/ibgroup.web.core.iblink.router.clientportal.gw.jar")
SIMULATOR_MARK = b"Simulated Client Portal Gateway"  # the first lines of our scaffold's run.sh


def is_gateway_folder(directory: Path) -> bool:
    """Whether ``directory`` is a gateway's: IBKR's (``root/conf.yaml`` and the gateway's
    jar in ``dist/``) or cpgw-tray's simulated one (``root/conf.yaml`` and our run
    script). A process naming the main class elsewhere is nobody's gateway."""
    try:
        if not (directory / "root" / "conf.yaml").is_file():
            return False
        if (directory / GATEWAY_JAR).is_file():
            return True
        with open(directory / run_script(), "rb") as script:
            return SIMULATOR_MARK in script.read(512)
    except OSError:
        return False
