"""The real tray (``cpgw_tray.cli.main.main``, arguments as given), with a driver thread for the
growth benchmark: the poller is asked for checks back to back instead of every interval.

The tray's rate governor (1 request/s per endpoint, as the real gateway allows) is
replaced by one that does not pace; everything else is the tray as it runs: the poller
thread checks, session care enriches, the tray thread shows each status. Protocol on
stdin/stdout: once the first check is in, each line ``N`` on stdin runs N more checks,
waits ``SETTLE`` seconds and prints ``done TOTAL BLOCKS``, BLOCKS being Python's
allocated memory blocks after a garbage collection (a leak of one object per check
shows there).
"""

from __future__ import annotations

import gc
import sys
import threading
import time
from typing import TYPE_CHECKING

from cpgw_tray.cli.main import main
from cpgw_tray.client.api import RateGovernor
from cpgw_tray.tray import tray_app as tray

if TYPE_CHECKING:
    from cpgw_tray.tray.backends import Backend

SETTLE = 2.5  # seconds: past the --timeout 2 the growth benchmark gives the tray
apps: list[tray.TrayApp] = []
original_start = tray.TrayApp.start


def start(self: tray.TrayApp, backend: Backend) -> None:
    apps.append(self)
    original_start(self, backend)


def one_check(app: tray.TrayApp) -> None:
    before = app.poller.latest
    while not app.poller.check_now():
        time.sleep(0.0005)
    while app.poller.latest is before:
        time.sleep(0.0005)


def drive() -> None:
    while not apps or apps[0].poller.latest is None:
        time.sleep(0.01)
    app = apps[0]
    app.client.governor = RateGovernor(spacing=0, per_second=10**9)
    total = 0
    for line in sys.stdin:
        for _ in range(int(line)):
            one_check(app)
            total += 1
        # The tray thread shows the last status: let it settle before counting blocks.
        time.sleep(SETTLE)
        gc.collect()
        print(f"done {total} {sys.getallocatedblocks()}", flush=True)


tray.TrayApp.start = start  # type: ignore[method-assign]
threading.Thread(target=drive, name="bench-driver", daemon=True).start()
sys.exit(main(sys.argv[1:]))
