"""The settings file as a person sees it: every key documented in one table, from which
both the commented default file and the README's table are made (so they cannot drift);
creating that file, writing one key back without losing the person's comments
(tomlkit).

Imported by the tray at start: tomlkit is imported only where a key is written.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import textwrap
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import Any

from .config import CHECKS, Config, ConfigError, read_text
from .constants import ENV_PREFIX


@dataclass(frozen=True)
class Doc:
    """One key's documentation. ``example`` is a TOML value shown where the default is
    unset; ``unset`` says what applies when the key is not set, where that is more than
    a value; ``restart``: a running tray does not apply a change (it keeps the value it
    started with)."""

    meaning: str
    restart: bool = False
    example: str | None = None
    unset: str | None = None


DOCS: dict[str, Doc] = {
    "url": Doc(
        "The gateway's root URL; `/v1/api/` is appended.",
        restart=True,
        unset="from the `root/conf.yaml` of `gateway_dir` (or of the folder found as "
        "`gateway_dir` says), else `https://127.0.0.1:5000`",
    ),
    "timeout": Doc("Seconds to wait for a reply before the gateway counts as not responding."),
    "ca_bundle": Doc(
        "Verify the gateway's TLS certificate against this CA or certificate file.",
        restart=True,
        example='"~/gateway-ca.pem"',
        unset="none (see `insecure`)",
    ),
    "insecure": Doc(
        "Do not verify the gateway's TLS certificate.",
        restart=True,
        example="false",
        unset="not verified for a loopback host (the gateway's certificate is "
        "self-signed), verified for any other host",
    ),
    "interval": Doc("Seconds between checks."),
    "keepalive": Doc(
        "Seconds between keep-alive tickles while a session exists; 0 turns them off "
        "(IBKR drops an idle session after about 6 minutes)."
    ),
    "gateway_dir": Doc(
        "The `clientportal.gw` folder, for starting and stopping the gateway; its "
        "`root/conf.yaml` gives the port and scheme when `url` is not set.",
        restart=True,
        example='"~/clientportal.gw"',
        unset="looked for in `~/clientportal.gw`, `~/Downloads/clientportal.gw`, "
        "`~/gateway`, `~/clientportal`, `~/ibkr/clientportal.gw` and `/opt/clientportal.gw`",
    ),
    "notifications": Doc(
        "Desktop notifications when the session becomes ready or stops being ready "
        "(the menu's Notifications toggle saves this key)."
    ),
    "open_browser_on_launch": Doc(
        "Open the login page once a gateway started from the menu is ready.", restart=True
    ),
    "auto_restart": Doc(
        "Start a gateway launched by cpgw-tray again when it exits by itself, after a "
        "growing pause.",
        restart=True,
    ),
    "auto_reauth": Doc(
        "Reauthenticate the brokerage session when the gateway is logged in but the "
        "session is not (never when another session competes), at most once per 5 minutes."
    ),
    "launch_timeout": Doc("Seconds to wait for a launched gateway to listen.", restart=True),
    "region": Doc(
        "IBKR's region for its restart windows: `na`, `eu`, `ap`, or `auto` (from this "
        "computer's UTC offset; the menu and `status --json` say which was assumed).",
        restart=True,
    ),
    "reset_timezone": Doc(
        "Deprecated: read as a region when `region` is not set (America/New_York → na, "
        "Europe/Zurich → eu, Asia/Hong_Kong → ap, anything else → auto).",
        restart=True,
        example='"America/New_York"',
        unset="not used",
    ),
    "restart_windows": Doc(
        "Know IBKR's restart windows: a drop inside one shows as expected, with no "
        "automatic reauthentication and slower checks; false ignores them (should IBKR "
        "change its timetable before cpgw-tray does).",
        restart=True,
    ),
    "login_reminder": Doc(
        "Seconds between reminders while IBKR needs you to log in (after a session that was "
        "ready drops, or after the weekly token reset), at most 6 an episode, none inside "
        "IBKR's restart windows; 0 turns the reminders off (the first notice still comes)."
    ),
    "on_competing": Doc(
        "When TWS, the phone or the web takes the session over: `leave` (tell you and offer "
        "*Take the session over*), `take_back` (at once) or `take_back_after` (after "
        "`compete_after` seconds). Never more than one takeover per 5 minutes, never inside "
        "a restart window or a pause (the menu's radio group saves this key)."
    ),
    "compete_after": Doc(
        "With `on_competing` set to `take_back_after`: seconds to wait before taking the "
        "session back (the menu counts down and offers *Leave it this time*)."
    ),
    "log_level": Doc("Detail in the log file: DEBUG, INFO, WARNING or ERROR.", restart=True),
    "serve": Doc(
        "Serve `/livez`, `/readyz`, `/status` and `/metrics` for bots and probes on `PORT`, "
        "`HOST:PORT` or `[V6]:PORT` (loopback when no host is given); `--serve` does the "
        "same for one run.",
        restart=True,
        example='"127.0.0.1:5001"',
        unset="off",
    ),
    "serve_hosts": Doc(
        "More names the health endpoint answers to on a loopback bind (a reverse proxy's or "
        "an SSH tunnel's `Host`), besides localhost, 127.0.0.1, [::1] and the bound address; "
        "any other `Host` gets 421, against DNS rebinding; `--serve-host NAME` "
        "(repeatable) sets them for one run.",
        restart=True,
        example='["health.example.lan"]',
        unset="none",
    ),
    "on_change": Doc(
        "A command run at each state change: a list of strings, or one string split like a "
        "shell would (no shell runs it); `--exec` does the same for one run.",
        restart=True,
        example='["/home/me/bin/on-gateway-change"]',
        unset="none",
    ),
    "hook_timeout": Doc(
        "Seconds an `on_change` or `on_event` command may run before it is killed with its "
        "process group; a phone or chat message taking longer is abandoned (and retried).",
        restart=True,
    ),
    "on_event": Doc(
        "A command run once for each event (`login_needed`, `take_over`, … see *Events*), "
        "in order, never collapsed: env `CPGW_EVENT`, `CPGW_MESSAGE`, `CPGW_AT`, the "
        "event's JSON on stdin; `--on-event` does the same for one run.",
        restart=True,
        example='["/home/me/bin/on-gateway-event"]',
        unset="none",
    ),
    "notify_urls": Doc(
        "Phone and chat messages through Apprise URLs (`ntfy://topic`, `tgram://token/chat`, "
        "`pover://user@token`, `json://host/path`, …; needs `pip install "
        "'cpgw-tray[notify]'`); `--notify URL` adds one for one run. Shown redacted.",
        restart=True,
        unset="none",
    ),
    "notify_on": Doc(
        'The events that go to `notify_urls` (see *Events*); `["all"]` sends every event '
        "and every state change.",
        restart=True,
    ),
    "notify_quiet": Doc(
        'Local hours such as `"23:00-07:00"` when messages wait, to go out as one summary '
        "after; a login needed in the hour before IBKR's weekly token reset still goes.",
        restart=True,
        example='"23:00-07:00"',
        unset="none",
    ),
    "push": Doc(
        "Also hold the gateway's websocket while a session exists: a dropped session shows "
        "within a second (checked by auth/status), IBKR's bulletins are shown once each, "
        "checks slow to min(4 × interval, 300 s) while it is connected and ready; "
        "`--push` does the same for one run (`tray`, `watch`).",
        restart=True,
    ),
}

RESTART_KEYS = frozenset(name for name, doc in DOCS.items() if doc.restart)

HEADER = """\
cpgw-tray settings (TOML). Every key is commented out, so its default applies: remove
the "# " before a key to set it. `cpgw-tray config` shows what applies and where each
value comes from. Environment variables (CPGW_TRAY_<KEY>) and the command line win over
this file. A running tray applies a saved change within a few seconds, except for keys
marked "needs a restart". The menu's Notifications toggle and its choice for a competing
session write their keys here, keeping your comments.
"""


def env_var(name: str) -> str:
    return ENV_PREFIX + name.upper()


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


def defaults() -> dict[str, Any]:
    """Each documented key's default (``None``: unset)."""
    found = {f.name: f.default for f in fields(Config) if f.name in DOCS}
    return {name: None if value is MISSING else value for name, value in found.items()}


def default_text() -> str:
    """The commented default file: every key documented and commented out."""
    out = [textwrap.indent(HEADER, "# ", lambda line: True).replace("# \n", "#\n")]
    for name, value in defaults().items():
        doc = DOCS[name]
        shown = toml_value(value) if value is not None else doc.example
        default = f"Default: {doc.unset or toml_value(value)}."
        restart = " Needs a restart." if doc.restart else ""
        text = f"{doc.meaning} {default} Environment: {env_var(name)}.{restart}"
        out.append("\n" + textwrap.fill(text, 86, initial_indent="# ", subsequent_indent="# "))
        out.append(f"\n# {name} = {shown}\n")
    return "".join(out)


def readme_table() -> str:
    """The README's table of keys, in Markdown."""
    rows = [
        "| key | meaning | default | environment | a running tray |",
        "|---|---|---|---|---|",
    ]
    for name, value in defaults().items():
        doc = DOCS[name]
        default = doc.unset or f"`{toml_value(value)}`"
        applies = "needs a restart" if doc.restart else "applies it"
        rows.append(f"| `{name}` | {doc.meaning} | {default} | `{env_var(name)}` | {applies} |")
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
