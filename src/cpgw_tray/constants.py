"""Names and numbers the whole program shares: the app's name, exit codes, and the
gateway's own words that several modules recognise."""

from __future__ import annotations

APP_NAME = "cpgw-tray"
ENV_PREFIX = "CPGW_TRAY_"

# Exit codes. 0-3 are the status model's (see status.LOOKS); the rest are sysexits-style.
EXIT_OK = 0
EXIT_FAILED = 1  # for `status`: needs login; for actions: the gateway did not take it
EXIT_NOT_PERMITTED = 3  # a gateway that is not ours to stop
EXIT_USAGE = 64  # EX_USAGE: a usage or config error
EXIT_UNAVAILABLE = 69  # EX_UNAVAILABLE: no display for the tray, no Java for the gateway
EXIT_SOFTWARE = 70  # EX_SOFTWARE: an internal failure outside the check loop (logged)
EXIT_CANT_CREATE = 73  # EX_CANTCREAT: a file of ours could not be written
EXIT_IOERR = 74  # EX_IOERR: the output cannot be written (not a closed pipe: a full disk)
EXIT_INTERRUPTED = 130  # Ctrl-C during a step that had to be undone

# The real gateway's command line and its words on a taken port (gateway-facts).
MAIN_CLASS = "ibgroup.web.core.clientportal.gw.GatewayStart"
LISTEN_FAILED = "Server listen failed"
EXIT_NOT_SENT = 3  # `notify --test`: a message did not reach its URL
