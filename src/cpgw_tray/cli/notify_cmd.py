"""``cpgw-tray notify --test``: one message to each notification URL (the settings' and
``--notify``'s), a line per URL saying whether it went (the URL redacted). Exit 0 when
all went, 3 when any failed, 64 when no URL is set or Apprise is missing."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..constants import EXIT_NOT_SENT, EXIT_OK, EXIT_USAGE
from ..outlets.notify import AppriseMissing, computer_name, deliver, hide
from ..redaction import redact_url
from .options import UsageError, gateways_of


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Send one test message to each Apprise URL of notify_urls and --notify; "
        "exit 0 when all went, 3 when any failed, 64 when none is set or Apprise is missing."
    )
    parser.add_argument("--test", action="store_true", help="send the test message")
    parser.set_defaults(func=cmd_notify)


def cmd_notify(args: argparse.Namespace, out: TextIO) -> int:

    if not args.test:
        raise UsageError("notify: say --test to send a test message to each URL")
    config = gateways_of(args)[0].config  # the phone settings every gateway shares
    if not config.notify_urls:
        print(
            "cpgw-tray: no notification URL: set notify_urls in the settings or give --notify URL",
            file=sys.stderr,
        )
        return EXIT_USAGE
    hide(config.notify_urls)  # from Apprise's own log lines too
    computer = computer_name(config.url)
    title = f"IBKR gateway on {computer}"
    body = f"A test from cpgw-tray on {computer}: messages about the gateway will come here."
    failed = 0
    for url in config.notify_urls:
        try:
            went = deliver(url, title, body, config.hook_timeout)
        except AppriseMissing as exc:
            print(f"cpgw-tray: {exc}", file=sys.stderr)
            return EXIT_USAGE
        failed += not went
        out.write(f"{redact_url(url)}: {'sent' if went else 'FAILED (see the log)'}\n")
    return EXIT_NOT_SENT if failed else EXIT_OK
