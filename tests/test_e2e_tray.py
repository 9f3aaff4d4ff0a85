"""End-to-end: the real tray in a real X tray host, driven through the simulator.

Each backend runs where users meet it: appindicator (a desktop with PyGObject) in
xfce4-panel's StatusNotifier host, xorg (a plain pip install: no menu, our popup) and
gtk in trayer. Screenshots land in ``tests/artifacts/``.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import ImageChops

from cpgw_tray.model.status import GREEN, ORANGE, RED, YELLOW
from cpgw_tray.simulator import Simulator

from .desktop import Desktop, changed_region, colour_box, missing_tools, ocr_lines, wait_for

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).parent / "artifacts"
HOST = {"appindicator": "xfce4-panel", "xorg": "trayer", "gtk": "trayer"}
TK_MENU = (217, 217, 217)  # the popup's background
MENU_WORDS = ["Check now", "Open login page", "Notifications", "Quit"]


def need(backend: str) -> None:
    missing = missing_tools(HOST[backend])
    if backend == "xorg":
        missing += [] if _has("tkinter") else ["python3-tk"]
    elif not _has("gi"):
        missing.append(gi_missing())
    if backend in ("xorg", "gtk", "appindicator") and not shutil_which("tesseract"):
        missing.append("tesseract")
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (see .ci/run)")


def gi_missing() -> str:
    """Why PyGObject cannot be imported: not installed, or installed for the system's
    Python while this one (pyenv, conda, a plain venv) cannot see it."""
    system_gi = [p for p in Path("/usr/lib/python3/dist-packages").glob("gi") if p.is_dir()]
    if not system_gi:
        return "python3-gi (not installed)"
    return (
        f"python3-gi, which is installed for /usr/bin/python3 but not visible to "
        f"{sys.executable}: make the venv with `/usr/bin/python3 -m venv "
        "--system-site-packages`"
    )


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def _has(module: str) -> bool:
    probe = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True)
    return probe.returncode == 0


class TrayRun:
    """The tray app as a subprocess on the virtual desktop."""

    def __init__(
        self, desktop: Desktop, backend: str, sim: Simulator, interval: float, name: str
    ) -> None:
        self.desktop, self.backend, self.sim = desktop, backend, sim
        self.shots = ARTIFACTS / name
        self.shots.mkdir(parents=True, exist_ok=True)
        self.log_path = desktop.workdir / "app.log"
        env = dict(desktop.env, PYSTRAY_BACKEND=backend, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cpgw_tray",
                "--url",
                sim.url,
                "tray",
                "--interval",
                str(interval),
                "-vv",
            ],
            env=env,
            stdout=open(self.log_path, "wb"),  # noqa: SIM115 - open as long as the app runs
            stderr=subprocess.STDOUT,
        )
        self.shot_no = 0
        self.menu_region: tuple[int, int, int, int] = (0, 0, 0, 0)
        self.menu_shot: object = None
        self.menu_read_at = 0.0

    def shot(self, label: str) -> tuple[Path, object]:
        self.shot_no += 1
        path = self.shots / f"{self.shot_no:02d}-{label}.png"
        return path, self.desktop.screenshot(path)

    def wait_colour(
        self, rgb: tuple[int, int, int], label: str, timeout: float
    ) -> tuple[int, int, int, int]:
        last: list[Path] = []

        def found() -> tuple[int, int, int, int] | None:
            path, image = self.shot(label)
            box = colour_box(image, rgb)  # type: ignore[arg-type]
            if last:
                last.pop().unlink()  # keep only the newest miss, for the record
            if box is None:
                last.append(path)
            return box

        box: tuple[int, int, int, int] = wait_for(found, timeout, f"{label} icon", step=0.02)
        print(f"screenshot: {self.shots}/{self.shot_no:02d}-{label}.png")
        return box

    def open_menu(
        self, box: tuple[int, int, int, int], label: str, button: int | None = None
    ) -> list[tuple[str, int, int]]:
        """Click the icon so its menu opens; read the menu from the screen by OCR. The
        menu's place on the screen is kept in ``menu_region``, the screenshot in
        ``menu_shot``."""
        self.desktop.move_away()
        time.sleep(0.2)
        _, before = self.shot(f"{label}-before")
        cx, cy = (box[0] + box[2]) // 2, (box[1] + box[3]) // 2
        if button is None:
            button = 3 if self.backend == "gtk" else 1
        self.desktop.click(cx, cy, button)

        def menu_read() -> list[tuple[str, int, int]] | None:
            self.menu_read_at = time.monotonic()
            path, after = self.shot(label)
            region = changed_region(before, after, box[3] + 2)  # type: ignore[arg-type]
            if region is None:
                path.unlink()
                return None
            # a tall menu (the fixed rows) may start over the panel, above the icon's foot
            whole = changed_region(before, after, 0)  # type: ignore[arg-type]
            if whole is not None and whole[1] < region[1] and whole[0] <= region[0] + 8:
                region = (region[0], whole[1], region[2], region[3])
            lines = ocr_lines(after.crop(region), self.desktop.workdir)  # type: ignore[attr-defined]
            text = " | ".join(t for t, _, _ in lines)
            if "Quit" not in text:
                path.unlink()
                return None
            self.menu_region, self.menu_shot = region, after
            return [(t, x + region[0], y + region[1]) for t, x, y in lines]

        lines: list[tuple[str, int, int]] = wait_for(menu_read, 10, "the menu on screen", step=0.2)
        print(
            f"menu screenshot: {self.shots}/{self.shot_no:02d}-{label}.png: {[t for t, _, _ in lines]}"
        )
        return lines

    def close_popup(self) -> None:
        """Click outside the xorg popup; wait until no Tk menu is left on screen."""
        x0, _, x1, _ = self.menu_region
        self.desktop.click(1010 if x1 < 1000 else max(0, x0 - 10), 760)  # beside the menu

        def closed() -> bool:
            path, image = self.shot("closed")
            path.unlink()
            return colour_box(image, TK_MENU, tolerance=2, top=768) is None  # type: ignore[arg-type]

        wait_for(closed, 5, "the popup closed", step=0.1)

    def click_entry(self, lines: list[tuple[str, int, int]], words: str) -> None:
        match = [(x, y) for t, x, y in lines if read_as([(t, x, y)], words)]
        assert match, f"no menu line with {words!r} in {[t for t, _, _ in lines]}"
        x, y = match[0]
        subprocess.run(["xdotool", "mousemove", str(x), str(y)], env=self.desktop.env, check=True)
        time.sleep(0.2)
        subprocess.run(["xdotool", "click", "1"], env=self.desktop.env, check=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def desktop_for(tmp_path: Path) -> Iterator[object]:
    started: list[Desktop] = []

    def start(backend: str, align: str = "left") -> Desktop:
        need(backend)
        desktop = Desktop(tmp_path / f"desk-{len(started)}", HOST[backend], align).start()
        started.append(desktop)
        return desktop

    yield start
    for desktop in started:
        desktop.stop()


def read_as(lines: list[tuple[str, int, int]], words: str) -> bool:
    """Whether OCR read a line as ``words``, allowing a misread letter or two."""
    return any(
        difflib.SequenceMatcher(None, words, text[: len(words) + 4]).ratio() > 0.85 or words in text
        for text, _, _ in lines
    )


def auth_requests(sim: Simulator) -> list[float]:
    return [r.t for r in sim.requests() if r.path.endswith("/iserver/auth/status")]


@pytest.mark.parametrize("backend", ["appindicator", "xorg", "gtk"])
def test_icon_colour_follows_the_gateway(desktop_for, backend: str) -> None:  # type: ignore[no-untyped-def]
    desktop = desktop_for(backend)
    interval = 1.0
    with Simulator(0, scenario="ready") as sim:
        run = TrayRun(desktop, backend, sim, interval, f"{backend}-colours")
        try:
            run.wait_colour(GREEN, "green-ready", timeout=10)
            assert f"pystray backend: {backend}" in run.log()
            switched = time.monotonic()
            sim.set_scenario("logged_out")
            run.wait_colour(YELLOW, "yellow-logged-out", timeout=interval + 1)
            print(f"{backend}: yellow {time.monotonic() - switched:.2f} s after the switch")
            stopped = time.monotonic()
            sim.stop()
            run.wait_colour(RED, "red-gateway-down", timeout=interval + 1)
            print(f"{backend}: red {time.monotonic() - stopped:.2f} s after the stop")
        finally:
            run.stop()
        assert "Traceback" not in run.log(), run.log()


@pytest.mark.parametrize("backend", ["appindicator", "xorg", "gtk"])
def test_menu_reads_status_check_now_and_quit_while_hung(desktop_for, backend: str) -> None:  # type: ignore[no-untyped-def]
    desktop = desktop_for(backend)
    with Simulator(0, scenario="ready") as sim:
        run = TrayRun(desktop, backend, sim, 120, f"{backend}-menu")  # no poll during the test
        try:
            box = run.wait_colour(GREEN, "green", timeout=10)
            if backend == "appindicator":
                labels = desktop.dbusmenu_labels()
                assert "Status: Ready" in labels
                assert all(w in labels for w in MENU_WORDS), labels
            lines = run.open_menu(box, "menu-open")
            text = " | ".join(t for t, _, _ in lines)
            assert read_as(lines, "Status: Ready"), text
            for words in MENU_WORDS:
                assert read_as(lines, words), text
            before = len(auth_requests(sim))
            clicked = time.monotonic()
            run.click_entry(lines, "Check now")
            wait_for(lambda: len(auth_requests(sim)) > before, 3, "a check after 'Check now'")
            print(f"{backend}: Check now -> request in {time.monotonic() - clicked:.2f} s")

            # The gateway hangs; a check is in flight; Quit must still be immediate.
            sim.set_scenario("hang")
            lines = run.open_menu(box, "menu-hang")
            run.click_entry(lines, "Check now")
            time.sleep(1.5)  # the check is now stuck in the hung gateway
            lines = run.open_menu(box, "menu-quit")
            clicked = time.monotonic()
            run.click_entry(lines, "Quit")
            run.proc.wait(timeout=5)
            took = time.monotonic() - clicked
            print(f"{backend}: Quit during a hung request exited in {took:.2f} s")
            # never the hung request's 10 s timeout; the run may share the machine
            assert took < 5.0
            assert run.proc.returncode == 0
        finally:
            run.stop()
        assert "Traceback" not in run.log(), run.log()


def countdown(texts: list[str]) -> int | None:
    """The seconds of a "Next check in [N min] S s" row, if one was read."""
    for text in texts:
        found = re.search(r"Next check in (?:(\d+) ?min ?)?(?:(\d+) ?s)?", text)
        if found and any(found.groups()):
            return int(found.group(1) or 0) * 60 + int(found.group(2) or 0)
    return None


@pytest.mark.parametrize("backend", ["appindicator", "gtk", "xorg"])
def test_countdown_counts_down_while_the_menu_is_open(desktop_for, backend: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 15: "Next check in 60 s" stood still while the menu was open. After a 429
    (Retry-After: 60) the row counts down on screen while the menu is open; on
    appindicator what the tray publishes over D-Bus stands still while the menu is
    closed (nothing wakes up) and moves once the panel opens it."""
    desktop = desktop_for(backend)
    with Simulator(0, scenario="rate_limited") as sim:
        run = TrayRun(desktop, backend, sim, 5, f"{backend}-countdown")
        try:
            box = run.wait_colour(ORANGE, "orange", timeout=15)
            if backend == "appindicator":  # closed: what the tray publishes stands still
                still = wait_for(lambda: countdown(desktop.dbusmenu_labels()), 5, "the row")
                time.sleep(2.5)
                assert countdown(desktop.dbusmenu_labels()) == still  # no wake-ups
            if backend == "xorg":  # the first opening shows the notice: close it
                run.open_menu(box, "notice")
                run.close_popup()
            lines = run.open_menu(box, "open")
            read_at = run.menu_read_at
            first = countdown([t for t, _, _ in lines])
            time.sleep(3)
            _, shot = run.shot("open-later")
            texts = [t for t, _, _ in ocr_lines(shot.crop(run.menu_region), desktop.workdir)]  # type: ignore[attr-defined]
            later = countdown(texts)
            if backend == "appindicator":  # and what it publishes moved too
                published = countdown(desktop.dbusmenu_labels())
                assert published is not None and published < still
            took = time.monotonic() - read_at
            print(f"{backend}: countdown {first} s, {took:.1f} s later {later} s")
            assert first is not None and later is not None, (
                texts if backend != "appindicator" else ""
            )
            assert 1 <= first - later <= took + 2  # it moved, by the time that passed
        finally:
            run.stop()
        assert "Traceback" not in run.log(), run.log()


def overlap(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> bool:
    """Whether two boxes (x0, y0, x1, y1) share any pixel."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("align", ["left", "right"])
def test_xorg_popup_opens_beside_the_icon_on_either_button(desktop_for, align: str) -> None:  # type: ignore[no-untyped-def]
    """Issue 15, fallback popup: right-click did nothing, the popup covered the icon and
    a submenu opened on top of the menu (where it did not fit on its right: a tray at
    the screen's right edge); the icon had black corners."""
    desktop = desktop_for("xorg", align)
    with Simulator(0, scenario="ready") as sim:
        run = TrayRun(desktop, "xorg", sim, 120, f"xorg-popup-{align}")
        try:
            box = run.wait_colour(GREEN, "green", timeout=10)
            _, image = run.shot("icon")
            x0, y0, x1, y1 = box
            for corner in ((x0, y0), (x1 - 1, y0), (x0, y1 - 1), (x1 - 1, y1 - 1)):
                pixel = image.getpixel(corner)  # type: ignore[attr-defined]
                assert all(abs(a - b) <= 10 for a, b in zip(pixel, GREEN, strict=True)), (
                    corner,
                    pixel,
                )
            for button in (3, 1):
                lines = run.open_menu(box, f"button-{button}", button=button)
                assert read_as(lines, "Status: Ready"), [t for t, _, _ in lines]
                assert not overlap(run.menu_region, box), (run.menu_region, box)
                run.close_popup()
                assert run.proc.poll() is None
            lines = run.open_menu(box, "submenu")
            main = run.menu_region
            row = [(x, y) for t, x, y in lines if read_as([(t, x, y)], "Log out")]
            assert row, [t for t, _, _ in lines]
            subprocess.run(
                ["xdotool", "mousemove", str(row[0][0]), str(row[0][1])],
                env=desktop.env,
                check=True,
            )

            def submenu() -> tuple[int, int, int, int] | None:
                path, after = run.shot("submenu-open")
                mask = ImageChops.difference(after, run.menu_shot).convert("L")  # type: ignore[arg-type]
                mask = mask.point(lambda v: 255 if v > 16 else 0)
                mask.paste(0, main)  # the hover's highlight inside the menu is not it
                found = mask.getbbox()
                if found is None:
                    path.unlink()
                return found

            sub = wait_for(submenu, 5, "the Log out submenu", step=0.2)
            print(f"menu {main}, submenu {sub}, icon {box}")
            assert not overlap(sub, main) and not overlap(sub, box), (sub, main)
            assert sub[0] >= main[2] - 2 or sub[2] <= main[0] + 2  # beside, not on top
        finally:
            run.stop()
        assert "Traceback" not in run.log(), run.log()


def test_no_display_exits_69_and_suggests_watch(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "cpgw_tray"], env=env, capture_output=True, text=True, timeout=30
    )
    assert proc.returncode == 69
    assert "cpgw-tray watch" in proc.stderr and proc.stderr.count("\n") == 1


# Every Simulate entry, in an order where each step changes the status line:
# (entry, state, colour, status line)
DEMO_STEPS = [
    ("ready", "ready", GREEN, "Status: Ready"),
    ("competing", "competing", ORANGE, "Status: Competing session"),
    ("disconnected", "disconnected", YELLOW, "Status: Disconnected from IBKR"),
    ("not_authenticated", "not_authenticated", YELLOW, "Status: Brokerage session not started"),
    ("access_denied", "access_denied", RED, "Status: Access denied by the gateway"),
    ("no_bridge", "not_authenticated", YELLOW, "Status: Brokerage session not started"),
    ("rate_limited", "rate_limited", ORANGE, "Status: Rate limited"),
    ("server_error", "error", RED, "Status: Gateway error"),
    ("logged_out", "logged_out", YELLOW, "Status: Logged out"),
    ("unavailable", "error", RED, "Status: Gateway error"),
    ("ready", "ready", GREEN, "Status: Ready"),
    ("not_json", "error", RED, "Status: Gateway error"),
    ("hang", "not_responding", RED, "Status: Gateway not responding"),
]


def test_demo_simulate_entries_change_icon_and_menu(desktop_for) -> None:  # type: ignore[no-untyped-def]
    """`cpgw-tray demo` on an AppIndicator desktop: each Simulate entry, clicked through
    the menu's D-Bus interface as the panel does, changes the icon and the menu within
    1 s (read from what the tray publishes), and the panel then draws the new colour."""
    for attempt in (1, 2):
        desktop = desktop_for("appindicator")
        try:
            _demo_steps(desktop)
            return
        except AssertionError:
            crash = host_crash(desktop)
            if crash is None or attempt == 2:
                raise
            # A host bug, not the tray's: the panel's plugin died under the menu updates.
            print(f"demo: xfce4-panel's systray plugin crashed ({crash}); again on a new desktop")


HOST_CRASH = re.compile(
    r"^(wrapper-2\.0: .*Assertion .*failed\.|.*malloc\(\).*|.*Segmentation fault.*)$",
    re.MULTILINE,
)


def host_crash(desktop: Desktop) -> str | None:
    """The line where xfce4-panel's systray plugin crashed, if it did (its log)."""
    text = desktop.host_log.read_text(errors="replace")
    found = HOST_CRASH.search(text)
    return found.group(0)[:160] if found else None


def _demo_steps(desktop: Desktop) -> None:
    """Each Simulate entry of a demo on ``desktop``: menu and icon within 1 s."""
    shots = ARTIFACTS / "demo"
    shots.mkdir(parents=True, exist_ok=True)
    log_path = desktop.workdir / "demo.log"
    env = dict(desktop.env, PYSTRAY_BACKEND="appindicator")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "demo"],
        env=env,
        stdout=open(log_path, "wb"),  # noqa: SIM115 - open while the demo runs
        stderr=subprocess.STDOUT,
    )
    try:

        def shows(rgb: tuple[int, int, int], name: str) -> bool:
            path = shots / f"{name}.png"
            return colour_box(desktop.screenshot(path), rgb) is not None

        wait_for(lambda: shows(YELLOW, "start-logged-out"), 10, "the demo's yellow icon", step=0.05)
        wait_for(lambda: "Simulate" in desktop.dbusmenu_labels(), 5, "the Simulate menu")
        for entry, state, rgb, status_line in DEMO_STEPS:
            # A person's pace. Faster, xfce4-panel's systray plugin sometimes crashes on
            # the menu updates (LIBDBUSMENU criticals, then malloc corruption, in
            # host.log) and the icon is gone: a host bug, not the tray's.
            time.sleep(2.5)
            clicked = time.monotonic()
            assert host_crash(desktop) is None, "xfce4-panel's systray plugin crashed"
            desktop.dbusmenu_click(entry + ":")
            # What the tray publishes: the menu's status line and the icon's name.
            wait_for(
                lambda s=status_line: s in desktop.dbusmenu_labels(), 3, status_line, step=0.02
            )
            icon = f"cpgw-tray-{state}"
            seen: list[str | None] = []

            def published(i: str = icon, seen: list[str | None] = seen) -> bool:
                seen.append(desktop.sni_icon_name())
                return seen[-1] == i

            try:
                wait_for(published, 3, icon, step=0.02)
            except TimeoutError:
                raise AssertionError(
                    f"{icon} not published; saw {sorted(set(map(str, seen)))}"
                ) from None
            took = time.monotonic() - clicked
            # at once, not at the next check (15 s away); the 1 s goal itself is measured
            # on a quiet machine by benchmarks/menu_soak.py --steps, not in a test that
            # runs beside others
            assert took < 3.0
            # What xfce4-panel draws: a screenshot for the record. The panel reloads the
            # icon on its own schedule and now and then leaves it blank for seconds
            # (seen in about one run in five); the colour tests check the drawing.
            try:
                wait_for(lambda rgb=rgb, e=entry: shows(rgb, e), 5, entry, step=0.02)
                drawn = f"drawn after {time.monotonic() - clicked:.2f} s"
            except TimeoutError:
                drawn = "not redrawn by the panel within 5 s"
            print(f"demo: {entry} -> menu and icon changed in {took:.2f} s, {drawn}")
    finally:
        proc.terminate()
        proc.wait(5)
    assert "Traceback" not in log_path.read_text(errors="replace")


def test_demo_nightly_restart_shows_the_restart_look(desktop_for) -> None:  # type: ignore[no-untyped-def]
    """The demo's Simulate → nightly restart: the clock the tray and the simulator share
    jumps into IBKR's next restart window, and the logged-out session is published with
    the restart icon and the window's words (restart windows on, region na)."""
    desktop = desktop_for("appindicator")
    shots = ARTIFACTS / "demo"
    shots.mkdir(parents=True, exist_ok=True)
    log_path = desktop.workdir / "demo-restart.log"
    env = dict(
        desktop.env,
        PYSTRAY_BACKEND="appindicator",
        CPGW_TRAY_RESTART_WINDOWS="true",
        CPGW_TRAY_REGION="na",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "cpgw_tray", "demo"],
        env=env,
        stdout=open(log_path, "wb"),  # noqa: SIM115 - open while the demo runs
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: "Simulate" in desktop.dbusmenu_labels(), 15, "the Simulate menu")
        time.sleep(2.5)  # a person's pace (see the test above)
        desktop.dbusmenu_click("nightly restart:")
        words = "IBKR nightly restart until … — no action needed"  # in the local zone

        def restart_head() -> bool:
            return any(
                label.startswith("IBKR nightly restart until ")
                and label.endswith("— no action needed")
                for label in desktop.dbusmenu_labels()
            )

        wait_for(restart_head, 5, words, step=0.05)
        wait_for(lambda: desktop.sni_icon_name() == "cpgw-tray-maintenance", 3, "the restart icon")
        desktop.screenshot(shots / "nightly-restart.png")  # for the record
    finally:
        proc.terminate()
        proc.wait(5)
    assert "Traceback" not in log_path.read_text(errors="replace")
