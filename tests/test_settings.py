"""Settings that stick: the documented default file, `cpgw-tray config`, writing a key
back without losing comments. (The tray's side: test_settings_tray.py.)"""

from __future__ import annotations

import argparse
import os
import re
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from cpgw_tray.cli.main import build_parser
from cpgw_tray.settings.config import KEYS, Config, ConfigError, load, read_env, read_file
from cpgw_tray.settings.file import default_text, init_file, readme_table, set_key
from cpgw_tray.settings.table import CHECKS, FLAGS, LIVE_KEYS, RESTART_KEYS, SETTINGS

from .conftest import run_cli
from .test_config import gateway_dir

README = Path(__file__).parent.parent / "README.md"


# ---------------------------------------------------------------- the default file


def test_the_settings_table_is_the_one_declaration() -> None:
    """Issue 22: each key is declared once, in the settings table; Config's fields, the
    checks, the flags, the environment names and the live set agree with it."""
    assert [s.name for s in SETTINGS] == list(KEYS), "declare the new key in settings_table"
    declared = {f.name: f for f in fields(Config)}
    for setting in SETTINGS:
        assert declared[setting.name].type == setting.kind, setting.name
        assert declared[setting.name].default == setting.default, setting.name
        assert CHECKS[setting.name] is setting.check
    assert set(KEYS) == LIVE_KEYS | RESTART_KEYS and not LIVE_KEYS & RESTART_KEYS
    for command in ("tray", "watch"):
        top = build_parser([command])._actions
        sub = next(a for a in top if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[command]
        accepted = {o: a.dest for a in parser._actions for o in a.option_strings}
        for key, flag in FLAGS.items():  # each flag reaches its key (--notify adds up)
            assert accepted[flag] in (key, key + "_after"), (command, flag)
    for setting in SETTINGS:  # the environment name is read as the key
        if isinstance(setting.default, (bool, float, str)):
            assert read_env({setting.env: str(setting.default)}) == {setting.name: setting.default}


def test_default_file_comments_out_every_key(isolated_env: Path) -> None:
    text = default_text()
    assert read_file(save(isolated_env / "c.toml", text))[0] == {}  # sets nothing
    (isolated_env / "gateway-ca.pem").write_text("not read here\n")  # the ca_bundle example
    for key in KEYS:
        lines = re.findall(rf"^# {key} = .*$", text, re.MULTILINE)
        assert len(lines) == 1, key
        # Uncommenting the line gives a valid setting: the examples are real.
        values, where = read_file(save(isolated_env / f"{key}.toml", lines[0][2:] + "\n"))
        assert list(values) == [key] and where[key].endswith("line 1")


def test_default_file_leaves_the_gateway_folders_port_alone(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    assert init_file(path)
    directory = gateway_dir(tmp_path, port=5002)
    config = load({}, config_path=str(path), env={"CPGW_TRAY_GATEWAY_DIR": str(directory)})
    assert config.url == "https://127.0.0.1:5002"


def test_readme_lists_every_key_as_the_code_does() -> None:
    table = readme_table()
    assert table in README.read_text(), f"paste this table into README.md:\n{table}"
    for key in RESTART_KEYS:
        assert re.search(rf"^\| `{key}` .*needs a restart \|$", table, re.MULTILINE)


# ---------------------------------------------------------------- cpgw-tray config


def test_config_path_is_one_line(isolated_env: Path) -> None:
    code, out = run_cli("config", "--path")
    assert code == 0 and out == f"{isolated_env / 'config' / 'cpgw-tray' / 'config.toml'}\n"
    code, out = run_cli("--config", "/some/where.toml", "config", "--path")
    assert out == "/some/where.toml\n"


def test_config_init_writes_once_then_leaves_the_file_alone(isolated_env: Path) -> None:
    path = isolated_env / "config" / "cpgw-tray" / "config.toml"
    code, out = run_cli("config", "--init")
    assert code == 0 and "Wrote" in out and path.read_text() == default_text()
    path.write_text("# mine\ninterval = 5\n")
    code, out = run_cli("config", "--init")
    assert code == 0 and "left untouched" in out
    assert path.read_text() == "# mine\ninterval = 5\n"


def test_config_says_where_each_value_comes_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "c.toml", "# mine\n\ninterval = 5\nkeepalive = 30\n")
    monkeypatch.setenv("CPGW_TRAY_TIMEOUT", "3")
    code, out = run_cli("--config", str(path), "config", "--keepalive", "20")
    assert code == 0
    shown = {line.split(" = ")[0]: line for line in out.splitlines()[1:]}
    assert set(shown) == set(KEYS)
    assert re.search(rf"^interval = 5 +# {re.escape(str(path))} line 3$", shown["interval"])
    assert re.search(r"^keepalive = 20 +# command line$", shown["keepalive"])
    assert re.search(r"^timeout = 3 +# env CPGW_TRAY_TIMEOUT$", shown["timeout"])
    assert re.search(r'^url = "https://127.0.0.1:5000" +# default$', shown["url"])


def test_config_error_is_exit_64_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = save(tmp_path / "c.toml", "# mine\ninterval = 0\n")
    code, out = run_cli("--config", str(path), "config")
    err = capsys.readouterr().err
    assert code == 64 and out == "" and err.count("\n") == 1
    assert f"bad value for 'interval' in {path} line 2" in err


def _recorder(tmp_path: Path, name: str) -> tuple[str, Path]:
    """An editor command that records the file it was given."""
    record = tmp_path / f"{name}.txt"
    script = tmp_path / f"{name}.py"
    script.write_text(f"import sys; open({str(record)!r}, 'w').write(sys.argv[1])\n")
    return f"{sys.executable} {script}", record


def test_config_edit_prefers_visual_then_editor_then_prints_the_path(
    isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = isolated_env / "config" / "cpgw-tray" / "config.toml"
    visual, visual_record = _recorder(tmp_path, "visual")
    editor, editor_record = _recorder(tmp_path, "editor")
    monkeypatch.setenv("VISUAL", visual)
    monkeypatch.setenv("EDITOR", editor)
    code, out = run_cli("config", "--edit")
    assert code == 0 and "Wrote" in out  # a missing file is created first
    assert visual_record.read_text() == str(path) and not editor_record.exists()
    monkeypatch.delenv("VISUAL")
    code, _ = run_cli("config", "--edit")
    assert code == 0 and editor_record.read_text() == str(path)
    monkeypatch.delenv("EDITOR")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no xdg-open either
    code, out = run_cli("config", "--edit")
    assert code == 0 and out.splitlines()[-1] == str(path) and "No editor" in out


# ---------------------------------------------------------------- writing back


MINE = """\
# My settings, with my notes.
interval = 30   # slower: my laptop's battery

# I want to know when it drops.
notifications = true  # on
"""


def test_set_key_keeps_comments_and_layout(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", MINE)
    set_key(path, "notifications", False)
    assert path.read_text() == MINE.replace("notifications = true", "notifications = false")
    set_key(path, "keepalive", 45)
    assert path.read_text().startswith(MINE.replace("= true", "= false"))
    assert read_file(path)[0] == {"interval": 30, "notifications": False, "keepalive": 45}


def test_set_key_sets_a_commented_default_on_its_own_line(tmp_path: Path) -> None:
    path = tmp_path / "new" / "config.toml"
    set_key(path, "notifications", False)  # a missing file starts as the default one
    expected = default_text().replace("# notifications = true", "notifications = false")
    assert path.read_text() == expected
    assert load({}, config_path=str(path), env={}).notifications is False


def test_set_key_writes_through_a_symlink_and_keeps_crlf(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "cpgw.toml"
    real.parent.mkdir()
    real.write_bytes(b"# mine\r\ninterval = 30\r\n")
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    set_key(link, "interval", 20)
    assert link.is_symlink() and real.read_bytes() == b"# mine\r\ninterval = 20\r\n"


def test_set_key_refuses_bad_keys_values_and_files(tmp_path: Path) -> None:
    path = save(tmp_path / "c.toml", "# mine\ninterval = \n")
    with pytest.raises(ConfigError, match=f"config file {re.escape(str(path))} line 2"):
        set_key(path, "notifications", False)
    assert path.read_text() == "# mine\ninterval = \n"  # untouched
    with pytest.raises(ConfigError, match="unknown key 'colour'"):
        set_key(path, "colour", "red")
    with pytest.raises(ConfigError, match="bad value for 'interval'"):
        set_key(path, "interval", 0)


def save(path: Path, text: str) -> Path:
    """Save as an editor does: the new content, a later modification time."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:  # a coarse clock: still a new version
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))
    return path
