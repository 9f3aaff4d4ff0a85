"""What a watcher tells the outside world beyond its own window: the health endpoint
(``--serve``, :mod:`.serve`) and the change hooks (``--exec``, :mod:`.hooks`), set up
from the config for ``watch`` and the tray.

:class:`Outlets` binds the port when built (a taken port fails before anything starts),
takes every published status as an ``on_status`` listener, and stops both at once.
Nothing here is imported unless one of them is asked for.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from .options import UsageError

if TYPE_CHECKING:
    from .config import Config
    from .gateway import GatewayClient
    from .hooks import Hooks
    from .poller import Poller
    from .serve import HealthServer, Metrics, View
    from .status import Status

log = logging.getLogger(__name__)


def poller_view(poller: Poller) -> View:
    """What the poller shows now, and whether its threads still run."""
    from .serve import View

    running = not poller.stopped and bool(poller.threads)
    running = running and all(thread.is_alive() for thread in poller.threads)
    return View(poller.view(), running)


class Outlets:
    """The health endpoint and the change hooks a config asks for (either, both or
    neither). ``view`` is read by the endpoint at each request; call the object with
    every status the poller publishes."""

    def __init__(self, config: Config, view: Callable[[], View]) -> None:
        self.metrics: Metrics | None = None
        self.server: HealthServer | None = None
        self.hooks: Hooks | None = None
        self._checked: datetime | None = None
        if config.serve:
            from .serve import HealthServer, Metrics, ServeError, parse_addr

            self.metrics = Metrics()
            try:
                self.server = HealthServer(parse_addr(config.serve), view, self.metrics)
            except ServeError as exc:
                raise UsageError(str(exc)) from None
        if config.on_change:
            from .hooks import Hooks

            self.hooks = Hooks(config.on_change, url=config.url, timeout=config.hook_timeout)

    def attach(self, client: GatewayClient) -> None:
        """Count every request ``client`` sends in the metrics (when serving)."""
        if self.metrics is not None:
            client.on_request = self.metrics.request

    def threads(self) -> list[threading.Thread]:
        """The worker threads started: each must run as long as the watcher does."""
        workers = [self.server, self.hooks]
        return [w.thread for w in workers if w is not None and w.thread.ident is not None]

    def start(self) -> None:
        if self.server is not None:
            self.server.start()
        if self.hooks is not None:
            self.hooks.start()

    def stop(self) -> None:
        """Stop both at once: no new request is answered, a running hook is killed."""
        if self.server is not None:
            self.server.stop()
        if self.hooks is not None:
            self.hooks.stop()

    def __call__(self, status: Status) -> None:
        """A published status (poller thread): a hook run if the state changed; a check
        duration when a new check finished (a stale or held-back verdict republished
        keeps its ``checked_at`` and is not counted again)."""
        try:
            if self.hooks is not None:
                self.hooks.offer(status)
            fresh = status.checked_at is not None and status.checked_at != self._checked
            if self.metrics is not None and fresh and status.latency_ms is not None:
                self._checked = status.checked_at
                self.metrics.observe(status, status.latency_ms / 1000)
        except Exception:  # the watcher goes on whatever its outlets do
            log.exception("health endpoint or hooks failed to take a status")
