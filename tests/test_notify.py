"""Phone and chat messages (issue 25): Apprise's real ``json://`` plugin against a local
HTTP catcher on 127.0.0.1 — what is sent, collapsed, retried, held in quiet hours and
redacted; a catcher that hangs is abandoned at ``hook_timeout``; ``notify --test`` and
its exit codes; the settings. The notifier is stepped on an injected wall clock."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from datetime import time as daytime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cpgw_tray.model.person import LOGIN_NEEDED, Event
from cpgw_tray.outlets.notify import Notifier
from cpgw_tray.outlets.notify_outbox import LIMIT, Message, Outbox, urgent
from cpgw_tray.redaction import redact_notify_urls_in, redact_text, redact_url
from cpgw_tray.settings.config import ConfigError, load
from cpgw_tray.settings.values import parse_quiet

from .conftest import run_cli

UTC = timezone.utc
ZONE = ZoneInfo("Europe/Zurich")
T0 = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)  # a Wednesday afternoon, 16:00 in Zurich
SECRET = "s3cretPassw0rd"


class Catcher:
    """An HTTP server on 127.0.0.1 that records each POST's JSON; it answers 200, or
    500 (``failing`` more times, or always with ``mode="fail"``), or holds the request
    until closed (``mode="hang"``)."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode = mode
        self.failing = 0
        self.got: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.release = threading.Event()
        catcher = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with catcher.cond:
                    catcher.got.append({"path": self.path, **json.loads(body)})
                    catcher.cond.notify_all()
                    fail = catcher.mode == "fail" or catcher.failing > 0
                    catcher.failing -= 1 if catcher.failing > 0 else 0
                if catcher.mode == "hang":
                    catcher.release.wait(60)  # until closed
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        # a short poll: shutdown() waits for the loop's next look (0.5 s by default)
        serve = lambda: self.server.serve_forever(poll_interval=0.02)  # noqa: E731
        self.thread = threading.Thread(target=serve, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook", auth: str = "") -> str:
        return f"json://{auth}127.0.0.1:{self.server.server_address[1]}{path}"

    def messages(self) -> list[str]:
        with self.cond:
            return [str(got["message"]) for got in self.got]

    def wait(self, count: int, timeout: float = 10.0) -> list[str]:
        with self.cond:
            self.cond.wait_for(lambda: len(self.got) >= count, timeout)
        return self.messages()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def caught() -> Iterator[Catcher]:
    """A catcher for a fixture: closed after the test."""
    made = Catcher()
    yield made
    made.close()


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    yield from caught()


class Wall:
    """An injected wall clock."""

    def __init__(self, at: datetime = T0) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def pass_(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def notifier(urls: list[str], wall: Wall, **kw: Any) -> Notifier:
    kw.setdefault("kinds", ("all",))
    kw.setdefault("timeout", 5.0)
    return Notifier(urls, computer="tradebox", wall=wall, zone=ZONE, **kw)


def ev(kind: str, at: datetime, message: str = LOGIN_NEEDED) -> Event:
    return Event(kind, message, at)


# ------------------------------------------------------------------ redaction


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"json://user:{SECRET}@127.0.0.1:8080/path", "json://***@127.0.0.1:8080/***"),
        ("tgram://123456:ABCdefGHI/987654", "tgram://***/***"),
        ("pover://userkey@tokenvalue", "pover://***@***"),
        ("ntfy://my-private-topic", "ntfy://***"),
        ("ntfys://ntfy.example.com/topic", "ntfys://ntfy.example.com/***"),
        (f"mailto://me:{SECRET}@gmail.com?to=a@b.example", "mailto://***@gmail.com/***"),
        ("json://[::1]:80/x", "json://[::1]:80/***"),
        ("not a url", "***"),
    ],
)
def test_a_notification_url_keeps_its_scheme_and_host_only(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_text_naming_a_url_or_its_secrets_is_redacted() -> None:
    url = f"tgram://123456:{SECRET}/987654"
    text = f"cannot send to {url}; the bot {SECRET} was refused"
    said = redact_text(text, [url])
    assert SECRET not in said and "tgram://***/***" in said


def test_apprise_urls_in_any_text_are_redacted_and_the_gateways_kept() -> None:
    text = (
        f'notify_urls = ["tgram://123456:{SECRET}/987", "json://u:{SECRET}@10.0.0.2/x"]\n'
        "url = https://127.0.0.1:5000/v1/api/iserver/auth/status\n"
    )
    said = redact_notify_urls_in(text)
    assert SECRET not in said
    assert '["tgram://***/***", "json://***@10.0.0.2/***"]' in said
    assert "https://127.0.0.1:5000/v1/api/iserver/auth/status" in said


@pytest.mark.e2e  # a fresh process's imports
def test_apprise_is_imported_only_when_a_message_is_sent() -> None:
    """A notifier set up (at the tray's start, before the icon) does not load Apprise."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from cpgw_tray.settings.config import load\n"
        "from cpgw_tray.outlets.wiring import Outlets\n"
        "outlets = Outlets(load({'notify_urls': ['json://127.0.0.1:9/x']}, env={}), list)\n"
        "assert outlets.notifier is not None\n"
        "print('apprise' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# ------------------------------------------------------------------ settings


def test_settings_and_their_checks(tmp_path: Any) -> None:
    config = load(
        {},
        env={
            "CPGW_TRAY_NOTIFY_URLS": "ntfy://a json://127.0.0.1:9/x",
            "CPGW_TRAY_NOTIFY_ON": "login_needed, take_over",
            "CPGW_TRAY_NOTIFY_QUIET": "23:00 - 7:00",
        },
    )
    assert config.notify_urls == ("ntfy://a", "json://127.0.0.1:9/x")
    assert config.notify_on == ("login_needed", "take_over")
    assert config.notify_quiet == "23:00-07:00"
    assert load({}, env={}).notify_on == (
        *("login_needed", "login_reminder", "competing", "take_over", "dropped", "logged_in"),
    )
    path = tmp_path / "c.toml"
    path.write_text(f'\nnotify_urls = ["tgram:{SECRET}"]\n')
    with pytest.raises(ConfigError) as bad:
        load({}, config_path=str(path), env={})
    assert "line 2" in str(bad.value) and SECRET not in str(bad.value)
    with pytest.raises(ConfigError, match="unknown event kind 'bulletins'"):
        load({}, env={"CPGW_TRAY_NOTIFY_ON": "bulletins"})
    with pytest.raises(ConfigError, match="notify_quiet"):
        path.write_text('notify_quiet = "25:00-07:00"\n')
        load({}, config_path=str(path), env={})


def test_notify_adds_urls_before_and_after_the_command_and_config_hides_them(
    tmp_path: Any,
) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'notify_urls = ["json://u:{SECRET}@127.0.0.1:9/a"]\n')
    code, out = run_cli(
        "--config", str(path), "--notify", "ntfy://first-topic", "config",
        "--notify", "ntfy://second-topic",
    )  # fmt: skip
    assert code == 0
    line = next(line for line in out.splitlines() if line.startswith("notify_urls"))
    assert '["json://***@127.0.0.1:9/***", "ntfy://***", "ntfy://***"]' in line
    assert "and the command line" in line
    assert SECRET not in out and "topic" not in out


# ------------------------------------------------------------------ the outbox (pure)


def test_a_burst_sends_the_first_at_once_and_the_rest_as_one_summary() -> None:
    box = Outbox(zone=ZONE)
    box.add(Message("dropped", "one", T0))
    assert box.due(T0) == ["one"]
    for second, text in ((5, "two"), (20, "three"), (29, "four")):
        box.add(Message("dropped", text, T0 + timedelta(seconds=second)))
        assert box.due(T0 + timedelta(seconds=second)) == []
    assert box.wake(T0 + timedelta(seconds=29)) == T0 + timedelta(seconds=30)
    (summary,) = box.due(T0 + timedelta(seconds=30))
    assert summary == "3 changes in 25 s: 16:00 two; 16:00 three; 16:00 four"
    # the summary opened a new hold: a message 10 s later waits for it too
    box.add(Message("logged_in", "five", T0 + timedelta(seconds=40)))
    assert box.due(T0 + timedelta(seconds=40)) == []
    assert box.due(T0 + timedelta(seconds=60)) == ["five"]
    assert box.due(T0 + timedelta(seconds=90)) == [] and box.wake(T0 + timedelta(hours=1)) is None
    box.add(Message("logged_in", "six", T0 + timedelta(seconds=95)))  # a new burst
    assert box.due(T0 + timedelta(seconds=95)) == ["six"]


def test_quiet_hours_hold_everything_but_a_login_before_the_token_reset() -> None:
    box = Outbox(quiet=parse_quiet("23:00-07:00"), zone=ZONE)
    night = datetime(2026, 11, 26, 0, 30, tzinfo=ZONE)  # a Thursday night
    box.add(Message("login_needed", "log in", night))
    box.add(Message("login_reminder", "still", night + timedelta(minutes=10)))
    assert box.due(night + timedelta(hours=6)) == []
    assert box.wake(night + timedelta(hours=6)) == night + timedelta(hours=6, minutes=1)
    (summary,) = box.due(datetime(2026, 11, 26, 7, 0, tzinfo=ZONE))
    assert summary.startswith("2 changes in 6 h 30 min: 00:30 log in; 00:40 still")
    # Sunday 01:00 ET (07:00 Zurich) is the token reset: a login in the hour before goes
    before = datetime(2026, 11, 29, 6, 15, tzinfo=ZONE)
    assert urgent(Message("login_needed", "log in", before))
    assert not urgent(Message("login_reminder", "log in", before))
    assert not urgent(Message("login_needed", "log in", before - timedelta(hours=1)))
    box.add(Message("login_needed", "log in now", before))
    assert box.due(before) == ["log in now"]


def test_a_full_queue_drops_the_oldest_and_says_so() -> None:
    box = Outbox(zone=ZONE)
    box.add(Message("dropped", "first", T0))
    box.due(T0)
    for n in range(LIMIT + 5):
        box.add(Message("dropped", f"m{n}", T0 + timedelta(seconds=1)))
    assert box.dropped == 5 and box.waiting() == LIMIT
    (summary,) = box.due(T0 + timedelta(seconds=30))
    assert summary.startswith(f"{LIMIT + 5} changes in 29 s (5 oldest left out): 16:00 m5;")


# ------------------------------------------------------------------ sending over HTTP


def test_events_reach_the_catcher_in_plain_words_and_collapse(catcher: Catcher) -> None:
    wall = Wall()
    sender = notifier([catcher.url()], wall, kinds=("login_needed", "logged_in", "dropped"))
    sender.event(ev("competing", T0))  # not in notify_on: never sent
    sender.event(ev("login_needed", T0))
    sender.step()
    (first,) = catcher.wait(1)
    assert first == (
        "IBKR needs you to log in: log in on the computer that runs the gateway "
        "(tradebox), then approve on your phone."
    )
    assert catcher.got[0]["title"] == "IBKR gateway on tradebox"
    assert catcher.got[0]["path"] == "/hook"
    for seconds in (5, 10):
        wall.pass_(5)
        sender.event(ev("dropped", wall(), "Not ready any more: Logged out"))
        sender.event(ev("logged_in", wall()))
        assert sender.step() == pytest.approx(30 - seconds)
    assert len(catcher.messages()) == 1
    wall.pass_(20)
    sender.step()
    summary = catcher.wait(2)[1]
    assert summary.startswith("4 changes in 25 s: 16:00 The gateway on tradebox: Not ready")
    assert "Logged in again on tradebox: nothing to do." in summary


def test_a_failed_send_is_retried_with_a_growing_pause_for_at_most_10_minutes(
    catcher: Catcher,
) -> None:
    wall = Wall()
    catcher.failing = 2
    sender = notifier([catcher.url()], wall)
    sender.event(ev("take_over", T0))
    assert sender.step() == 10.0
    wall.pass_(10)
    assert sender.step() == 20.0  # the pause doubles
    wall.pass_(20)
    assert sender.step() == 3600.0  # the third try went; nothing waits
    assert len(catcher.wait(3)) == 3 and sender.sent == 1 and sender.failed == 2
    catcher.mode = "fail"
    sender.event(ev("take_over", wall()))
    tries = 0
    while (delay := sender.step()) < 3600:
        tries += 1
        wall.pass_(delay)
    assert wall() - T0 <= timedelta(seconds=30 + 600)
    assert tries == 7  # 10, 20, 40, 80, 120, 120, 120 s: then it is given up


def test_a_hanging_catcher_is_abandoned_at_hook_timeout(caplog: pytest.LogCaptureFixture) -> None:
    hanging = Catcher("hang")
    try:
        sender = notifier([hanging.url(auth=f"user:{SECRET}@")], Wall(), timeout=0.3)
        sender.event(ev("take_over", T0))
        __import__("apprise")  # loaded before the clock starts: the send alone is timed
        started = time.monotonic()
        with caplog.at_level(logging.INFO):
            sender.step()
        assert time.monotonic() - started < 3.5  # not Apprise's own 4 s read timeout
        assert hanging.wait(1) and sender.failed == 1
        assert "abandoned after 0.3 s (hook_timeout)" in caplog.text
        assert "json://***@127.0.0.1" in caplog.text and SECRET not in caplog.text
    finally:
        hanging.close()


def test_a_500_is_logged_without_the_urls_secrets(
    catcher: Catcher, caplog: pytest.LogCaptureFixture
) -> None:
    catcher.mode = "fail"
    sender = notifier([catcher.url(f"/{SECRET}", auth=f"me:{SECRET}@")], Wall())
    sender.event(ev("take_over", T0))
    with caplog.at_level(logging.DEBUG):
        sender.step()
    assert catcher.wait(1) and "failed; next try in" in caplog.text
    assert SECRET not in caplog.text


def test_quiet_hours_hold_messages_until_they_end(catcher: Catcher) -> None:
    night = datetime(2026, 11, 26, 23, 30, tzinfo=ZONE)
    wall = Wall(night)
    sender = notifier([catcher.url()], wall, quiet="23:00-07:00")
    sender.event(ev("dropped", night, "Not ready any more: Gateway not running"))
    sender.event(ev("login_needed", night + timedelta(minutes=5)))
    while wall() < datetime(2026, 11, 27, 7, 0, tzinfo=ZONE):
        wall.pass_(sender.step())
        assert catcher.messages() == []
    sender.step()
    (summary,) = catcher.wait(1)
    assert summary.startswith("2 changes in 7 h 30 min: 23:30 The gateway on tradebox")


def test_all_sends_state_changes_too(catcher: Catcher) -> None:
    from cpgw_tray.model.status import LOOKS, State, Status

    sender = notifier([catcher.url()], Wall(), kinds=("all",))
    for state in (State.READY, State.READY, State.GATEWAY_DOWN):
        sender.status(Status(state, LOOKS[state].label, "Start it.", checked_at=T0))
    sender.step()
    assert catcher.wait(1) == ["The gateway on tradebox: Gateway not running. Start it."]


def test_each_gateway_changes_on_its_own_and_is_named(catcher: Catcher) -> None:
    """Two gateways' statuses interleaved: only paper's own change goes out, naming it;
    its login event too."""
    from dataclasses import replace

    from cpgw_tray.model.status import LOOKS, State, Status

    sender = notifier([catcher.url()], Wall(), kinds=("all",))

    def status(state: State, gateway: str) -> Status:
        return Status(state, LOOKS[state].label, "Log in.", checked_at=T0, gateway=gateway)

    for state in (State.LOGGED_OUT, State.LOGGED_OUT, State.READY):
        sender.status(status(State.READY, "live"))
        sender.status(status(state, "paper"))
    sender.step()
    assert catcher.wait(1) == ["The gateway paper on tradebox: Ready. Log in."]
    events = notifier([catcher.url()], Wall(), kinds=("login_needed",))
    events.event(replace(ev("login_needed", T0), gateway="paper"))
    events.step()
    assert catcher.wait(2)[1].startswith("paper: IBKR needs you to log in")


# ------------------------------------------------------------------ notify --test


def test_notify_test_reports_each_url_and_exits_0_or_3(
    catcher: Catcher, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Catcher("fail")
    caplog.set_level(logging.DEBUG)
    try:
        code, out = run_cli("--notify", catcher.url(), "notify", "--test")
        assert (
            code == 0 and out == f"json://127.0.0.1:{catcher.server.server_address[1]}/***: sent\n"
        )
        assert "A test from cpgw-tray" in catcher.wait(1)[0]
        bad = failing.url(f"/{SECRET}", auth=f"u:{SECRET}@")
        code, out = run_cli("--notify", catcher.url(), "notify", "--test", "--notify", bad)
        assert code == 3
        assert out.splitlines()[1].endswith("/***: FAILED (see the log)")
        assert len(out.splitlines()) == 2 and SECRET not in out
        assert "Failed to send" in caplog.text and SECRET not in caplog.text
    finally:
        failing.close()


def test_notify_test_exits_64_without_a_url_or_apprise(
    catcher: Catcher, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli("notify", "--test") == (64, "")
    assert "no notification URL" in capsys.readouterr().err
    monkeypatch.setitem(__import__("sys").modules, "apprise", None)  # the extra missing
    assert run_cli("--notify", catcher.url(), "notify", "--test") == (64, "")
    assert "pip install 'cpgw-tray[notify]'" in capsys.readouterr().err
    assert catcher.messages() == []


def test_notify_without_test_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli("notify")[0] == 64
    assert "--test" in capsys.readouterr().err


def test_quiet_span_parsing() -> None:
    assert parse_quiet("7:05-9:00") == (daytime(7, 5), daytime(9, 0))
    for bad in ("23:00", "23:00-23:00", "24:00-01:00", "noon-1"):
        with pytest.raises(ValueError):
            parse_quiet(bad)
