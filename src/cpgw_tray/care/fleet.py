"""Several gateways watched at once: one poller per gateway, each built the way a single
one is (``build``), on its own threads with its own client, pacing, keep-alive and care,
so a gateway that hangs never delays another's checks. What each publishes (statuses,
person events, the endpoint's views) carries its gateway's name; one output and one set
of outlets take them all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.person import Event
    from ..model.status import Status
    from ..outlets.serve import View
    from ..settings.gateways import Gateway
    from .poller import Poller

# build(gateway, on_status, on_event) -> the gateway's poller, not started
Build = Callable[["Gateway", Callable[["Status"], None], Callable[["Event"], None]], "Poller"]


def _named_status(name: str | None, to: Callable[[Status], None]) -> Callable[[Status], None]:
    return to if name is None else (lambda status: to(replace(status, gateway=name)))


def _named_event(name: str | None, to: Callable[[Event], None]) -> Callable[[Event], None]:
    return to if name is None else (lambda event: to(replace(event, gateway=name)))


class Fleet:
    """One poller per gateway, in the settings' order."""

    def __init__(
        self,
        gateways: list[Gateway],
        build: Build,
        on_status: Callable[[Status], None],
        on_event: Callable[[Event], None],
    ) -> None:
        self.names = [gateway.name for gateway in gateways]
        self.pollers = [
            build(
                gateway,
                _named_status(gateway.name, on_status),
                _named_event(gateway.name, on_event),
            )
            for gateway in gateways
        ]

    @property
    def threads(self) -> list[threading.Thread]:
        return [thread for poller in self.pollers for thread in poller.threads]

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()

    def views(self) -> list[View]:
        """What each poller shows now, named, for the health endpoint."""
        from ..outlets.serve import View
        from ..outlets.wiring import poller_view

        shown = []
        for name, poller in zip(self.names, self.pollers, strict=True):
            view = poller_view(poller)
            shown.append(View(replace(view.status, gateway=name), view.running))
        return shown
