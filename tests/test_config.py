"""Config: sources in order, and every bad value named with its key, file and line."""

from __future__ import annotations

from pathlib import Path

import pytest

from cpgw_tray.paths import config_file as default_config_path
from cpgw_tray.settings.config import ConfigError, load, read_conf_yaml
from cpgw_tray.simulator import CONF_YAML

from .conftest import run_cli


def gateway_dir(tmp_path: Path, port: int = 5001, ssl: str = "true") -> Path:
    root = tmp_path / "clientportal.gw" / "root"
    root.mkdir(parents=True)
    conf = CONF_YAML.format(port=port).replace("listenSsl: true", f"listenSsl: {ssl}")
    (root / "conf.yaml").write_text(conf)  # the stock layout: every line indented by four
    return root.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = load({}, env={})
    assert config.url == "https://127.0.0.1:5000" and config.url_source == "default"
    assert config.timeout == 10 and config.interval == 15 and config.keepalive == 60
    assert config.verify is False  # loopback


def test_precedence_file_env_cli(tmp_path: Path) -> None:
    path = write(tmp_path, 'url = "https://127.0.0.1:5001"\ntimeout = 3\ninterval = 20\n')
    env = {"CPGW_TRAY_TIMEOUT": "4", "CPGW_TRAY_INTERVAL": "25"}
    config = load({"interval": 30, "url": None}, config_path=str(path), env=env)
    assert config.url == "https://127.0.0.1:5001" and "config file" in config.url_source
    assert config.timeout == 4 and config.interval == 30


def test_default_file_in_user_config_dir(isolated_env: Path) -> None:
    path = default_config_path()
    assert str(path).startswith(str(isolated_env))
    path.parent.mkdir(parents=True)
    path.write_text("timeout = 7\n")
    assert load({}, env={}).timeout == 7


def test_config_env_var_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "keepalive = 0\n")
    assert load({}, env={"CPGW_TRAY_CONFIG": str(path)}).keepalive == 0


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (
            'url = "https://127.0.0.1:5000"\nintervall = 5\n',
            "unknown key 'intervall' in {path} line 2 (did you mean 'interval'?)",
        ),
        ('timeout = "ten"\n', "bad value for 'timeout' in {path} line 1: expected a number"),
        ('\n\nurl = "127.0.0.1:5000"\n', "bad value for 'url' in {path} line 3"),
        (
            'ca_bundle = "/nope/ca.pem"\n',
            "bad value for 'ca_bundle' in {path} line 1: file '/nope/ca.pem' does not exist",
        ),
        ("insecure = 3\n", "bad value for 'insecure' in {path} line 1: expected true or false"),
        ("interval = 0.1\n", "must be between 1 and 86400"),
        ("timeout = \n", "{path}: Invalid value (at line 1, column 11)"),
    ],
)
def test_bad_file_values_name_key_file_and_line(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load({}, config_path=str(path), env={})
    assert words.format(path=path) in str(info.value)


def test_typo_is_exit_64_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "# my settings\ntimout = 5\n")
    code, out = run_cli("--config", str(path), "status")
    err = capsys.readouterr().err
    assert code == 64 and out == ""
    assert err.count("\n") == 1
    assert f"unknown key 'timout' in {path} line 2" in err


def test_missing_explicit_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = run_cli("--config", str(tmp_path / "nope.toml"), "status")
    assert code == 64 and "cannot read config file" in capsys.readouterr().err


def test_bad_env_and_cli_values(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ConfigError, match="CPGW_TRAY_TIMEOUT"):
        load({}, env={"CPGW_TRAY_TIMEOUT": "soon"})
    with pytest.raises(ConfigError, match="unknown environment variable CPGW_TRAY_COLOUR"):
        load({}, env={"CPGW_TRAY_COLOUR": "red"})
    code, _ = run_cli("--url", "127.0.0.1:5000", "status")
    assert code == 64 and "bad value for --url" in capsys.readouterr().err
    code, _ = run_cli("--ca-bundle", "/nope.pem", "status")
    assert code == 64 and "/nope.pem" in capsys.readouterr().err


def test_gateway_dir_supplies_port_and_scheme(tmp_path: Path) -> None:
    directory = gateway_dir(tmp_path, port=5002, ssl="false")
    config = load({}, env={"CPGW_TRAY_GATEWAY_DIR": str(directory)})
    assert config.url == "http://127.0.0.1:5002" and "conf.yaml" in config.url_source
    # an explicit URL still wins
    assert load(
        {"url": "https://127.0.0.1:5009"}, env={"CPGW_TRAY_GATEWAY_DIR": str(directory)}
    ).url.endswith("5009")


def test_conf_yaml_errors_name_file_and_line(tmp_path: Path) -> None:
    directory = gateway_dir(tmp_path)
    conf = directory / "root" / "conf.yaml"
    assert read_conf_yaml(str(directory)) == (5001, True)
    conf.write_text("    listenPort: 5000\n    listenSsl: [oops\n")
    with pytest.raises(ConfigError, match=r"conf.yaml line \d"):
        read_conf_yaml(str(directory))
    conf.write_text("    listenPort: five\n")
    with pytest.raises(ConfigError, match=r"conf\.yaml line 1: listenPort must be a port number"):
        read_conf_yaml(str(directory))
    with pytest.raises(ConfigError, match="cannot read"):
        read_conf_yaml(str(tmp_path / "elsewhere"))


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1e999", "NaN", "Infinity"])
def test_non_finite_numbers_refused_everywhere(tmp_path: Path, text: str) -> None:
    """NaN or infinite numbers are a config error (exit 64 naming the key), from the
    environment, the command line and the file alike — never a traceback or a spin."""
    with pytest.raises(ConfigError, match="CPGW_TRAY_TIMEOUT"):
        load({}, env={"CPGW_TRAY_TIMEOUT": text})
    with pytest.raises(ConfigError, match="--interval"):
        load({"interval": text}, env={})
    if text in ("nan", "inf", "-inf"):  # TOML's own spelling
        path = write(tmp_path, f"interval = 5\nkeepalive = {text}\n")
        with pytest.raises(ConfigError, match=r"'keepalive' in .*config.toml line 2"):
            load({}, config_path=str(path), env={})


def test_non_finite_numbers_exit_64_from_the_cli(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _ = run_cli("watch", "--interval", "nan")
    assert code == 64 and "--interval" in capsys.readouterr().err
    monkeypatch.setenv("CPGW_TRAY_TIMEOUT", "nan")
    code, _ = run_cli("status")
    err = capsys.readouterr().err
    assert code == 64 and "CPGW_TRAY_TIMEOUT" in err and "Traceback" not in err


def test_config_file_not_utf8_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'interval = 20\n# caf\xe9 in Latin-1\nurl = "https://127.0.0.1:5001"\n')
    with pytest.raises(ConfigError, match=r"config.toml line 2: not UTF-8"):
        load({}, config_path=str(path), env={})
    code, _ = run_cli("--config", str(path), "status")
    err = capsys.readouterr().err
    assert code == 64 and "line 2" in err and "Traceback" not in err


def test_conf_yaml_not_utf8_names_the_file(tmp_path: Path) -> None:
    folder = gateway_dir(tmp_path)
    conf = folder / "root" / "conf.yaml"
    conf.write_bytes(conf.read_bytes() + b"    # \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"conf.yaml line \d+: not UTF-8"):
        read_conf_yaml(str(folder))


def test_server_keys_from_file_and_environment(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'serve = "0.0.0.0:5001"\non_change = ["/opt/notify", "--to", "ops"]\nhook_timeout = 5\n',
    )
    config = load({}, config_path=str(path), env={})
    assert config.serve == "0.0.0.0:5001"
    assert config.on_change == ("/opt/notify", "--to", "ops")
    assert config.hook_timeout == 5
    env = {"CPGW_TRAY_ON_CHANGE": "notify-send 'gateway changed'", "CPGW_TRAY_SERVE": "5002"}
    config = load({}, config_path=str(path), env=env)
    assert config.on_change == ("notify-send", "gateway changed")
    assert config.serve == "127.0.0.1:5002"
    defaults = load({}, env={})
    assert (defaults.serve, defaults.on_change, defaults.hook_timeout) == (None, None, 30)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('serve = "::1:5001"\n', "bad value for 'serve' in {path} line 1: put an IPv6 address"),
        ("serve = 5001\n", "bad value for 'serve' in {path} line 1: expected an address"),
        ('\non_change = ""\n', "bad value for 'on_change' in {path} line 2: empty command"),
        ("on_change = [1]\n", "bad value for 'on_change' in {path} line 1: expected a command"),
        ("hook_timeout = 0\n", "bad value for 'hook_timeout' in {path} line 1: must be between"),
        (
            'serve_hosts = ["proxy.lan:8080"]\n',
            "bad value for 'serve_hosts' in {path} line 1: 'proxy.lan:8080' is not a host name",
        ),
        ("serve_hosts = 3\n", "bad value for 'serve_hosts' in {path} line 1: expected a list"),
    ],
)
def test_bad_server_keys_name_key_file_and_line(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load({}, config_path=str(path), env={})
    assert words.format(path=path) in str(info.value)


def test_bad_server_options_name_the_flag() -> None:
    with pytest.raises(ConfigError, match="bad value for --exec: cannot split"):
        load({"on_change": "notify 'unclosed"}, env={})
    with pytest.raises(ConfigError, match="bad value for --serve: '70000' is not a port"):
        load({"serve": "70000"}, env={})
    with pytest.raises(ConfigError, match="CPGW_TRAY_ON_CHANGE: empty command"):
        load({}, env={"CPGW_TRAY_ON_CHANGE": " "})
    with pytest.raises(ConfigError, match="bad value for --serve-host: 'a b' is not a host"):
        load({"serve_hosts": ["ok.lan", "a b"]}, env={})


def test_serve_hosts_from_file_environment_and_flag(tmp_path: Path) -> None:
    path = write(tmp_path, 'serve_hosts = ["Proxy.LAN"]\n')
    assert load({}, config_path=str(path), env={}).serve_hosts == ("proxy.lan",)
    env = {"CPGW_TRAY_SERVE_HOSTS": "a.lan,b.lan"}
    assert load({}, config_path=str(path), env=env).serve_hosts == ("a.lan", "b.lan")
    code, _ = run_cli("--url", "https://127.0.0.1:1", "watch", "--serve-host", "bad name")
    assert code == 64
    assert load({}, env={}).serve_hosts == ()


def test_a_command_is_shown_as_a_toml_array_that_reads_back(tmp_path: Path) -> None:
    from cpgw_tray.settings.file import toml_value

    argv = ("notify", 'say "hi"', "C:\\hooks\\x.bat")
    path = write(tmp_path, f"on_change = {toml_value(argv)}\n")
    assert load({}, config_path=str(path), env={}).on_change == argv


def test_a_gateway_folder_found_in_a_usual_place_gives_the_url(isolated_env: Path) -> None:
    """Unpacked in ~/clientportal.gw (where `gateway start` finds it), its port is the
    one `status` asks, with no setting: the two never disagree."""
    gateway_dir(isolated_env, port=5077).rename(isolated_env / "clientportal.gw.tmp")
    (isolated_env / "clientportal.gw.tmp" / "bin").mkdir()
    (isolated_env / "clientportal.gw.tmp" / "bin" / "run.sh").write_text("#!/bin/bash\n")
    (isolated_env / "clientportal.gw.tmp").rename(isolated_env / "clientportal.gw")
    config = load({}, env={})
    assert config.url == "https://127.0.0.1:5077"
    assert config.url_source.endswith("clientportal.gw/root/conf.yaml (folder found)")
    assert load({"url": "https://127.0.0.1:5001"}, env={}).url == "https://127.0.0.1:5001"


def test_a_broken_conf_yaml_in_a_found_folder_keeps_the_default(
    isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = isolated_env / "clientportal.gw"
    (folder / "bin").mkdir(parents=True)
    (folder / "bin" / "run.sh").write_text("#!/bin/bash\n")
    (folder / "root").mkdir()
    (folder / "root" / "conf.yaml").write_text("listenPort: [nope\n")
    assert load({}, env={}).url == "https://127.0.0.1:5000"
    assert "ignoring the gateway folder found" in caplog.text


def test_a_syntax_error_at_the_end_names_the_last_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'interval = 20\nurl = "https://127.0.0.1:5001"\non_change = ["a",\n')
    with pytest.raises(ConfigError, match=r"config.toml: .*\(at line 3, the end of the file\)"):
        load({}, config_path=str(path), env={})
