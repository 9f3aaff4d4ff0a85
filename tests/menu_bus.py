"""The tray's dbusmenu seen from the bus, for the e2e tests and the soak benchmark: the
top-level rows as the panel reads them, and the ``LayoutUpdated`` /
``ItemsPropertiesUpdated`` signals the tray sends, counted with ``dbus-monitor`` on the
virtual desktop's session bus."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from typing import Any

from .desktop import Desktop, wait_for

DBUSMENU = "com.canonical.dbusmenu"
COUNTED = ("LayoutUpdated", "ItemsPropertiesUpdated")


def top_rows(desktop: Desktop) -> list[str]:
    """The menu's top-level rows in order over D-Bus: labels, "-" for a separator
    (empty while the item is not registered)."""
    address = desktop._menu_address()
    if address is None:
        return []
    service, path = address
    reply = desktop._busctl(
        "--json=short", "call", service, path, DBUSMENU, "GetLayout", "iias", "0", "1", "0"
    )
    if reply.returncode != 0:
        return []
    root = json.loads(reply.stdout)["data"][1]  # (id, properties, children)
    rows = []
    for child in root[2]:
        props = child["data"][1]
        if props.get("type", {}).get("data") == "separator":
            rows.append("-")
        else:
            rows.append(props.get("label", {}).get("data", ""))
    return rows


def about_to_show(desktop: Desktop) -> None:
    """What a panel calls as it opens the menu (the tray's countdowns start moving)."""
    service, path = wait_for(desktop._menu_address, 5, "the tray's menu on the bus")
    desktop._busctl("call", service, path, DBUSMENU, "AboutToShow", "i", "0")


class Signals:
    """dbus-monitor on the desktop's bus, the dbusmenu signals counted as they come."""

    def __init__(self, desktop: Desktop) -> None:
        rule = f"type='signal',interface='{DBUSMENU}'"
        self._proc = subprocess.Popen(
            ["dbus-monitor", "--session", rule],
            env=desktop.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.seen: list[tuple[float, str]] = []  # (monotonic, member)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            if line.startswith("signal ") and "member=" in line:
                member = line.rsplit("member=", 1)[1].strip()
                with self._lock:
                    self.seen.append((time.monotonic(), member))

    def mark(self) -> int:
        with self._lock:
            return len(self.seen)

    def since(self, mark: int) -> Counter[str]:
        """The signals counted since ``mark``, by member."""
        with self._lock:
            return Counter(member for _, member in self.seen[mark:] if member in COUNTED)

    def settled(self, quiet: float = 0.6, timeout: float = 5.0) -> None:
        """Wait until no signal came for ``quiet`` seconds (the tray's updates done)."""

        def calm() -> bool:
            with self._lock:
                last = self.seen[-1][0] if self.seen else 0.0
            return time.monotonic() - last >= quiet

        wait_for(calm, timeout, "the menu's signals to settle", step=0.1)

    def stop(self) -> Any:
        self._proc.terminate()
        return self._proc.wait(5)
