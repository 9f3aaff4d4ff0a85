"""What a watcher tells the outside world beyond its own window: the health endpoint
(``--serve``, :mod:`.serve`), the change and event hooks (``--exec``, ``--on-event``,
:mod:`.hooks`) and the phone (``notify_urls``, :mod:`.notify`), set up from the config
for ``watch`` and the tray.

:class:`Outlets` binds the port when built (a taken port fails before anything starts),
takes every published status as an ``on_status`` listener and every person event by
:meth:`Outlets.event`, and stops them all at once. Nothing here is imported unless one
of them is asked for; Apprise not before the notifier's thread sends.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from ..cli.options import UsageError

if TYPE_CHECKING:
    from ..care.poller import Poller
    from ..client.api import GatewayClient
    from ..model.person import Event
    from ..model.status import Status
    from ..settings.config import Config
    from .hooks import EventHooks, Hooks
    from .notify import Notifier
    from .serve import HealthServer, Metrics, View

log = logging.getLogger(__name__)


def poller_view(poller: Poller) -> View:
    """What the poller shows now, and whether its threads still run."""
    from .serve import View

    running = not poller.stopped and bool(poller.threads)
    running = running and all(thread.is_alive() for thread in poller.threads)
    return View(poller.view(), running)


def wanted(config: Config) -> bool:
    """Whether the config asks for any outlet."""
    return bool(config.serve or config.on_change or config.on_event or config.notify_urls)


class Outlets:
    """The health endpoint, hooks and notifier a config asks for (any of them, or
    none). ``view`` is read by the endpoint at each request; call the object with every
    status the poller publishes, and :meth:`event` with every person event."""

    def __init__(
        self,
        config: Config,
        view: Callable[[], View | Sequence[View]],
        *,
        wall: Callable[[], datetime] | None = None,
        gateways: Sequence[str | None] = (None,),
    ) -> None:
        """``view``: one view, or one per gateway (``gateways``: their names, in order);
        ``wall``: the notifier's clock (tests inject one)."""
        self.metrics: Metrics | None = None
        self.server: HealthServer | None = None
        self.hooks: Hooks | None = None
        self.event_hooks: EventHooks | None = None
        self.notifier: Notifier | None = None
        self._checked: dict[str | None, datetime] = {}  # the last check counted, by gateway
        if config.serve:
            from ..settings.values import parse_addr
            from .serve import HealthServer, Metrics, ServeError

            self.metrics = Metrics(gateways=gateways)
            try:
                addr = parse_addr(config.serve)
                self.server = HealthServer(addr, view, self.metrics, config.serve_hosts)
            except ServeError as exc:
                raise UsageError(str(exc)) from None
        if config.on_change:
            from .hooks import Hooks

            self.hooks = Hooks(config.on_change, url=config.url, timeout=config.hook_timeout)
        if config.on_event:
            from .hooks import EventHooks

            self.event_hooks = EventHooks(config.on_event, timeout=config.hook_timeout)
        if config.notify_urls:
            from .notify import Notifier

            self.notifier = Notifier.from_config(config, wall=wall)

    def attach(self, client: GatewayClient, gateway: str | None = None) -> None:
        """Count every request ``client`` (of ``gateway``) sends in the metrics (when
        serving)."""
        if self.metrics is not None:
            request = self.metrics.request
            client.on_request = lambda endpoint, code: request(endpoint, code, gateway)

    def threads(self) -> list[threading.Thread]:
        """The worker threads started: each must run as long as the watcher does."""
        workers = [self.server, self.hooks, self.event_hooks, self.notifier]
        return [w.thread for w in workers if w is not None and w.thread.ident is not None]

    def start(self) -> None:
        for part in (self.server, self.hooks, self.event_hooks, self.notifier):
            if part is not None:
                part.start()

    def stop(self) -> None:
        """Stop them all at once: no new request is answered, a running hook is killed,
        a send under way abandoned."""
        for part in (self.server, self.hooks, self.event_hooks, self.notifier):
            if part is not None:
                part.stop()

    def event(self, event: Event) -> None:
        """A person event (poller thread): queued for the event hook and the phone."""
        try:
            if self.event_hooks is not None:
                self.event_hooks.offer(event)
            if self.notifier is not None:
                self.notifier.event(event)
        except Exception:  # the watcher goes on whatever its outlets do
            log.exception("event hooks or notifications failed to take the %s event", event.kind)

    def __call__(self, status: Status) -> None:
        """A published status (poller thread): a hook run if the state changed; a check
        duration when a new check finished (a stale or held-back verdict republished
        keeps its ``checked_at`` and is not counted again)."""
        try:
            if self.hooks is not None:
                self.hooks.offer(status)
            if self.notifier is not None:
                self.notifier.status(status)
            checked = status.checked_at
            fresh = checked is not None and checked != self._checked.get(status.gateway)
            if self.metrics is not None and checked and fresh and status.latency_ms is not None:
                self._checked[status.gateway] = checked
                self.metrics.observe(status, status.latency_ms / 1000)
        except Exception:  # the watcher goes on whatever its outlets do
            log.exception("health endpoint, hooks or notifications failed to take a status")
