"""The gateway's log: rotated at each launch, read incrementally while waiting, and read
from the end by ``gateway logs -n`` whatever its size."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from cpgw_tray.process.identity import log_for
from cpgw_tray.process.launcher import Launcher
from cpgw_tray.process.output import Follower, rotate, tail_lines

from .conftest import run_cli
from .gwprocs import cli, cli_env, gw_dir_fixture  # noqa: F401  (fixture)

REAL = pytest.mark.e2e
MB = 1024 * 1024


class CountingReader(io.RawIOBase):
    """A file that counts the bytes read from it."""

    def __init__(self, path: Path) -> None:
        self.raw = open(path, "rb")  # noqa: SIM115  (closed by close())
        self.bytes_read = 0

    def seekable(self) -> bool:
        return True

    def readable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.raw.seek(offset, whence)

    def tell(self) -> int:
        return self.raw.tell()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.bytes_read += len(data)
        return data

    def close(self) -> None:
        self.raw.close()
        super().close()


def huge_log(path: Path, size: int, tail: list[str]) -> None:
    """A sparse file of ``size`` bytes of old output, then the ``tail`` lines."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"old line\n" * 1000)
        f.truncate(size)
        f.seek(size)
        f.write(("\n" + "\n".join(tail) + "\n").encode())


@pytest.mark.parametrize("count", ["0", "-3", "x"])
def test_logs_takes_positive_counts_only(count: str, gw_dir: Path) -> None:
    log = log_for(gw_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("a\nb\nc\n")
    code, out = run_cli("gateway", "logs", "--dir", str(gw_dir), "-n", count)
    assert code == 64 and out == ""


def test_logs_prints_the_last_lines(gw_dir: Path) -> None:
    log = log_for(gw_dir)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    code, out = run_cli("gateway", "logs", "--dir", str(gw_dir), "-n", "3")
    assert code == 0 and out == "line 97\nline 98\nline 99\n"


def test_tail_reads_from_the_end_of_a_540_mb_log(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    huge_log(path, 540 * MB, [f"last {i}" for i in range(10)])
    reader = CountingReader(path)
    try:
        assert tail_lines(reader, 5) == [f"last {i}" for i in range(5, 10)]  # type: ignore[arg-type]
    finally:
        reader.close()
    assert reader.bytes_read <= 64 * 1024


def test_tail_of_a_single_endless_line_stays_bounded(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_bytes(b"x" * (8 * MB))
    reader = CountingReader(path)
    try:
        lines = tail_lines(reader, 2, limit=MB)  # type: ignore[arg-type]
    finally:
        reader.close()
    assert reader.bytes_read <= MB and len(lines) == 1 and lines[0].startswith("…")


# The command's own peak memory, read by itself: VmHWM belongs to the process's memory
# since its exec (rusage's ru_maxrss also counts the forked copy of a large pytest).
PEAK_PROBE = """
import runpy, sys
sys.argv = ["cpgw-tray", *sys.argv[1:]]
try:
    runpy.run_module("cpgw_tray", run_name="__main__")
finally:
    sys.stdout.flush()
    peak = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    sys.stderr.write("\\n" + peak)
"""


@pytest.mark.e2e  # cpgw-tray runs as a process
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads /proc (Linux)")
def test_gateway_logs_on_a_540_mb_log_uses_little_memory(gw_dir: Path) -> None:
    log = log_for(gw_dir)
    huge_log(log, 540 * MB, [f"last {i}" for i in range(10)])
    proc = subprocess.run(
        [sys.executable, "-c", PEAK_PROBE, "gateway", "logs", "--dir", str(gw_dir), "-n", "5"],
        env=cli_env(),
        capture_output=True,
        timeout=60,
    )
    err = proc.stderr.decode()
    assert proc.returncode == 0, err
    assert proc.stdout.decode().splitlines() == [f"last {i}" for i in range(5, 10)]
    peak_kib = int(err.rsplit("VmHWM:", 1)[1].split()[0])
    assert peak_kib < 200 * 1024  # reading the whole log took 1.3 GB


def test_rotate_keeps_a_few(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    for i in range(6):
        path.write_text(f"launch {i}\n")
        rotate(path, keep=3)
    assert not path.exists()
    assert [(tmp_path / f"gateway.log.{n}").read_text() for n in (1, 2, 3)] == [
        "launch 5\n",
        "launch 4\n",
        "launch 3\n",
    ]
    assert not (tmp_path / "gateway.log.4").exists()


def test_follower_reads_each_byte_once(tmp_path: Path) -> None:
    path = tmp_path / "gateway.log"
    path.write_bytes(b"before this launch\n")
    follower = Follower(path, offset=path.stat().st_size)
    with open(path, "ab") as f:
        f.write(b"one\ntw")
        f.flush()
        assert follower.read() == "one\n"
        f.write(b"o\nthree\n")
        f.flush()
        assert follower.read() == "two\nthree\n"
        assert follower.read() == ""
    assert follower.bytes_read == path.stat().st_size - len(b"before this launch\n")
    assert follower.text() == "one\ntwo\nthree\n"


@REAL
def test_a_launch_rotates_the_log_and_reads_only_its_own_output(
    gw_dir: Path, tmp_path: Path
) -> None:
    log = tmp_path / "gateway.log"
    huge_log(log, 50 * MB, ["Server listen failed Address already in use (a launch long ago)"])
    launcher = Launcher(gw_dir, log, timeout=20)
    launcher.start()
    try:
        launcher.wait_ready()
        assert (tmp_path / "gateway.log.1").stat().st_size > 50 * MB
        assert log.stat().st_size < MB and "long ago" not in launcher.output()
        assert launcher.follower is not None
        assert launcher.follower.bytes_read <= log.stat().st_size
    finally:
        launcher.stop()
