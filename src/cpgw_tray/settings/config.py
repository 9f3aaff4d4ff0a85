"""Configuration: defaults -> TOML file -> environment -> command line, resolved once.

The result is a frozen :class:`Config`. Every bad value raises :class:`ConfigError`
with one line naming the key, and the file and line where it came from.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from .. import paths
from ..constants import ENV_PREFIX
from ..smallfile import NotAFile, present, read_small
from .table import CHECKS, DEFAULT_URL, FLAGS, NOTIFY_ON


class ConfigError(Exception):
    """A bad setting; the message is one line meant for the user."""


@dataclass(frozen=True)
class Config:
    """Resolved settings. ``url`` is the gateway's root URL."""

    url: str = DEFAULT_URL
    timeout: float = 10.0
    ca_bundle: str | None = None
    insecure: bool | None = None  # None: decided by the host (loopback -> insecure)
    interval: float = 15.0
    keepalive: float = 60.0
    gateway_dir: str | None = None
    notifications: bool = True
    open_browser_on_launch: bool = True
    auto_restart: bool = False
    auto_reauth: bool = True
    launch_timeout: float = 60.0
    region: str = "auto"  # IBKR's region for its restart windows: auto, na, eu or ap
    reset_timezone: str | None = None  # deprecated: read as a region when region is not set
    restart_windows: bool = True  # false: ignore IBKR's restart windows (an outdated table)
    login_reminder: float = 600.0  # seconds between login reminders; 0: none after the first
    on_competing: str = "leave"  # leave, take_back or take_back_after (see person.py)
    compete_after: float = 900.0  # take_back_after: seconds before taking the session back
    log_level: str = "INFO"
    serve: str | None = None  # the health endpoint's address (--serve), off by default
    serve_hosts: tuple[str, ...] = ()  # more Host names it answers on loopback (proxy, tunnel)
    on_change: tuple[str, ...] | None = None  # a command run at each state change (--exec)
    hook_timeout: float = 30.0  # seconds before a hook is killed, a notification abandoned
    on_event: tuple[str, ...] | None = None  # a command run at each person event (--on-event)
    notify_urls: tuple[str, ...] = ()  # Apprise URLs: the phone and chat (--notify adds)
    notify_on: tuple[str, ...] = NOTIFY_ON  # the event kinds sent there; "all": every one
    notify_quiet: str | None = None  # local hours "HH:MM-HH:MM" when messages wait
    push: bool = False  # hold the gateway's websocket: drops seen at once, bulletins (push.py)
    # Where things came from, for messages; not settable.
    gateway: str | None = None  # the [gateways.NAME] table's name (gateways.py)
    config_path: str | None = field(default=None, compare=False)
    url_source: str = field(default="default", compare=False)
    # Where each value not left at its default came from: "FILE line N", "env VAR",
    # "command line" or the gateway's conf.yaml (for `cpgw-tray config`).
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def verify(self) -> bool | str:
        """``requests``' verify: a CA file, False (not verified) or True (system CAs)."""
        if self.ca_bundle:
            return self.ca_bundle
        if self.insecure is None:
            from ..model.urls import is_loopback

            return not is_loopback(self.url)
        return not self.insecure


_NOT_SETTABLE = {"gateway", "config_path", "url_source", "sources"}
KEYS: dict[str, Any] = {f.name: f.type for f in fields(Config) if f.name not in _NOT_SETTABLE}


# ---------------------------------------------------------------------------- sources


def _line_of(text: str, key: str) -> int | None:
    pattern = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*[=:]", re.MULTILINE)
    match = pattern.search(text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _where(path: Path, text: str, key: str) -> str:
    line = _line_of(text, key)
    return f"{path}" + (f" line {line}" if line else "")


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a settings file: a regular file of at most 1 MiB, read
    without waiting (a FIFO or a device is refused, see :mod:`.smallfile`)."""
    try:
        raw = read_small(path)
    except NotAFile as exc:
        raise ConfigError(f"cannot read {what} {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror}") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigError(
            f"{what} {path} line {line}: not UTF-8 (byte 0x{raw[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from None


def read_file(path: Path) -> tuple[dict[str, Any], dict[str, str]]:
    """Checked settings from a TOML file, keyed by setting name, and where each is
    ("FILE line N")."""
    text = read_text(path, "config file")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        said = str(exc)
        if "(at end of document)" in said:  # tomllib names no line there: the last one
            last = text.rstrip("\n").count("\n") + 1
            said = said.replace("(at end of document)", f"(at line {last}, the end of the file)")
        raise ConfigError(f"config file {path}: {said}") from None
    out: dict[str, Any] = {}
    for key, value in [(k, v) for k, v in data.items() if k != "gateways"]:  # gateways.py
        if key not in CHECKS:
            hint = difflib.get_close_matches(key, CHECKS, n=1)
            maybe = f" (did you mean '{hint[0]}'?)" if hint else ""
            raise ConfigError(
                f"unknown key '{key}' in {_where(path, text, key)}{maybe}; "
                f"known keys: {', '.join(sorted(CHECKS))}"
            )
        try:
            out[key] = CHECKS[key](value)
        except ValueError as exc:
            raise ConfigError(
                f"bad value for '{key}' in {_where(path, text, key)}: {exc}"
            ) from None
    return out, {key: _where(path, text, key) for key in out}


def read_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Checked settings from ``CPGW_TRAY_*`` variables."""
    out: dict[str, Any] = {}
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == ENV_PREFIX + "CONFIG":
            continue
        key = name[len(ENV_PREFIX) :].lower()
        if key not in CHECKS:
            raise ConfigError(f"unknown environment variable {name}")
        try:
            out[key] = CHECKS[key](value)
        except ValueError as exc:
            raise ConfigError(f"bad value in environment variable {name}: {exc}") from None
    return out


def read_conf_yaml(gateway_dir: str) -> tuple[int, bool]:
    """``listenPort`` and ``listenSsl`` from the gateway's ``root/conf.yaml``."""
    import yaml

    path = Path(gateway_dir) / "root" / "conf.yaml"
    text = read_text(path, "the gateway's")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not valid YAML"
        raise ConfigError(f"{path}{where}: {problem}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected the gateway's settings, found no mapping")
    port, ssl = data.get("listenPort", 5000), data.get("listenSsl", True)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{_where(path, text, 'listenPort')}: listenPort must be a port number")
    if not isinstance(ssl, bool):
        raise ConfigError(f"{_where(path, text, 'listenSsl')}: listenSsl must be true or false")
    return port, ssl


def file_path(config_path: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """The config file in use: ``--config``, else ``CPGW_TRAY_CONFIG``, else the user's."""
    env = os.environ if env is None else env
    explicit = config_path or env.get(ENV_PREFIX + "CONFIG")
    return Path(explicit).expanduser() if explicit else paths.config_file()


def load(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_path: str | None = None,
    env: Mapping[str, str] | None = None,
    table: tuple[str, Mapping[str, Any], Mapping[str, str]] | None = None,
) -> Config:
    """Resolve the settings once: defaults, file, a gateway's ``table`` (:mod:`.gateways`),
    environment, then ``overrides`` (command-line values; ``None`` means not given)."""
    env = os.environ if env is None else env
    explicit = config_path or env.get(ENV_PREFIX + "CONFIG")
    path = file_path(config_path, env)
    from_file: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if explicit or present(path):  # a default path of the wrong kind is reported too
        from_file, sources = read_file(path)
    if table is not None:  # url and gateway_dir are never inherited
        from_file = {k: v for k, v in from_file.items() if k not in ("url", "gateway_dir")}
        from_file, sources = {**from_file, **table[1]}, {**sources, **table[2]}
    from_env = read_env(env)
    from_cli: dict[str, Any] = {}
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        try:
            from_cli[key] = CHECKS[key](value)
        except ValueError as exc:
            flag = FLAGS.get(key, key)
            raise ConfigError(f"bad value for {flag}: {exc}") from None

    merged = {**from_file, **from_env, **from_cli}
    sources.update({key: f"env {ENV_PREFIX}{key.upper()}" for key in from_env})
    before = sources.get("notify_urls")
    sources.update({key: "command line" for key in from_cli})
    if "notify_urls" in from_cli and before:  # --notify adds to the settings' URLs
        base = from_env.get("notify_urls", from_file.get("notify_urls", ()))
        merged["notify_urls"] = tuple(dict.fromkeys((*base, *from_cli["notify_urls"])))
        sources["notify_urls"] = f"{before} and the command line"
    url_source = (
        "command line"
        if "url" in from_cli
        else "environment"
        if "url" in from_env
        else f"config file {path}"
        if "url" in from_file
        else "default"
    )
    if "reset_timezone" in merged and "region" not in merged:  # the deprecated alias
        from ..model.ibkr_clock import region_from_reset_timezone

        merged["region"] = region_from_reset_timezone(merged["reset_timezone"])
    if "url" not in merged:
        found = _url_from_folder(merged.get("gateway_dir"))
        if found is not None:
            merged["url"], url_source = found
            sources["url"] = url_source
    where = {"gateway": table[0] if table else None, "config_path": str(path)}
    return Config(**merged, **where, url_source=url_source, sources=sources)  # type: ignore[arg-type]


def _url_from_folder(configured: str | None) -> tuple[str, str] | None:
    """The URL a gateway folder's ``root/conf.yaml`` gives, and where it came from: the
    configured folder (a bad ``conf.yaml`` is a config error), else the first usual
    place holding one (the same folder ``gateway start`` and the doctor find; a bad file
    there is logged and the default stays)."""
    from ..process.folder import found_folder

    if configured:
        folder, found = configured, False
    else:
        place = found_folder()
        if place is None:
            return None
        folder, found = str(place), True
    try:
        port, ssl = read_conf_yaml(folder)
    except ConfigError as exc:
        if not found:
            raise
        logging.getLogger(__name__).warning("ignoring the gateway folder found: %s", exc)
        return None
    where = f"{folder}/root/conf.yaml" + (" (folder found)" if found else "")
    return f"{'https' if ssl else 'http'}://127.0.0.1:{port}", where
