"""The demo, ``cpgw-tray demo``: the tray against a simulator started in this process,
with a *Simulate* menu (:class:`SimulateMenu`) that plays the gateway's states, a takeover
by TWS, and IBKR's nightly restart and weekly token reset on the wall clock the tray and
the simulator share (:func:`demo_clock`: real time, or from ``--clock``'s moment on).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, TextIO

from .app import display_missing, run_tray
from .cli.options import resolve
from .constants import EXIT_UNAVAILABLE
from .settings.config import file_path
from .simulator.clock import SimClock, parse_moment
from .tray.sections import Section

if TYPE_CHECKING:
    from .client.api import GatewayClient
    from .settings.config import Config
    from .simulator import Simulator
    from .tray.menu import Entry
    from .tray.sections import Door, SectionFactory
    from .tray.view import View

log = logging.getLogger(__name__)


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    """``demo``'s own options (:mod:`cpgw_tray.cli.main`)."""
    parser.add_argument(
        "--gateways", type=int, choices=(1, 2), default=1, help="2: a live and a paper one"
    )
    parser.add_argument(
        "--clock",
        type=_moment,
        metavar="ISO",
        help="the demo's real time starts here and runs on (e.g. 2026-11-28T05:00Z, a "
        "Saturday in IBKR's weekend maintenance): to show the demo at a chosen moment",
    )
    parser.set_defaults(func=cmd_demo)


def _moment(text: str) -> datetime:
    """``--clock``'s value, or argparse's error naming the option (one line, exit 64)."""
    try:
        return parse_moment(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def demo_clock(start: datetime | None, real: Callable[[], datetime] = _utc_now) -> SimClock:
    """The demo's shared wall clock: real time, or from ``start`` on at real speed. That
    is its real time: *nightly restart* and *weekly reset* jump from it, and back to it."""
    if start is None:
        return SimClock(real)
    offset = start - real()
    return SimClock(lambda: real() + offset)


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    """The tray against a simulator started in this process, with a Simulate menu. The
    tray and the simulator share one wall clock, so "nightly restart" can move it into
    IBKR's next restart window."""
    from .simulator import Simulator

    if display_missing():
        return EXIT_UNAVAILABLE
    clock = demo_clock(getattr(args, "clock", None))
    if getattr(args, "clock", None):
        print(f"Demo: the clock starts at {clock.now():%Y-%m-%d %H:%M:%S} UTC and runs on.")
    if getattr(args, "gateways", 1) == 2:
        return demo_two(args, clock)
    sim = Simulator(0, scenario="logged_out", penalty=60, wall=clock).start()
    interval = getattr(args, "interval", None) or 5.0

    def load() -> Config:
        return demo_config(args, sim.url, interval)

    print(f"Demo: simulated gateway on {sim.url}; the tray polls it every {interval:g} s.")

    try:
        # The simulator runs in this process: its Simulate menu replaces the gateway items.
        return run_tray(
            load,
            file_path(getattr(args, "config", None)),
            sections=lambda config, client: [SimulateMenu.factory(sim, clock, client)],
            on_quit=sim.stop,
            record_history=False,  # a simulated day is not the trader's history
            now=clock.now,
        )
    finally:
        sim.stop()


def demo_config(args: argparse.Namespace, url: str, interval: float) -> Config:
    """The demo's settings for a simulator at ``url``, resolved again at each load."""
    # The simulator answers in milliseconds: a short timeout makes "hang" show at once.
    # No automatic reauthentication, so each simulated state stays on show. Push on: the
    # simulator's websocket, its drops and bulletins on show.
    settings = resolve(
        args, url=url, interval=interval, insecure=True, timeout=0.8, auto_reauth=False, push=True
    )
    # The simulator's certificate is its own; a configured endpoint, hook or phone is for
    # the real gateway, not for simulated states.
    return replace(
        settings, ca_bundle=None, serve=None, on_change=None, on_event=None, notify_urls=()
    )


def demo_two(args: argparse.Namespace, clock: SimClock) -> int:
    """``demo --gateways 2``: a live and a paper simulated gateway on one icon, each
    section with its own Simulate menu."""
    from .settings.gateways import Gateway
    from .several_app import run_several
    from .simulator import Simulator

    sims = {
        "live": Simulator(0, scenario="ready", penalty=60, wall=clock).start(),
        "paper": Simulator(0, scenario="logged_out", penalty=60, wall=clock).start(),
    }
    interval = getattr(args, "interval", None) or 5.0
    gateways = [Gateway(name, demo_config(args, sim.url, interval)) for name, sim in sims.items()]
    for name, sim in sims.items():
        print(f"Demo: simulated {name} gateway on {sim.url}; polled every {interval:g} s.")

    def sections(config: Config, client: GatewayClient) -> list[SectionFactory]:
        sim = next(s for s in sims.values() if s.url == config.url)
        return [SimulateMenu.factory(sim, clock, client)]

    try:
        return run_several(gateways, sections, record_history=False, now=clock.now)
    finally:
        for sim in sims.values():
            sim.stop()


class SimulateMenu(Section):
    """The demo's Simulate menu: a scenario for the simulated gateway or none listening, a
    takeover by TWS, or IBKR's nightly restart and weekly token reset played on the clock
    the tray and the simulator share. ``forgive`` ends the client's back-off (the gateway
    changed)."""

    def __init__(
        self, door: Door, sim: Simulator, clock: SimClock, forgive: Callable[[], None]
    ) -> None:
        self.door, self.sim, self.clock, self.forgive = door, sim, clock, forgive

    @classmethod
    def factory(cls, sim: Simulator, clock: SimClock, client: GatewayClient) -> SectionFactory:
        """The section for a tray watching ``sim`` through ``client``."""
        return lambda door: cls(door, sim, clock, client.governor.forgive)

    def changed(self) -> None:
        self.forgive()  # the simulated gateway changed: ask at once
        self.door.check_now(fresh=True)

    def switch(self, name: str) -> Callable[[], None]:
        """A scenario, listening again first if the gateway was down."""

        def go() -> None:
            try:
                self.sim.come_up()
            except OSError as exc:  # another program took the port meanwhile
                log.warning("the simulated gateway cannot listen again: %s", exc)
                self.door.note(f"The simulated gateway cannot listen again: {exc}")
            self.sim.set_scenario(name)
            self.changed()

        return go

    def down(self) -> None:
        """The gateway not running: nothing listens until a scenario is chosen."""
        self.sim.go_down()
        self.changed()

    def jump(self, at: Callable[[datetime], datetime], region: str) -> None:
        """The shared clock to ``at(now)``, or back to real time with the scenario it left
        (an injected restart or reset is undone, so nothing says "not back after IBKR's
        restart"). The "Since …" rows move with the clock."""
        sim, clock = self.sim, self.clock
        before = clock.now()
        if clock.injected:
            clock.set(None)
            sim.set_scenario(clock.left_scenario)
        else:
            clock.left_scenario = sim.session.scenario
            sim.region = region  # the tray's
            clock.set(at(before))
        self.door.clock_moved(clock.now() - before)
        self.changed()

    def nightly_restart(self, region: str) -> None:
        """Into IBKR's next nightly restart window (30 s in), or back to real time."""
        from .model.ibkr_clock import next_daily_window

        self.jump(
            lambda now: next_daily_window(self.sim.region, now).start + timedelta(seconds=30),
            region,
        )

    def weekly_reset(self, region: str) -> None:
        """To IBKR's weekly token reset, which ends the login (see ``reset_moment``); or
        back to real time."""
        from .model.ibkr_clock import next_token_reset
        from .simulator.clock import reset_moment

        def land(now: datetime) -> datetime:
            at = reset_moment(self.sim.region, now)
            if at > next_token_reset(now):  # jumped past it: the login it ended is gone
                self.sim.set_scenario("logged_out")
            return at

        self.jump(land, region)

    def bulletin(self) -> None:
        """An IBKR bulletin on the simulator's websocket (a new id each time)."""
        self.sim.push.bulletin(
            int(time.time()), "[BBSMSG Bulletin]\nSimulated: IBKR will be down for maintenance."
        )

    def taken_over(self) -> None:
        self.sim.taken_over("TWS")
        self.changed()

    def entries(self, view: View) -> list[Entry]:
        from .simulator import SCENARIOS
        from .tray.menu import SEPARATOR, Entry

        sim, clock, region = self.sim, self.clock, view.region
        choices = tuple(
            Entry(
                f"{name}: {what}",
                self.switch(name),
                checked=sim.listening and sim.session.scenario == name,
                radio=True,
            )
            for name, what in SCENARIOS.items()
        )
        what = "the simulator stops listening (connections refused) until a scenario"
        down = Entry(f"gateway down: {what}", self.down, checked=not sim.listening, radio=True)
        restart = Entry(
            "nightly restart: the clock jumps into IBKR's next restart window",
            lambda: self.nightly_restart(region),
            checked=clock.injected,
        )
        reset = Entry(
            "weekly reset: the clock jumps to IBKR's Sunday token reset (outside the restart)",
            lambda: self.weekly_reset(region),
            checked=clock.injected,
        )
        tws = Entry("taken over by TWS: TWS logs in with the same username", self.taken_over)
        news = Entry(
            "IBKR bulletin: one on the websocket (shown when push is connected)", self.bulletin
        )
        return [Entry("Simulate", submenu=(*choices, down, SEPARATOR, tws, news, restart, reset))]
