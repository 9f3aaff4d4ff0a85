"""The check pipeline, built in one place for the tray, ``watch`` and the demo: IBKR's
clock → :class:`~.session.SessionCare` → :class:`~.person_care.PersonCare` →
:class:`~.poller.Poller`, over one gateway client.

:meth:`Pipeline.reconfigure` is the only way a saved setting reaches these running parts:
each part takes its own keys through its own ``reconfigure``; nothing else writes their
fields. Keys that need a restart (:data:`~cpgw_tray.settings.table.RESTART_KEYS`) are left
as the pipeline was built.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from ..settings.config import KEYS
from .maintenance import IbkrClock
from .person_care import PersonCare
from .poller import Poller
from .session import SessionCare

if TYPE_CHECKING:
    from pathlib import Path

    from ..client.api import GatewayClient
    from ..model.person import Event
    from ..model.status import Status
    from ..settings.config import Config


class Pipeline:
    """The parts that check the gateway and care for the session, wired together."""

    def __init__(
        self,
        config: Config,
        client: GatewayClient,
        on_status: Callable[[Status], None],
        *,
        on_event: Callable[[Event], None] = lambda event: None,
        pause_file: Path | None = None,
        wall: Callable[[], datetime] | None = None,
        poller_wall: Callable[[], datetime] | None = None,
        clock: Callable[[], float] = time.monotonic,
        log_path: Path | None = None,
        poller: Poller | None = None,
    ) -> None:
        """``pause_file``: where the person's pause is shared with other processes (None:
        in this process only). ``wall``: the person policy's clock (the demo's shared
        one); ``poller_wall``: the poller's (default: the real one; tests on a fake
        clock). ``poller``: a ready-made one (tests); it is told of the pause."""
        self.config = config
        self.client = client
        self.ibkr = IbkrClock.from_config(config)
        self.care = SessionCare(client, auto_reauth=config.auto_reauth, ibkr=self.ibkr, clock=clock)
        extra = {"wall": wall} if wall is not None else {}
        self.person = PersonCare.from_config(
            self.care, config, on_event, pause_file=pause_file, **extra
        )
        self.care.pause_when(self.person.paused)
        if poller is None:
            poller = Poller(
                self.person.check,
                on_status,
                interval=config.interval,
                tickle=self.person.tickle,
                keepalive=config.keepalive,
                timeout=config.timeout,
                clock=clock,
                log_path=log_path,
                url=config.url,
                **({"wall": poller_wall} if poller_wall is not None else {}),  # type: ignore[arg-type]
            )
        poller.pause_keepalive_when(self.person.paused_now)
        self.poller = poller

    def reconfigure(self, config: Config) -> None:
        """Saved settings, taken on by each running part from its next step. Only a key
        whose value changed reaches its part: a choice made in the menu that the
        environment overrides stays as clicked."""
        old, self.config = self.config, config
        changed = {key for key in KEYS if getattr(old, key) != getattr(config, key)}
        if "timeout" in changed:
            self.client.reconfigure(timeout=config.timeout)
        if "auto_reauth" in changed:
            self.care.reconfigure(auto_reauth=config.auto_reauth)
        if changed & {"login_reminder", "on_competing", "compete_after"}:
            self.person.reconfigure(config)
        if changed & {"interval", "keepalive", "timeout"}:
            self.poller.reconfigure(
                interval=config.interval, keepalive=config.keepalive, timeout=config.timeout
            )
