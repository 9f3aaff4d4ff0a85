"""A click on the login notification opens the login page where notifications go over
D-Bus: a private bus (a real dbus-daemon) and a notification service of our own that
records the call and clicks it."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from cpgw_tray.tray.backends.gtk import DbusNotifier

pytestmark = pytest.mark.e2e  # a real dbus-daemon, and PyGObject as the desktop has it

try:  # a missing PyGObject is said when a test runs, not while the module is collected
    import gi

    gi.require_version("Gio", "2.0")
    from gi.repository import Gio, GLib
except (ImportError, ValueError):
    gi = None

SERVICE = """<node><interface name="org.freedesktop.Notifications">
<method name="Notify"><arg type="s" direction="in"/><arg type="u" direction="in"/>
<arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="s" direction="in"/>
<arg type="as" direction="in"/><arg type="a{sv}" direction="in"/><arg type="i" direction="in"/>
<arg type="u" direction="out"/></method></interface></node>"""
NAME, PATH = "org.freedesktop.Notifications", "/org/freedesktop/Notifications"


@pytest.fixture
def bus() -> Iterator[str]:
    """A private session bus; its address."""
    if gi is None:
        pytest.skip("needs python3-gi (PyGObject), as .ci/run installs")
    if shutil.which("dbus-daemon") is None:
        pytest.skip("dbus-daemon is not installed")
    proc = subprocess.Popen(
        ["dbus-daemon", "--session", "--nofork", "--nopidfile", "--print-address=1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        yield proc.stdout.readline().strip()
    finally:
        proc.kill()
        proc.wait(timeout=10)


def connect(address: str) -> Any:
    flags = (
        Gio.DBusConnectionFlags.AUTHENTICATION_CLIENT
        | Gio.DBusConnectionFlags.MESSAGE_BUS_CONNECTION
    )
    return Gio.DBusConnection.new_for_address_sync(address, flags, None, None)


def spin(done: Callable[[], bool]) -> None:
    """Run this thread's GLib loop until ``done`` (the bus answers in milliseconds)."""
    context, deadline = GLib.MainContext.default(), time.monotonic() + 10
    while not done():
        assert time.monotonic() < deadline, "no answer on the private bus"
        context.iteration(False)


def test_a_click_on_the_notification_runs_its_action(bus: str) -> None:
    calls: list[tuple[Any, ...]] = []
    service = connect(bus)

    def on_call(conn: Any, sender: str, path: str, iface: str, method: str, *rest: Any) -> None:
        params, invocation = rest[0], rest[1]
        calls.append(params.unpack())
        invocation.return_value(GLib.Variant("(u)", (6 + len(calls),)))  # 7, 8, …

    info = Gio.DBusNodeInfo.new_for_xml(SERVICE).interfaces[0]
    service.register_object(PATH, info, on_call, None, None)
    owned = service.call_sync(
        "org.freedesktop.DBus",
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        "RequestName",
        GLib.Variant("(su)", (NAME, 0)),
        None,
        Gio.DBusCallFlags.NONE,
        -1,
        None,
    )
    assert owned.unpack() == (1,)  # the primary owner
    opened: list[str] = []
    notifier = DbusNotifier(connect(bus))
    notifier.notify(
        "IBKR gateway",
        "IBKR needs you to log in",
        ("Log in now", lambda: opened.append("login page")),
    )
    spin(lambda: notifier._id == 7)
    assert calls[0][3:6] == ("IBKR gateway", "IBKR needs you to log in", ["default", "Log in now"])
    args = GLib.Variant("(us)", (7, "default"))
    service.emit_signal(None, PATH, NAME, "ActionInvoked", args)
    spin(lambda: opened == ["login page"])
    notifier.notify("IBKR gateway", "Ready")  # a plain one replaces it: no action left
    spin(lambda: notifier._id == 8)
    assert calls[1][5] == []
    service.emit_signal(None, PATH, NAME, "ActionInvoked", GLib.Variant("(us)", (8, "default")))
    notifier.notify("IBKR gateway", "Ready")  # its answer comes after the signal
    spin(lambda: notifier._id == 9)
    assert opened == ["login page"]
    notifier.notify(  # two buttons: each runs its own action
        "IBKR gateway",
        "Another session took over",
        ("Take the session over", lambda: opened.append("take over")),
        ("Leave it", lambda: opened.append("leave")),
    )
    spin(lambda: notifier._id == 10)
    assert calls[3][5] == ["default", "Take the session over", "also", "Leave it"]
    service.emit_signal(None, PATH, NAME, "ActionInvoked", GLib.Variant("(us)", (10, "also")))
    spin(lambda: opened[-1:] == ["leave"])
