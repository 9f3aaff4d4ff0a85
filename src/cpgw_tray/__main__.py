"""``python -m cpgw_tray``."""

from .cli.main import entry

entry()
