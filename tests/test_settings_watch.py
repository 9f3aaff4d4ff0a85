"""The settings watcher's thread: woken by the file's folder (inotify) on Linux, so a
save applies at once with no periodic look; a poll where inotify is missing."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cpgw_tray.settings.config import Config, load
from cpgw_tray.settings.watcher import SettingsWatcher

from .conftest import wait_for
from .test_settings import save

LINUX = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's")


def watching(
    path: Path, period: float, **more: Any
) -> tuple[SettingsWatcher, queue.SimpleQueue[Any]]:
    seen: queue.SimpleQueue[Any] = queue.SimpleQueue()
    loader: Callable[[], Config] = lambda: load({}, config_path=str(path), env={})  # noqa: E731
    watcher = SettingsWatcher(path, loader, seen.put, seen.put, period=period, settle=0, **more)
    watcher.start()
    return watcher, seen


@LINUX
def test_a_save_wakes_the_watcher_without_a_periodic_look(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "interval = 30\n")
    watcher, seen = watching(path, period=3600)  # a poll would not come in this test
    try:
        save(path, "interval = 20\n")
        assert until_interval(seen, 20)
    finally:
        watcher.stop()


@LINUX
def test_a_file_replaced_by_an_editor_is_seen(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "interval = 30\n")
    watcher, seen = watching(path, period=3600)
    try:
        for interval in (20, 10):  # twice: the watch outlives the file it first saw
            new = save(tmp_path / ".c.toml.swp", f"interval = {interval}\n")
            os.replace(new, path)
            assert seen.get(timeout=10).interval == interval
    finally:
        watcher.stop()


@LINUX
def test_stop_ends_a_wait_on_the_folder_at_once(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "interval = 30\n")
    watcher, _seen = watching(path, period=3600)
    assert watcher._thread is not None
    watcher.stop()
    watcher._thread.join(timeout=10)
    assert not watcher._thread.is_alive()


def test_without_inotify_the_file_is_polled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SettingsWatcher, "_folder_events", lambda self: None)
    path = save(tmp_path / "c.toml", "interval = 30\n")
    watcher, seen = watching(path, period=0.05)
    try:
        save(path, "interval = 20\n")
        assert until_interval(seen, 20)
    finally:
        watcher.stop()


@LINUX
@pytest.mark.parametrize("depth", [1, 3])
def test_a_folder_made_later_is_watched_without_a_poll(tmp_path: Path, depth: int) -> None:
    """A fresh install has no settings folder (often no ~/.config either): the nearest
    folder that exists is watched until the way to the file is made, never polled."""
    path = tmp_path.joinpath(*[f"later{n}" for n in range(depth)], "c.toml")
    looked = threading.Event()
    watcher, seen = watching(path, period=3600, on_tick=looked.set)  # no poll in this test
    try:
        assert looked.wait(10)  # watching: the folders are made after this
        save(path, "interval = 20\n")
        assert until_interval(seen, 20)
        save(path, "interval = 10\n")
        assert until_interval(seen, 10)
    finally:
        watcher.stop()


@LINUX
def test_the_followed_file_ticks_on_its_change_only(tmp_path: Path) -> None:
    """*Start at login* follows the autostart file: a tick when it is written (its
    folder made later too), none while nothing changes, however short the period."""
    path = save(tmp_path / "c.toml", "interval = 30\n")
    follows = tmp_path / "autostart" / "cpgw-tray.desktop"
    ticks: queue.SimpleQueue[float] = queue.SimpleQueue()
    watcher, seen = watching(
        path, period=0.01, on_tick=lambda: ticks.put(time.monotonic()), follows=follows
    )
    try:
        ticks.get(timeout=10)  # the first look
        save(tmp_path / "unrelated.txt", "x")  # an event in a watched folder, not the file
        save(path, "interval = 20\n")
        assert until_interval(seen, 20)
        before = ticks.qsize()
        follows.parent.mkdir()
        save(follows, "[Desktop Entry]\n")
        wait_for(lambda: ticks.qsize() > before)
        assert before <= 2  # the settings save's look may tick; a 0.01 s period did not
    finally:
        watcher.stop()


def until_interval(seen: queue.SimpleQueue[Any], interval: float) -> bool:
    """True once a load with ``interval`` came (settle=0: a look may catch the file
    created and not yet written, an empty file's defaults, first)."""
    while True:
        got = seen.get(timeout=10)  # raises queue.Empty: the save was never seen
        if getattr(got, "interval", None) == interval:
            return True


def test_the_same_settings_saved_again_are_not_loaded_twice(tmp_path: Path) -> None:
    """What was read decides, not when: a look that caught the file's old size and time
    with its new content (an editor replacing it meanwhile) loaded it once, and the next
    look loaded the same settings a second time (seen under load)."""
    path = save(tmp_path / "c.toml", "interval = 30\n")
    seen: list[Any] = []
    watcher = SettingsWatcher(
        path, lambda: load({}, config_path=str(path), env={}), seen.append, seen.append, settle=0
    )
    save(path, "interval = 20\n")
    assert watcher.check() and seen[-1].interval == 20
    os.utime(path, ns=(0, 10**18))  # the same content, another time
    assert not watcher.check()
    save(path, "interval = 10\n")
    assert watcher.check() and seen[-1].interval == 10
