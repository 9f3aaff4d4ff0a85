"""One verdict from many replies: auth/status decides the state, every other reply is
evidence (poller.py's docstring, the README's contract). Fake clocks throughout; the
acceptance runs play IBKR's 2025-2026 reply shapes on the simulator over real HTTPS."""

from __future__ import annotations

import io
import itertools
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpgw_tray.care.pipeline import Pipeline
from cpgw_tray.care.poller import EVIDENCE_EVERY
from cpgw_tray.cli.main import build_parser
from cpgw_tray.cli.options import resolve
from cpgw_tray.cli.watch import Printer
from cpgw_tray.client.api import GatewayClient, RateGovernor
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.history import History
from cpgw_tray.simulator import Simulator

from .test_poller import Clocks, Wired


def said(state: State, clocks: Clocks, sso: float | None = None, detail: str = "t") -> Status:
    return Status(state, LOOKS[state].label, detail, checked_at=clocks.wall(), sso_expires_s=sso)


# ------------------------------------------------------------------ the rule, unit by unit


def test_a_tickle_that_disagrees_publishes_nothing_and_asks_one_check_per_10_s() -> None:
    """The November 2025 pair without the simulator: the tickle says logged_out, every
    check says not_authenticated. Only verdicts are published; the tickles' checks are
    capped at one per 10 s."""
    wired = Wired(interval=60, keepalive=2)
    wired.state = State.NOT_AUTHENTICATED
    original = wired._answer

    def answer(kind: str) -> Status:
        status = original(kind)
        return said(State.LOGGED_OUT, wired.clocks) if kind == "tickle" else status

    wired._answer = answer  # type: ignore[method-assign]
    wired.run_for(60)
    assert {s.state for s in wired.seen} == {State.NOT_AUTHENTICATED}
    checks = [t for kind, t in wired.calls if kind == "check"]
    tickles = [t for kind, t in wired.calls if kind == "tickle"]
    assert len(tickles) >= 25
    assert 5 <= len(checks) <= 1 + 60 / EVIDENCE_EVERY + 1  # the first, then capped
    assert all(b - a >= EVIDENCE_EVERY for a, b in itertools.pairwise(checks[1:]))


def test_a_tickle_that_agrees_refreshes_checked_at_and_sso_only_and_replaces_a_check() -> None:
    wired = Wired(interval=15, keepalive=10)
    wired.run_for(1)  # the first check: a verdict
    verdict = wired.seen[-1]
    wired.clocks.advance(9)
    wired.answers = [said(State.READY, wired.clocks, sso=3600.0, detail="other words")]
    wired.poller.step()
    refreshed = wired.seen[-1]
    assert wired.calls[-1][0] == "tickle"
    assert refreshed.view_key() == verdict.view_key()  # same words: no line, no hook
    assert refreshed.checked_at == wired.clocks.wall() != verdict.checked_at
    assert refreshed.sso_expires_s == 3600.0
    assert wired.poller.due() == (None, pytest.approx(10.0))  # the tickle replaced a check
    assert wired.poller.view() == refreshed  # and it is fresh


@pytest.mark.parametrize("reply", [None, State.ERROR])
def test_evidence_that_cannot_be_read_never_agrees(reply: State | None) -> None:
    """Unreadable evidence asks for a check even when the verdict is an error too."""
    wired = Wired(interval=60)
    wired.state = State.ERROR
    wired.run_for(1)
    status = None if reply is None else said(reply, wired.clocks)
    assert wired.poller.evidence("websocket", status) == "check"
    assert wired.poller.due() == ("check", 0.0)
    assert wired.poller.evidence("websocket", status) == "capped"


def test_evidence_before_any_verdict_is_ignored() -> None:
    wired = Wired()
    assert wired.poller.evidence("websocket", said(State.READY, wired.clocks)) == "ignored"
    assert wired.seen == []


def test_an_evidence_check_waits_for_a_429_back_off() -> None:
    """A tickle answered 429: the check it asks for comes after the back-off, not at once."""
    wired = Wired(interval=15, keepalive=10)
    wired.run_for(1)
    limited = Status(
        State.RATE_LIMITED, "x", "y", checked_at=wired.clocks.wall(), retry_after_s=120.0
    )
    wired.answers = [limited]
    wired.run_for(10)
    action, wait = wired.poller.due()
    assert action is None and wait > 100
    assert {s.state for s in wired.seen} == {State.READY}


def test_an_evidence_check_keeps_the_restart_window_pacing() -> None:
    """Inside an IBKR restart window, while not ready, one request a minute: a tickle's
    disagreement does not add a second one."""
    wired = Wired(interval=15, keepalive=10)
    wired.state = State.NOT_AUTHENTICATED
    window_end = wired.clocks.wall() + timedelta(hours=1)
    wired.answers = [
        Status(
            State.NOT_AUTHENTICATED,
            "x",
            "y",
            checked_at=wired.clocks.wall(),
            region="na",
            maintenance_until=window_end,
        )
    ]
    wired.run_for(1)
    wired.answers = [said(State.LOGGED_OUT, wired.clocks)]
    wired.run_for(58)
    assert [kind for kind, _ in wired.calls] == ["check"]
    wired.run_for(31)  # the tickle a minute after the check; its check a minute later
    assert [(kind, t - 1000) for kind, t in wired.calls] == [("check", 0), ("tickle", 60)]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["tickle", "websocket", "accounts"]),
            st.sampled_from([None, *State]),
            st.floats(min_value=0.0, max_value=30.0),
        ),
        max_size=40,
    )
)
def test_any_interleaving_of_evidence_publishes_only_the_verdicts(
    steps: list[tuple[str, State | None, float]],
) -> None:
    """Whatever evidence arrives, in whatever order: every published state is a
    verdict's, so a steady gateway's published states never change (no flap)."""
    wired = Wired(interval=15, keepalive=5)
    wired.state = State.NOT_AUTHENTICATED
    wired.run_for(0.5)
    for source, state, gap in steps:
        wired.poller.evidence(source, None if state is None else said(state, wired.clocks))
        wired.run_for(gap)
    assert {s.state for s in wired.seen} <= {State.NOT_AUTHENTICATED, State.UNKNOWN}
    assert {s.state for s in wired.seen if s.state is not State.UNKNOWN}


# ------------------------------------------------------------------ acceptance: simulator


def _watch_lines(scenario: str, tmp: Path, cycles: int = 30) -> list[str]:
    """``watch --interval 1 --keepalive 1`` against the simulator playing ``scenario``,
    for ``cycles`` seconds of a fake clock (nothing sleeps): the lines it prints. Its
    history has one row per printed state (no row for evidence)."""
    clocks = Clocks()
    out = io.StringIO()
    history = History(tmp / "history.jsonl", "watch")
    printer = Printer(out, False, threading.Event(), history)
    with Simulator(port=0, rate_limit=False, scenario=scenario) as sim:
        argv = ["--url", sim.url, "watch", "--interval", "1", "--keepalive", "1"]
        args = build_parser(argv).parse_args(argv)
        config = resolve(args)
        governor = RateGovernor(clock=clocks.mono)
        client = GatewayClient(
            config.url,
            timeout=5,
            verify=False,
            governor=governor,
            sleep=clocks.advance,
            now=clocks.wall,
        )
        poller = Pipeline(
            config, client, printer, clock=clocks.mono, wall=clocks.wall, poller_wall=clocks.wall
        ).poller
        end = clocks.mono() + cycles
        try:
            while clocks.mono() < end:
                clocks.advance(min(poller.step(), end - clocks.mono()))
        finally:
            client.close()
        kinds = [entry.path.rsplit("/", 1)[-1] for entry in sim.requests()]
    assert kinds.count("tickle") >= cycles // 2 and kinds.count("status") >= 3, kinds
    lines = out.getvalue().splitlines()
    rows = history.path.read_text().splitlines()
    assert len(rows) == len({line.split()[1] for line in lines}), rows
    return lines


def test_the_november_2025_pair_does_not_flap(tmp_path: Path) -> None:
    """auth/status: authenticated false, connected true; tickle: 200 'no session'. At
    most the first verdict and one change; here the one verdict."""
    lines = _watch_lines("half_open", tmp_path)
    assert 1 <= len(lines) <= 2, lines
    assert all(" not_authenticated: " in line for line in lines), lines


@pytest.mark.parametrize("scenario", ["tickle_bare", "tickle_nan"])
def test_a_tickle_that_says_nothing_of_the_session_leaves_ready(
    scenario: str, tmp_path: Path
) -> None:
    lines = _watch_lines(scenario, tmp_path)
    assert len(lines) == 1 and " ready: " in lines[0], lines
