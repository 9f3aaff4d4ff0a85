"""A diagnostics bundle to send to support: versions, settings, the doctor's verdicts,
the last 500 lines of our log and of the gateway's, and the history — with passwords,
``sslPwd``, session ids and account ids removed. Nothing else goes in."""

from __future__ import annotations

import json
import platform
import re
import sys
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .config import Config

TAIL_LINES = 500
TAIL_BYTES = 512 * 1024  # 500 log lines fit; a huge log is never read whole
PACKAGES = ("pystray", "pillow", "requests", "urllib3", "psutil", "platformdirs", "PyYAML")

_SECRETS = [
    # key: value pairs in YAML, TOML, JSON, query strings and headers
    (
        re.compile(
            r"""(?i)(["']?(?:sslPwd|password|passwd|pwd|secret|token|cookie|authorization)"""
            r"""["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}]+)"""
        ),
        r"\1<removed>",
    ),
    (re.compile(r"(?i)(\"session\"\s*:\s*)\"[^\"]*\""), r'\1"<removed>"'),
    (re.compile(r"\b[0-9a-f]{32}\b"), "<session-id>"),  # the gateway's session ids
    (re.compile(r"\b(?:DU|DF|U|F)\d{5,9}\b"), "<account>"),  # IBKR account ids
    (re.compile(r"(?i)(\"userId\"\s*:\s*)\d+"), r"\1<removed>"),
    (re.compile(r"(https?://)[^/@\s]+@"), r"\1<removed>@"),  # user:password@ in URLs
]


def redact(text: str) -> str:
    """``text`` without passwords, session ids or account ids."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


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

    from . import __version__

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


def write_bundle(
    target: Path,
    config: Config,
    verdicts: Sequence[str],
    logs: Sequence[tuple[str, Path]],
    history: Path | None,
) -> Path:
    """Write the zip (``verdicts``: the doctor's lines); every text in it passes
    :func:`redact`."""
    settings = {k: v for k, v in asdict(config).items() if v is not None}
    made = datetime.now(timezone.utc).isoformat(timespec="seconds")
    parts = {
        "README.txt": f"cpgw-tray diagnostics, made {made}. Secrets and account ids removed.\n",
        "versions.txt": versions(),
        "settings.json": json.dumps(settings, indent=2, default=str) + "\n",
        "doctor.txt": "\n".join(verdicts) + "\n",
    }
    for name, path in logs:
        parts[name] = tail(path)
    if history is not None and history.exists():
        parts["history.jsonl"] = tail(history, 2000)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        for name, text in parts.items():
            bundle.writestr(name, redact(text))
    return target
