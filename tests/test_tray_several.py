"""The tray of several gateways (issue 23): one icon, the worst gateway's with a mark,
one section per gateway acting on that gateway, over two simulated gateways."""

from __future__ import annotations

import queue
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from cpgw_tray.model.status import LOOKS, State
from cpgw_tray.model.urls import gateway_root
from cpgw_tray.settings.config import load
from cpgw_tray.settings.gateways import Gateway, resolve_all
from cpgw_tray.several_app import build_apps, watch_settings
from cpgw_tray.simulator import Simulator
from cpgw_tray.tray.backends.dummy import DummyBackend
from cpgw_tray.tray.icons import icon_image, look_of, several_icon
from cpgw_tray.tray.menu import Entry
from cpgw_tray.tray.several import Several, severity
from cpgw_tray.tray.tray_app import TrayApp

from .conftest import wait_for


def test_the_marked_icon_is_the_worst_look_with_a_mark() -> None:
    marked = several_icon(State.LOGGED_OUT)
    assert look_of(marked) == LOOKS[State.LOGGED_OUT]
    plain, mark = icon_image(State.LOGGED_OUT, 32), icon_image(marked, 32)
    differ = [
        (x, y)
        for x in range(32)
        for y in range(32)
        if plain.getpixel((x, y)) != mark.getpixel((x, y))
    ]
    assert differ and all(x >= 16 and y < 16 for x, y in differ)  # the top-right corner only


def test_worst_first_is_red_yellow_orange_blue_grey_green() -> None:
    order = [State.ERROR, State.LOGGED_OUT, State.COMPETING, "maintenance", State.UNKNOWN]
    ranks = [severity(icon) for icon in [*order, State.READY]]
    assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)


@pytest.fixture
def two() -> Iterator[tuple[Simulator, Simulator]]:
    with (
        Simulator(port=0, rate_limit=False, scenario="ready") as live,
        Simulator(port=0, rate_limit=False, scenario="logged_out") as paper,
    ):
        yield live, paper


def section(menu: Sequence[Entry], name: str) -> list[Entry]:
    """The rows of gateway ``name``'s section."""
    texts = [entry.text for entry in menu]
    start = texts.index(f"Gateway {name}")
    heads = [n for n, text in enumerate(texts) if text.startswith("Gateway ") and n > start]
    return list(menu[start + 1 : heads[0] if heads else texts.index("Notifications")])


def row(rows: Sequence[Entry], text: str) -> Entry:
    return next(entry for entry in rows if entry.text == text)


@pytest.mark.e2e  # checks paced by the real rate limits
def test_live_ready_and_paper_logged_out_show_yellow_marked_and_paper_offers_login(
    two: tuple[Simulator, Simulator],
) -> None:
    live, paper = two
    gateways = [
        Gateway(name, load({"url": sim.url, "insecure": True}, env={}))
        for name, sim in (("live", live), ("paper", paper))
    ]
    backend = DummyBackend()
    several = Several(backend)
    opened: queue.SimpleQueue[str] = queue.SimpleQueue()
    apps: list[TrayApp] = build_apps(
        several, gateways, lambda config, client: [], open_url=lambda u: opened.put(u) or True
    )
    for app, part in zip(apps, several.parts, strict=True):
        app.start(part)
    try:

        def shown(icon: str) -> bool:
            backend.drain()  # as the tray's thread
            return any(call == ("icon", icon) for call in backend.calls)

        wait_for(
            lambda: shown(several_icon(State.LOGGED_OUT)) and "live: ready" in several.summary()
        )
        assert several.summary() == "paper: logged out · live: ready"
        assert ("title", "paper: logged out · live: ready") in backend.calls
        menu = backend.menu
        assert menu[0].text == "paper: logged out · live: ready"
        texts = [entry.text for entry in menu]
        assert texts.index("Gateway live") < texts.index("Gateway paper")  # settings' order
        assert texts[-2:] == ["Notifications", "Quit"] and texts.count("Quit") == 1
        paper_rows, live_rows = section(menu, "paper"), section(menu, "live")
        assert "Status: Logged out" in [e.text for e in paper_rows]
        assert "Status: Ready" in [e.text for e in live_rows]
        login = row(paper_rows, "Open login page")
        assert login.enabled and login.action is not None
        login.action()
        assert opened.get(timeout=10) == gateway_root(paper.url)
        row(live_rows, "Open login page").action()  # type: ignore[misc]
        assert opened.get(timeout=10) == gateway_root(live.url)
        assert all(app.status.gateway == app.gateway for app in apps)

        # paper logs in: the icon turns green (still marked), the notification names it
        paper.set_scenario("ready")
        apps[1].check_now(fresh=True)
        wait_for(lambda: shown(several_icon(State.READY)))
        assert any(kind == "notify" and text.startswith("paper: ") for kind, text in backend.calls)
    finally:
        several.quit()
    assert backend.stopped.is_set()
    assert all(app.quitting.is_set() for app in apps)


def test_a_saved_table_reaches_its_gateway_and_a_new_table_asks_for_a_restart(
    two: tuple[Simulator, Simulator], tmp_path: Path
) -> None:
    live, paper = two
    path = tmp_path / "config.toml"
    tables = (
        f'[gateways.live]\nurl = "{live.url}"\ninsecure = true\n'
        f'[gateways.paper]\nurl = "{paper.url}"\ninsecure = true\n'
    )
    path.write_text(tables)

    def load_all() -> list[Gateway]:
        return resolve_all(config_path=str(path), env={})

    backend = DummyBackend()
    several = Several(backend)
    apps = build_apps(several, load_all(), lambda config, client: [], open_url=lambda u: True)
    for app, part in zip(apps, several.parts, strict=True):
        app.start(part)
    watchers = watch_settings(apps, path, load_all)
    try:
        assert apps[1].care.auto_reauth is True
        path.write_text(tables + "auto_reauth = false\n")  # inside paper's table

        def applied() -> bool:
            backend.drain()
            return apps[1].care.auto_reauth is False

        wait_for(applied)
        assert apps[0].care.auto_reauth is True  # live's table did not change
        path.write_text(tables + '[gateways.third]\nurl = "https://127.0.0.1:1"\n')
        wait_for(lambda: all(app.last_action and "restart" in app.last_action for app in apps))
        assert [app.gateway for app in apps] == ["live", "paper"]
    finally:
        for watcher in watchers:
            watcher.stop()
        several.quit()


def test_a_hanging_gateway_never_delays_the_other_s_verdict(
    two: tuple[Simulator, Simulator],
) -> None:
    """Paper hangs (no reply within its 30 s timeout): live's ready is shown meanwhile,
    the icon grey (paper still unknown) and marked."""
    live, paper = two
    paper.set_scenario("hang")
    gateways = [
        Gateway("live", load({"url": live.url, "insecure": True}, env={})),
        Gateway("paper", load({"url": paper.url, "insecure": True, "timeout": 30}, env={})),
    ]
    backend = DummyBackend()
    several = Several(backend)
    apps = build_apps(several, gateways, lambda config, client: [], open_url=lambda u: True)
    for app, part in zip(apps, several.parts, strict=True):
        app.start(part)
    try:

        def live_ready() -> bool:
            backend.drain()
            return apps[0].status.state is State.READY

        wait_for(live_ready, timeout=10)
        assert apps[1].status.state is State.UNKNOWN  # still waiting on paper's reply
        assert several.summary() == "paper: checking… · live: ready"
        assert ("icon", several_icon(State.UNKNOWN)) in backend.calls
    finally:
        several.quit()
