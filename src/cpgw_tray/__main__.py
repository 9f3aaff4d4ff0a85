"""``python -m cpgw_tray``."""

from .cli import entry

entry()
