"""A virtual desktop for end-to-end tray tests: Xvfb, a private session bus and a real
tray host (trayer for XEmbed icons, xfce4-panel for StatusNotifier/AppIndicator ones).

Every process this starts is remembered and stopped in reverse order; helpers that the
private bus activated are found with ``busctl --user list`` and stopped too.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

HOSTS = {"trayer", "xfce4-panel"}
SETTLE = float(os.environ.get("CPGW_E2E_SETTLE", "0.5"))  # host owns the tray before it can embed
TOOLS = ["Xvfb", "dbus-daemon", "xdotool", "import", "busctl"]

XFCE_PANEL = """<?xml version="1.0" encoding="UTF-8"?>
<channel name="xfce4-panel" version="1.0">
  <property name="configver" type="int" value="2"/>
  <property name="panels" type="array">
    <value type="int" value="1"/>
    <property name="panel-1" type="empty">
      <property name="position" type="string" value="p=6;x=0;y=0"/>
      <property name="position-locked" type="bool" value="true"/>
      <property name="length" type="uint" value="100"/>
      <property name="size" type="uint" value="64"/>
      <property name="plugin-ids" type="array"><value type="int" value="1"/></property>
    </property>
  </property>
  <property name="plugins" type="empty">
    <property name="plugin-1" type="string" value="systray">
      <property name="icon-size" type="uint" value="48"/>
      <property name="square-icons" type="bool" value="true"/>
    </property>
  </property>
</channel>
"""


def missing_tools(host: str) -> list[str]:
    return [t for t in [*TOOLS, host] if shutil.which(t) is None]


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")


class Desktop:
    """Xvfb + session bus + tray host, in a private HOME and runtime dir."""

    def __init__(self, workdir: Path, host: str, align: str = "left") -> None:
        assert host in HOSTS
        self.workdir = workdir
        self.host = host
        self.align = align  # trayer's place on the top edge: left or right
        self.procs: list[subprocess.Popen[bytes]] = []
        self.host_log = workdir / "host.log"  # the tray host's log (the last started)
        home = workdir / "home"
        runtime = workdir / "xdg-run"
        for d in (home, runtime, workdir / "config", workdir / "cache", workdir / "state"):
            d.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        env = {
            k: v
            for k, v in os.environ.items()
            if k
            not in (
                "DBUS_SESSION_BUS_ADDRESS",
                "WAYLAND_DISPLAY",
                "SESSION_MANAGER",
                "DISPLAY",
                "PYSTRAY_BACKEND",
            )
        }
        env.update(
            HOME=str(home),
            XDG_RUNTIME_DIR=str(runtime),
            XDG_CONFIG_HOME=str(workdir / "config"),
            XDG_CACHE_HOME=str(workdir / "cache"),
            XDG_STATE_HOME=str(workdir / "state"),
            NO_AT_BRIDGE="1",
            GTK_THEME="Adwaita",
        )
        self.env = env

    # ---------------------------------------------------------------- lifecycle
    def _spawn(self, args: list[str], log_name: str, **kwargs: Any) -> subprocess.Popen[bytes]:
        log = open(self.workdir / log_name, "wb")  # noqa: SIM115 - lives as long as the process
        proc = subprocess.Popen(
            args,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **kwargs,
        )
        self.procs.append(proc)
        return proc

    def _reporting(self, name: str, args: Callable[[int], list[str]]) -> str:
        """Start a helper that reports on a file descriptor (Xvfb its display number,
        the bus its address); wait for the report."""
        path = self.workdir / name
        with open(path, "w") as out:
            proc = subprocess.Popen(
                args(out.fileno()),
                pass_fds=(out.fileno(),),
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            self.procs.append(proc)

        def report() -> str:
            text = path.read_text().strip()
            if not text and proc.poll() is not None:
                raise ChildProcessError(f"{name}: ended with {proc.returncode} before a report")
            return text

        return str(wait_for(report, 10, name))

    def start(self) -> Desktop:
        """Start the display, the bus and the tray host; what a failed start left running
        is stopped before the error goes on (a fixture never sees a half-started one)."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> Desktop:
        number = self._display()
        self.env["DISPLAY"] = f":{number}"
        address = self._reporting(
            "bus",
            lambda fd: [
                "dbus-daemon",
                "--session",
                "--nofork",
                "--nopidfile",
                f"--print-address={fd}",
            ],
        )
        self.env["DBUS_SESSION_BUS_ADDRESS"] = address.splitlines()[0]
        for attempt in range(3):
            host = self._host(attempt)
            wait_for(
                lambda host=host: self._tray_owned() or host.poll() is not None,
                30,
                "the tray selection _NET_SYSTEM_TRAY_S0",
            )
            if host.poll() is None:
                break
            # seen under load: the host ended at once ("cannot open display") although
            # the display answers; start it again rather than wait for a dead one
        else:
            raise TimeoutError("the tray host ended 3 times before taking the tray")
        time.sleep(SETTLE)
        return self

    def _host(self, attempt: int) -> subprocess.Popen[bytes]:
        """Start the tray host, logging to :attr:`host_log` (``host.log``, then
        ``host-1.log``… for a host started again)."""
        log_name = f"host-{attempt}.log" if attempt else "host.log"
        self.host_log = self.workdir / log_name
        if self.host == "xfce4-panel":
            conf = Path(self.env["XDG_CONFIG_HOME"]) / "xfce4/xfconf/xfce-perchannel-xml"
            conf.mkdir(parents=True, exist_ok=True)
            (conf / "xfce4-panel.xml").write_text(XFCE_PANEL)
            panel = self._spawn(["xfce4-panel", "--disable-wm-check"], log_name)
            wait_for(
                lambda: (
                    panel.poll() is not None
                    or self._busctl("status", "org.kde.StatusNotifierWatcher").returncode == 0
                ),
                15,
                "StatusNotifierWatcher",
                step=0.1,
            )
            return panel
        return self._spawn(
            [
                "trayer",
                "--edge",
                "top",
                "--align",
                self.align,
                "--widthtype",
                "request",
                "--height",
                "64",
                "--heighttype",
                "pixel",
                "--SetDockType",
                "true",
                "--transparent",
                "false",
                "--tint",
                "0x000000",
            ],
            log_name,
        )

    def _display(self) -> str:
        """Start Xvfb on a display number of its own. Never the lowest free one: with
        test runs side by side (pytest-xdist), a number one desktop just gave up is taken
        again at once, and the old server, still ending, removes the new one's socket
        (seen as "cannot open display :0"). A number taken meanwhile fails: try another."""
        for attempt in range(5):
            number = random.randrange(100, 30000)
            if Path(f"/tmp/.X{number}-lock").exists():
                continue
            try:
                return self._reporting(
                    f"display-{attempt}",
                    lambda fd, n=number: [
                        "Xvfb",
                        f":{n}",
                        "-displayfd",
                        str(fd),
                        "-screen",
                        "0",
                        "1024x768x24",
                        "-nolisten",
                        "tcp",
                    ],
                )
            except ChildProcessError:  # that number was taken in between
                continue
        raise TimeoutError("Xvfb found no free display number in 5 tries")

    def _tray_owned(self) -> bool:
        from Xlib import display

        d = display.Display(self.env["DISPLAY"])
        try:
            return bool(d.get_selection_owner(d.intern_atom("_NET_SYSTEM_TRAY_S0")))
        finally:
            d.close()

    def _busctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["busctl", "--user", *args], env=self.env, capture_output=True, text=True, timeout=10
        )

    def stop(self) -> None:
        helpers: list[int] = []
        if "DBUS_SESSION_BUS_ADDRESS" in self.env:
            listing = self._busctl("--no-legend", "list")
            for line in listing.stdout.splitlines():
                fields = line.split()
                if len(fields) > 2 and fields[1].isdigit() and fields[2] != "busctl":
                    helpers.append(int(fields[1]))
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for pid in set(helpers) - {os.getpid()}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    # ---------------------------------------------------------------- looking and clicking
    def screenshot(self, path: Path) -> Image.Image:
        subprocess.run(
            ["import", "-window", "root", str(path)], env=self.env, check=True, timeout=10
        )
        return Image.open(path).convert("RGB")

    def click(self, x: int, y: int, button: int = 1) -> None:
        subprocess.run(
            ["xdotool", "mousemove", str(x), str(y), "click", str(button)],
            env=self.env,
            check=True,
            timeout=10,
        )

    def move_away(self) -> None:
        subprocess.run(
            ["xdotool", "mousemove", "1000", "740"], env=self.env, check=True, timeout=10
        )

    def _sni_property(self, name: str) -> tuple[str, str] | None:
        """(bus name, value of ``name``) of the first StatusNotifierItem (appindicator);
        None while no item is registered (it re-registers now and then)."""
        items = self._busctl(
            "get-property",
            "org.kde.StatusNotifierWatcher",
            "/StatusNotifierWatcher",
            "org.kde.StatusNotifierWatcher",
            "RegisteredStatusNotifierItems",
        )
        quoted = items.stdout.split('"')
        if len(quoted) < 2:
            return None
        service, path = quoted[1].split("/", 1)
        reply = self._busctl(
            "get-property", service, "/" + path, "org.kde.StatusNotifierItem", name
        )
        value = reply.stdout.split('"')  # 'o "/MenuBar"' or 's "cpgw-tray-ready"'
        return (service, value[1]) if len(value) > 1 else None

    def _menu_address(self) -> tuple[str, str] | None:
        """(bus name, menu object path) of the tray's StatusNotifierItem, or None."""
        return self._sni_property("Menu")

    def sni_icon_name(self) -> str | None:
        """The icon name the tray publishes on its StatusNotifierItem (appindicator)."""
        found = self._sni_property("IconName")
        return found[1] if found else None

    def dbusmenu_items(self) -> list[tuple[int, str]]:
        """(id, label) of every entry of the tray's menu, submenus included, over D-Bus."""
        address = self._menu_address()
        if address is None:
            return []
        service, menu_path = address
        layout = self._busctl(
            "--json=short",
            "call",
            service,
            menu_path,
            "com.canonical.dbusmenu",
            "GetLayout",
            "iias",
            "0",
            "--",
            "-1",
            "0",
        )
        found: list[tuple[int, str]] = []

        def walk(node: Any) -> None:
            if (
                isinstance(node, list)
                and len(node) == 3
                and isinstance(node[0], int)
                and isinstance(node[1], dict)
            ):
                label = node[1].get("label", {}).get("data")
                if isinstance(label, str):
                    found.append((node[0], label))
                for child in node[2]:
                    walk(child.get("data") if isinstance(child, dict) else child)
            elif isinstance(node, dict):
                walk(node.get("data"))
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        if layout.returncode != 0:  # the item went away between the two calls
            return []
        walk(json.loads(layout.stdout))
        return found

    def dbusmenu_labels(self) -> list[str]:
        return [label for _, label in self.dbusmenu_items()]

    def dbusmenu_click(self, label_start: str, nth: int = 0) -> None:
        """Activate the (``nth``, from 0) menu entry whose label starts with
        ``label_start``, as a click does."""
        service, menu_path = wait_for(self._menu_address, 5, "the tray's menu on the bus")
        ids = [
            i
            for i, label in self.dbusmenu_items()
            if label.replace("__", "_").startswith(label_start)
        ]
        assert len(ids) > nth, f"no menu entry {label_start!r} in {self.dbusmenu_labels()}"
        result = self._busctl(
            "call",
            service,
            menu_path,
            "com.canonical.dbusmenu",
            "Event",
            "isvu",
            str(ids[nth]),
            "clicked",
            "s",
            "",
            "0",
        )
        assert result.returncode == 0, result.stderr


def colour_box(
    image: Image.Image,
    rgb: tuple[int, int, int],
    tolerance: int = 10,
    top: int = 120,
    minimum: int = 100,
) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1) of pixels near ``rgb`` in the top strip, if enough."""
    strip = image.crop((0, 0, image.width, min(image.height, top)))
    bands = [
        band.point(lambda v, c=c: 255 if abs(v - c) <= tolerance else 0)
        for band, c in zip(strip.split(), rgb, strict=True)
    ]
    mask = ImageChops.multiply(ImageChops.multiply(bands[0], bands[1]), bands[2])
    if mask.histogram()[255] < minimum:
        return None
    return mask.getbbox()


def changed_region(
    before: Image.Image, after: Image.Image, below: int
) -> tuple[int, int, int, int] | None:
    """Where ``after`` differs from ``before`` below row ``below`` (a popup menu)."""
    diff = ImageChops.difference(after, before).convert("L").point(lambda v: 255 if v > 16 else 0)
    diff.paste(0, (0, 0, diff.width, below))
    return diff.getbbox()


def ocr_lines(image: Image.Image, workdir: Path, scale: int = 3) -> list[tuple[str, int, int]]:
    """Text lines in ``image`` with their centre points, by tesseract."""
    big = image.resize(
        (image.width * scale, image.height * scale), Image.Resampling.LANCZOS
    ).convert("L")
    # Dark on light: greyed-out rows (grey on a light grey popup) are easy to miss
    # for tesseract unless made black.
    big = big.point(lambda v: 0 if v < 200 else 255)
    path = workdir / "ocr.png"
    big.save(path)
    tsv = subprocess.run(
        ["tesseract", str(path), "-", "--psm", "6", "tsv"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    lines: dict[int, list[tuple[str, int, int, int, int]]] = {}
    for row in tsv.splitlines()[1:]:
        f = row.split("\t")
        if len(f) == 12 and f[11].strip():
            left, top, width, height = (int(v) // scale for v in f[6:10])
            lines.setdefault(int(f[4]) * 1000 + int(f[2]) * 100 + int(f[3]), []).append(
                (f[11], left, top, width, height)
            )
    out = []
    for _, words in sorted(lines.items()):
        text = " ".join(w[0] for w in words)
        cx = (words[0][1] + words[-1][1] + words[-1][3]) // 2
        cy = words[0][2] + words[0][4] // 2
        out.append((text, cx, cy))
    return out
