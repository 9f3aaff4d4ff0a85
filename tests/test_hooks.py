"""Change hooks with real subprocesses: small Python scripts that append to a file."""

from __future__ import annotations

import itertools
import json
import logging
import shlex
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.hooks import Hooks
from cpgw_tray.settings.values import parse_command

from .conftest import wait_for

URL = "https://127.0.0.1:5000"

# Appends one JSON line per run: what the hook was told. With a gate file given, it first
# writes a "start" line and waits for the gate to exist (bounded), so a test can hold a run.
RECORD = """\
import json, os, pathlib, sys, time
out = pathlib.Path(sys.argv[1])
stdin = json.load(sys.stdin)
seen = {
    "state": os.environ["CPGW_STATE"],
    "previous": os.environ["CPGW_PREVIOUS"],
    "detail": os.environ["CPGW_DETAIL"],
    "url": os.environ["CPGW_URL"],
    "stdin_state": stdin["state"],
    "stdin_detail": stdin["detail"],
}
def write(line):
    with out.open("a") as f:
        f.write(json.dumps(line) + "\\n")
if len(sys.argv) > 2:
    write({"start": seen["state"]})
    deadline = time.monotonic() + 20
    while not pathlib.Path(sys.argv[2]).exists() and time.monotonic() < deadline:
        time.sleep(0.01)
write(seen)
"""

# Forks a child (cheap: no subprocess import, so it reports fast even on a loaded machine),
# reports both pids atomically, then hangs; the child is in the hook's process group.
HANG = """\
import os, sys, time
child = os.fork()
if child == 0:
    time.sleep(60)
    os._exit(0)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(f"{os.getpid()} {child}\\n")
os.replace(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(60)
"""

FAIL = """\
import sys
sys.stdin.read()
print("boom: no token configured", file=sys.stderr)
sys.exit(3)
"""


def make_status(state: State, detail: str | None = None) -> Status:
    return Status(state, LOOKS[state].label, detail or f"detail for {state.value}", url=URL)


def lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def runs(path: Path) -> list[tuple[str, str]]:
    return [(r["previous"], r["state"]) for r in lines(path) if "state" in r]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    return tmp_path / "runs.jsonl"


@pytest.fixture
def hooks_for() -> Iterator[Callable[..., Hooks]]:
    """Hooks started for a test and stopped after it."""
    started: list[Hooks] = []

    def make(argv: list[str], timeout: float = 30.0) -> Hooks:
        hooks = Hooks(argv, url=URL, timeout=timeout)
        hooks.start()
        started.append(hooks)
        return hooks

    yield make
    for hooks in started:
        hooks.stop()


# ------------------------------------------------------------------------- command


@pytest.mark.parametrize(
    ("value", "argv"),
    [
        ("notify 'state changed' --to ops", ["notify", "state changed", "--to", "ops"]),
        (["/opt/my hook", "a b"], ["/opt/my hook", "a b"]),
        ("echo $HOME", ["echo", "$HOME"]),  # no shell: nothing is expanded
    ],
)
def test_parse_command(value: Any, argv: list[str]) -> None:
    assert parse_command(value) == argv


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("", "empty command"),
        ([], "empty command"),
        ("notify 'unclosed", "cannot split"),
        (["notify", 3], "a string or a list of strings"),
        (5, "a string or a list of strings"),
    ],
)
def test_parse_command_errors(value: Any, words: str) -> None:
    with pytest.raises(ValueError, match=words) as info:
        parse_command(value)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------- runs


def test_first_verdict_runs_with_previous_unknown_env_and_stdin(
    tmp_path: Path, out: Path, hooks_for: Callable[..., Hooks]
) -> None:
    record = script(tmp_path, "record.py", RECORD)
    # A string command, split like a shell would, run without one.
    hooks = hooks_for(parse_command(f"{shlex.quote(sys.executable)} {record} {out}"))
    hooks.offer(make_status(State.UNKNOWN))  # no verdict yet: not a change
    hooks.offer(make_status(State.LOGGED_OUT, "Log in at https://127.0.0.1:5000/"))
    (seen,) = wait_for(lambda: lines(out))
    assert seen == {
        "state": "logged_out",
        "previous": "unknown",
        "detail": "Log in at https://127.0.0.1:5000/",
        "url": URL,
        "stdin_state": "logged_out",
        "stdin_detail": "Log in at https://127.0.0.1:5000/",
    }


def test_runs_come_in_order_and_a_same_state_never_runs(
    tmp_path: Path, out: Path, hooks_for: Callable[..., Hooks]
) -> None:
    record = script(tmp_path, "record.py", RECORD)
    hooks = hooks_for([sys.executable, str(record), str(out)])
    hooks.offer(make_status(State.READY))
    wait_for(lambda: len(runs(out)) == 1)
    hooks.offer(make_status(State.READY, "same state, other words"))
    hooks.offer(make_status(State.LOGGED_OUT))
    wait_for(lambda: len(runs(out)) == 2)
    hooks.offer(make_status(State.LOGGED_OUT))
    hooks.offer(make_status(State.GATEWAY_DOWN))
    wait_for(lambda: len(runs(out)) == 3)
    assert runs(out) == [
        ("unknown", "ready"),
        ("ready", "logged_out"),
        ("logged_out", "gateway_down"),
    ]


def test_changes_during_a_slow_run_collapse_into_one_with_the_latest_state(
    tmp_path: Path, out: Path, hooks_for: Callable[..., Hooks]
) -> None:
    record = script(tmp_path, "record.py", RECORD)
    gate = tmp_path / "gate"
    hooks = hooks_for([sys.executable, str(record), str(out), str(gate)])
    hooks.offer(make_status(State.READY))
    wait_for(lambda: {"start": "ready"} in lines(out))
    # While the first run is held: three changes.
    hooks.offer(make_status(State.DISCONNECTED))
    hooks.offer(make_status(State.LOGGED_OUT))
    hooks.offer(make_status(State.GATEWAY_DOWN, "the latest words"))
    gate.touch()
    wait_for(lambda: len(runs(out)) == 2)
    assert runs(out) == [("unknown", "ready"), ("ready", "gateway_down")]
    assert lines(out)[-1]["detail"] == "the latest words"


def test_a_change_undone_during_a_run_runs_nothing(
    tmp_path: Path, out: Path, hooks_for: Callable[..., Hooks]
) -> None:
    record = script(tmp_path, "record.py", RECORD)
    gate = tmp_path / "gate"
    hooks = hooks_for([sys.executable, str(record), str(out), str(gate)])
    hooks.offer(make_status(State.READY))
    wait_for(lambda: {"start": "ready"} in lines(out))
    hooks.offer(make_status(State.DISCONNECTED))
    hooks.offer(make_status(State.READY))  # back to what the run was given
    gate.touch()
    hooks.offer(make_status(State.LOGGED_OUT))
    wait_for(lambda: len(runs(out)) == 2)
    # ready -> ready never runs; the next run's previous is the state the last was given.
    assert runs(out) == [("unknown", "ready"), ("ready", "logged_out")]


def test_a_burst_of_changes_gives_a_chain_without_repeats(
    tmp_path: Path, out: Path, hooks_for: Callable[..., Hooks]
) -> None:
    record = script(tmp_path, "record.py", RECORD)
    hooks = hooks_for([sys.executable, str(record), str(out)])
    flips = [State.READY, State.DISCONNECTED, State.READY, State.COMPETING] * 10
    for state in [*flips, State.LOGGED_OUT]:
        hooks.offer(make_status(state))
    wait_for(lambda: runs(out) and runs(out)[-1][1] == "logged_out")
    chain = runs(out)
    assert chain[0][0] == "unknown"
    for (_, before), (previous, _) in itertools.pairwise(chain):
        assert previous == before  # in order: each run starts where the last one ended
    assert all(previous != state for previous, state in chain)  # never a non-change
    assert len(chain) < len(flips)  # the burst collapsed


# ------------------------------------------------------------------------- failures


@pytest.mark.e2e  # waits out a real 1 s timeout
def test_a_hanging_hook_is_killed_at_the_timeout_with_its_process_group(
    tmp_path: Path, hooks_for: Callable[..., Hooks], caplog: pytest.LogCaptureFixture
) -> None:
    pids_file = tmp_path / "pids"
    hang = script(tmp_path, "hang.py", HANG)
    caplog.set_level(logging.INFO, logger="cpgw_tray.outlets.hooks")
    hooks = hooks_for([sys.executable, str(hang), str(pids_file)], timeout=1.0)
    hooks.offer(make_status(State.READY))
    text = wait_for(lambda: pids_file.exists() and pids_file.read_text().strip())
    hook_pid, child_pid = map(int, text.split())
    wait_for(lambda: "killed after 1 s (hook_timeout) with its process group" in caplog.text)
    assert f"exit -{signal.SIGKILL.value}" in caplog.text
    assert "unknown -> ready" in caplog.text
    wait_for(lambda: gone(hook_pid) and gone(child_pid), timeout=5)


def test_a_failing_hook_is_logged_and_the_next_change_still_runs(
    tmp_path: Path, hooks_for: Callable[..., Hooks], caplog: pytest.LogCaptureFixture
) -> None:
    fail = script(tmp_path, "fail.py", FAIL)
    caplog.set_level(logging.INFO, logger="cpgw_tray.outlets.hooks")
    hooks = hooks_for([sys.executable, str(fail)])
    hooks.offer(make_status(State.READY))
    wait_for(lambda: "exit 3" in caplog.text)
    record = next(r for r in caplog.records if "exit 3" in r.getMessage())
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "hook (unknown -> ready) failed: exit 3" in message
    assert "stderr: boom: no token configured" in message
    assert "\n" not in message
    hooks.offer(make_status(State.LOGGED_OUT))
    wait_for(lambda: "hook (ready -> logged_out) failed: exit 3" in caplog.text)


def test_a_hook_that_cannot_start_is_logged(
    tmp_path: Path, hooks_for: Callable[..., Hooks], caplog: pytest.LogCaptureFixture
) -> None:
    hooks = hooks_for([str(tmp_path / "no-such-hook")])
    hooks.offer(make_status(State.READY))
    wait_for(lambda: "could not start" in caplog.text)
    assert "no-such-hook" in caplog.text
    hooks.offer(make_status(State.LOGGED_OUT))
    wait_for(lambda: "hook (ready -> logged_out) could not start" in caplog.text)


def test_stop_kills_a_running_hook_and_its_group_at_once(tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    hang = script(tmp_path, "hang.py", HANG)
    hooks = Hooks([sys.executable, str(hang), str(pids_file)], url=URL, timeout=30)
    hooks.start()
    hooks.offer(make_status(State.READY))
    text = wait_for(lambda: pids_file.exists() and pids_file.read_text().strip())
    hook_pid, child_pid = map(int, text.split())
    stopping = threading.Thread(target=hooks.stop)
    stopping.start()
    wait_for(lambda: gone(hook_pid) and gone(child_pid))  # long before the 30 s timeout
    stopping.join(15)
    assert not stopping.is_alive()
    hooks.offer(make_status(State.LOGGED_OUT))  # after stop: ignored, nothing starts


def test_what_a_hook_leaves_running_is_ended_when_it_exits(
    tmp_path: Path, hooks_for: Callable[..., Hooks]
) -> None:
    pids_file = tmp_path / "pids"
    leave = script(
        tmp_path,
        "leave.py",
        """\
        import os, sys, time
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        with open(sys.argv[1] + ".tmp", "w") as f:
            f.write(f"{child}\\n")
        os.replace(sys.argv[1] + ".tmp", sys.argv[1])
        """,
    )
    hooks = hooks_for([sys.executable, str(leave), str(pids_file)])
    hooks.offer(make_status(State.READY))
    child_pid = int(wait_for(lambda: pids_file.exists() and pids_file.read_text().strip()))
    wait_for(lambda: gone(child_pid), timeout=5)


# ------------------------------------------------------------------------- event hooks

EVENTS = """\
import json, os, pathlib, sys
line = {"env": os.environ["CPGW_EVENT"], "stdin": json.load(sys.stdin)["event"]}
with pathlib.Path(sys.argv[1]).open("a") as f:
    f.write(json.dumps(line) + "\\n")
"""


def test_event_hooks_run_once_per_event_in_order_and_a_full_queue_drops_the_oldest(
    tmp_path: Path, out: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from datetime import datetime, timezone

    from cpgw_tray.model.person import Event
    from cpgw_tray.outlets.hooks import EventHooks

    path = script(tmp_path, "events.py", EVENTS)
    hooks = EventHooks([sys.executable, str(path), str(out)], limit=3)
    at = datetime(2026, 11, 25, 15, 0, tzinfo=timezone.utc)
    kinds = ["login_needed", "login_reminder", "login_reminder", "logged_in"]
    with caplog.at_level(logging.WARNING):
        for kind in kinds:  # before the worker runs: the queue fills
            hooks.offer(Event(kind, "m", at))
    assert hooks.dropped == 1 and "1 oldest events dropped" in caplog.text
    hooks.start()
    try:
        seen = wait_for(lambda: len(lines(out)) == 3 and lines(out))
        assert [line["env"] for line in seen] == kinds[1:]  # the same kind twice runs twice
        assert [line["stdin"] for line in seen] == kinds[1:]
    finally:
        hooks.stop()
