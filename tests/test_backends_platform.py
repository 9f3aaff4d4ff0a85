"""pystray's pitfalls on Windows and macOS, against pystray's own base icon (its dummy
backend, no display) with the native calls recorded: when the icon shows, when the menu
is built, where notifications go, what a stop leaves, which thread touches the macOS
status item, and the icon files Windows loads."""

from __future__ import annotations

import queue
import sys
import threading
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from cpgw_tray.client.api import GatewayClient
from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.settings.config import load
from cpgw_tray.tray.backends.base import PystrayBackend
from cpgw_tray.tray.backends.darwin import DarwinBackend
from cpgw_tray.tray.backends.win32 import (
    INFO_SIZE,
    INFO_TITLE_SIZE,
    TIP_SIZE,
    Win32Backend,
    fit_wide,
)
from cpgw_tray.tray.menu import Entry
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import wait_for
from .test_tray import IdlePoller

ROOT = Path(__file__).resolve().parent.parent
WINDOWS_SIZES = {(16, 16), (32, 32), (48, 48), (256, 256)}  # what LoadImage is asked for


@pytest.fixture
def pystray(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")  # no display needed to import it
    return pytest.importorskip("pystray")  # its _base: every backend's icon builds on it


class Touch:
    """One native call: what, on which thread, and whether pystray's loop ran."""

    def __init__(self, what: Any, running: bool) -> None:
        self.what = what
        self.thread = threading.current_thread()
        self.running = running


def fake_pystray(
    pystray: Any,
    *,
    radio: bool = True,
    default: bool = True,
    notification: bool = True,
    loop: Callable[[threading.Event], None] | None = None,
) -> Any:
    """pystray with an Icon whose native calls are recorded; ``loop`` is its main loop,
    run on the thread that calls ``run()`` until the icon is stopped."""

    class RecordingIcon(pystray._base.Icon):  # type: ignore[misc]
        HAS_MENU_RADIO = radio
        HAS_DEFAULT_ACTION = default
        HAS_NOTIFICATION = notification

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.touches: list[Touch] = []
            self.ended = threading.Event()
            super().__init__(*args, **kwargs)

        def _touch(self, what: Any) -> None:
            self.touches.append(Touch(what, self._running))

        def _show(self) -> None:
            self._touch("show")

        def _hide(self) -> None:
            self._touch("hide")

        def _update_icon(self) -> None:
            self._touch("icon")
            self._icon_valid = True

        def _update_title(self) -> None:
            self._touch("title")

        def _update_menu(self) -> None:
            self._touch("menu")

        def _notify(self, message: str, title: str | None = None) -> None:
            self._touch(("notify", message, title))

        def _run(self) -> None:
            self._mark_ready()
            (loop or (lambda ended: ended.wait(30)))(self.ended)

        def _stop(self) -> None:
            self._touch("stop")
            self.ended.set()

        def kinds(self) -> list[Any]:
            return [t.what if isinstance(t.what, str) else t.what[0] for t in self.touches]

    return types.SimpleNamespace(Icon=RecordingIcon, Menu=pystray.Menu, MenuItem=pystray.MenuItem)


def menu_entries() -> list[Entry]:
    chosen = Entry("Paper", lambda: None, checked=True, radio=True)
    return [
        Entry("Check now", lambda: None, default=True),
        Entry("Account", submenu=(chosen, Entry("Live", lambda: None, checked=False, radio=True))),
        Entry("Quit", lambda: None),
    ]


def items(menu: Any) -> list[Any]:
    """Every pystray item of a menu, submenus' too."""
    found = []
    for item in menu.items:
        found.append(item)
        if item.submenu:
            found += items(item.submenu)
    return found


def run_until_stopped(backend: PystrayBackend, setup: Callable[[], None]) -> None:
    """``backend.run`` here; ``setup`` once the icon shows; then stop from a worker."""

    def on_setup() -> None:
        wait_for(lambda: backend.shown)
        try:
            setup()
        finally:
            threading.Thread(target=backend.stop, name="worker-stop").start()

    backend.run(on_setup)


# ------------------------------------------------------------------------ Windows


def test_windows_icon_shows_only_from_setup_and_the_menu_waits_for_it(pystray: Any) -> None:
    backend = Win32Backend(fake_pystray(pystray), "IBKR gateway: Checking…")
    backend.set_icon(State.READY)
    backend.set_title("IBKR gateway: Ready")
    backend.set_menu(menu_entries())  # before run(): kept, not built
    icon = backend.icon
    assert icon.touches == [] and icon.menu is None and not backend.has_notification
    run_until_stopped(backend, lambda: None)
    kinds = icon.kinds()
    show = kinds.index("show")
    assert all(t.running for t in icon.touches)  # nothing native before run()
    assert icon.touches[show].thread.name == "tray-ui"  # posted by setup, not run inline
    assert "menu" in kinds[show:] and icon.menu.items[0].text == "Check now"
    # the stop hides the icon first, so no blank icon stays in the notification area
    assert kinds[-2:] == ["hide", "stop"] and not icon.visible


def test_windows_notifications_need_the_shown_icon_and_fit_their_fields(pystray: Any) -> None:
    backend = Win32Backend(fake_pystray(pystray), "t")
    backend.notify("too early", "IBKR gateway")  # nothing shows yet: not sent, not raised
    long = "Logged out. " + "🙂" * 200  # two UTF-16 units each
    run_until_stopped(backend, lambda: backend.notify(long, "T" * 100))
    sent = [t.what for t in backend.icon.touches if t.what[0] == "notify"]
    assert len(sent) == 1
    _, message, title = sent[0]
    assert message.startswith("Logged out. 🙂") and message.endswith("…")
    assert len(message.encode("utf-16-le")) // 2 < INFO_SIZE
    assert len(title.encode("utf-16-le")) // 2 < INFO_TITLE_SIZE


@pytest.mark.parametrize(
    ("text", "size", "fits"),
    [("short", 128, "short"), ("x" * 127, 128, "x" * 127), ("x" * 128, 128, "x" * 126 + "…")],
)
def test_wide_fields_count_utf16_units(text: str, size: int, fits: str) -> None:
    assert fit_wide(text, size) == fits
    assert len(fit_wide("🙂" * 100, TIP_SIZE).encode("utf-16-le")) // 2 < TIP_SIZE


def test_windows_without_notifications_the_menu_says_it(pystray: Any) -> None:
    backend = Win32Backend(fake_pystray(pystray, notification=False), "t")
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    tray = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())

    def setup() -> None:
        tray.start(backend)
        assert not backend.has_notification  # HAS_NOTIFICATION is asked, even when shown
        tray.open_path(Path("C:/gw/logs/gw.log"))  # nothing opens it here
        note = wait_for(lambda: tray.last_action)
        assert "open C:/gw/logs/gw.log yourself" in note
        wait_for(lambda: any(note == i.text for i in items(backend.icon.menu)))

    tray._open_path = lambda path: False
    run_until_stopped(backend, setup)
    assert "notify" not in backend.icon.kinds()


def test_windows_keeps_radio_items_and_the_default_item(pystray: Any) -> None:
    backend = Win32Backend(fake_pystray(pystray), "t")
    run_until_stopped(backend, lambda: backend.post(lambda: backend.set_menu(menu_entries())))
    built = items(backend.icon.menu)
    assert [i.text for i in built if i.radio] == ["Paper", "Live"]
    assert [i.text for i in built if i.default] == ["Check now"]


def ico_frames(path: Path) -> list[Image.Image]:
    ico = Image.open(path)
    frames = []
    for size in sorted(ico.info["sizes"]):
        ico.size = size
        ico.load()
        frames.append(ico.copy())
    return frames


def test_windows_tray_icon_file_has_the_sizes_load_image_asks_for(pystray: Any) -> None:
    from pystray._util import serialized_image

    backend = Win32Backend(fake_pystray(pystray), "t")
    for state in State:
        picture = backend.image(state)
        assert picture.mode == "RGBA" and picture.size == (256, 256)
    with serialized_image(backend.image(State.READY), "ICO") as path:  # as pystray does
        frames = ico_frames(Path(path))
    assert {f.size for f in frames} >= WINDOWS_SIZES
    assert all(f.mode == "RGBA" and f.width == f.height for f in frames)


def test_app_icon_file_has_the_sizes_windows_loads(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT / "assets"))
    try:
        import make_icons
    finally:
        sys.path.remove(str(ROOT / "assets"))
    make_icons.make(tmp_path)
    frames = ico_frames(tmp_path / "cpgw-tray.ico")
    assert {f.size for f in frames} >= WINDOWS_SIZES
    assert all(f.mode == "RGBA" and f.width == f.height for f in frames)


# ------------------------------------------------------------------------ macOS


@pytest.fixture
def app_helper(monkeypatch: pytest.MonkeyPatch) -> queue.SimpleQueue[Callable[[], None]]:
    """PyObjCTools.AppHelper.callAfter: a queue that the fake AppKit loop drains on the
    main thread, as NSApplication's run loop does."""
    calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    helper = types.ModuleType("PyObjCTools.AppHelper")
    helper.callAfter = calls.put  # type: ignore[attr-defined]
    package = types.ModuleType("PyObjCTools")
    package.AppHelper = helper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PyObjCTools", package)
    monkeypatch.setitem(sys.modules, "PyObjCTools.AppHelper", helper)
    return calls


def appkit_loop(calls: queue.SimpleQueue[Callable[[], None]]) -> Callable[[threading.Event], None]:
    def loop(ended: threading.Event) -> None:
        while not ended.is_set():
            calls.get(timeout=30)()

    return loop


def test_macos_touches_the_status_item_only_on_the_main_thread(
    pystray: Any, app_helper: queue.SimpleQueue[Callable[[], None]]
) -> None:
    assert threading.current_thread() is threading.main_thread()  # where run() belongs
    fake = fake_pystray(pystray, radio=False, default=False, loop=appkit_loop(app_helper))
    backend = DarwinBackend(fake, "IBKR gateway: Checking…")
    backend.set_menu(menu_entries())  # before run(): kept, not built
    assert backend.icon.touches == []
    config = load({"url": "https://127.0.0.1:5000"}, env={})
    tray = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())

    def setup() -> None:  # pystray's setup thread, then workers, as the poller's
        tray.start(backend)
        for state in (State.LOGGED_OUT, State.READY):
            status = Status(state, LOOKS[state].label, "why")
            worker = threading.Thread(target=tray.on_status, args=(status,))
            worker.start()
            worker.join()
        direct = threading.Thread(target=lambda: backend.set_title("off the main thread"))
        direct.start()
        direct.join()
        wait_for(lambda: backend.icon.title == "off the main thread")

    run_until_stopped(backend, setup)
    icon = backend.icon
    native = [t for t in icon.touches if isinstance(t.what, str)]  # notify: osascript
    assert {"show", "icon", "title", "menu", "hide", "stop"} <= set(icon.kinds())
    assert all(t.thread is threading.main_thread() and t.running for t in native)
    built = items(icon.menu)
    assert "Check now" in [i.text for i in built]
    assert not any(i.radio or i.default for i in built)  # darwin has neither


def test_macos_notification_leaves_the_main_thread(
    pystray: Any, app_helper: queue.SimpleQueue[Callable[[], None]]
) -> None:
    backend = DarwinBackend(fake_pystray(pystray, loop=appkit_loop(app_helper)), "t")
    run_until_stopped(backend, lambda: backend.notify("Logged out", "IBKR gateway"))
    wait_for(lambda: "notify" in backend.icon.kinds())
    (sent,) = [t for t in backend.icon.touches if t.what[0] == "notify"]
    assert sent.what == ("notify", "Logged out", "IBKR gateway")
    assert sent.thread.name == "notify"  # osascript is waited for off the run loop
