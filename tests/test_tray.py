"""The tray's behaviour with a fake tray (no display), and its icons."""

from __future__ import annotations

import os
import queue
import select
import sys
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cpgw_tray.care.poller import Poller
from cpgw_tray.client.api import GatewayClient
from cpgw_tray.model.status import (
    LOOKS,
    ORANGE,
    SESSION_STATES,
    YELLOW,
    Endpoint,
    Glyph,
    Meta,
    State,
    Status,
    classify_reply,
)
from cpgw_tray.model.wording import duration, http_reply, summarise_body
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import Simulator
from cpgw_tray.tray import opener
from cpgw_tray.tray.backends.base import pystray_item
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.backends.live import LiveLabels
from cpgw_tray.tray.backends.popup import place
from cpgw_tray.tray.icons import ICONS, Icon, fit, icon_image, look_of, xorg_icon
from cpgw_tray.tray.menu import SEPARATOR, Entry
from cpgw_tray.tray.rows import detail_rows, next_check
from cpgw_tray.tray.sections import Section
from cpgw_tray.tray.tray_app import TrayApp
from cpgw_tray.tray.view import View, tooltip

from .conftest import control

NOW = [datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)]  # the app's clock in tests


@pytest.fixture(autouse=True)
def clock_reset() -> None:
    NOW[0] = datetime(2026, 11, 26, 12, 0, 0, tzinfo=timezone.utc)


def snapshot(state: State, second: int = 0, detail: str = "what to do", **facts: Any) -> Status:
    return Status(
        state,
        LOOKS[state].label,
        detail,
        latency_ms=3.0,
        checked_at=datetime(2026, 11, 26, 12, 0, second, tzinfo=timezone.utc),
        **facts,
    )


class IdlePoller(Poller):
    """A poller that never runs by itself; counts check_now calls."""

    def __init__(self) -> None:
        super().__init__(lambda: snapshot(State.READY), lambda s: None)
        self.now_calls = 0

    def start(self) -> None:
        pass

    def check_now(self, fresh: bool = False) -> bool:
        self.now_calls += 1
        return True


@pytest.fixture
def app() -> tuple[TrayApp, DummyBackend]:
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    client = GatewayClient(config.url, verify=False)
    opened: queue.SimpleQueue[str] = queue.SimpleQueue()

    def open_url(url: str) -> bool:
        opened.put(url)
        return True

    tray = TrayApp(config, client, poller=IdlePoller(), open_url=open_url, now=lambda: NOW[0])
    tray.opened = opened  # type: ignore[attr-defined]
    backend = DummyBackend()
    tray.start(backend)
    backend.drain()
    return tray, backend


def texts(entries: Sequence[Entry]) -> list[str]:
    return [e.text for e in entries]


def test_first_icon_is_unknown_grey(app: tuple[TrayApp, DummyBackend]) -> None:
    _tray, backend = app
    assert backend.count("icon") == 1 and backend.calls[0][1] is State.UNKNOWN
    assert texts(backend.menu)[0] == "Status: Checking…"


def test_status_reaches_the_tray_only_through_post(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, backend = app
    before = len(backend.calls)
    tray.on_status(snapshot(State.READY))  # as the poller thread does
    assert len(backend.calls) == before  # nothing touched off the tray's thread
    backend.drain()
    assert backend.count("icon") == 2


def test_apply_only_what_changed(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, backend = app
    tray.apply(snapshot(State.READY, 1))
    icons, menus, titles = backend.count("icon"), backend.count("menu"), backend.count("title")
    tray.apply(snapshot(State.READY, 2))  # same state, later check
    assert backend.count("icon") == icons  # icon set only on a state change
    assert backend.count("menu") == menus  # the menu shows nothing new: no rebuild
    assert backend.count("title") == titles + 1  # the tooltip shows the check time
    tray.apply(snapshot(State.READY, 2))
    assert backend.count("title") == titles + 1
    tray.apply(snapshot(State.LOGGED_OUT, 3))
    assert backend.count("icon") == icons + 1 and backend.count("menu") == menus + 1


@pytest.mark.parametrize("state", [s for s in State if s is not State.UNKNOWN])
def test_menu_per_state(app: tuple[TrayApp, DummyBackend], state: State) -> None:
    tray, backend = app
    tray.apply(snapshot(state, detail=f"Do this for {state.value}."))
    items = texts(backend.menu)
    login = state is State.LOGGED_OUT or state is State.NOT_AUTHENTICATED  # connected unknown
    assert (items[0] == "Log in now…") is login  # while only a person can help: first
    assert items[login] == f"Status: {LOOKS[state].label}"
    assert f"Do this for {state.value}." in items
    assert any(t.startswith(("Since ", "Seen ready since ")) for t in items)
    for words in ("Check now", "Open login page", "Notifications", "Quit"):
        assert words in items
    check_now = next(e for e in backend.menu if e.text == "Check now")
    assert check_now.default and check_now.enabled
    assert not backend.menu[login].enabled  # the status line is information, not an action


def test_long_detail_is_wrapped_and_capped(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, backend = app
    tray.apply(snapshot(State.ERROR, detail="word " * 200))
    lines = [e for e in backend.menu if e.text.startswith("word")]
    assert 1 < len(lines) <= 4 and all(len(e.text) <= 60 for e in lines)


def test_tooltip() -> None:
    text = tooltip(snapshot(State.READY))
    assert text.startswith("IBKR gateway: Ready — checked ") and text.endswith("(3 ms)")
    long = Status(State.ERROR, "x" * 300, "d")
    assert len(tooltip(long)) == 127


def test_notifications_into_and_out_of_ready(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, backend = app
    tray.apply(snapshot(State.LOGGED_OUT))  # first verdict after start: quiet
    tray.apply(snapshot(State.READY))
    tray.apply(snapshot(State.READY, 5))
    tray.apply(snapshot(State.GATEWAY_DOWN))
    tray.apply(snapshot(State.NOT_RESPONDING))  # not ready either side: quiet
    assert backend.count("notify") == 2
    tray.toggle_notifications()
    backend.drain()
    notifications = next(e for e in backend.menu if e.text == "Notifications")
    assert notifications.checked is False
    tray.apply(snapshot(State.READY))
    assert backend.count("notify") == 2


def test_no_notifications_where_the_backend_has_none() -> None:
    config = load({}, env={})
    tray = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())
    backend = DummyBackend(has_notification=False)
    tray.start(backend)
    for state in (State.LOGGED_OUT, State.READY, State.LOGGED_OUT):
        tray.apply(snapshot(state))
    assert backend.count("notify") == 0


def test_the_default_clock_is_utc_like_every_other() -> None:
    config = load({}, env={})
    tray = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())
    assert tray.since.utcoffset() == timedelta(0)


def test_menu_actions(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, backend = app
    entry = {e.text: e for e in backend.menu}
    assert entry["Check now"].action is not None and entry["Open login page"].action is not None
    entry["Check now"].action()
    assert isinstance(tray.poller, IdlePoller) and tray.poller.now_calls == 1
    entry["Open login page"].action()  # the browser opens off the tray's thread
    assert tray.opened.get(timeout=5) == "https://127.0.0.1:5000/"  # type: ignore[attr-defined]


def test_sections_and_their_changes_rebuild_the_menu() -> None:
    chosen = ["a"]

    class Choice(Section):
        def entries(self, view: View) -> list[Entry]:
            radio = tuple(Entry(n, checked=chosen[0] == n, radio=True) for n in "ab")
            return [Entry("Simulate", submenu=radio)]

    config = load({"url": "https://127.0.0.1:5000"}, env={})
    client = GatewayClient(config.url, verify=False)
    tray = TrayApp(config, client, sections=[lambda door: Choice()], poller=IdlePoller())
    backend = DummyBackend()
    tray.start(backend)
    tray.refresh()
    menus = backend.count("menu")
    chosen[0] = "b"
    tray.refresh()
    assert backend.count("menu") == menus + 1
    assert "Simulate" in texts(backend.menu)


def test_quit_while_a_check_hangs_is_immediate(sim: Simulator) -> None:
    control(sim.url, "/sim/state", {"scenario": "hang"})
    config = load({"url": sim.url, "timeout": 30}, env={})
    client = GatewayClient(config.url, verify=False)
    asking = threading.Event()

    def check() -> Status:
        asking.set()
        return client.auth_status()  # hangs in the simulator

    tray = TrayApp(config, client, poller=Poller(check, lambda s: tray.on_status(s)))
    backend = DummyBackend()
    tray.start(backend)
    assert asking.wait(5) and tray.poller.busy
    tray.quit()
    assert backend.stopped.is_set() and tray.poller.stopped
    assert tray.poller.busy  # quit came back while the request still hangs: not awaited


# ------------------------------------------------------------------ icons


def test_icons_are_cached_and_sized() -> None:
    for size in (16, 22, 32, 64):
        image = icon_image(State.READY, size)
        assert image.size == (size, size) and image.mode == "RGBA"
        assert icon_image(State.READY, size) is image


@pytest.mark.parametrize("icon", ICONS)
def test_icon_is_mostly_the_state_colour(icon: Icon) -> None:
    raw = icon_image(icon, 64).tobytes()
    pixels = [raw[i : i + 4] for i in range(0, len(raw), 4)]
    colour = look_of(icon).colour
    opaque = [p for p in pixels if p[3] > 250]
    near = [p for p in opaque if all(abs(a - b) <= 3 for a, b in zip(p, colour, strict=False))]
    assert len(opaque) > 0.65 * len(pixels)  # a disc that fills the square
    assert len(near) > 0.6 * len(opaque)  # the colour dominates; the glyph is the rest


def test_glyph_shapes_differ_between_classes() -> None:
    def mask(icon: Icon) -> set[tuple[int, int]]:
        image = icon_image(icon, 32)
        return {
            (x, y) for x in range(32) for y in range(32) if min(image.getpixel((x, y))[:3]) > 230
        }

    # every state's icon, and the IBKR restart window's own
    by_glyph = {look_of(icon).glyph: mask(icon) for icon in ICONS}
    shapes = list(by_glyph.values())
    assert len(by_glyph) == len(Glyph)
    for i, a in enumerate(shapes):
        for b in shapes[i + 1 :]:
            assert len(a ^ b) > 20  # clearly different white shapes


def test_a_menu_action_that_fails_is_noted_notified_and_logged(
    app: tuple[TrayApp, DummyBackend], caplog: pytest.LogCaptureFixture
) -> None:
    """An error on an action's worker thread never vanishes: a note in the menu, a
    notification, a log line with the traceback; and a fresh check follows."""
    tray, backend = app
    poller = tray.poller
    assert isinstance(poller, IdlePoller)

    def broken(take_over: bool = False) -> Any:
        raise RuntimeError("socket exploded")

    tray.client.reauthenticate = broken  # type: ignore[method-assign]
    before = poller.now_calls
    with caplog.at_level("ERROR"):
        tray.reauthenticate()
        for thread in [t for t in threading.enumerate() if t.name == "action"]:
            thread.join(timeout=5)
    backend.drain()
    assert "socket exploded" in caplog.text and "Traceback" in caplog.text
    assert any("Reauthenticate failed" in e.text for e in backend.menu)
    assert any(kind == "notify" and "Reauthenticate failed" in what for kind, what in backend.calls)
    assert poller.now_calls == before + 1


def test_a_stale_spell_is_not_notified_but_a_drop_behind_it_is(
    app: tuple[TrayApp, DummyBackend],
) -> None:
    tray, backend = app
    for state in [State.READY, State.UNKNOWN, State.READY, State.UNKNOWN, State.LOGGED_OUT]:
        tray.on_status(snapshot(state))
        backend.drain()
    assert backend.count("notify") == 1  # only the drop to logged_out
    assert backend.calls[-1][0] != "notify" or "Logged out" in backend.calls[-1][1]


# ------------------------------------------------------------------ a menu that stays put


def actionable(entries: Sequence[Entry]) -> list[tuple[int, str]]:
    """Where each row a person clicks sits: (position, text)."""
    return [
        (i, e.text)
        for i, e in enumerate(entries)
        if e.action is not None or e.submenu or e.checked is not None
    ]


FACT_ROWS = ("Status", "Since", "Authenticated since", "Seen ready since", "Account", "Server")
FACT_ROWS += ("Login expire",)
FACT_ROWS += ("Next check", "IBKR", "Weekly login reset", "Full login")
SAME_ROW = {"Full login": "Weekly login reset", "Seen ready since": "Authenticated since"}


def fact_rows(entries: Sequence[Entry]) -> dict[str, int]:
    """Where each fact's row sits, by the words it starts with."""
    found = {}
    for i, e in enumerate(entries):
        for kind in FACT_ROWS:
            if e.text.startswith(kind):
                found[SAME_ROW.get(kind, kind)] = i
    return found


FACTS_KNOWN = {
    "sso_expires_s": 86340.0,
    "account": "DU123456",
    "paper": True,
    "server_name": "JifN19053",
    "retry_after_s": 60.0,
}


@pytest.mark.parametrize("state", list(State))
def test_rows_keep_their_places_when_only_facts_change(
    app: tuple[TrayApp, DummyBackend], state: State
) -> None:
    """Issue 15: rows came and went between openings, so a click aimed at Quit hit
    Notifications. Across polls where only facts change, each row keeps its place."""
    tray, _ = app
    layouts = []
    polls = [
        snapshot(state, 1, detail="Short.", **FACTS_KNOWN),
        snapshot(state, 2, detail="A much longer explanation " * 12),  # facts now unknown
        snapshot(state, 3, detail="Short again.", sso_expires_s=120.0, account="U1"),
    ]
    notes = [None, "Reauthenticated", "Gateway ready on port 5000: log in"]
    for n, status in enumerate(polls):
        # Friday 22:30 ET, before the weekend window; Saturday 04:00 and 07:00 ET, after
        # it, the day before the weekly token reset (its warning replaces its time)
        NOW[0] = datetime(2026, 11, 28, 3, 30, tzinfo=timezone.utc) + timedelta(
            hours=[0, 5.5, 8.5][n]
        )
        tray.apply(replace(status, checked_at=NOW[0]))
        tray.last_action = notes[n]  # an action's outcome, or none yet
        layouts.append(list(tray.entries()))
    first = layouts[0]
    for later in layouts[1:]:
        assert actionable(later) == actionable(first)
        assert len(later) == len(first)
        assert fact_rows(later) == fact_rows(first)
    assert "Status" in fact_rows(first)
    for layout, note in zip(layouts, notes, strict=True):  # the row above the actions
        assert layout[layout.index(SEPARATOR) - 1].text == (note or " ")
    if state is not State.UNKNOWN:
        assert {"IBKR", "Weekly login reset"} <= fact_rows(first).keys()
        assert any(e.text.startswith("Full login") for e in layouts[1])  # the warning
    if state in SESSION_STATES:
        assert {"Login expire", "Account"} <= fact_rows(first).keys()


def test_facts_not_known_say_so(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, _ = app
    tray.apply(snapshot(State.READY))
    items = texts(tray.entries())
    assert "Login expires: unknown" in items and "Account: unknown, server unknown" in items


def test_durations_in_hours_and_minutes(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, _ = app
    tray.apply(snapshot(State.READY, sso_expires_s=86340.0))
    assert "Login expires in 23 h 59 min" in texts(tray.entries())
    tray.apply(snapshot(State.READY, 1, sso_expires_s=2460.0))
    assert "Login expires in 41 min" in texts(tray.entries())


def test_a_status_is_judged_once_per_apply(
    app: tuple[TrayApp, DummyBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22: the icon, the tooltip, the rows and the person's items each asked again
    whether the status was an expected drop and which window explained it; the view is
    now computed once per status."""
    from cpgw_tray.care import maintenance
    from cpgw_tray.model.ibkr_clock import next_window
    from cpgw_tray.tray import view as tray_view

    tray, backend = app
    calls: list[str] = []
    drop, window = maintenance.expected_drop, tray.ibkr.window

    def counted_drop(status: Status) -> bool:
        calls.append("expected_drop")
        return drop(status)

    def counted_window(status: Status) -> object:
        calls.append("window")
        return window(status)

    monkeypatch.setattr(tray_view.maintenance, "expected_drop", counted_drop)
    monkeypatch.setattr(tray.ibkr, "window", counted_window)
    # A minute into IBKR's next restart window: an expected drop, shown with its own look.
    coming = next_window(tray.ibkr.region, NOW[0], tray.ibkr.schedule)
    at = NOW[0] = coming.start + timedelta(minutes=1)
    tray.apply(tray.ibkr.stamp(replace(snapshot(State.NOT_AUTHENTICATED), checked_at=at)))
    assert calls == ["expected_drop", "window"]
    assert backend.icon == maintenance.ICON


def test_status_line_says_each_word_once(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, _ = app
    tray.apply(snapshot(State.ERROR))
    assert tray.entries()[0].text == "Status: Gateway error"
    for state in State:
        tray.apply(snapshot(state))
        words = tray.entries()[0].text.lower().replace(":", "").split()
        assert len(words) == len(set(words)), words


def test_gateway_error_body_is_summarised_and_wrapped_on_words(
    app: tuple[TrayApp, DummyBackend],
) -> None:
    tray, _ = app
    meta = Meta("https://127.0.0.1:5000/v1/api/iserver/auth/status", NOW[0], 3.0)
    body = '{"error": "Internal Server Error", "statusCode": 500}'
    status = classify_reply(Endpoint.AUTH_STATUS, 500, body, meta)
    assert "HTTP 500 Internal Server Error" in status.detail and "{" not in status.detail
    tray.apply(status)
    rows = [e.text for e in tray.entries()[1:4] if e.text.strip()]
    assert (
        " ".join(rows).replace("…", "").split()
        == status.detail.split()[: len(" ".join(rows).split())]
    )


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        ('{"error": "Internal Server Error", "statusCode": 500}', "HTTP 500 Internal Server Error"),
        ('{"error": "Bad Request", "statusCode": 400, "message": "no bridge"}', "no bridge"),
        ('{"statusCode": 503}', "HTTP 503"),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "502 Bad Gateway"),
        ("", "an empty reply"),
    ],
)
def test_error_body_summaries(body: str, summary: str) -> None:
    assert not http_reply(500, '{"error": "Try again later."}').endswith(".")
    assert summary in summarise_body(body)
    assert "{" not in summarise_body(body) and "<" not in summarise_body(body)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [(0, "0 s"), (42, "42 s"), (60, "1 min"), (125, "2 min 5 s"), (7200, "2 h")],
)
def test_duration_words(seconds: float, words: str) -> None:
    assert duration(seconds, with_seconds=True) == words
    assert duration(86340) == "23 h 59 min" and duration(20) == "less than 1 min"


def test_items_enabled_only_where_they_work(app: tuple[TrayApp, DummyBackend]) -> None:
    tray, _ = app

    def enabled(status: Status) -> dict[str, bool]:
        tray.apply(status)
        return {e.text: e.enabled for e in tray.entries()}

    down = enabled(snapshot(State.GATEWAY_DOWN))
    assert not down["Log out…"] and not down["Open login page"]
    assert not enabled(snapshot(State.NOT_RESPONDING))["Open login page"]
    ready = enabled(snapshot(State.READY, http_status=200))
    assert ready["Log out…"] and ready["Open login page"]
    logged_out = enabled(snapshot(State.LOGGED_OUT, http_status=401))
    assert not logged_out["Log out…"] and logged_out["Open login page"]


def test_countdowns_are_live_and_do_not_rebuild_the_menu(app: tuple[TrayApp, DummyBackend]) -> None:
    """Issue 15: "Next check in 60 s" stood still while the menu was open. Countdown rows
    carry a function the backend calls to redraw them in place; their changes alone do
    not rebuild the menu where the backend redraws them."""
    tray, backend = app
    backend.live_menu = True
    status = snapshot(State.RATE_LIMITED, retry_after_s=60.0, http_status=429)
    NOW[0] = status.checked_at  # type: ignore[assignment]
    tray.apply(status)
    row = next(e for e in tray.entries() if e.text.startswith("Next check"))
    assert row.text.startswith("Next check in 1 min, at ") and row.live is not None
    NOW[0] = datetime(2026, 11, 26, 12, 0, 42, tzinfo=timezone.utc)
    assert row.live().startswith("Next check in 18 s, at ")
    menus = backend.count("menu")
    tray.refresh()
    assert backend.count("menu") == menus  # redrawn in place, not rebuilt
    assert backend.calls[-1] == ("live", None)  # the backend's chance to redraw
    NOW[0] = datetime(2026, 11, 26, 12, 2, tzinfo=timezone.utc)
    assert row.live() == "Next check: due now"


@pytest.mark.parametrize("note", ["Next check in 60 s, at 12:01:00.", "Next check at 12:01:00."])
def test_after_a_429_the_live_row_replaces_the_frozen_note(note: str) -> None:
    status = snapshot(State.RATE_LIMITED, detail=f"Too many requests. {note}", retry_after_s=60.0)
    assert detail_rows(status)[0] == "Too many requests."
    assert next_check(status, NOW[0] + timedelta(seconds=15)).startswith("Next check in 45 s, at ")


def test_backends_without_live_rows_get_a_new_menu_when_a_countdown_changes(
    app: tuple[TrayApp, DummyBackend],
) -> None:
    tray, backend = app
    backend.live_menu = False
    tray.apply(snapshot(State.READY, sso_expires_s=7200.0))
    menus = backend.count("menu")
    tray.apply(snapshot(State.READY, 1, sso_expires_s=7000.0))
    assert backend.count("menu") == menus + 1


def test_live_labels_redraw_only_what_changed() -> None:
    shown: list[tuple[int, str]] = []
    value = ["Next check in 5 s"]
    live = LiveLabels()
    live.track(
        Entry("Next check in 5 s", live=lambda: value[0], every=1.0), lambda t: shown.append((1, t))
    )
    live.track(
        Entry("Login expires in 2 h", live=lambda: "Login expires in 2 h", every=20.0),
        lambda t: shown.append((2, t)),
    )
    assert live.every == 1.0
    live.tick()
    assert shown == []
    value[0] = "Next check in 4 s"
    live.tick()
    assert shown == [(1, "Next check in 4 s")]
    live.clear()
    assert live.every is None


def test_disabled_submenus_are_disabled_in_pystray(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 15: "Log out…" (a submenu) was enabled with no session: its enabled mark
    was dropped on the way to pystray."""
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")  # pystray's menus, no display
    pystray = pytest.importorskip("pystray")
    end = Entry("Yes, end the session", lambda: None)
    item = pystray_item(pystray, Entry("Log out…", submenu=(end,), enabled=False))
    assert item.enabled is False and item.submenu is not None
    assert pystray_item(pystray, Entry("Log out…", submenu=(end,))).enabled is True


def test_one_class_per_pystray_backend() -> None:
    """Issue 11: one small class per backend, chosen once, over a shared base."""
    import importlib

    from cpgw_tray.tray.backends import CLASSES, PystrayBackend

    assert set(CLASSES) == {"appindicator", "gtk", "xorg", "darwin", "win32"}
    for name, (module, cls) in CLASSES.items():
        found = getattr(importlib.import_module(f"cpgw_tray.tray.backends.{module}"), cls)
        assert issubclass(found, PystrayBackend) and found.name == name
        assert found.post is not PystrayBackend.post  # each says how to reach its thread


def test_a_backend_that_cannot_show_an_icon_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")
    pytest.importorskip("pystray")
    from cpgw_tray.tray.backends import create

    with pytest.raises(RuntimeError, match="cannot show a tray icon"):
        create("IBKR gateway")


SCREEN = (1024, 768)


@pytest.mark.parametrize(
    ("icon", "where"),
    [
        ((10, 0, 48, 48), "below"),  # a panel at the top
        ((1000, 730, 24, 38), "above"),  # a panel at the bottom, right corner
        ((0, 300, 40, 40), "right"),  # a panel on the left side, menu taller than below/above
    ],
)
def test_popup_sits_beside_the_icon(icon: tuple[int, int, int, int], where: str) -> None:
    """Issue 15: the fallback popup covered the icon. It goes beside it, on the screen."""
    w, h = (220, 420) if where != "right" else (220, 700)
    x, y = place((w, h), icon, SCREEN, pointer=(icon[0] + 5, icon[1] + 5))
    ix, iy, iw, ih = icon
    assert 0 <= x <= SCREEN[0] - w and 0 <= y <= SCREEN[1] - h  # on the screen
    overlaps = x < ix + iw and ix < x + w and y < iy + ih and iy < y + h
    assert not overlaps
    assert {"below": y == iy + ih, "above": y + h == iy, "right": x == ix + iw}[where]


def test_popup_without_the_icons_place_opens_at_the_pointer() -> None:
    assert place((200, 300), None, SCREEN, pointer=(100, 40)) == (100, 40)
    assert place((200, 300), None, SCREEN, pointer=(1000, 700)) == (824, 468)


# ------------------------------------------------------------------ opening things


def test_no_browser_shows_the_address_in_the_menu_and_a_notification() -> None:
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    tray = TrayApp(
        config,
        GatewayClient(config.url, verify=False),
        poller=IdlePoller(),
        open_url=lambda url: False,  # webbrowser.open finds no browser
        now=lambda: NOW[0],
    )
    backend = DummyBackend()
    tray.start(backend)
    backend.drain()
    tray.open_login()
    join("opener")
    backend.drain()
    said = "No browser found; open https://127.0.0.1:5000/ yourself"
    assert said in texts(backend.menu)
    assert any(k == "notify" and "https://127.0.0.1:5000/" in m for k, m in backend.calls)


def test_no_opener_shows_the_path(tmp_path: Path) -> None:
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    log_file = tmp_path / "gateway.log"
    log_file.write_text("started\n")
    tray = TrayApp(
        config,
        GatewayClient(config.url, verify=False),
        poller=IdlePoller(),
        open_path=lambda path: False,
        now=lambda: NOW[0],
    )
    backend = DummyBackend()
    tray.start(backend)
    backend.drain()
    tray.open_path(log_file)
    join("opener")
    backend.drain()
    assert f"Nothing here opens files; open {log_file} yourself" in texts(backend.menu)


@pytest.mark.skipif(sys.platform == "win32", reason="Windows opens files with os.startfile")
def test_open_path_says_when_nothing_can_open_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open, no open
    assert opener.open_path(tmp_path) is False
    said = tmp_path / "opened"
    os.mkfifo(said)  # the fake opener reports through a pipe: no polling
    reader = os.open(said, os.O_RDONLY | os.O_NONBLOCK)
    fake = tmp_path / ("open" if sys.platform == "darwin" else "xdg-open")
    fake.write_text(f'#!/bin/sh\necho "$1" > {said}\n')
    fake.chmod(0o755)
    try:
        assert opener.open_path(tmp_path / "gateway.log") is True
        assert select.select([reader], [], [], 10)[0], "the opener never ran"
        assert os.read(reader, 4096).decode().strip() == str(tmp_path / "gateway.log")
    finally:
        os.close(reader)


def join(name: str) -> None:
    """Wait for the app's worker threads called ``name`` to finish."""
    for thread in [t for t in threading.enumerate() if t.name == name]:
        thread.join(timeout=10)
        assert not thread.is_alive()


# ------------------------------------------------------------------ icons for every eye


def white_mask(icon: Icon, size: int = 32) -> set[tuple[int, int]]:
    image = icon_image(icon, size)
    return {
        (x, y)
        for x in range(size)
        for y in range(size)
        if image.getpixel((x, y))[3] > 200 and min(image.getpixel((x, y))[:3]) > 200
    }


def test_states_read_the_same_without_colour_only_when_they_mean_alike() -> None:
    """Issue 15: yellow and orange states shared the "!" glyph. Colour must never be the
    only cue: states of different colour have different glyphs, the two orange states
    differ from each other, and every two different glyphs differ clearly in their white
    pixels (a person without colour vision sees only those). The restart icon too."""
    icons = list(ICONS)
    for i, a in enumerate(icons):
        for b in icons[i + 1 :]:
            look_a, look_b = look_of(a), look_of(b)
            if look_a.colour != look_b.colour or look_a.colour == ORANGE:
                assert look_a.glyph is not look_b.glyph, (a, b)
            if look_a.glyph is not look_b.glyph:
                ma, mb = white_mask(a), white_mask(b)
                overlap = len(ma & mb) / len(ma | mb)
                assert overlap < 0.5 and len(ma ^ mb) > 40, (a, b, overlap)


def test_orange_states_have_their_own_glyphs() -> None:
    assert LOOKS[State.COMPETING].glyph is Glyph.ARROWS
    assert LOOKS[State.RATE_LIMITED].glyph is Glyph.HOURGLASS
    yellow = {LOOKS[s].glyph for s in State if LOOKS[s].colour == YELLOW}
    assert yellow == {Glyph.WARNING}


def xorg_paint(image: Image.Image, width: int, height: int) -> Image.Image:
    """What pystray 0.19.5's xorg backend paints (``Icon._assert_icon_data``): the icon
    resized and pasted, without its alpha, on a black RGB canvas."""
    canvas = Image.new("RGB", (width, height))
    canvas.paste(image.resize((width, height), Image.Resampling.LANCZOS))
    return canvas


@pytest.mark.parametrize("state", list(State))
@pytest.mark.parametrize("size", [(48, 48), (24, 62), (62, 24)])
def test_xorg_icon_has_no_black_corners(state: State, size: tuple[int, int]) -> None:
    """Issue 15: black corners on xorg. What our xorg backend paints (:func:`fit`), and
    what pystray alone would paint of our xorg icon, are the state's colour to the
    corners; in a tall slot the glyph keeps its shape (not stretched)."""
    w, h = size
    colour = LOOKS[state].colour
    for painted in (fit(xorg_icon(state), w, h), xorg_paint(xorg_icon(state), w, h)):
        for corner in ((0, 0), (w - 1, 0), (0, h - 1), (w - 1, h - 1), (1, 1), (w - 2, h - 2)):
            pixel = painted.getpixel(corner)
            assert all(abs(a - b) <= 6 for a, b in zip(pixel, colour, strict=True)), (corner, pixel)
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    centre = fit(xorg_icon(state), w, h).crop((left, top, left + side, top + side))
    square = xorg_icon(state).convert("RGB").resize((side, side), Image.Resampling.BOX)
    assert centre.tobytes() == square.tobytes()  # the glyph square, not stretched
