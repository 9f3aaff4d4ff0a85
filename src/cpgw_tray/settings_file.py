"""The settings file as a person sees it: every key documented in one table, from which
both the commented default file and the README's table are made (so they cannot drift);
creating that file, writing one key back without losing the person's comments
(tomlkit).

Imported by the tray at start: tomlkit is imported only where a key is written.
"""

from __future__ import annotations

import os
import re
import shutil
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
    "on_change": Doc(
        "A command run at each state change: a list of strings, or one string split like a "
        "shell would (no shell runs it); `--exec` does the same for one run.",
        restart=True,
        example='["/home/me/bin/on-gateway-change"]',
        unset="none",
    ),
    "hook_timeout": Doc(
        "Seconds an `on_change` command may run before it is killed with its process group.",
        restart=True,
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
    if isinstance(value, (list, tuple)):  # a command: on_change
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
    """Save one key, keeping everything else in the file as the person wrote it. A key
    only present commented out (as in the default file) is set on that line, under its
    documentation. A missing file is first created from the default."""
    import tomlkit
    from tomlkit.exceptions import ParseError

    if name not in CHECKS:
        raise ConfigError(f"unknown key '{name}'")
    try:
        CHECKS[name](value)
    except ValueError as exc:
        raise ConfigError(f"bad value for '{name}': {exc}") from None
    target = path.resolve()  # a symlinked file (dotfiles) stays a symlink
    text = read_text(target, "config file") if target.exists() else default_text()
    try:
        doc = tomlkit.parse(text)
    except ParseError as exc:
        raise ConfigError(
            f"cannot save '{name}': config file {path} line {exc.line}: {exc}"
        ) from None
    commented = re.search(rf"^#[ \t]*{re.escape(name)}[ \t]*=.*$", text, re.MULTILINE)
    if name not in doc and commented is not None:
        line = f"{name} = {tomlkit.item(value).as_string()}"
        text = text[: commented.start()] + line + text[commented.end() :]
    else:
        doc[name] = value
        text = tomlkit.dumps(doc)
    _replace(target, text)


def _replace(path: Path, text: str) -> None:
    """Write ``path`` atomically (a reader never sees half a file), keeping its mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temp.write_bytes(text.encode("utf-8"))
        if path.exists():
            shutil.copymode(path, temp)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
