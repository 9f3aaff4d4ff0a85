"""The diagnostics bundle, made by a real ``cpgw-tray doctor --bundle`` process from logs,
a history and settings planted with every secret shape a trader's files hold: a grep of
the zip finds none of them, and its README says what was kept and what was removed."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from cpgw_tray import paths
from cpgw_tray.process.identity import log_of
from cpgw_tray.redaction import Redactor, register_value

from .conftest import cli, reap

# Each planted line, and the secrets in it that must not reach the zip.
PLANTS: dict[str, list[str]] = {
    "GET /v1/api/tickle Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.tok3nBEARER": [
        "eyJhbGciOiJIUzI1NiJ9",
        "tok3nBEARER",
    ],
    "X-Api-Key: k3y-ABCDEF123456": ["k3y-ABCDEF123456"],
    '{"headers": {"X-Api-Key": "jsonapikey789", "Authorization": "Basic dXNlcjpwYXNzd29yZA=="}}': [
        "jsonapikey789",
        "dXNlcjpwYXNzd29yZA",
    ],
    "hook argv ['curl', 'https://hooks.slack.com/services/T0AAA/B0BBB/slacksecretXYZ']": [
        "slacksecretXYZ",
        "B0BBB",
    ],
    "post https://discord.com/api/webhooks/123456789012/discordSECRETtoken": [
        "discordSECRETtoken",
        "123456789012",
    ],
    "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX/sendMessage": [
        "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawX"
    ],
    "Cookie: api=abc123; JSESSIONID=JSESS0123456789; x-sess-uuid=0.a1b2c3.1700000000": [
        "abc123",
        "JSESS0123456789",
        "0.a1b2c3.1700000000",
    ],
    "sent x-sess-uuid=0.deadbe.1700000001 to the gateway": ["0.deadbe.1700000001"],
    "session 9FE1C272DC44E023A3AEFE52B71D42BD upper": ["9FE1C272DC44E023A3AEFE52B71D42BD"],
    '{"session": "9fe1c272dc44e023a3aefe52b71d42bd", "userId": 132329622}': [
        "9fe1c272dc44e023a3aefe52b71d42bd",
        "132329622",
    ],
    "proxy socks5://trader:pr0xypass@10.0.0.1:1080": ["trader:", "pr0xypass"],
    "java -jar gw.jar --password hunter3 --user jdoe77": ["hunter3", "jdoe77"],
    'password = "correct horse battery"': ["correct horse", "battery"],
    'sslPwd: "my \\"quoted\\" pw"': ["quoted", '\\" pw'],
    "keystore password: two words here": ["two words", "words here"],
    "Account DU7654321_Summary du7654321 and U1234567": ["7654321", "1234567"],
    "userId=9876543 ok": ["9876543"],
    '{"USER_NAME": "jdoe77", "USER_ID": 132329622}': ["jdoe77"],
    "Welcome back JDOE77, all fine": ["JDOE77", "jdoe77"],
    "password=hunter2&user=me": ["hunter2"],
}
# Phone and chat (Apprise) URLs from the settings, and as a library might print them.
NOTIFY_URLS = ["tgram://7712345678:AAFnotifyBOTtok3n/99887766", "pover://puser5@ptok3nXYZ"]
NOTIFY_PLANTS = {
    "apprise: sending to tgram://7712345678:AAFnotifyBOTtok3n/99887766": ["AAFnotifyBOTtok3n"],
    "pushover token ptok3nXYZ refused": ["ptok3nXYZ"],
    "ntfy://unlisted-s3cret-topic answered 500": ["unlisted-s3cret-topic"],
}
WEBHOOK = "https://hooks.slack.com/services/T0AAA/B0BBB/slacksecretXYZ"
ON_CHANGE = ["curl", "-s", "-X", "POST", "-d", WEBHOOK]  # a command of 6 arguments


def leaks_in(text: str, plants: dict[str, list[str]] = PLANTS) -> list[str]:
    return [leak for leaks in plants.values() for leak in leaks if leak in text]


def test_the_redactor_removes_every_planted_shape() -> None:
    redactor = Redactor()
    planted = "\n".join(PLANTS)
    redactor.learn(planted)
    text = redactor(planted)
    assert not leaks_in(text), text
    assert "Account <account>_Summary" in text  # the words stay, the values go
    assert "Welcome back <removed>, all fine" in text  # the login name, learnt


def test_a_registered_value_is_removed_everywhere() -> None:
    redactor = Redactor()
    redactor.add_value("ntfy-topic-s3cret")
    assert redactor("sent to ntfy-topic-s3cret ok") == "sent to <removed> ok"
    redactor.add_value("ab")  # too short: would eat words
    assert redactor("about") == "about"


def test_register_value_reaches_the_shared_redactor() -> None:
    from cpgw_tray.redaction import redact

    register_value("only-this-test-knows-it")
    assert "only-this-test-knows-it" not in redact("x only-this-test-knows-it y")


@pytest.mark.e2e  # cpgw-tray runs as a process
@pytest.mark.timeout(60)
def test_the_bundle_holds_no_planted_secret(isolated_env: Path, tmp_path: Path) -> None:
    home = isolated_env
    gateway_dir = home / "clientportal.gw"
    (gateway_dir / "root").mkdir(parents=True)
    (gateway_dir / "root" / "conf.yaml").write_text("listenPort: 5000\nlistenSsl: true\n")
    paths.config_file().parent.mkdir(parents=True, exist_ok=True)
    paths.config_file().write_text(
        f"on_change = {json.dumps(ON_CHANGE)}\n"
        f'gateway_dir = "{gateway_dir}"\n'
        'url = "https://gw.example.internal:5000"\n'
        "interval = 20\n"
        f"notify_urls = {json.dumps(NOTIFY_URLS)}\n"
    )
    paths.log_dir().mkdir(parents=True, exist_ok=True)
    lines = [*PLANTS, *NOTIFY_PLANTS]
    planted = "\n".join(f"2026-12-01 INFO line {n}: {line}" for n, line in enumerate(lines))
    paths.log_file().write_text(planted + "\n")
    gateway_log = log_of(gateway_dir)  # the configured folder's gateway log goes in
    gateway_log.write_text(planted + "\n")
    paths.history_file().parent.mkdir(parents=True, exist_ok=True)
    row = {"state": "ready", "detail": "Account DU7654321 ready", "account": "du7654321"}
    paths.history_file().write_text(json.dumps(row) + "\n")

    target = tmp_path / "diag.zip"
    proc = cli("doctor", "--bundle", str(target), "--url", "https://127.0.0.1:1")
    try:
        assert proc.wait(timeout=50) in (0, 3)
    finally:
        reap(proc)
    with zipfile.ZipFile(target) as bundle:
        files = {name: bundle.read(name).decode() for name in bundle.namelist()}
    everything = "\n".join(files.values())
    assert not leaks_in(everything)
    assert not leaks_in(everything, NOTIFY_PLANTS)
    assert "notify_urls" in files["settings.json"]  # as a shape
    assert "clientportal.gw" not in files["settings.json"]  # a path, as a shape only
    settings = json.loads(files["settings.json"])
    assert settings["kept"]["interval"] == 20
    assert settings["kept"]["url"] == "https://127.0.0.1:1"  # scheme, host and port
    assert settings["shapes"]["on_change"] == "a command of 6 arguments"
    assert settings["shapes"]["gateway_dir"] == "a path under ~ (exists)"
    readme = files["README.txt"]
    assert "Kept:" in readme and "on_change" in readme
    log_line = next(line for line in readme.splitlines() if line.startswith("- cpgw-tray.log:"))
    assert "IBKR account ids" in log_line and "session ids" in log_line
    assert f"- {gateway_log.name}: " in readme and "- history.jsonl: " in readme
    assert f"- {gateway_log.name}: nothing" not in readme


def test_prose_teaches_no_login_name() -> None:
    redactor = Redactor()
    text = "HTTP 401; user: please log in\nplease try again"
    redactor.learn(text)
    assert redactor(text).endswith("please try again")  # only the value after "user:" goes
