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
import threading
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
    """A file or folder with its default program; False when this desktop has no opener
    (``xdg-open`` missing) or the opener says it could not (``xdg-open`` exits non-zero
    when no program handles the file). Waits for the opener, which hands the file over
    and returns; one slower than 20 s is left running and counts as opened."""
    if sys.platform == "win32":
        try:
            os.startfile(path)
        except OSError:
            log.info("could not open %s", path, exc_info=True)
            return False
        return True
    else:
        return _run_opener(path)


def _run_opener(path: Path) -> bool:
    """macOS ``open`` or ``xdg-open``, as :func:`open_path` says."""
    found = shutil.which("open" if sys.platform == "darwin" else "xdg-open")
    if found is None:
        return False
    try:
        proc = subprocess.Popen(
            [found, str(path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
    except OSError:
        log.info("could not open %s", path, exc_info=True)
        return False
    try:
        return proc.wait(timeout=20) == 0
    except subprocess.TimeoutExpired:
        threading.Thread(target=proc.wait, name="opener", daemon=True).start()
        return True
