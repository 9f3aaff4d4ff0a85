"""The settings file as a person sees it: the commented default file and the README's
table, both made from the settings table (:mod:`cpgw_tray.settings.table`, so they
cannot drift); creating that file, writing one key back without losing the person's
comments (tomlkit).

Imported by the tray at start: tomlkit is imported only where a key is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import textwrap
from pathlib import Path
from typing import Any

from .config import ConfigError, read_text
from .table import CHECKS, SETTINGS

HEADER = """\
cpgw-tray settings (TOML). Every key is commented out, so its default applies: remove
the "# " before a key to set it. `cpgw-tray config` shows what applies and where each
value comes from. Environment variables (CPGW_TRAY_<KEY>) and the command line win over
this file. A running tray applies a saved change within a few seconds, except for keys
marked "needs a restart". The menu's Notifications toggle and its choice for a competing
session write their keys here, keeping your comments.
"""


def toml_value(value: Any) -> str:
    """A value as it is written in TOML: ``true``, ``15``, ``"INFO"``, ``["a", "b"]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):  # a command, URLs, event kinds
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    return str(value)


def default_text() -> str:
    """The commented default file: every key documented and commented out."""
    out = [textwrap.indent(HEADER, "# ", lambda line: True).replace("# \n", "#\n")]
    for key in SETTINGS:
        value = key.default
        shown = toml_value(value) if value is not None else key.example
        default = f"Default: {key.unset or toml_value(value)}."
        restart = "" if key.live else " Needs a restart."
        text = f"{key.meaning} {default} Environment: {key.env}.{restart}"
        out.append("\n" + textwrap.fill(text, 86, initial_indent="# ", subsequent_indent="# "))
        out.append(f"\n# {key.name} = {shown}\n")
    return "".join(out)


def readme_table() -> str:
    """The README's table of keys, in Markdown."""
    rows = [
        "| key | meaning | default | environment | a running tray |",
        "|---|---|---|---|---|",
    ]
    for key in SETTINGS:
        default = key.unset or f"`{toml_value(key.default)}`"
        applies = "applies it" if key.live else "needs a restart"
        rows.append(f"| `{key.name}` | {key.meaning} | {default} | `{key.env}` | {applies} |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------ writing


def init_file(path: Path) -> bool:
    """Write the default file; False (and nothing written) if the file exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8", newline="") as handle:
            handle.write(default_text())
    except FileExistsError:
        return False
    return True


def set_key(path: Path, name: str, value: Any) -> None:
    """Save one key, keeping everything else in the file as the person wrote it: its
    comments, its line endings, its multi-line strings. A key only present commented out
    (as in the default file) is set on that line, under its documentation, keeping the
    line's note. A missing file is first created from the default. A hand edit saved
    while this writes is kept: the write goes ahead only over the content it was made
    from (else the key is applied again to the new content). Every refusal is a
    :class:`ConfigError` that says why: a file whose owner has no write permission is
    left alone."""
    if name not in CHECKS:
        raise ConfigError(f"unknown key '{name}'")
    try:
        CHECKS[name](value)
    except ValueError as exc:
        raise ConfigError(f"bad value for '{name}': {exc}") from None
    try:
        target = path.resolve()  # a symlinked file (dotfiles) stays a symlink
        for _ in range(CAS_TRIES):
            before = _current(target)
            text = _with_key(before if before is not None else default_text(), name, value, path)
            if _replace(target, text, before):
                return
    except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
        raise ConfigError(f"cannot save '{name}' to {path}: {_why(exc)}") from None
    raise ConfigError(f"cannot save '{name}': {path} keeps changing while it is written; try again")


CAS_TRIES = 3


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _current(target: Path) -> str | None:
    """The file's text (None: there is none), refusing one its owner may not write."""
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return None
    if not mode & stat.S_IWUSR:  # the bits, not access(): root may write anything
        raise ConfigError(
            f"{target} is read-only (its owner has no write permission): left alone; "
            "make it writable or change it by hand"
        )
    return read_text(target, "config file")


def _with_key(text: str, name: str, value: Any, path: Path) -> str:
    """``text`` with ``name`` set, in the file's own line endings."""
    import tomlkit
    from tomlkit.exceptions import ParseError
    from tomlkit.items import Item

    crlf = "\r\n" in text
    plain = text.replace("\r\n", "\n") if crlf else text
    try:
        doc = tomlkit.parse(plain)
    except ParseError as exc:
        raise ConfigError(
            f"cannot save '{name}': config file {path} line {exc.line}: {exc}"
        ) from None
    commented = None if name in doc else _commented(plain, name)
    if commented is not None:
        start, end = commented
        line = plain[start:end].lstrip()[1:].lstrip(" \t")  # the key's line, uncommented
        note = ""
        try:
            item = tomlkit.parse(line).item(name)
            if isinstance(item, Item) and item.trivia.comment:
                note = item.trivia.comment_ws + item.trivia.comment
        except (ParseError, KeyError):
            pass  # a sketch of a value, not TOML: the line is set, nothing to keep
        new = f"{name} = {tomlkit.item(value).as_string()}{note}"
        out = plain[:start] + new + plain[end:]
    else:
        doc[name] = value
        out = tomlkit.dumps(doc)
    return out.replace("\n", "\r\n") if crlf else out


def _commented(text: str, name: str) -> tuple[int, int] | None:
    """Where ``name``'s commented line is (``# name = …``), never inside a multi-line
    string."""
    pattern = re.compile(rf"[ \t]*#[ \t]*{re.escape(name)}[ \t]*=.*")
    at = 0
    for line, outside in zip(text.split("\n"), _line_starts_outside(text), strict=True):
        if outside and pattern.fullmatch(line):
            return at, at + len(line)
        at += len(line) + 1
    return None


def _line_starts_outside(text: str) -> list[bool]:
    """For each line: whether it begins outside a multi-line string (TOML's triple
    quotes), found by reading the strings and comments of each line."""
    starts = []
    inside: str | None = None  # the open multi-line string's quotes
    for line in text.split("\n"):
        starts.append(inside is None)
        i = 0
        while i < len(line):
            if inside is not None:
                if inside == '"""' and line[i] == "\\":
                    i += 2
                elif line.startswith(inside, i):
                    i += 3
                    while i < len(line) and line[i] == inside[0]:  # """"" closes late
                        i += 1
                    inside = None
                else:
                    i += 1
            elif line[i] == "#":
                break
            elif line.startswith(('"""', "'''"), i):
                inside, i = line[i : i + 3], i + 3
            elif line[i] in "\"'":
                quote, i = line[i], i + 1
                while i < len(line) and line[i] != quote:
                    i += 2 if quote == '"' and line[i] == "\\" else 1
                i += 1
            else:
                i += 1
    return starts


def _replace(path: Path, text: str, before: str | None) -> bool:
    """Write ``path`` atomically (a reader never sees half a file), keeping its mode,
    only if it still holds ``before`` (None: no file); False when it changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(text.encode("utf-8"))
        if path.exists():
            shutil.copymode(path, temp)
        if _current(path) != before:
            return False  # a hand edit saved meanwhile: apply the key to it instead
        os.replace(temp, path)
        return True
    finally:
        temp.unlink(missing_ok=True)


def remove_stale_temps(path: Path) -> list[Path]:
    """Remove the temporary files a save killed midway left beside the settings file
    (``.config.toml.PID.tmp`` of a process that no longer runs); those removed."""
    import psutil

    removed = []
    with contextlib.suppress(OSError, RuntimeError):
        target = path.resolve()
        for temp in target.parent.glob(f".{target.name}.*.tmp"):
            pid = temp.name[len(target.name) + 2 : -len(".tmp")]
            if pid.isdigit() and (int(pid) == os.getpid() or not psutil.pid_exists(int(pid))):
                with contextlib.suppress(OSError):
                    temp.unlink()
                    removed.append(temp)
    return removed
