"""The tray's behaviour with a fake tray (no display), and its icons."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

import pytest

from cpgw_tray.config import load
from cpgw_tray.gateway import GatewayClient
from cpgw_tray.icons import ICONS, Icon, icon_image, look_of
from cpgw_tray.menu import Entry, signature
from cpgw_tray.poller import Poller
from cpgw_tray.simulator import Simulator
from cpgw_tray.status import LOOKS, Glyph, State, Status
from cpgw_tray.tray import TrayApp, tooltip

from .conftest import control


class FakeBackend:
    """Records what the app does to the tray; posted work waits for :meth:`drain`, the
    way it waits for the tray's thread in the real backends."""

    name = "fake"
    has_menu = True

    def __init__(self, has_notification: bool = True) -> None:
        self.has_notification = has_notification
        self.posted: list[Callable[[], None]] = []
        self.calls: list[tuple[str, Any]] = []
        self.menu: Sequence[Entry] = ()
        self.stopped = threading.Event()

    def post(self, fn: Callable[[], None]) -> None:
        self.posted.append(fn)

    def drain(self) -> None:
        while self.posted:
            self.posted.pop(0)()

    def set_icon(self, state: State) -> None:
        self.calls.append(("icon", state))

    def set_title(self, text: str) -> None:
        self.calls.append(("title", text))

    def set_menu(self, entries: Sequence[Entry]) -> None:
        self.menu = entries
        self.calls.append(("menu", signature(entries)))

    def notify(self, message: str, title: str) -> None:
        self.calls.append(("notify", message))

    def stop(self) -> None:
        self.stopped.set()

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)


def snapshot(state: State, second: int = 0, detail: str = "what to do") -> Status:
    return Status(
        state,
        LOOKS[state].label,
        detail,
        latency_ms=3.0,
        checked_at=datetime(2026, 11, 26, 12, 0, second, tzinfo=timezone.utc),
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
def app() -> tuple[TrayApp, FakeBackend]:
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    client = GatewayClient(config.url, verify=False)
    opened: queue.SimpleQueue[str] = queue.SimpleQueue()
    tray = TrayApp(config, client, poller=IdlePoller(), open_url=opened.put)
    tray.opened = opened  # type: ignore[attr-defined]
    backend = FakeBackend()
    tray.start(backend)
    backend.drain()
    return tray, backend


def texts(entries: Sequence[Entry]) -> list[str]:
    return [e.text for e in entries]


def test_first_icon_is_unknown_grey(app: tuple[TrayApp, FakeBackend]) -> None:
    _tray, backend = app
    assert backend.count("icon") == 1 and backend.calls[0][1] is State.UNKNOWN
    assert texts(backend.menu)[0] == "Gateway: Checking…"


def test_status_reaches_the_tray_only_through_post(app: tuple[TrayApp, FakeBackend]) -> None:
    tray, backend = app
    before = len(backend.calls)
    tray.on_status(snapshot(State.READY))  # as the poller thread does
    assert len(backend.calls) == before  # nothing touched off the tray's thread
    backend.drain()
    assert backend.count("icon") == 2


def test_apply_only_what_changed(app: tuple[TrayApp, FakeBackend]) -> None:
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
def test_menu_per_state(app: tuple[TrayApp, FakeBackend], state: State) -> None:
    tray, backend = app
    tray.apply(snapshot(state, detail=f"Do this for {state.value}."))
    items = texts(backend.menu)
    assert items[0] == f"Gateway: {LOOKS[state].label}"
    assert f"Do this for {state.value}." in items
    assert any(t.startswith(("Since ", "Authenticated since ")) for t in items)
    for words in ("Check now", "Open login page", "Notifications", "Quit"):
        assert words in items
    check_now = next(e for e in backend.menu if e.text == "Check now")
    assert check_now.default and check_now.enabled
    assert not backend.menu[0].enabled  # the status line is information, not an action


def test_long_detail_is_wrapped_and_capped(app: tuple[TrayApp, FakeBackend]) -> None:
    tray, backend = app
    tray.apply(snapshot(State.ERROR, detail="word " * 200))
    lines = [e for e in backend.menu if e.text.startswith("word")]
    assert 1 < len(lines) <= 4 and all(len(e.text) <= 60 for e in lines)


def test_tooltip() -> None:
    text = tooltip(snapshot(State.READY))
    assert text.startswith("IBKR gateway: Ready — checked ") and text.endswith("(3 ms)")
    long = Status(State.ERROR, "x" * 300, "d")
    assert len(tooltip(long)) == 127


def test_notifications_into_and_out_of_ready(app: tuple[TrayApp, FakeBackend]) -> None:
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
    backend = FakeBackend(has_notification=False)
    tray.start(backend)
    for state in (State.LOGGED_OUT, State.READY, State.LOGGED_OUT):
        tray.apply(snapshot(state))
    assert backend.count("notify") == 0


def test_menu_actions(app: tuple[TrayApp, FakeBackend]) -> None:
    tray, backend = app
    entry = {e.text: e for e in backend.menu}
    assert entry["Check now"].action is not None and entry["Open login page"].action is not None
    entry["Check now"].action()
    assert isinstance(tray.poller, IdlePoller) and tray.poller.now_calls == 1
    entry["Open login page"].action()  # the browser opens off the tray's thread
    assert tray.opened.get(timeout=5) == "https://127.0.0.1:5000/"  # type: ignore[attr-defined]


def test_extra_entries_and_their_changes_rebuild_the_menu(app: tuple[TrayApp, FakeBackend]) -> None:
    tray, backend = app
    chosen = ["a"]
    tray.extra_entries = lambda: [
        Entry("Simulate", submenu=tuple(Entry(n, checked=chosen[0] == n, radio=True) for n in "ab"))
    ]
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
    backend = FakeBackend()
    tray.start(backend)
    assert asking.wait(5) and tray.poller.busy
    started = time.monotonic()
    tray.quit()
    assert time.monotonic() - started < 0.5
    assert backend.stopped.is_set() and tray.poller.stopped


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
    app: tuple[TrayApp, FakeBackend], caplog: pytest.LogCaptureFixture
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
    app: tuple[TrayApp, FakeBackend],
) -> None:
    tray, backend = app
    for state in [State.READY, State.UNKNOWN, State.READY, State.UNKNOWN, State.LOGGED_OUT]:
        tray.on_status(snapshot(state))
        backend.drain()
    assert backend.count("notify") == 1  # only the drop to logged_out
    assert backend.calls[-1][0] != "notify" or "Logged out" in backend.calls[-1][1]
