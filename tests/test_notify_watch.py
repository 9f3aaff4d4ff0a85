"""Issue 25's acceptance over the simulator and real sockets: a login needed while away
reaches a ``json://`` catcher once per reminder and collapses under a flapping gateway;
a hanging or failing catcher never delays a check (checks counted on an injected clock
against a run without one); ``on_event`` sees ``login_needed`` and ``take_over`` while
``on_change`` sees only state changes."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cpgw_tray.care.pipeline import Pipeline
from cpgw_tray.care.poller import Poller
from cpgw_tray.cli.watch import Printer
from cpgw_tray.model.person import Event
from cpgw_tray.model.status import Status
from cpgw_tray.outlets.wiring import Outlets, poller_view
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import Simulator

from .conftest import wait_for
from .test_maintenance import Clocks, client, et
from .test_notify import Catcher, caught

LOGIN_WORDS = "log in on the computer that runs the gateway"


@pytest.fixture
def catcher() -> Iterator[Catcher]:
    yield from caught()


class Watch:
    """`watch` as ``cmd_watch`` wires it (printer and outlets), on the simulator and
    one injected clock; the notifier is stepped with the poller unless ``threads``."""

    def __init__(self, sim: Simulator, clocks: Clocks, **settings: Any) -> None:
        self.clocks = clocks
        config = load({"url": sim.url, "region": "na", **settings}, env={})
        self.out = io.StringIO()
        printer = Printer(self.out, True, threading.Event())
        self.outlets = Outlets(config, lambda: poller_view(self.poller), wall=clocks.wall)
        self.checks: list[float] = []
        self.events: list[str] = []

        def on_status(status: Status) -> None:
            self.checks.append(clocks.mono)
            printer(status)
            self.outlets(status)

        def on_event(event: Event) -> None:
            self.events.append(event.kind)
            printer.event(event)
            self.outlets.event(event)

        self.poller: Poller = Pipeline(
            config,
            client(sim, clocks),
            on_status,
            clock=clocks,
            on_event=on_event,
            wall=clocks.wall,
            poller_wall=clocks.wall,
        ).poller

    def run(self, seconds: float, *, step_notifier: bool = True) -> None:
        end = self.clocks.mono + seconds
        notifier = self.outlets.notifier
        while self.clocks.mono < end:
            delay = self.poller.step()
            if step_notifier and notifier is not None:
                delay = min(delay, notifier.step())
            self.clocks.sleep(max(delay, 0.001))


def test_a_login_needed_while_away_reaches_the_phone_once_per_reminder(
    sim: Simulator, catcher: Catcher
) -> None:
    watch = Watch(sim, Clocks(et(25, 12, 0)), notify_urls=[catcher.url()], login_reminder=600)
    watch.run(60)
    sim.set_scenario("logged_out")
    watch.run(2 * 60 * 60)
    said = catcher.messages()
    logins = [text for text in said if LOGIN_WORDS in text]
    assert len(logins) == 6  # the first notice and five reminders, each once
    assert logins[0].startswith("IBKR needs you to log in") and logins[1].startswith("Still")
    assert said == [logins[0], "The gateway on " + said[1].split("on ", 1)[1], *logins[1:]]
    assert "Not ready any more: Logged out" in said[1]  # the drop, held 30 s behind
    sim.set_scenario("ready")
    watch.run(60)
    assert catcher.messages()[-1].startswith("Logged in again on ")


def test_a_flapping_gateway_collapses_into_one_message_per_30_seconds(
    sim: Simulator, catcher: Catcher
) -> None:
    watch = Watch(sim, Clocks(et(25, 12, 0)), notify_urls=[catcher.url()], interval=5)
    watch.run(30)
    for flap in range(60):  # ready and logged out in turn for 5 minutes
        sim.set_scenario("logged_out" if flap % 2 == 0 else "ready")
        watch.run(5)
    watch.run(60)
    said = catcher.messages()
    assert len(watch.events) >= 60  # dropped, login_needed, logged_in at every turn
    assert 5 <= len(said) <= 1 + 6 * 2  # the first at once, then one per 30 s at most
    assert LOGIN_WORDS in said[0]
    assert all(" changes in " in text for text in said[1:-1])
    total = 1 + sum(
        int(text.split(" changes in ")[0]) for text in said[1:] if " changes in" in text
    )
    assert total + sum(" changes in " not in text for text in said[1:]) == len(watch.events)


@pytest.mark.e2e  # real checks a second apart while a catcher hangs
def test_a_hanging_or_failing_catcher_never_delays_a_check(sim: Simulator) -> None:
    """The same checks, on the same fake clock, as a watch without a phone; and the
    script ends while a send hangs for good (``hook_timeout`` an hour): nothing the
    checks do waits for a send."""
    hanging, failing = Catcher("hang"), Catcher("fail")
    scenarios = ("logged_out", "ready", "server_error", "ready", "logged_out")

    def script(watch: Watch, gateway: Simulator) -> None:
        watch.run(60, step_notifier=False)
        for scenario in scenarios:
            gateway.set_scenario(scenario)
            watch.run(5 * 60, step_notifier=False)

    try:
        with Simulator(port=0, rate_limit=False, scenario="ready") as other:
            alone = Watch(other, Clocks(et(25, 12, 0)))
            script(alone, other)
        busy = Watch(
            sim,
            Clocks(et(25, 12, 0)),
            # Apprise's own read timeout (4 s) made an hour: a send hangs until the end
            notify_urls=[failing.url(), hanging.url("/hook?rto=3600")],
            notify_on=["all"],
            hook_timeout=3600,
        )
        busy.outlets.start()  # the notifier's own thread, in real time
        running = threading.Thread(target=script, args=(busy, sim), daemon=True)
        running.start()
        running.join(60)
        assert not running.is_alive(), "a check waited for a send"
        assert busy.checks == alone.checks and len(busy.checks) > 100
        assert busy.events == alone.events and "dropped" in busy.events
        assert hanging.wait(1) and failing.wait(1)  # the notifier did try, on its own thread
        busy.outlets.stop()
    finally:
        hanging.close()
        failing.close()


def hook_script(tmp_path: Path, name: str) -> tuple[str, Path]:
    """A hook that appends one JSON line per run: its environment and its stdin."""
    out = tmp_path / f"{name}.jsonl"
    script = tmp_path / f"{name}.py"
    script.write_text(
        "import json, os, sys\n"
        "env = {k: v for k, v in os.environ.items() if k.startswith('CPGW_')}\n"
        f"with open({str(out)!r}, 'a') as f:\n"
        "    f.write(json.dumps({'env': env, 'stdin': json.loads(sys.stdin.read())}) + '\\n')\n"
    )
    return f"{__import__('sys').executable} {script}", out


def runs(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def last_state(path: Path) -> str | None:
    """The state the change hook's last run was given."""
    done = runs(path)
    return str(done[-1]["env"]["CPGW_STATE"]) if done else None


def test_on_event_sees_login_needed_and_take_over_and_on_change_only_state_changes(
    sim: Simulator, tmp_path: Path
) -> None:
    on_event, event_file = hook_script(tmp_path, "event")
    on_change, change_file = hook_script(tmp_path, "change")
    watch = Watch(
        sim, Clocks(et(25, 12, 0)), on_event=on_event, on_change=on_change, on_competing="take_back"
    )
    watch.outlets.start()
    try:
        for scenario in ("ready", "logged_out", "ready"):  # each change's run awaited
            sim.set_scenario(scenario)
            watch.run(60)
            wait_for(lambda s=scenario: last_state(change_file) == s)
        sim.taken_over("TWS")  # taken back within the same check: no state change
        watch.run(60)
        expected = ["login_needed", "dropped", "logged_in", "competing", "take_over", "dropped"]
        assert watch.events == expected
        seen = wait_for(lambda: len(runs(event_file)) == len(expected) and runs(event_file))
        assert [run["env"]["CPGW_EVENT"] for run in seen] == expected  # each once, in order
        for run in seen:
            assert run["stdin"] == {
                "event": run["env"]["CPGW_EVENT"],
                "message": run["env"]["CPGW_MESSAGE"],
                "at": run["env"]["CPGW_AT"],
                "gateway": None,  # no [gateways.NAME] table
            }
            assert run["env"]["CPGW_GATEWAY"] == ""
            assert "CPGW_STATE" not in run["env"]
        watch.outlets.stop()  # a run still to come would show here
        changes = runs(change_file)
        assert [(r["env"]["CPGW_PREVIOUS"], r["env"]["CPGW_STATE"]) for r in changes] == [
            ("unknown", "ready"),
            ("ready", "logged_out"),
            ("logged_out", "ready"),
        ]
        assert all("CPGW_EVENT" not in r["env"] and r["stdin"]["state"] for r in changes)
    finally:
        watch.outlets.stop()


def test_a_snooze_in_the_tray_silences_the_phone_as_the_desktop(
    sim: Simulator, catcher: Catcher
) -> None:
    from .test_person_tray import check_at, entry, notes, tray_on

    clocks = Clocks(et(25, 12, 0))
    tray, backend, _ = tray_on(sim, clocks, notify_urls=[catcher.url()])
    outlets = Outlets(tray.config, lambda: poller_view(tray.poller), wall=clocks.wall)
    tray.listeners.append(outlets)  # as the tray's start wires them (app.py)
    tray.person.listeners.append(outlets.event)
    notifier = outlets.notifier
    assert notifier is not None

    def minutes(start: int, count: int) -> None:
        for minute in range(start, start + count):
            check_at(tray, clocks, et(25, 12, 0) + timedelta(minutes=minute))
            notifier.step()

    minutes(0, 1)
    sim.set_scenario("logged_out")
    minutes(1, 1)
    action = entry(backend.menu, "Snooze login reminders for 1 hour").action
    assert action is not None
    action()
    backend.drain()
    minutes(2, 58)  # the hour of the snooze
    phone = [text for text in catcher.messages() if LOGIN_WORDS in text]
    assert len(phone) == len(notes(backend)) == 1
    minutes(62, 5)  # the hour is over: both hear again
    phone = [text for text in catcher.messages() if LOGIN_WORDS in text]
    assert len(phone) == len(notes(backend)) == 2
    tray.client.close()


@pytest.mark.e2e  # a real watch process
def test_the_watch_command_sends_a_login_to_the_phone_and_never_shows_the_secret(
    sim: Simulator, catcher: Catcher, tmp_path: Path
) -> None:
    """``cpgw-tray watch --notify URL`` as a person runs it: a real process, real time."""
    import os
    import subprocess
    import sys

    from .test_notify import SECRET

    stderr = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "cpgw_tray", "--url", sim.url, "--interval", "1"),
            *("--notify", catcher.url(auth=f"me:{SECRET}@"), "watch", "--json", "-v"),
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["state"] == "ready"
        sim.set_scenario("logged_out")
        said = catcher.wait(1, timeout=20)
        assert said and LOGIN_WORDS in said[0]
        while "event" not in (line := json.loads(proc.stdout.readline())):
            pass
        assert line["event"] == "login_needed"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    stderr.seek(0)
    logged = stderr.read()
    assert "json://***@127.0.0.1" in logged and SECRET not in logged
