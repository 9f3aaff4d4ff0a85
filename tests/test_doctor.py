"""The doctor finds what support questions are about, each with its fix; the bundle
carries no secret and no account id."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cpgw_tray import paths
from cpgw_tray.outlets.diagnostics import tail
from cpgw_tray.outlets.doctor import Doctor, clock_check
from cpgw_tray.process.preflight import port_answers
from cpgw_tray.redaction import redact
from cpgw_tray.settings.config import load
from cpgw_tray.simulator import make_gateway_dir

from .conftest import PlainHTTPServer, control, free_port, run_cli, wait_for


def fake_java(tmp_path: Path) -> dict[str, str]:
    """An environment whose JAVA_HOME holds a `java` that prints a version."""
    home = tmp_path / "jdk"
    (home / "bin").mkdir(parents=True)
    java = home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"17.0.9\" 2023-10-17' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return {"JAVA_HOME": str(home), "PATH": "/usr/bin:/bin"}


def names(checks: list[object]) -> dict[str, object]:
    return {c.name.split()[0]: c for c in checks}  # type: ignore[attr-defined]


@pytest.mark.e2e
def test_all_good_exits_0(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A gateway folder whose gateway runs (started as IBKR documents), logged in."""
    port = free_port()
    folder = make_gateway_dir(tmp_path / "gw", port=port)
    gateway = subprocess.Popen(
        ["bash", "bin/run.sh", "root/conf.yaml"],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: port_answers(port), timeout=20)
        control(f"https://127.0.0.1:{port}", "/sim/state", {"scenario": "ready"})
        for key, value in fake_java(tmp_path).items():
            monkeypatch.setenv(key, value)
        code, out = run_cli("doctor", "--dir", str(folder))
    finally:
        os.killpg(gateway.pid, signal.SIGKILL)
        gateway.wait()
    assert code == 0, out
    assert "[ok  ] Port" in out and "held by the gateway" in out
    assert "[ok  ] Java: openjdk version" in out and "[ok  ] ips.allow: covers 127.0.0.1" in out
    assert f"[ok  ] Port {port}" in out and "[ok  ] Paper or live: Paper account" in out
    assert "[ok  ] Clock: within" in out and "FAIL" not in out


def test_busy_port_missing_java_and_ips_allow_each_named_with_a_fix(tmp_path: Path) -> None:
    other = PlainHTTPServer()  # another program holds the gateway's port
    try:
        folder = make_gateway_dir(tmp_path / "gw", port=other.port)
        conf = folder / "root" / "conf.yaml"
        conf.write_text(conf.read_text().replace("            - 127.0.0.1\n", ""))
        config = load({"gateway_dir": str(folder)}, env={})
        checks = names(Doctor(config, env={"PATH": str(tmp_path)}).run())  # no java on it
    finally:
        other.close()
    java, port, ips = checks["Java"], checks["Port"], checks["ips.allow"]
    assert java.ok is False and "install a Java runtime" in java.fix  # type: ignore[attr-defined]
    assert port.ok is False and "not the gateway" in port.verdict  # type: ignore[attr-defined]
    assert "listenPort" in port.fix  # type: ignore[attr-defined]
    assert ips.ok is False and "127.0.0.1" in ips.fix  # type: ignore[attr-defined]


def test_failures_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = make_gateway_dir(tmp_path / "gw", port=free_port())
    monkeypatch.setenv("PATH", str(tmp_path))  # no java
    monkeypatch.delenv("JAVA_HOME", raising=False)
    code, out = run_cli("doctor", "--dir", str(folder))
    assert code == 3 and "[FAIL] Java" in out and "problem(s) found: Java" in out


def test_clock_check() -> None:
    from datetime import datetime, timezone

    now = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)
    assert clock_check("Sun, 29 Nov 2026 12:00:20 GMT", now).ok is True
    late = clock_check("Sun, 29 Nov 2026 11:55:00 GMT", now)
    assert late.ok is False and "300 s ahead" in late.verdict and "NTP" in late.fix
    assert clock_check(None, now).ok is None and clock_check("soon", now).ok is None


SECRETS = [
    'sslPwd: "mywebapi"',
    "password=hunter2&user=me",
    '{"session": "9fe1c272dc44e023a3aefe52b71d42bd", "userId": 132329622}',
    "Account DU1234567 — Paper; live U7654321",
    "url https://me:s3cret@127.0.0.1:5000/",
    "Cookie: api=abc123",
]
LEAKS = ["mywebapi", "hunter2", "9fe1c272dc44e023a3aefe52b71d42bd", "132329622"]
LEAKS += ["DU1234567", "U7654321", "s3cret", "abc123"]


def test_redact_removes_every_secret() -> None:
    text = redact("\n".join(SECRETS))
    assert not [leak for leak in LEAKS if leak in text], text
    assert "sslPwd" in text and "Account <account>" in text  # the words stay, the values go


def test_bundle_contains_no_secret_or_account_id(tmp_path: Path) -> None:
    log_dir = paths.log_dir()
    log_dir.mkdir(parents=True, exist_ok=True)
    paths.log_file().write_text("\n".join(f"line {n}: {s}" for n, s in enumerate(SECRETS * 200)))
    gateway_log = paths.log_dir() / "gateway-gw-0123abcd.log"  # one log per gateway folder
    gateway_log.write_text("gateway says " + "\n".join(SECRETS) + "\n")
    paths.history_file().parent.mkdir(parents=True, exist_ok=True)
    paths.history_file().write_text('{"detail": "Account DU1234567 — Paper"}\n')
    target = tmp_path / "diag.zip"
    code, out = run_cli("doctor", "--bundle", str(target), "--url", "https://127.0.0.1:1")
    assert code in (0, 3) and str(target) in out
    with zipfile.ZipFile(target) as bundle:
        files = set(bundle.namelist())
        text = "\n".join(bundle.read(n).decode() for n in files)
    assert {"versions.txt", "settings.json", "doctor.txt", "cpgw-tray.log"} <= files
    assert "gateway-gw-0123abcd.log" in files
    assert "history.jsonl" in files
    assert not [leak for leak in LEAKS if leak in text]
    assert text.count("line ") <= 500  # the log's last 500 lines, not all 1200


def test_tail_reads_only_the_end(tmp_path: Path) -> None:
    big = tmp_path / "big.log"
    with open(big, "wb") as out:
        out.truncate(300 * 1024 * 1024)  # sparse: 300 MB of zeros
        out.seek(0, os.SEEK_END)
        out.write(b"\n".join(b"last %d" % n for n in range(600)) + b"\n")
    lines = tail(big, 500).splitlines()
    assert len(lines) == 500 and lines[-1] == "last 599"


def test_save_diagnostics_from_the_menu() -> None:
    import threading

    from cpgw_tray.client.api import GatewayClient
    from cpgw_tray.tray.backends.dummy import DummyBackend
    from cpgw_tray.tray.tray_app import TrayApp

    from .test_tray import IdlePoller

    config = load({"url": f"https://127.0.0.1:{free_port()}"}, env={})
    app = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())
    backend = DummyBackend()
    app.start(backend)
    app.support.save_diagnostics()
    for thread in [t for t in threading.enumerate() if t.name == "diagnostics"]:
        thread.join(timeout=20)
    backend.drain()
    saved = list(paths.state_dir().glob("diagnostics-*.zip"))
    assert len(saved) == 1 and zipfile.is_zipfile(saved[0])
    assert any(e.text.startswith("Diagnostics saved: ") for e in backend.menu)


def test_no_gateway_answering_is_a_problem_with_its_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing listening is what `status` calls gateway_down: the doctor says so too."""
    for key, value in fake_java(tmp_path).items():
        monkeypatch.setenv(key, value)
    code, out = run_cli("--url", f"https://127.0.0.1:{free_port()}", "doctor")
    assert code == 3 and "[FAIL] Gateway: nothing answers at" in out
    assert "cpgw-tray gateway start" in out


@pytest.mark.e2e
def test_our_own_simulator_on_the_port_is_not_a_stranger(tmp_path: Path) -> None:
    port = free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "sim", "--port", str(port), "--state", "ready"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(lambda: port_answers(port))
        config = load({"url": f"https://127.0.0.1:{port}"}, env={})
        check = names(Doctor(config, env=fake_java(tmp_path)).run())["Port"]
    finally:
        os.killpg(sim.pid, signal.SIGKILL)
        sim.wait()
    assert check.ok is True and "simulator" in check.verdict  # type: ignore[attr-defined]


@pytest.mark.e2e  # waits out a real 2 s timeout
def test_save_diagnostics_says_saving_at_once_then_the_path(tmp_path: Path) -> None:
    """The doctor inside waits on the gateway (here one that never answers TLS): the
    menu says at once that it is saving, and the path with a notification after."""
    import socket
    import threading

    from cpgw_tray.client.api import GatewayClient
    from cpgw_tray.tray.backends.dummy import DummyBackend
    from cpgw_tray.tray.tray_app import TrayApp

    from .test_tray import IdlePoller

    with socket.socket() as mute:  # accepts connections (the kernel does), never answers
        mute.bind(("127.0.0.1", 0))
        mute.listen(8)
        url = f"https://127.0.0.1:{mute.getsockname()[1]}"
        config = load({"url": url, "timeout": 2}, env={})
        app = TrayApp(config, GatewayClient(config.url, verify=False), poller=IdlePoller())
        backend = DummyBackend()
        app.start(backend)
        app.support.save_diagnostics()
        backend.drain()
        assert any(e.text.startswith("Saving diagnostics…") for e in backend.menu)
        for thread in [t for t in threading.enumerate() if t.name == "diagnostics"]:
            thread.join(timeout=30)
    backend.drain()
    saved = list(paths.state_dir().glob("diagnostics-*.zip"))
    assert [e.text for e in backend.menu if e.text.startswith("Diagnostics saved")] == [
        f"Diagnostics saved: {saved[0]}"
    ]
    assert any(k == "notify" and str(saved[0]) in m for k, m in backend.calls)


def test_a_url_and_a_folder_of_two_gateways_is_a_finding(sim: object, tmp_path: Path) -> None:
    """The URL answers (a ready gateway) but the folder's conf.yaml names another port."""
    url = sim.url  # type: ignore[attr-defined]
    folder = make_gateway_dir(tmp_path / "gw", port=free_port())
    code, out = run_cli("--url", url, "doctor", "--dir", str(folder))
    assert f"Checking {url} (from command line); gateway folder: {folder}" in out
    assert "[FAIL] URL and folder: two different gateways" in out
    assert f"[ok  ] Gateway: answers at {url}" in out
    assert code == 3 and "All checks passed" not in out
