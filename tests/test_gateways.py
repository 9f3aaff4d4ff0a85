"""Several gateways at once: ``[gateways.NAME]`` tables, ``--gateway``, ``status`` per
gateway, ``watch`` with one poller each (its endpoint, hooks and history naming them),
and one hanging gateway never delaying another's checks. Over real sockets, against
simulated gateways."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from cpgw_tray.care.fleet import Fleet
from cpgw_tray.care.person_care import pause_path, write_pause
from cpgw_tray.care.pipeline import Pipeline
from cpgw_tray.care.poller import Poller
from cpgw_tray.client.api import GatewayClient
from cpgw_tray.client.governor import RateGovernor
from cpgw_tray.model.person import Event
from cpgw_tray.model.status import Status
from cpgw_tray.settings.config import load
from cpgw_tray.settings.gateways import Gateway, resolve_all
from cpgw_tray.simulator import Simulator
from cpgw_tray.simulator.scaffold import make_gateway_dir

from .conftest import control, free_port, run_cli, wait_for
from .faults.hostile import Hostile, silence
from .test_outlets import get


def settings(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def gateway_dir(tmp_path: Path, name: str, port: int) -> Path:
    folder = tmp_path / name
    (folder / "root").mkdir(parents=True)
    (folder / "root" / "conf.yaml").write_text(f"listenPort: {port}\nlistenSsl: true\n")
    return folder


# ---------------------------------------------------------------------------- settings


def test_tables_inherit_the_top_level_but_never_its_url_or_folder(tmp_path: Path) -> None:
    live = gateway_dir(tmp_path, "live", 5010)
    path = settings(
        tmp_path,
        f'url = "https://127.0.0.1:5999"\ngateway_dir = "{tmp_path}"\n'
        "keepalive = 30\nauto_reauth = false\n"
        f'[gateways.live]\ngateway_dir = "{live}"\n'
        '[gateways.paper]\nurl = "https://127.0.0.1:5001"\nkeepalive = 0\n',
    )
    gateways = resolve_all(config_path=str(path), env={})
    assert [g.name for g in gateways] == ["live", "paper"]
    live_config, paper_config = (g.config for g in gateways)
    assert live_config.url == "https://127.0.0.1:5010"  # from its own conf.yaml
    assert paper_config.url == "https://127.0.0.1:5001" and paper_config.gateway_dir is None
    assert (live_config.keepalive, paper_config.keepalive) == (30.0, 0.0)
    assert not live_config.auto_reauth and not paper_config.auto_reauth
    assert paper_config.sources["keepalive"] == f"{path} line 9"
    assert live_config.sources["keepalive"] == f"{path} line 3"
    assert live_config.gateway == "live"


def test_no_table_is_one_unnamed_gateway_as_today(tmp_path: Path) -> None:
    path = settings(tmp_path, 'url = "https://127.0.0.1:5002"\n')
    [only] = resolve_all(config_path=str(path), env={})
    assert only.name is None and only.config == load(config_path=str(path), env={})


@pytest.mark.parametrize(
    ("tables", "said"),
    [
        (
            '[gateways.live]\nurl = "https://127.0.0.1:5000"\n'
            '[gateways.paper]\nurl = "https://localhost:5000"\n',
            "gateways 'live' and 'paper' in {path} both use 127.0.0.1:5000",
        ),
        (
            '[gateways.live]\nurl = "https://127.0.0.1:5000"\ninterval = 5\n',
            "unknown key 'interval' in [gateways.live] in {path} line 3",
        ),
        (
            '[gateways.live]\nurl = "https://127.0.0.1:5000"\nkeepalive = -1\n',
            "bad value for 'keepalive' in {path} line 3",
        ),
        ("[gateways.live]\nregion = 'eu'\n", "[gateways.live] in {path} line 1 names no url"),
        ("gateways = 5\n", "'gateways' in {path}: expected tables such as [gateways.live]"),
        (
            '[gateways."live one"]\nurl = "https://127.0.0.1:5000"\n',
            "gateway name 'live one' in {path} line 1: use letters, digits",
        ),
    ],
)
def test_bad_tables_exit_64_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], tables: str, said: str
) -> None:
    path = settings(tmp_path, tables)
    code, _ = run_cli("--config", str(path), "config")
    err = capsys.readouterr().err
    assert code == 64 and len(err.splitlines()) == 1, err
    assert said.format(path=path) in err


def test_two_names_for_one_folder_exit_64_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = gateway_dir(tmp_path, "gw", 5010)
    path = settings(
        tmp_path,
        f'[gateways.live]\ngateway_dir = "{folder}"\n[gateways.also]\ngateway_dir = "{folder}/"\n',
    )
    assert run_cli("--config", str(path), "status")[0] == 64
    err = capsys.readouterr().err
    assert "'live' and 'also'" in err and "5010" in err


def test_config_shows_each_gateway_and_where_each_value_comes_from(tmp_path: Path) -> None:
    path = settings(
        tmp_path,
        'keepalive = 30\n[gateways.live]\nurl = "https://127.0.0.1:5000"\n'
        '[gateways.paper]\nurl = "https://127.0.0.1:5001"\nkeepalive = 0\n',
    )
    code, out = run_cli("--config", str(path), "config")
    assert code == 0
    live, paper = out.split("[gateways.live]")[1].split("[gateways.paper]")
    assert "keepalive = 30 " in live and f"{path} line 1" in live
    assert "keepalive = 0 " in paper and f"{path} line 6" in paper


# -------------------------------------------------------------------- two simulators


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Simulator, Simulator, Path]]:
    """live ready, paper logged out, and the settings naming them."""
    with (
        Simulator(0, scenario="ready", rate_limit=False) as live,
        Simulator(0, scenario="logged_out", rate_limit=False) as paper,
    ):
        path = settings(
            tmp_path,
            f'[gateways.live]\nurl = "{live.url}"\n[gateways.paper]\nurl = "{paper.url}"\n',
        )
        yield live, paper, path


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_status_prints_each_gateway_and_exits_with_the_highest_code(
    pair: tuple[Simulator, Simulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _live, _paper, path = pair
    code, out = run_cli("--config", str(path), "status", "--json")
    objects = [json.loads(line) for line in out.splitlines()]
    assert code == 1
    assert [(o["gateway"], o["state"]) for o in objects] == [
        ("live", "ready"),
        ("paper", "logged_out"),
    ]
    code, out = run_cli("--config", str(path), "status", "--gateway", "live", "--json")
    assert code == 0 and json.loads(out)["gateway"] == "live"
    code, out = run_cli("--config", str(path), "status")
    assert code == 1 and [line.split(":")[0] for line in out.splitlines()] == ["live", "paper"]


def test_acting_commands_ask_which_gateway(
    pair: tuple[Simulator, Simulator, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    live, paper, path = pair
    for command in (["reauth"], ["logout"], ["open"]):
        assert run_cli("--config", str(path), *command)[0] == 64
        assert "--gateway NAME (live, paper)" in capsys.readouterr().err
    assert run_cli("--config", str(path), "logout", "--gateway", "nope")[0] == 64
    assert "unknown gateway 'nope'" in capsys.readouterr().err
    assert (
        run_cli("--config", str(path), "--url", paper.url, "status", "--gateway", "live")[0] == 64
    )
    assert "--gateway live is at" in capsys.readouterr().err
    code, _ = run_cli("--config", str(path), "logout", "--gateway", "live")
    assert code == 0 and control(live.url, "/sim/state", method="GET")["logged_in"] is False
    assert control(paper.url, "/sim/state", method="GET")["scenario"] == "logged_out"


HOOK = """\
import json, os, sys
with open(sys.argv[1], "a") as f:
    f.write(json.dumps([os.environ["CPGW_GATEWAY"], os.environ["CPGW_STATE"],
                        json.load(sys.stdin)["gateway"]]) + "\\n")
"""


@pytest.mark.e2e  # a real watch process
def test_watch_serves_both_runs_hooks_and_writes_history_per_gateway(
    pair: tuple[Simulator, Simulator, Path], tmp_path: Path
) -> None:
    _live, paper, path = pair
    hook, runs = tmp_path / "hook.py", tmp_path / "runs.jsonl"
    hook.write_text(HOOK)
    port = free_port()
    argv = ["--config", str(path), "watch", "--json", "--interval", "1", "--serve", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", *argv, "--exec", f"{sys.executable} {hook} {runs}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        wait_for(lambda: runs.exists() and len(runs.read_text().splitlines()) == 2)
        seen = sorted(json.loads(line) for line in runs.read_text().splitlines())
        assert seen == [["live", "ready", "live"], ["paper", "logged_out", "paper"]]
        assert get(port, "/readyz")[0] == 503
        assert get(port, "/readyz/live")[0] == 200
        assert get(port, "/readyz/paper")[0] == 503
        assert get(port, "/livez/paper")[0] == 200
        assert get(port, "/readyz/nope")[0] == 404
        shown = json.loads(get(port, "/status")[1])
        assert [(s["gateway"], s["state"]) for s in shown] == [
            ("live", "ready"),
            ("paper", "logged_out"),
        ]
        assert json.loads(get(port, "/status/paper")[1])["state"] == "logged_out"
        metrics = get(port, "/metrics")[1].decode()
        assert 'cpgw_tray_state{gateway="paper",state="logged_out"} 1.0' in metrics
        assert 'cpgw_tray_state{gateway="live",state="ready"} 1.0' in metrics
        control(paper.url, "/sim/state", {"scenario": "ready"})
        wait_for(lambda: get(port, "/readyz")[0] == 200, timeout=10)
        wait_for(lambda: len(runs.read_text().splitlines()) == 3)
        assert json.loads(runs.read_text().splitlines()[2]) == ["paper", "ready", "paper"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=5) == 0
    finally:
        proc.kill()
        out, err = proc.communicate()
    assert "Traceback" not in err
    lines = [json.loads(line) for line in out.splitlines()]
    states = [(x["gateway"], x["state"]) for x in lines if "state" in x]
    assert states.index(("paper", "logged_out")) < states.index(("paper", "ready"))
    assert ("live", "ready") in states
    assert any(x.get("event") == "login_needed" and x["gateway"] == "paper" for x in lines)
    _code, history = run_cli("history", "--json")
    rows = [json.loads(line) for line in history.splitlines()]
    named = [(r["gateway"], r["state"]) for r in rows if "state" in r]
    assert ("live", "ready") in named and ("paper", "logged_out") in named
    assert ("paper", "ready") in named
    _code, history = run_cli("--config", str(path), "history", "--json", "--gateway", "paper")
    mine = {r["gateway"] for r in map(json.loads, history.splitlines()) if "state" in r}
    assert mine == {"paper"}


# ---------------------------------------------------------------- a hanging gateway


class Clocks:
    """One fake time: monotonic seconds and the wall clock that goes with them."""

    def __init__(self) -> None:
        self.mono = 1000.0
        self.start = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)

    def __call__(self) -> float:
        return self.mono

    def sleep(self, seconds: float) -> None:
        self.mono += seconds

    def wall(self) -> datetime:
        return self.start + timedelta(seconds=self.mono - 1000.0)


INTERVALS = 8


def _ready_checks(sim: Simulator, hanging: Hostile | None, tmp_path: Path) -> list[float]:
    """The fake times of the live gateway's published checks over :data:`INTERVALS`
    intervals, with the paper gateway hanging (its poller on its own threads, its
    request held unanswered) or absent."""
    clocks = Clocks()
    common = {"interval": 15, "keepalive": 0, "restart_windows": False}
    gateways = [Gateway("live", load({**common, "url": sim.url}, env={}))]
    if hanging is not None:
        gateways.append(Gateway("paper", load({**common, "url": hanging.url}, env={})))
    clients = {
        "live": GatewayClient(
            sim.url,
            verify=False,
            now=clocks.wall,
            governor=RateGovernor(clock=clocks),
            sleep=clocks.sleep,
        ),
        "paper": GatewayClient(hanging.url if hanging else "", timeout=30, verify=False),
    }
    checks: list[float] = []
    lock = threading.Lock()

    def on_status(status: Status) -> None:
        with lock:
            if status.gateway == "live":
                checks.append(clocks())

    def build(
        gateway: Gateway, to: Callable[[Status], None], events: Callable[[Event], None]
    ) -> Poller:  # as watch builds each gateway's: its own pipeline
        return Pipeline(
            gateway.config,
            clients[str(gateway.name)],
            to,
            clock=clocks,
            on_event=events,
            pause_file=tmp_path / "pause",
            wall=clocks.wall,
            poller_wall=clocks.wall,
        ).poller

    fleet = Fleet(gateways, build, on_status, lambda event: None)
    live = fleet.pollers[0]
    try:
        if hanging is not None:
            fleet.pollers[1].start()  # the way watch runs it: its own threads
            wait_for(lambda: hanging.seen)  # its check is under way, and stays so
        end = clocks() + INTERVALS * 15
        while clocks() < end:
            clocks.sleep(min(live.step(), end - clocks()))
        if hanging is not None:
            assert fleet.pollers[1].busy  # still waiting for the paper gateway
    finally:
        fleet.stop()
        for client in clients.values():
            client.close()
    return [at - 1000.0 for at in checks]


def test_a_hanging_gateway_never_delays_another(tmp_path: Path) -> None:
    with Simulator(0, scenario="ready", rate_limit=False) as sim:
        alone = _ready_checks(sim, None, tmp_path)
        (tmp_path / "cert").mkdir()
        with Hostile(tmp_path / "cert") as hostile:
            hostile.set(silence())
            beside = _ready_checks(sim, hostile, tmp_path)
    assert alone == [15.0 * n for n in range(INTERVALS)]
    assert beside == alone  # neither fewer nor later


def test_gateway_commands_act_on_one_named_gateway(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live = make_gateway_dir(tmp_path / "live", port=free_port())
    paper = make_gateway_dir(tmp_path / "paper", port=free_port())
    path = settings(
        tmp_path,
        f'[gateways.live]\ngateway_dir = "{live}"\n[gateways.paper]\ngateway_dir = "{paper}"\n',
    )
    for action in ("start", "stop", "restart"):
        assert run_cli("--config", str(path), "gateway", action)[0] == 64
        assert "--gateway NAME (live, paper)" in capsys.readouterr().err
    argv = ["--config", str(path), "gateway", "stop", "--gateway", "live", "--dir", str(paper)]
    assert run_cli(*argv)[0] == 64
    assert f"--gateway live is at {live}" in capsys.readouterr().err
    code, out = run_cli("--config", str(path), "gateway", "stop", "--gateway", "paper")
    assert code == 0 and f"No gateway is running in {paper}" in out


def test_the_tray_with_several_gateways_watches_them_all(
    pair: tuple[Simulator, Simulator, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One tray watches every gateway (tests/test_tray_several.py): no settings error
    asking for one; without a display it ends as a tray of one does (exit 69)."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    assert run_cli("--config", str(pair[2]), "tray")[0] == 69
    err = capsys.readouterr().err
    assert "no display found" in err and "--gateway" not in err


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_doctor_checks_each_gateway_in_the_settings_order(
    pair: tuple[Simulator, Simulator, Path],
) -> None:
    live, paper, path = pair
    _code, out = run_cli("--config", str(path), "doctor")
    headings = [line for line in out.splitlines() if line.startswith("Checking ")]
    assert [h.split(" (")[0] for h in headings] == [
        f"Checking gateway live: {live.url}",
        f"Checking gateway paper: {paper.url}",
    ]
    _code, out = run_cli("--config", str(path), "doctor", "--gateway", "paper")
    assert [line for line in out.splitlines() if line.startswith("Checking ")] == [
        f"Checking gateway paper: {paper.url} (from config file {path}); "
        "gateway folder: looked for in the usual places"
    ]


@pytest.mark.e2e  # a real sim process
def test_sim_serves_several_gateways_each_its_own_session() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "sim", "--port", "0", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        urls: list[str] = []
        while len(urls) < 2:
            line = proc.stdout.readline()
            assert line, "the simulator ended early"
            if line.startswith("Simulated gateway on "):
                urls.append(line.split()[3])
        assert len(set(urls)) == 2
        control(urls[0], "/sim/state", {"scenario": "ready"})
        states = [control(url, "/sim/state", method="GET")["scenario"] for url in urls]
        assert states == ["ready", "logged_out"]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


@pytest.mark.e2e  # paced by the real rate limits (auth/status once a second)
def test_one_table_prints_as_today_but_names_it_in_json(tmp_path: Path) -> None:
    with Simulator(0, scenario="ready", rate_limit=False) as sim:
        path = settings(tmp_path, f'[gateways.live]\nurl = "{sim.url}"\n')
        code, line = run_cli("--config", str(path), "status")
        assert code == 0 and line.startswith("ready: Ready — ")
        code, text = run_cli("--config", str(path), "status", "--json")
        assert code == 0 and json.loads(text)["gateway"] == "live"
        code, plain = run_cli("--url", sim.url, "status", "--json")
        assert code == 0 and json.loads(plain)["gateway"] is None


def test_each_gateway_is_paused_on_its_own(pair: tuple[Simulator, Simulator, Path]) -> None:
    path = pair[2]
    until = datetime.now(timezone.utc) + timedelta(hours=1)
    write_pause(pause_path("paper"), until)
    _code, out = run_cli("--config", str(path), "status", "--json")
    paused = {o["gateway"]: o["paused_until"] for o in map(json.loads, out.splitlines())}
    assert paused["live"] is None and paused["paper"] is not None
    assert pause_path("paper") != pause_path() != pause_path("live")
