"""Opening a URL or a file with the desktop's programs, and knowing when nothing can.

Each function returns False where nothing on this computer can open the thing (no
browser registered, no ``xdg-open``), so the caller can show the address instead of
failing silently.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def open_url(url: str) -> bool:
    """The URL in the default browser; False when Python finds no browser to run."""
    import webbrowser

    try:
        return bool(webbrowser.open(url))
    except Exception:  # webbrowser.Error, or a browser entry that cannot start
        log.info("no browser could open %s", url, exc_info=True)
        return False


def open_path(path: Path) -> bool:
    """A file or folder with its default program, without waiting; False when this
    desktop has no opener (``xdg-open`` missing) or it could not start."""
    try:
        if sys.platform == "win32":
            os.startfile(path)  # type: ignore[attr-defined,unused-ignore]
            return True
        opener = shutil.which("open" if sys.platform == "darwin" else "xdg-open")
        if opener is None:
            return False
        subprocess.Popen(
            [opener, str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        return True
    except OSError:
        log.info("could not open %s", path, exc_info=True)
        return False
