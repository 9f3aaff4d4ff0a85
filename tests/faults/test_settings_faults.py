"""Writing a menu toggle back to the settings file, tried as a careless neighbour would:
notes on commented lines, CRLF files, commented keys inside multi-line strings, a
read-only file (also for root), a hand edit saved during the write, a save killed
midway, a symlink loop. Nothing of the person's is lost, and every failure is said."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

from cpgw_tray.model.status import State
from cpgw_tray.settings import file as settings_file
from cpgw_tray.settings.config import ConfigError
from cpgw_tray.settings.file import default_text, set_key

from ..test_settings import save
from ..test_settings_tray import entry, tray_with_settings
from ..test_tray import snapshot


def test_a_note_on_a_commented_key_is_kept(tmp_path: Path) -> None:
    path = save(tmp_path / "config.toml", "# Mine.\n# notifications = true  # mine, keep\n")
    set_key(path, "notifications", False)
    assert path.read_text() == "# Mine.\nnotifications = false  # mine, keep\n"
    path = save(tmp_path / "c2.toml", '# serve = "127.0.0.1:5001#x"   # the # in a string\n')
    set_key(path, "serve", "5002")
    assert path.read_text() == 'serve = "5002"   # the # in a string\n'


def test_a_crlf_file_keeps_crlf(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(default_text().replace("\n", "\r\n").encode())
    set_key(path, "notifications", False)  # a commented key: set on its line
    set_key(path, "interval", 20)  # also commented in the default: same
    set_key(path, "keepalive", 0)
    path.write_bytes(b"# mine\r\ninterval = 30\r\n")
    set_key(path, "on_competing", "take_back")  # a new key: added by tomlkit
    raw = path.read_bytes()
    assert raw.count(b"\n") == raw.count(b"\r\n") and b"on_competing" in raw


def test_a_commented_key_inside_a_multiline_string_is_not_touched(tmp_path: Path) -> None:
    text = (
        "serve = \"\"\"\n# notifications = true\n\"\"\"\non_change = '''\n  # interval = 5\n'''\n"
    )
    path = save(tmp_path / "config.toml", text)
    set_key(path, "notifications", False)
    set_key(path, "interval", 20)
    assert path.read_text().startswith(text)  # the strings as they were
    data = tomllib.loads(path.read_text())  # as the settings are read (tomlkit 0.11's
    # unwrap keeps a multi-line string's quotes)
    assert data == {
        "serve": "# notifications = true\n",
        "on_change": "  # interval = 5\n",
        "notifications": False,
        "interval": 20,
    }


def test_a_file_without_its_owners_write_bit_is_left_alone(tmp_path: Path) -> None:
    """Checked by the mode bits: root (as these tests may run) could write it anyway."""
    path = save(tmp_path / "config.toml", "# mine\nnotifications = true\n")
    path.chmod(0o444)
    with pytest.raises(ConfigError, match="read-only"):
        set_key(path, "notifications", False)
    assert path.read_text() == "# mine\nnotifications = true\n"
    assert path.stat().st_mode & 0o777 == 0o444
    app, backend, _ = tray_with_settings(path)
    app.apply(snapshot(State.READY))
    action = entry(backend, "Notifications").action
    assert action is not None
    action()
    backend.drain()
    assert app.notifications is True  # the toggle did not flip
    notes = [e.text for e in backend.menu if e.text.startswith("Not saved:")]
    assert notes and "read-only" in notes[0]
    assert any("read-only" in str(message) for kind, message in backend.calls if kind == "notify")


def test_a_hand_edit_saved_during_the_write_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "config.toml", "# mine\n# notifications = true\n")
    real = settings_file._with_key
    edits: list[Path] = []

    def editor_saves_meanwhile(text: str, *args: object) -> str:
        out = real(text, *args)  # type: ignore[arg-type]
        if not edits:  # the person's editor saves while the key is being written
            edits.append(save(path, "# mine\n# notifications = true\ninterval = 42\n"))
        return out

    monkeypatch.setattr(settings_file, "_with_key", editor_saves_meanwhile)
    set_key(path, "notifications", False)
    assert path.read_text() == "# mine\nnotifications = false\ninterval = 42\n"


def test_a_temp_file_left_by_a_killed_save_is_removed_at_the_next_start(tmp_path: Path) -> None:
    path = save(tmp_path / "config.toml", "# mine\n")
    leave = (
        "import os, sys; "
        "open(f'{sys.argv[1]}/.config.toml.{os.getpid()}.tmp', 'w').write('half'); "
        "os._exit(9)"  # killed midway: nothing cleans up
    )
    subprocess.run([sys.executable, "-c", leave, str(tmp_path)], check=False, timeout=30)
    mine = tmp_path / f".config.toml.{os.getpid()}x.tmp"  # not a pid: not ours to remove
    mine.write_text("")
    assert len(list(tmp_path.glob(".config.toml.*.tmp"))) == 2
    tray_with_settings(path)
    assert list(tmp_path.glob(".config.toml.*.tmp")) == [mine]


def test_a_symlink_loop_is_said_and_the_toggle_stays(tmp_path: Path) -> None:
    path = save(tmp_path / "config.toml", "# mine\n")
    app, backend, _ = tray_with_settings(path)
    app.apply(snapshot(State.READY))
    path.unlink()
    path.symlink_to(tmp_path / "other.toml")
    (tmp_path / "other.toml").symlink_to(path)
    with pytest.raises(ConfigError, match="cannot save 'notifications'"):
        set_key(path, "notifications", False)
    action = entry(backend, "Notifications").action
    assert action is not None
    action()
    backend.drain()
    assert app.notifications is True
    notes = [e.text for e in backend.menu if e.text.startswith("Not saved:")]
    assert notes and "config.toml" in notes[0]
