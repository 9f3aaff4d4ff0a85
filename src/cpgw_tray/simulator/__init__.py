"""A Client Portal Gateway simulator: real HTTPS on 127.0.0.1, real reply shapes.

It answers ``/v1/api/...`` (and the ``/v1/portal/...`` alias) the way the real gateway
does in each state of the status model, serves a small login page at ``/``, enforces
the gateway's rate limits (429 and a penalty box), times idle sessions out, and can hang
requests the way the real gateway does when IBKR is unreachable.

A control API under ``/sim/`` (never rate-limited, never logged) switches the scenario
and reads the request log::

    GET    /sim/state                 the simulated session, as JSON
    POST   /sim/state     {"scenario": "ready", "fail": "...", "message": "...",
                           "paper": true}
    POST   /sim/config    {"session_timeout": 360, "max_session": 86400,
                           "rate_limit": true, "penalty": 900, "paper": true}
    GET    /sim/requests              the request log (gateway paths only, with bodies)
    DELETE /sim/requests              clear it
    POST   /sim/release               let hung requests go (they get no reply)
    POST   /sim/bulletin  {"id": 1789618148, "message": "..."}
                                      an IBKR bulletin to every open websocket
    POST   /sim/push      {"heartbeat": 10}
                                      seconds between the websocket's heartbeats
    GET    /sim/clock                 the simulated time and IBKR's timetable at it
    POST   /sim/clock     {"at": "2026-11-26T00:30-05:00" | "now" | null,
                           "region": "na" | "eu" | "ap"}
                                      play IBKR's restart windows and weekly token
                                      reset at that time (null: real time, not played)

From tests: ``with Simulator(port=0) as sim: sim.url ...``. ``sim.go_down()`` closes the
port (connections refused, as with no gateway running) and ``sim.come_up()`` opens the
same port again (the demo's *gateway down*; not in the control API, which needs the port).

The package: :mod:`.model` (session and replies), :mod:`.server` (HTTPS and the
control API), :mod:`.push` (the websocket ``/v1/api/ws``), :mod:`.clock` (the injectable
wall clock), :mod:`.certs`, :mod:`.scaffold` (a gateway-shaped folder) and :mod:`.command`
(``cpgw-tray sim``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .certs import make_certificate
    from .clock import SimClock
    from .model import SCENARIOS, Logged, Session, SimulatedGateway
    from .scaffold import CONF_YAML, make_gateway_dir
    from .server import Simulator

# Imported on first use: the CLI loads this package for `sim` and must stay quick.
_HOME = {
    "make_certificate": "certs",
    "SimClock": "clock",
    "SCENARIOS": "model",
    "Logged": "model",
    "Session": "model",
    "SimulatedGateway": "model",
    "CONF_YAML": "scaffold",
    "make_gateway_dir": "scaffold",
    "Simulator": "server",
}
__all__ = [
    "CONF_YAML",
    "SCENARIOS",
    "Logged",
    "Session",
    "SimClock",
    "SimulatedGateway",
    "Simulator",
    "make_certificate",
    "make_gateway_dir",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
