"""PyInstaller's entry script: the same entry point as the `cpgw-tray` console script."""

from cpgw_tray.cli import entry

entry()
