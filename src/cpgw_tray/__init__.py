"""cpgw-tray: a system-tray indicator for the IBKR Client Portal Gateway.

Importing this package never touches the display: pystray is imported only where
the tray starts (see :mod:`cpgw_tray.tray.tray_app`).
"""

__version__ = "0.1.0"
