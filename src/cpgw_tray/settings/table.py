"""The settings table: every key declared once — its type, check, default, meaning, flag
and whether a running tray applies a change (``live``) or needs a restart. Everything
else is derived from it: :mod:`cpgw_tray.settings.config`'s checks and flag names, the commented
default file and the README's table (:mod:`cpgw_tray.settings.file`), the environment
names, the shared options read from the command line (:mod:`cpgw_tray.cli.options`) and the
keys the tray applies while running (:meth:`cpgw_tray.care.pipeline.Pipeline.reconfigure`).
:class:`~cpgw_tray.settings.config.Config` keeps a field per key (a test holds them equal).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..constants import ENV_PREFIX
from .checks import (
    as_addr,
    as_bool,
    as_command,
    as_competing,
    as_dir,
    as_file,
    as_hosts,
    as_level,
    as_number,
    as_region,
    as_url,
    as_zone,
)
from .values import check_kinds, check_quiet, check_urls

DEFAULT_URL = "https://127.0.0.1:5000"
NOTIFY_ON = ("login_needed", "login_reminder", "competing", "take_over", "dropped", "logged_in")


# ---------------------------------------------------------------------------- the table


@dataclass(frozen=True)
class Setting:
    """One key. ``kind``: its type as :class:`~cpgw_tray.settings.config.Config` declares it;
    ``check``: turns a value from any source into the setting or raises ValueError;
    ``example``: a TOML value shown where the default is unset; ``unset``: what applies
    when the key is not set, where that is more than a value; ``flag``: its command-line
    option, if any; ``live``: a running tray applies a saved change (else it keeps the
    value it started with)."""

    name: str
    kind: str
    check: Callable[[Any], Any]
    default: Any
    meaning: str
    live: bool = True
    example: str | None = None
    unset: str | None = None
    flag: str | None = None

    @property
    def env(self) -> str:
        """Its environment variable: ``CPGW_TRAY_<KEY>``."""
        return ENV_PREFIX + self.name.upper()


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "url",
        "str",
        as_url,
        DEFAULT_URL,
        "The gateway's root URL; `/v1/api/` is appended.",
        live=False,
        unset="from the `root/conf.yaml` of `gateway_dir` (or of the folder found as "
        "`gateway_dir` says), else `https://127.0.0.1:5000`",
        flag="--url",
    ),
    Setting(
        "timeout",
        "float",
        as_number(0.1, 600),
        10.0,
        "Seconds to wait for a reply before the gateway counts as not responding.",
        flag="--timeout",
    ),
    Setting(
        "ca_bundle",
        "str | None",
        as_file,
        None,
        "Verify the gateway's TLS certificate against this CA or certificate file.",
        live=False,
        example='"~/gateway-ca.pem"',
        unset="none (see `insecure`)",
        flag="--ca-bundle",
    ),
    Setting(
        "insecure",
        "bool | None",
        as_bool,
        None,
        "Do not verify the gateway's TLS certificate.",
        live=False,
        example="false",
        unset="not verified for a loopback host (the gateway's certificate is "
        "self-signed), verified for any other host",
        flag="--insecure",
    ),
    Setting(
        "interval",
        "float",
        as_number(1, 86400),
        15.0,
        "Seconds between checks.",
        flag="--interval",
    ),
    Setting(
        "keepalive",
        "float",
        as_number(1, 3600, zero_ok=True),
        60.0,
        "Seconds between keep-alive tickles while a session exists; 0 turns them off "
        "(IBKR drops an idle session after about 6 minutes).",
        flag="--keepalive",
    ),
    Setting(
        "gateway_dir",
        "str | None",
        as_dir,
        None,
        "The `clientportal.gw` folder, for starting and stopping the gateway; its "
        "`root/conf.yaml` gives the port and scheme when `url` is not set.",
        live=False,
        example='"~/clientportal.gw"',
        unset="looked for in `~/clientportal.gw`, `~/Downloads/clientportal.gw`, "
        "`~/gateway`, `~/clientportal`, `~/ibkr/clientportal.gw` and `/opt/clientportal.gw`",
    ),
    Setting(
        "notifications",
        "bool",
        as_bool,
        True,
        "Desktop notifications when the session becomes ready or stops being ready "
        "(the menu's Notifications toggle saves this key).",
    ),
    Setting(
        "open_browser_on_launch",
        "bool",
        as_bool,
        True,
        "Open the login page once a gateway started from the menu is ready.",
        live=False,
    ),
    Setting(
        "auto_restart",
        "bool",
        as_bool,
        False,
        "Start a gateway launched by cpgw-tray again when it exits by itself, after a "
        "growing pause.",
        live=False,
    ),
    Setting(
        "auto_reauth",
        "bool",
        as_bool,
        True,
        "Reauthenticate the brokerage session when the gateway is logged in but the "
        "session is not (never when another session competes), at most once per 5 minutes.",
    ),
    Setting(
        "launch_timeout",
        "float",
        as_number(1, 3600),
        60.0,
        "Seconds to wait for a launched gateway to listen.",
        live=False,
    ),
    Setting(
        "region",
        "str",
        as_region,
        "auto",
        "IBKR's region for its restart windows: `na`, `eu`, `ap`, or `auto` (from this "
        "computer's UTC offset; the menu and `status --json` say which was assumed).",
        live=False,
    ),
    Setting(
        "reset_timezone",
        "str | None",
        as_zone,
        None,
        "Deprecated: read as a region when `region` is not set (America/New_York → na, "
        "Europe/Zurich → eu, Asia/Hong_Kong → ap, anything else → auto).",
        live=False,
        example='"America/New_York"',
        unset="not used",
    ),
    Setting(
        "restart_windows",
        "bool",
        as_bool,
        True,
        "Know IBKR's restart windows: a drop inside one shows as expected, with no "
        "automatic reauthentication and slower checks; false ignores them (should IBKR "
        "change its timetable before cpgw-tray does).",
        live=False,
    ),
    Setting(
        "login_reminder",
        "float",
        as_number(60, 86400, zero_ok=True),
        600.0,
        "Seconds between reminders while IBKR needs you to log in (after a session that was "
        "ready drops, or after the weekly token reset), at most 6 an episode, none inside "
        "IBKR's restart windows; 0 turns the reminders off (the first notice still comes).",
    ),
    Setting(
        "on_competing",
        "str",
        as_competing,
        "leave",
        "When TWS, the phone or the web takes the session over: `leave` (tell you and offer "
        "*Take the session over*), `take_back` (at once) or `take_back_after` (after "
        "`compete_after` seconds). Never more than one takeover per 5 minutes, never inside "
        "a restart window or a pause (the menu's radio group saves this key).",
    ),
    Setting(
        "compete_after",
        "float",
        as_number(60, 86400),
        900.0,
        "With `on_competing` set to `take_back_after`: seconds to wait before taking the "
        "session back (the menu counts down and offers *Leave it this time*).",
    ),
    Setting(
        "log_level",
        "str",
        as_level,
        "INFO",
        "Detail in the log file: DEBUG, INFO, WARNING or ERROR.",
        live=False,
    ),
    Setting(
        "serve",
        "str | None",
        as_addr,
        None,
        "Serve `/livez`, `/readyz`, `/status` and `/metrics` for bots and probes on `PORT`, "
        "`HOST:PORT` or `[V6]:PORT` (loopback when no host is given); `--serve` does the "
        "same for one run.",
        live=False,
        example='"127.0.0.1:5001"',
        unset="off",
        flag="--serve",
    ),
    Setting(
        "serve_hosts",
        "tuple[str, ...]",
        as_hosts,
        (),
        "More names the health endpoint answers to on a loopback bind (a reverse proxy's or "
        "an SSH tunnel's `Host`), besides localhost, 127.0.0.1, [::1] and the bound address; "
        "any other `Host` gets 421, against DNS rebinding; `--serve-host NAME` "
        "(repeatable) sets them for one run.",
        live=False,
        example='["health.example.lan"]',
        unset="none",
        flag="--serve-host",
    ),
    Setting(
        "on_change",
        "tuple[str, ...] | None",
        as_command,
        None,
        "A command run at each state change: a list of strings, or one string split like a "
        "shell would (no shell runs it); `--exec` does the same for one run.",
        live=False,
        example='["/home/me/bin/on-gateway-change"]',
        unset="none",
        flag="--exec",
    ),
    Setting(
        "hook_timeout",
        "float",
        as_number(0.1, 3600),
        30.0,
        "Seconds an `on_change` or `on_event` command may run before it is killed with its "
        "process group; a phone or chat message taking longer is abandoned (and retried).",
        live=False,
    ),
    Setting(
        "on_event",
        "tuple[str, ...] | None",
        as_command,
        None,
        "A command run once for each event (`login_needed`, `take_over`, … see *Events*), "
        "in order, never collapsed: env `CPGW_EVENT`, `CPGW_MESSAGE`, `CPGW_AT`, the "
        "event's JSON on stdin; `--on-event` does the same for one run.",
        live=False,
        example='["/home/me/bin/on-gateway-event"]',
        unset="none",
        flag="--on-event",
    ),
    Setting(
        "notify_urls",
        "tuple[str, ...]",
        check_urls,
        (),
        "Phone and chat messages through Apprise URLs (`ntfy://topic`, `tgram://token/chat`, "
        "`pover://user@token`, `json://host/path`, …; needs `pip install "
        "'cpgw-tray[notify]'`); `--notify URL` adds one for one run. Shown redacted.",
        live=False,
        unset="none",
        flag="--notify",
    ),
    Setting(
        "notify_on",
        "tuple[str, ...]",
        check_kinds,
        NOTIFY_ON,
        'The events that go to `notify_urls` (see *Events*); `["all"]` sends every event '
        "and every state change.",
        live=False,
    ),
    Setting(
        "notify_quiet",
        "str | None",
        check_quiet,
        None,
        'Local hours such as `"23:00-07:00"` when messages wait, to go out as one summary '
        "after; a login needed in the hour before IBKR's weekly token reset still goes.",
        live=False,
        example='"23:00-07:00"',
        unset="none",
    ),
    Setting(
        "push",
        "bool",
        as_bool,
        False,
        "Also hold the gateway's websocket while a session exists: a dropped session shows "
        "within a second (checked by auth/status), IBKR's bulletins are shown once each, "
        "checks slow to min(4 × interval, 300 s) while it is connected and ready; "
        "`--push` does the same for one run (`tray`, `watch`).",
        live=False,
        flag="--push",
    ),
)

BY_NAME = {setting.name: setting for setting in SETTINGS}
CHECKS: dict[str, Callable[[Any], Any]] = {s.name: s.check for s in SETTINGS}
FLAGS = {s.name: s.flag for s in SETTINGS if s.flag}  # the keys the command line sets
LIVE_KEYS = frozenset(s.name for s in SETTINGS if s.live)
RESTART_KEYS = frozenset(s.name for s in SETTINGS if not s.live)
