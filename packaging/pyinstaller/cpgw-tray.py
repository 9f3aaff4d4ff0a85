"""PyInstaller's entry script: the same entry point as the `cpgw-tray` console script.

A windowed executable (Windows' `cpgw-tray-tray.exe`) starts with no standard streams
(``sys.stdout`` and ``sys.stderr`` are None); they go to the null device, so a message
meant for a terminal cannot end the tray.
"""

import os
import sys

for name in ("stdout", "stderr"):
    if getattr(sys, name) is None:
        setattr(sys, name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115

from cpgw_tray.cli.main import entry  # noqa: E402

entry()
