"""Push without sockets: message parsing, the reconnect pause, the bulletin store, and the
poller's evidence entry point and push-stretched interval (fake clocks: nothing sleeps)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray.care.bulletins import Bulletins
from cpgw_tray.care.poller import EVIDENCE_EVERY, Poller
from cpgw_tray.care.push_link import Bulletin, PushLink, disagrees
from cpgw_tray.client.push import MAX_PAUSE, Push, Sts, parse, ws_url
from cpgw_tray.model.status import State, Status
from cpgw_tray.settings.config import ConfigError, load

from .test_gateway import FakeClock
from .test_poller import make, run_for, setup


# ------------------------------------------------------------------ messages
def test_parse_reads_the_real_shapes() -> None:
    assert parse('{"topic":"system","hb":1764000000000}') == ("hb", None)
    assert parse('{"topic":"system","success":"user","isFT":false,"isPaper":false}') is None
    sts = '{"topic":"sts","args":{"connected":true,"authenticated":false,"competing":false}}'
    assert parse(sts) == ("sts", Sts(False, True, False))
    # live capture: args an array and a numeric id; IBKR's docs: one object, a string id
    blt = '{"topic":"blt","args":[{"id":1789618148,"exchanges":null,"message":"[BBSMSG]\\nHalt"}]}'
    assert parse(blt) == ("blt", [("1789618148", "[BBSMSG] Halt")])
    assert parse('{"topic":"blt","args":{"id":"7","message":"x"}}') == ("blt", [("7", "x")])


@pytest.mark.parametrize(
    "message",
    [
        '{"topic":"ntf","args":{"id":"118","text":"x","title":null,"url":null}}',
        '{"topic":"sts","args":"nope"}',
        '{"topic":"blt","args":[{"id":true,"message":"x"},{"id":1}]}',
        "[1,2]",
        "not json",
        b"\xff\xfe",
        '{"topic":"sts","args":{"authenticated":NaN}}',
    ],
)
def test_parse_ignores_what_it_cannot_use(message: str | bytes) -> None:
    assert parse(message) is None


def test_sts_facts_must_be_real_booleans() -> None:
    assert parse('{"topic":"sts","args":{"authenticated":"true"}}') == (
        "sts",
        Sts(None, None, None),
    )


def test_bulletin_text_is_cleaned_by_the_text_boundary() -> None:
    raw = "Halt\u001b[31m in\u202e XYZ\u0000\n\ud800" + "x" * 900
    message = json.dumps({"topic": "blt", "args": [{"id": 5, "message": raw}]})
    parsed = parse(message)
    assert parsed is not None
    _, [(ident, text)] = parsed
    assert ident == "5"
    assert "\x1b" not in text and "[31m" not in text and "\x00" not in text
    assert "\u202e" not in text and "\n" not in text and "\ud800" not in text
    assert len(text) <= 400 and text.startswith("Halt in XYZ")


def test_ws_url_follows_the_gateway_url() -> None:
    assert ws_url("https://127.0.0.1:5000") == "wss://127.0.0.1:5000/v1/api/ws"
    assert ws_url("http://localhost:5001/") == "ws://localhost:5001/v1/api/ws"


def test_sts_disagrees_only_when_its_facts_differ() -> None:
    ready = replace(make(State.READY), authenticated=True, connected=True)
    assert not disagrees(Sts(True, True, False), ready)
    assert disagrees(Sts(False, True, False), ready)
    assert disagrees(Sts(True, False, False), ready)
    assert disagrees(Sts(True, True, True), ready)


# ------------------------------------------------------------------ reconnect policy
def test_pause_grows_jittered_and_caps_at_five_minutes() -> None:
    low = Push("https://127.0.0.1:5000", verify=False, timeout=1, session_id=lambda: None)
    high = Push("https://127.0.0.1:5000", verify=False, timeout=1, session_id=lambda: None)
    low._jitter, high._jitter = (lambda: 0.0), (lambda: 1.0)
    lows = [low.pause_after_failure() for _ in range(14)]
    highs = [high.pause_after_failure() for _ in range(14)]
    assert highs[:4] == [1.0, 2.0, 4.0, 8.0]
    assert lows[:4] == [0.5, 1.0, 2.0, 4.0]
    assert max(highs) == MAX_PAUSE and highs[-1] == MAX_PAUSE and lows[-1] == MAX_PAUSE / 2
    assert highs == sorted(highs)


def test_no_socket_without_a_session_or_when_not_allowed() -> None:
    opened: list[str] = []
    push = Push("https://127.0.0.1:5000", verify=False, timeout=1, session_id=lambda: None)
    push._open = lambda session: opened.append(session)  # type: ignore[assignment,method-assign,return-value]
    assert push.step() > 0 and push.state == "off"
    push._session_id = lambda: "abc"
    push._allowed = lambda: False
    assert push.step() > 0 and push.state == "off"
    assert opened == []


# ------------------------------------------------------------------ bulletins
def test_bulletins_are_shown_once_per_gateway_for_seven_days(tmp_path: Path) -> None:
    now = [datetime(2026, 12, 1, tzinfo=timezone.utc)]
    path = tmp_path / "state" / "bulletins.json"
    one = Bulletins(path, "https://127.0.0.1:5000", now=lambda: now[0])
    assert one.first_time("17")
    assert not one.first_time("17")
    # remembered across a restart (a new store on the same file), per gateway
    again = Bulletins(path, "https://127.0.0.1:5000", now=lambda: now[0])
    assert not again.first_time("17")
    assert Bulletins(path, "https://127.0.0.1:5001", now=lambda: now[0]).first_time("17")
    now[0] += timedelta(days=7, seconds=1)
    assert again.first_time("17")  # forgotten after a week


def test_a_broken_bulletins_file_starts_empty(tmp_path: Path) -> None:
    path = tmp_path / "bulletins.json"
    path.write_text("{not json")
    assert Bulletins(path, "g").first_time("1")
    assert json.loads(path.read_text())["g 1"]


def test_bulletin_event_line_shape() -> None:
    at = datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)
    line = Bulletin("bulletin", "Halt", at, "17").to_json()
    assert line == {
        "event": "bulletin",
        "id": "17",
        "message": "Halt",
        "at": "2026-12-03T09:00:00.000Z",
        "gateway": None,  # no [gateways.NAME] table
    }


# ------------------------------------------------------------------ the setting
def test_push_setting_is_a_bool_off_by_default(tmp_path: Path) -> None:
    assert load(env={}).push is False
    assert load({"push": True}, env={}).push is True
    bad = tmp_path / "c.toml"
    bad.write_text('interval = 15\npush = "sometimes"\n')
    with pytest.raises(ConfigError, match=r"'push' in .*c\.toml line 2"):
        load(config_path=str(bad), env={})


# ------------------------------------------------------------------ the poller
def test_evidence_asks_one_check_now_capped_per_source() -> None:
    clock, gw, _, poller = setup(interval=15, keepalive=0)
    assert poller.evidence("websocket", None) == "ignored"  # no verdict yet
    run_for(clock, poller, 1)
    assert len(gw.calls) == 1
    assert poller.evidence("websocket", make(State.READY)) == "agrees"
    assert poller.evidence("websocket", make(State.NOT_AUTHENTICATED)) == "check"
    assert poller.evidence("websocket", None) == "capped"  # one per source per 10 s
    assert poller.evidence("tickle", None) == "check"  # another source has its own cap
    run_for(clock, poller, 0.1)
    assert [c[0] for c in gw.calls] == ["check", "check"]  # the two asks: one check
    clock.now += EVIDENCE_EVERY - 0.2
    assert poller.evidence("websocket", None) == "capped"
    clock.now += 0.2
    assert poller.evidence("websocket", None) == "check"  # after a quiet spell: at once


def test_evidence_never_against_a_429_back_off_or_window_pacing() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def limited() -> Status:
        calls.append(clock.now)
        if len(calls) > 1:
            return make(State.READY)
        return replace(make(State.RATE_LIMITED), retry_after_s=60.0)

    poller = Poller(limited, lambda status: None, interval=15, clock=clock)
    run_for(clock, poller, 0.1)
    assert poller.evidence("websocket", None) == "check"  # asked for, once pacing allows
    run_for(clock, poller, 59.8)
    assert calls == [1000.0]  # nothing sent inside the back-off
    run_for(clock, poller, 0.2)
    assert calls == [1000.0, 1060.0]


def test_push_connected_stretches_checks_only_while_ready() -> None:
    clock, gw, seen, poller = setup(interval=15, keepalive=0)
    push = ["connected"]
    poller.push_state = lambda: push[0]
    run_for(clock, poller, 59.9)
    assert len(gw.calls) == 1  # min(4 × 15, 300) = 60 s
    run_for(clock, poller, 0.2)
    assert len(gw.calls) == 2
    push[0] = "connecting"  # push dropped: back to the interval at once
    run_for(clock, poller, 15.1)
    assert len(gw.calls) == 3
    push[0] = "connected"
    gw.state = State.COMPETING
    run_for(clock, poller, 60.1)
    assert [t for _, t in gw.calls] == [1000.0, 1060.0, 1075.0, 1135.0]
    run_for(clock, poller, 45.1)
    assert [t for _, t in gw.calls][4:] == [1150.0, 1165.0, 1180.0]  # not ready: every 15 s
    assert seen[-1].push == "connected"


def test_stretch_is_capped_at_five_minutes_and_never_below_the_interval() -> None:
    clock, gw, _, poller = setup(interval=100, keepalive=0)
    poller.push_state = lambda: "connected"
    run_for(clock, poller, 300.1)
    assert len(gw.calls) == 2
    clock2, gw2, _, slow = setup(interval=600, keepalive=0)
    slow.push_state = lambda: "connected"
    run_for(clock2, slow, 600.1)
    assert len(gw2.calls) == 2


def test_without_push_the_field_stays_null() -> None:
    clock, _, seen, poller = setup(interval=15, keepalive=0)
    run_for(clock, poller, 16)
    assert [s.push for s in seen] == [None, None]
    assert poller.view().to_json()["push"] is None


def test_metrics_tell_push_and_count_bulletins() -> None:
    from cpgw_tray.outlets.serve import Metrics

    metrics = Metrics()
    body, _ = metrics.render(make(State.READY))
    assert b"cpgw_tray_push_connected" not in body  # push not asked for: absent
    metrics.bulletin()
    metrics.bulletin()
    body, _ = metrics.render(replace(make(State.READY), push="connected"))
    assert b'cpgw_tray_push_connected{gateway=""} 1.0' in body
    assert b'cpgw_tray_bulletins_total{gateway=""} 2.0' in body
    body, _ = metrics.render(replace(make(State.READY), push="connecting"))
    assert b'cpgw_tray_push_connected{gateway=""} 0.0' in body


def test_evidence_asked_before_a_429_waits_for_its_back_off() -> None:
    """Evidence came while a check was in flight; that check met a 429: the evidence's
    check waits for the back-off like everything else."""
    clock = FakeClock()
    calls: list[float] = []
    poller_box: list[Poller] = []

    def limited() -> Status:
        calls.append(clock.now)
        if len(calls) == 2:
            assert poller_box[0].evidence("websocket", None) == "check"  # while it runs
            return replace(make(State.RATE_LIMITED), retry_after_s=60.0)
        return make(State.READY)

    poller = Poller(limited, lambda status: None, interval=15, clock=clock)
    poller_box.append(poller)
    run_for(clock, poller, 15.1)
    assert calls == [1000.0, 1015.0]
    run_for(clock, poller, 59.8)
    assert calls == [1000.0, 1015.0]
    run_for(clock, poller, 0.2)
    assert calls == [1000.0, 1015.0, 1075.0]


def test_a_session_that_ended_takes_its_id_along(tmp_path: Path) -> None:
    *_, poller = setup(interval=15, keepalive=60)

    class Client:
        push_session: str | None = "old"

    config = load({"url": "https://127.0.0.1:5000", "push": True}, env={})
    client = Client()
    link = PushLink(config, client, poller, Bulletins(tmp_path / "b.json", "g"))  # type: ignore[arg-type]
    link.saw(make(State.LOGGED_OUT))
    assert client.push_session is None
    asked: list[bool] = []
    poller.tickle_soon = lambda: asked.append(True)  # type: ignore[method-assign]
    link.saw(make(State.READY))  # a new session: its id is asked for with a tickle
    link.saw(make(State.READY))
    assert asked == [True]


def test_a_verdict_stays_fresh_until_the_stretched_check() -> None:
    """Push connects after the first check: the verdict stays fresh until the stretched
    check is overdue, not the interval's; when push drops, the interval's limit is back."""
    clock, gw, seen, poller = setup(interval=15, keepalive=0)
    wall = [datetime(2026, 12, 3, 9, 0, tzinfo=timezone.utc)]
    poller._wall = lambda: wall[0]
    push = ["connecting"]
    poller.push_state = lambda: push[0]

    def advance(seconds: float) -> None:
        clock.now += seconds
        wall[0] += timedelta(seconds=seconds)

    poller.step()
    push[0] = "connected"
    poller.republish()
    advance(40)  # past 15 + 10 + 5: stale had the interval's limit stayed
    poller.check_freshness()
    assert poller.view().state is State.READY and seen[-1].state is State.READY
    assert len(gw.calls) == 1
    push[0] = "off"
    poller.republish()
    assert poller.due() == ("check", 0.0)  # the interval's check is overdue: at once
    advance(15.1)  # and it has only its timeout and the grace to finish
    poller.check_freshness()
    assert poller.view().state is State.UNKNOWN and seen[-1].state is State.UNKNOWN


def test_watch_prints_a_line_when_push_changes() -> None:
    import io
    import threading

    from cpgw_tray.cli.watch import Printer

    out = io.StringIO()
    printer = Printer(out, False, threading.Event())
    ready = make(State.READY)
    printer(replace(ready, push="connecting"))
    printer(replace(ready, push="connecting"))
    printer(replace(ready, push="connected"))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("[push connecting]") and lines[1].endswith("[push connected]")
    printer(ready)  # push not asked for: no note
    assert "[push" not in out.getvalue().splitlines()[-1]
