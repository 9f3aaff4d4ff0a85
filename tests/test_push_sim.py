"""Push over real sockets against the simulator's websocket: a drop seen within a second at
interval 15 (checked by the order of events), bulletins once each through the tray's
notifications, ``watch --json`` and the history, and nothing new with push off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cpgw_tray import paths
from cpgw_tray.care.bulletins import Bulletins
from cpgw_tray.care.pipeline import Pipeline
from cpgw_tray.care.push_link import PushLink
from cpgw_tray.client.api import GatewayClient
from cpgw_tray.client.push import Push
from cpgw_tray.model.status import State, Status
from cpgw_tray.outlets.history import History
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import Simulator
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import control, status_json, wait_for
from .test_watch import reader

API = "/v1/api/"


@pytest.fixture
def ready_sim() -> Iterator[Simulator]:
    with Simulator(0, scenario="ready", rate_limit=False) as sim:
        yield sim


class Watcher:
    """A watcher's parts in this process (the poller and push of ``watch``), recording
    each published status with the time it was published."""

    def __init__(self, sim: Simulator, tmp: Path, **settings: Any) -> None:
        config = {"url": sim.url, "insecure": True, "restart_windows": False, **settings}
        self.config = load(config, env={})
        self.client = GatewayClient(sim.url, verify=False, timeout=5)
        self.published: list[tuple[float, Status]] = []
        self.lock = threading.Lock()
        self.poller = Pipeline(self.config, self.client, self.on_status).poller
        self.link: PushLink | None = None
        if self.config.push:
            store = Bulletins(tmp / "bulletins.json", sim.url)
            self.link = PushLink(self.config, self.client, self.poller, store)

    def on_status(self, status: Status) -> None:
        with self.lock:
            self.published.append((time.time(), status))
        if self.link is not None:
            self.link.saw(status)

    def states(self) -> list[str]:
        with self.lock:
            return [s.state.value for _, s in self.published]

    def __enter__(self) -> Watcher:
        self.poller.start()
        if self.link is not None:
            self.link.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.link is not None:
            self.link.stop()
        self.poller.stop()

    @property
    def push(self) -> Push:
        assert self.link is not None
        return self.link.push


@pytest.mark.e2e  # waits out the real rate limit's second
def test_a_drop_is_seen_within_a_second_by_one_check_and_no_poll(
    ready_sim: Simulator, tmp_path: Path
) -> None:
    with Watcher(ready_sim, tmp_path, interval=15, push=True) as watcher:
        wait_for(lambda: watcher.push.state == "connected", timeout=10)
        wait_for(lambda: watcher.published[-1][1].push == "connected")
        assert watcher.states()[0] == "ready"
        # The drop comes once the gateway's 1 request/s pacing of auth/status has passed,
        # as it does at interval 15 (the client would rightly wait out the rest of it).
        checks = [r.t for r in ready_sim.requests() if r.path.endswith("auth/status")]
        wait_for(lambda: time.time() - checks[-1] > 1.1 + 0.05)
        dropped = time.time()
        ready_sim.set_scenario("logged_out")  # sts not authenticated; auth/status 401
        seen = wait_for(
            lambda: next((t for t, s in watcher.published if s.state is State.LOGGED_OUT), None),
            timeout=5,
        )
        assert seen - dropped <= 1.0
        # The order: the drop, then one auth/status check (answered 401), then the
        # verdict published; no poll or tickle in between.
        after = [r for r in ready_sim.requests() if r.t >= dropped and r.path.startswith(API)]
        before_verdict = [r for r in after if r.t <= seen]
        assert [(r.path, r.status) for r in before_verdict] == [(API + "iserver/auth/status", 401)]
        assert all(s.state is State.READY for t, s in watcher.published if t < seen)


@pytest.mark.e2e  # three real checks a second apart
def test_push_off_changes_nothing(ready_sim: Simulator, tmp_path: Path) -> None:
    with Watcher(ready_sim, tmp_path, interval=1) as watcher:
        wait_for(lambda: len(watcher.published) >= 3, timeout=10)
    assert watcher.link is None
    assert all(s.push is None and s.to_json()["push"] is None for _, s in watcher.published)
    assert not [r for r in ready_sim.requests() if r.path.endswith("/ws")]


def test_bulletins_reach_notification_and_history_once(
    ready_sim: Simulator, tmp_path: Path
) -> None:
    config = load(
        {"url": ready_sim.url, "insecure": True, "push": True, "restart_windows": False}, env={}
    )
    history = History(tmp_path / "history.jsonl", "tray")
    tray = TrayApp(config, GatewayClient(ready_sim.url, verify=False), history=history)
    assert tray.push_items is not None  # the tray makes its push rows itself
    link = tray.push_items.link
    backend = DummyBackend()
    tray.start(backend)  # and starts the link with its poller
    try:

        def notified() -> list[str]:
            backend.drain()
            return [m for kind, m in backend.calls if kind == "notify" and "BBSMSG" in m]

        wait_for(lambda: link.push.state == "connected", timeout=10)
        for ident in (17, 17, 18):
            control(ready_sim.url, "/sim/bulletin", {"id": ident, "message": f"[BBSMSG] n{ident}"})
        wait_for(lambda: len(notified()) >= 2)
        assert notified() == ["[BBSMSG] n17", "[BBSMSG] n18"]
        rows = [json.loads(line) for line in history.path.read_text().splitlines()]
        events = [(r["event"], r["id"]) for r in rows if r.get("event") == "bulletin"]
        assert events == [("bulletin", "17"), ("bulletin", "18")]
        backend.drain()
        menu = [e.text for e in backend.menu]
        assert any(t.startswith("Push: connected since") for t in menu)
        assert any("IBKR bulletin" in t and "n18" in t for t in menu)
    finally:
        link.stop()
        tray.quit()


def _watch(url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "watch", "--json", "--push", "--url", url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _lines_until(lines: Any, want: Any, timeout: float = 10) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not got or not want(got[-1]):
        got.append(json.loads(lines.get(timeout=max(0.1, deadline - time.monotonic()))))
    return got


@pytest.mark.e2e
def test_watch_json_prints_a_bulletin_once_across_restarts(ready_sim: Simulator) -> None:
    for run, (idents, shown) in enumerate((((17, 17, 18), ["17", "18"]), ((17, 19), ["19"]))):
        proc = _watch(ready_sim.url)
        try:
            lines = reader(proc.stdout)
            _lines_until(lines, lambda line: line.get("push") == "connected")
            for ident in idents:
                control(ready_sim.url, "/sim/bulletin", {"id": ident, "message": f"news {ident}"})
            got = _lines_until(lines, lambda line, last=str(idents[-1]): line.get("id") == last)
            bulletins = [line for line in got if line.get("event") == "bulletin"]
            assert [b["id"] for b in bulletins] == shown, f"run {run}"
            assert set(bulletins[0]) == {"event", "id", "message", "at", "gateway"}
            assert bulletins[0]["message"] == f"news {shown[0]}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)
    rows = [json.loads(line) for line in paths.history_file().read_text().splitlines()]
    assert [r["id"] for r in rows if r.get("event") == "bulletin"] == ["17", "18", "19"]


@pytest.mark.e2e  # waits out real heartbeats
def test_heartbeats_keep_the_socket_and_their_absence_drops_it(ready_sim: Simulator) -> None:
    """The simulator's heartbeat interval is set over its control API: beats every 0.2 s
    hold a socket whose gap is 1 s; beats every 10 s lose it after that gap."""
    control(ready_sim.url, "/sim/push", {"heartbeat": 0.2})
    lost: list[str] = []
    push = Push(
        ready_sim.url,
        verify=False,
        timeout=2,
        session_id=lambda: "9fe1c272dc44e023a3aefe52b71d42bd",
        on_lost=lost.append,
        heartbeat_gap=1.0,
    )
    push.start()
    try:
        wait_for(lambda: push.state == "connected", timeout=5)
        wait_for(lambda: ready_sim.push.clients == 1)
        connected = push.since
        assert not wait_for_nothing(lambda: lost, 2.5)
        assert push.state == "connected" and push.since == connected
        control(ready_sim.url, "/sim/push", {"heartbeat": 10})
        wait_for(lambda: lost, timeout=5)
        assert lost[0] == "no heartbeat for 1 s"
    finally:
        push.stop()


def wait_for_nothing(check: Any, seconds: float) -> Any:
    """What ``check`` gives after ``seconds`` of watching for it (falsy: it never came)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    return check()


@pytest.mark.e2e  # waits for the simulator's real 10 s heartbeat
def test_no_socket_without_a_session_paused_or_in_a_restart_window(
    ready_sim: Simulator, tmp_path: Path
) -> None:
    from dataclasses import replace
    from datetime import datetime, timezone

    with Watcher(ready_sim, tmp_path, interval=15, push=True) as watcher:
        wait_for(lambda: watcher.push.state == "connected", timeout=10)
        link = watcher.link
        assert link is not None
        latest = watcher.poller.latest
        assert latest is not None
        assert link._allowed() and link._session_id() is not None
        window = replace(latest, maintenance_until=datetime.now(timezone.utc))
        watcher.poller.latest = window
        assert not link._allowed()
        watcher.poller.latest = replace(latest, state=State.LOGGED_OUT)
        assert link._session_id() is None
        watcher.poller.latest = latest
        paused = [True]
        link._paused = lambda: paused[0]
        assert not link._allowed()
        wait_for(lambda: watcher.push.state == "off", timeout=15)  # closed, not lost
        assert watcher.push._failures == 0


def test_one_shot_status_says_push_null_even_with_push_on(
    ready_sim: Simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CPGW_TRAY_PUSH", "true")
    code, data = status_json(ready_sim.url)
    assert code == 0 and "push" in data and data["push"] is None
    assert not [r for r in ready_sim.requests() if r.path.endswith("/ws")]


def test_demo_simulate_menu_sends_an_ibkr_bulletin_over_the_websocket(
    ready_sim: Simulator,
) -> None:
    from cpgw_tray.demo import SimulateMenu
    from cpgw_tray.simulator import SimClock

    from .test_tray import IdlePoller

    got: list[tuple[str, str]] = []
    push = Push(
        ready_sim.url,
        verify=False,
        timeout=2,
        session_id=lambda: "9fe1c272dc44e023a3aefe52b71d42bd",
        on_bulletin=lambda ident, message: got.append((ident, message)),
    )
    config = load({"url": ready_sim.url}, env={})
    client = GatewayClient(ready_sim.url, verify=False)
    section = SimulateMenu.factory(ready_sim, SimClock(), client)
    tray = TrayApp(config, client, sections=[section], poller=IdlePoller())
    push.start()
    try:
        wait_for(lambda: ready_sim.push.clients == 1, timeout=5)
        simulate = next(e for e in tray.entries() if e.text == "Simulate")
        entry = next(e for e in simulate.submenu if e.text.startswith("IBKR bulletin"))
        assert entry.action is not None
        entry.action()
        wait_for(lambda: got, timeout=5)
        assert got[0][1].startswith("[BBSMSG Bulletin] Simulated:")
    finally:
        push.stop()


def test_a_bulletin_is_an_event_for_the_event_hooks_once(
    ready_sim: Simulator, tmp_path: Path
) -> None:
    """In ``watch`` a bulletin goes where the person's events go (the line, ``on_event``,
    the phone), once per id, and never to the state hooks."""
    from cpgw_tray.cli.watch import push_link
    from cpgw_tray.outlets.wiring import Outlets, poller_view

    config = load({"url": ready_sim.url, "insecure": True, "push": True}, env={})
    client = GatewayClient(ready_sim.url, verify=False)
    events: list[Any] = []
    statuses: list[Status] = []
    poller = Pipeline(config, client, statuses.append).poller
    history = History(tmp_path / "history.jsonl", "watch")
    outlets = Outlets(config, lambda: poller_view(poller))
    link = push_link(config, client, poller, events.append, history, outlets)
    for ident in ("5", "5", "6"):
        link._bulletin(ident, f"news {ident}")
    assert [(e.kind, e.ident) for e in events] == [("bulletin", "5"), ("bulletin", "6")]
    assert statuses == []  # no status, so no state hook
    rows = [json.loads(line) for line in history.path.read_text().splitlines()]
    assert [(r["event"], r["id"], r["detail"]) for r in rows] == [
        ("bulletin", "5", "news 5"),
        ("bulletin", "6", "news 6"),
    ]
