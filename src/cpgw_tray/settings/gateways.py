"""Several gateways at once: the settings file's ``[gateways.NAME]`` tables, resolved
into an ordered list of named configs (:class:`Gateway`), and the choice of one.

A table holds only the per-gateway keys (:data:`PER_GATEWAY`); the file's top-level keys
are the defaults every table inherits, except ``url`` and ``gateway_dir``: each table
names its own (the port then comes from its ``root/conf.yaml``). With no table there is
one unnamed gateway, exactly the settings of today. Two gateways on one host:port, two
names for one folder, an unknown key in a table: a :class:`ConfigError` (exit 64).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from ..constants import ENV_PREFIX
from ..smallfile import present
from .config import Config, ConfigError, load, read_text
from .table import CHECKS

PER_GATEWAY = (
    "url",
    "gateway_dir",
    "ca_bundle",
    "insecure",
    "region",
    "keepalive",
    "auto_reauth",
    "on_competing",
    "compete_after",
    "login_reminder",
    "auto_restart",
    "open_browser_on_launch",
)
PLACE_KEYS = ("url", "gateway_dir")  # never inherited: each table names its own
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")  # it goes into URLs: /readyz/NAME


class Gateway(NamedTuple):
    """One gateway to watch: its table's name (None with no table) and its settings."""

    name: str | None
    config: Config


class Table(NamedTuple):
    """A ``[gateways.NAME]`` table: its checked values and where each is."""

    name: str
    values: dict[str, Any]
    sources: dict[str, str]


def names(gateways: list[Gateway]) -> str:
    """``live, paper``: the names to choose from, in the settings' order."""
    return ", ".join(str(g.name) for g in gateways)


def _header(text: str, name: str) -> re.Match[str] | None:
    quoted = rf"(?:{re.escape(name)}|\"{re.escape(name)}\"|'{re.escape(name)}')"
    return re.search(rf"^[ \t]*\[[ \t]*gateways[ \t]*\.[ \t]*{quoted}[ \t]*\]", text, re.M)


def _where(path: Path, text: str, name: str, key: str | None = None) -> str:
    """``FILE line N``: the table's header, or ``key`` inside the table."""
    head = _header(text, name)
    if head is None:
        return str(path)
    start, line = head.start(), text.count("\n", 0, head.start()) + 1
    if key is not None:
        following = re.compile(r"^[ \t]*\[", re.M).search(text, head.end())
        end = following.start() if following else len(text)
        found = re.compile(rf"^[ \t]*[\"']?{re.escape(key)}[\"']?[ \t]*=", re.M)
        match = found.search(text, head.end(), end)
        if match is None:
            return f"{path} line {line}"
        start = match.start()
    return f"{path} line {text.count(chr(10), 0, start) + 1}"


def read_tables(path: Path) -> list[Table]:
    """The file's ``[gateways.NAME]`` tables in their order, each value checked."""
    text = read_text(path, "config file")
    data = tomllib.loads(text)  # load() has read it already: it parses
    tables = data.get("gateways")
    if tables is None:
        return []
    if not isinstance(tables, dict) or not all(isinstance(t, dict) for t in tables.values()):
        raise ConfigError(f"'gateways' in {path}: expected tables such as [gateways.live]")
    out = []
    for name, table in tables.items():
        if not _NAME.match(name):
            raise ConfigError(
                f"gateway name {name!r} in {_where(path, text, name)}: use letters, digits, "
                "'-' and '_' (at most 40)"
            )
        values: dict[str, Any] = {}
        for key, value in table.items():
            where = _where(path, text, name, key)
            if key not in PER_GATEWAY:
                said = "applies to every gateway: set it at the top" if key in CHECKS else ""
                said = said or f"known keys in a gateway table: {', '.join(PER_GATEWAY)}"
                raise ConfigError(f"unknown key '{key}' in [gateways.{name}] in {where}; {said}")
            try:
                values[key] = CHECKS[key](value)
            except ValueError as exc:
                raise ConfigError(f"bad value for '{key}' in {where}: {exc}") from None
        if not any(key in values for key in PLACE_KEYS):
            raise ConfigError(
                f"[gateways.{name}] in {_where(path, text, name)} names no url or gateway_dir; "
                "give each gateway its own"
            )
        sources = {key: _where(path, text, name, key) for key in values}
        out.append(Table(name, values, sources))
    return out


def _place(config: Config) -> str:
    """``host:port`` of a gateway's URL, for telling two gateways apart."""
    parts = urlsplit(config.url)
    host = (parts.hostname or "").lower()
    host = "127.0.0.1" if host in ("localhost", "::1") else host
    return f"{host}:{parts.port or (443 if parts.scheme == 'https' else 80)}"


def _folder(config: Config) -> str | None:
    return str(Path(config.gateway_dir).resolve()) if config.gateway_dir else None


def _check_apart(gateways: list[Gateway], path: Path) -> None:
    """Two gateways on one host:port, or two names for one folder: exit 64 naming both."""
    for index, one in enumerate(gateways):
        for other in gateways[:index]:
            if _place(one.config) == _place(other.config):
                raise ConfigError(
                    f"gateways '{other.name}' and '{one.name}' in {path} both use "
                    f"{_place(one.config)}: give each its own port"
                )
            folder = _folder(one.config)
            if folder is not None and folder == _folder(other.config):
                raise ConfigError(
                    f"gateways '{other.name}' and '{one.name}' in {path} name one folder "
                    f"{folder}: one name per gateway folder"
                )


def resolve_all(
    overrides: Mapping[str, Any] | None = None,
    *,
    config_path: str | None = None,
    env: Mapping[str, str],
    selected: str | None = None,
) -> list[Gateway]:
    """The gateways to watch, in the settings' order; ``selected`` (``--gateway``) picks
    one. A ``url`` or ``gateway_dir`` given on the command line or in the environment
    picks the table at that place (another place with ``selected`` is exit 64); at no
    table's place it is one unnamed gateway, as today."""
    base = load(overrides, config_path=config_path, env=env)
    path = Path(str(base.config_path))
    tables = read_tables(path) if present(path) and path.is_file() else []
    if not tables:
        if selected is not None:
            raise ConfigError(f"--gateway {selected}: {path} names no [gateways.NAME] table")
        return [Gateway(None, base)]
    given = {key for key in PLACE_KEYS if (overrides or {}).get(key) is not None}
    given |= {key for key in PLACE_KEYS if ENV_PREFIX + key.upper() in env}
    by_folder = "gateway_dir" in given  # --dir: the folder tells; --url: the host:port

    def here(config: Config) -> str | None:
        return _folder(config) if by_folder else _place(config)

    plain = {k: v for k, v in (overrides or {}).items() if k not in PLACE_KEYS}
    unpinned = {k: v for k, v in env.items() if k[len(ENV_PREFIX) :].lower() not in PLACE_KEYS}
    gateways = [
        Gateway(t.name, load(plain, config_path=config_path, env=unpinned, table=t)) for t in tables
    ]
    _check_apart(gateways, path)
    if selected is not None:
        chosen = [g for g in gateways if g.name == selected]
        if not chosen:
            raise ConfigError(f"unknown gateway '{selected}'; {path} names: {names(gateways)}")
        if given and here(base) != here(chosen[0].config):
            raise ConfigError(
                f"--gateway {selected} is at {here(chosen[0].config)}, but the --url or "
                f"--dir given is at {here(base)}: give one of them"
            )
        return chosen
    if given:
        return [g for g in gateways if here(g.config) == here(base)] or [Gateway(None, base)]
    return gateways
