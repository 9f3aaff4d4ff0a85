"""A diagnostics bundle to send to support: versions, settings, the doctor's verdicts,
the last 500 lines of our log and of the gateway's, and the history.

Settings go in by allow-list: the keys in :data:`SAFE_KEYS` (numbers, booleans, choices)
with their values, the URL as scheme, host and port only, and every other key as a
shape ("a command of 6 arguments", "a path under ~"). Every text then passes a
:class:`~cpgw_tray.redaction.Redactor` that first learns the login names in all of them,
and the bundle's README says what was kept and what was removed, file by file.
"""

from __future__ import annotations

import json
import platform
import sys
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from ..redaction import REDACTOR, redact_notify_urls_in

if TYPE_CHECKING:
    from ..settings.config import Config

TAIL_LINES = 500
HISTORY_LINES = 2000
TAIL_BYTES = 512 * 1024  # 500 log lines fit; a huge log is never read whole
PACKAGES = ("pystray", "pillow", "requests", "urllib3", "psutil", "platformdirs", "PyYAML")
# Settings whose values are safe to show as they are: numbers, booleans, choices, the
# health endpoint's address. Any other key (a new one too) goes in as its shape.
SAFE_KEYS = frozenset(
    {
        "timeout",
        "insecure",
        "interval",
        "keepalive",
        "notifications",
        "open_browser_on_launch",
        "auto_restart",
        "auto_reauth",
        "launch_timeout",
        "region",
        "reset_timezone",
        "restart_windows",
        "login_reminder",
        "on_competing",
        "compete_after",
        "log_level",
        "serve",
        "hook_timeout",
    }
)
COMMANDS = frozenset({"on_change"})


def tail(path: Path, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of a file, reading at most :data:`TAIL_BYTES` from its end."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            data = handle.read()
    except OSError as exc:
        return f"(not readable: {exc.strerror or exc})\n"
    text = data.decode("utf-8", errors="replace")
    return "\n".join(text.splitlines()[-lines:]) + "\n"


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    found = [
        f"cpgw-tray {__version__}",
        f"python {sys.version.split()[0]} ({sys.executable})",
        f"platform {platform.platform()}",
    ]
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} not installed")
    return "\n".join(found) + "\n"


def path_shape(value: str) -> str:
    """Where a path is, without its names: "a path under ~ (exists)"."""
    path = Path(value).expanduser()
    home = Path.home()
    where = (
        "a path under ~"
        if path.is_absolute() and path.is_relative_to(home)
        else "an absolute path outside ~"
        if path.is_absolute()
        else "a relative path"
    )
    return f"{where} ({'exists' if path.exists() else 'missing'})"


def shape(key: str, value: Any) -> str:
    """A setting's value described without its content."""
    if isinstance(value, (list, tuple)):
        noun = "a command of" if key in COMMANDS else "a list of"
        unit = "argument" if key in COMMANDS else "value"
        return f"{noun} {len(value)} {unit}{'' if len(value) == 1 else 's'}"
    if isinstance(value, str) and "://" in value:
        return f"a {urlsplit(value).scheme or 'schemeless'} URL"
    if isinstance(value, str) and (value.startswith(("/", "~", ".")) or "\\" in value):
        return path_shape(value)
    return f"a {type(value).__name__} of {len(str(value))} characters"


def safe_url(url: str) -> str:
    """The URL's scheme, host and port: no user info, path or query."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}"


def settings_of(config: Config) -> tuple[dict[str, Any], dict[str, str]]:
    """(values kept, shapes) of the settings that are set."""
    from ..settings.config import KEYS

    data = asdict(config)
    kept: dict[str, Any] = {}
    shapes: dict[str, str] = {}
    for key in KEYS:
        value = data.get(key)
        if value is None:
            continue
        if key in SAFE_KEYS:
            kept[key] = value
        elif key == "url":
            kept[key] = safe_url(value)
        else:
            shapes[key] = shape(key, value)
    return kept, shapes


def readme(made: str, shapes: dict[str, str], removed: dict[str, Counter[str]]) -> str:
    """What the bundle holds, what was kept and what was removed, file by file."""
    lines = [
        f"cpgw-tray diagnostics, made {made}.",
        "",
        "Kept: versions of cpgw-tray, Python and its libraries (versions.txt); the doctor's",
        "verdicts (doctor.txt); the last 500 lines of our log and of each gateway's log; the",
        "last 2000 lines of the history; the settings that hold only numbers, true/false,",
        "choices and addresses, with their values, and the gateway URL's scheme, host and",
        'port (settings.json, "kept").',
        "",
        'Shown as a shape only, never the value (settings.json, "shapes"): '
        + (", ".join(sorted(shapes)) or "none set")
        + ".",
        "",
        "Removed from every file, and replaced by <removed>, <account>, <session-id> or",
        "<user>:",
    ]
    for name, counts in removed.items():
        said = "; ".join(f"{n} x {what}" for what, n in counts.most_common()) or "nothing"
        lines.append(f"- {name}: {said}")
    lines += ["", "Kinds of secrets looked for:"]
    lines += [f"- {s.name}" for s in REDACTOR.shapes]
    return "\n".join(lines) + "\n"


def write_bundle(
    target: Path,
    config: Config,
    verdicts: Sequence[str],
    logs: Sequence[tuple[str, Path]],
    history: Path | None,
) -> Path:
    """Write the zip (``verdicts``: the doctor's lines); every text in it passes the
    redactor, after the redactor has learnt the login names of all of them."""
    kept, shapes = settings_of(config)
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = {
        "versions.txt": versions(),
        "settings.json": json.dumps({"kept": kept, "shapes": shapes}, indent=2) + "\n",
        "doctor.txt": "\n".join(verdicts) + "\n",
    }
    for name, path in logs:
        parts[name] = tail(path)
    if history is not None and history.exists():
        parts["history.jsonl"] = tail(history, HISTORY_LINES)
    redactor = REDACTOR.copy()
    for url in config.notify_urls:
        redactor.add_url(url)
    for name, text in parts.items():  # a phone's URL nobody listed (an old log, a hook)
        parts[name] = redact_notify_urls_in(text)
    for text in parts.values():
        redactor.learn(text)
    removed: dict[str, Counter[str]] = {}
    for name, text in parts.items():
        parts[name], removed[name] = redactor.scrub(text)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("README.txt", readme(made, shapes, removed))
        for name, text in parts.items():
            bundle.writestr(name, text)
    return target
