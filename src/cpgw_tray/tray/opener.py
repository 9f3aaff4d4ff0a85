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
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)


def open_url(url: str) -> bool:
    """The URL in the default browser; False when nothing here could open it."""
    return why_not_opened(url) is None


def why_not_opened(url: str) -> str | None:
    """Open the URL in the default browser: None when done, else why not, in one line.

    On a Linux desktop ``xdg-open`` is run and awaited, so its failure is seen (Python's
    ``webbrowser`` starts it and reports success before ``gio`` says "Operation not
    supported"); elsewhere, or with ``$BROWSER`` set, Python's ``webbrowser`` decides."""
    import webbrowser

    desktop = sys.platform not in ("win32", "darwin") and not os.environ.get("BROWSER")
    found = shutil.which("xdg-open") if desktop else None
    if found is not None:
        return _run([found, url])
    try:
        opened = bool(webbrowser.open(url))
    except Exception:  # webbrowser.Error, or a browser entry that cannot start
        log.info("no browser could open %s", url, exc_info=True)
        opened = False
    return None if opened else "no browser found"


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
    return found is not None and _run([found, str(path)]) is None


def _run(argv: list[str]) -> str | None:
    """Run an opener and wait for it: None when it handed the thing over (or still runs
    after 20 s), else its last line on stderr or its exit code. Its stderr goes to a
    file, not a pipe: a browser it starts may hold a pipe open for hours."""
    with tempfile.TemporaryFile() as said:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=said,
                start_new_session=True,
            )
        except OSError as exc:
            log.info("could not run %s", argv, exc_info=True)
            return f"{Path(argv[0]).name}: {exc.strerror}"
        try:
            code = proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            threading.Thread(target=proc.wait, name="opener", daemon=True).start()
            return None
        if code == 0:
            return None
        said.seek(0)
        lines = said.read(65536).decode("utf-8", "replace").strip().splitlines()
    why = lines[-1].strip() if lines else f"exit code {code}"
    log.info("%s failed: %s", argv[0], why)
    return f"{Path(argv[0]).name} failed: {why}"
