"""Server packaging: the Docker recipe's structure (Docker does not run here) and its
health check script run for real against the health endpoint."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from cpgw_tray.model.status import LOOKS, State, Status
from cpgw_tray.outlets.serve import HealthServer, Metrics, View
from cpgw_tray.settings.values import Addr

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "packaging" / "docker"
HEALTHCHECK = DOCKER / "healthcheck.py"


def instructions(path: Path) -> list[tuple[str, str]]:
    """A Dockerfile's (INSTRUCTION, arguments), continuation lines joined, comments out."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        words = (pending + line).split(None, 1)
        pending = ""
        out.append((words[0].upper(), words[1] if len(words) > 1 else ""))
    return out


def exec_form(arguments: str) -> list[str]:
    """The JSON (exec) form Docker wants for CMD/ENTRYPOINT/HEALTHCHECK CMD."""
    value = yaml.safe_load(arguments)  # a JSON array is YAML too
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), arguments
    return value


def test_dockerfile_runs_watch_with_serve_and_checks_readyz_in_python() -> None:
    steps = instructions(DOCKER / "Dockerfile")
    assert steps[0][0] == "FROM" and steps[0][1].startswith("python:")
    found = dict(steps)  # the last of each kind counts, as in Docker
    command = exec_form(found["ENTRYPOINT"]) + exec_form(found["CMD"])
    assert command[:2] == ["cpgw-tray", "watch"]
    assert command[command.index("--serve") + 1] == "0.0.0.0:5001"
    assert "5001" in found["EXPOSE"].split()
    check = found["HEALTHCHECK"]
    options, _, cmd = check.partition(" CMD ")
    assert re.search(r"--interval=\d+s", options) and re.search(r"--timeout=\d+s", options)
    argv = exec_form(cmd)
    assert argv[0] == "python" and "curl" not in check
    # the health check script the image runs is the one in this folder
    copies = [a.split() for k, a in steps if k == "COPY"]
    assert ["packaging/docker/healthcheck.py", argv[1]] in copies
    assert found["USER"] != "root"
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    assert "!packaging/docker/healthcheck.py" in ignore and "!src/" in ignore


def test_gateway_dockerfile_allows_the_compose_network() -> None:
    steps = instructions(DOCKER / "gateway.Dockerfile")
    assert steps[0][0] == "FROM"
    run = " ".join(a for k, a in steps if k == "RUN")
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    subnet = compose["networks"]["ibkr"]["ipam"]["config"][0]["subnet"]
    assert subnet.endswith(".0/24")
    assert f"- {subnet[: -len('0/24')]}*" in run  # ips.allow gets the compose network
    assert exec_form(dict(steps)["CMD"])[-2:] == ["bin/run.sh", "root/conf.yaml"]


def test_the_allow_list_edit_works_on_the_stock_conf_yaml(tmp_path: Path) -> None:
    """Run the gateway image's sed on the stock conf.yaml, LF and CRLF."""
    from cpgw_tray.simulator import CONF_YAML

    run = " ".join(a for k, a in instructions(DOCKER / "gateway.Dockerfile") if k == "RUN")
    sed = next(part for part in run.split("&&") if "sed -i" in part)
    argv = shlex.split(sed.strip())
    for newline in ("\n", "\r\n"):
        conf = tmp_path / "conf.yaml"
        conf.write_bytes(CONF_YAML.format(port=5000).replace("\n", newline).encode())
        subprocess.run([*argv[:-1], str(conf)], check=True)
        data = yaml.safe_load(conf.read_text())
        assert data["ips"]["allow"] == ["172.30.0.*", "192.*", "131.216.*", "127.0.0.1"]


def test_compose_runs_cpgw_tray_beside_a_gateway() -> None:
    compose: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) >= {"gateway", "cpgw-tray"}
    tray = services["cpgw-tray"]
    assert tray["command"][:1] == ["watch"]
    assert tray["command"][tray["command"].index("--serve") + 1] == "0.0.0.0:5001"
    assert tray["environment"]["CPGW_TRAY_URL"] == "https://gateway:5000"
    assert tray["environment"]["CPGW_TRAY_INSECURE"] == "true"
    assert "127.0.0.1:5001:5001" in tray["ports"]
    health = tray["healthcheck"]
    assert health["test"][:2] == ["CMD", "python"]
    assert set(health) >= {"interval", "timeout", "retries"}
    assert tray["depends_on"] == ["gateway"]
    assert services["gateway"]["ports"] == ["127.0.0.1:5000:5000"]
    assert tray["build"]["dockerfile"] == "packaging/docker/Dockerfile"
    assert (DOCKER / tray["build"]["context"] / tray["build"]["dockerfile"]).resolve() == (
        DOCKER / "Dockerfile"
    )
    assert (DOCKER / services["gateway"]["build"]["dockerfile"]).is_file()


def test_systemd_unit_serves_on_loopback() -> None:
    unit = (ROOT / "packaging" / "linux" / "cpgw-tray-watch.service").read_text()
    (exec_start,) = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    argv = shlex.split(exec_start.removeprefix("ExecStart="))
    assert argv[1] == "watch"
    assert argv[argv.index("--serve") + 1] == "127.0.0.1:5001"


# ---------------------------------------------------------------- the health check script


class Shown:
    def __init__(self, state: State) -> None:
        self.state = state

    def __call__(self) -> View:
        status = Status(self.state, LOOKS[self.state].label, "why", url="https://gateway:5000")
        return View(status, True)


@pytest.fixture
def health() -> Iterator[tuple[HealthServer, Shown]]:
    shown = Shown(State.READY)
    server = HealthServer(Addr("127.0.0.1", 0), shown, Metrics())
    server.start()
    yield server, shown
    server.stop()


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(HEALTHCHECK), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env=env,
    )


def test_health_check_script_is_0_when_ready_and_1_otherwise(
    health: tuple[HealthServer, Shown],
) -> None:
    server, shown = health
    url = f"{server.url}/readyz"
    ready = run_check(url)
    assert ready.returncode == 0 and '"state": "ready"' in ready.stdout
    shown.state = State.LOGGED_OUT
    waiting = run_check(env={"CPGW_TRAY_HEALTH_URL": url, "PATH": "/usr/bin:/bin"})
    assert waiting.returncode == 1 and '"state": "logged_out"' in waiting.stdout
    assert waiting.stderr == ""


def test_health_check_script_is_1_when_nothing_answers(
    health: tuple[HealthServer, Shown],
) -> None:
    server, _ = health
    url = f"{server.url}/readyz"
    server.stop()
    down = run_check(url)
    assert down.returncode == 1 and down.stdout.startswith(f"no answer from {url}")
    assert down.stderr == ""
