"""Every place on disk cpgw-tray uses, in one module: the config file, the log folder
and its files, the state folder. platformdirs picks the platform's folders (and honours
``XDG_*`` on Linux, which is how tests keep each run apart)."""

from __future__ import annotations

from pathlib import Path

from .constants import APP_NAME


def config_file() -> Path:
    """``config.toml`` in the platform's user config folder."""
    import platformdirs

    return platformdirs.user_config_path(APP_NAME, appauthor=False) / "config.toml"


def log_dir() -> Path:
    import platformdirs

    return platformdirs.user_log_path(APP_NAME, appauthor=False)


def log_file() -> Path:
    """Our own log, shared by the tray and ``watch``."""
    return log_dir() / "cpgw-tray.log"


def gateway_log() -> Path:
    """The output of a gateway launched by cpgw-tray."""
    return log_dir() / "gateway.log"


def state_dir() -> Path:
    """Small files that outlive a run: markers, launch records, locks."""
    import platformdirs

    return platformdirs.user_state_path(APP_NAME, appauthor=False)


def bulletins_file() -> Path:
    """IBKR bulletins already shown, by gateway and id (see :mod:`cpgw_tray.care.bulletins`)."""
    return state_dir() / "bulletins.json"


def history_file() -> Path:
    """The JSON Lines history of state changes (see :mod:`cpgw_tray.outlets.history`)."""
    return state_dir() / "history.jsonl"


def autostart_dir() -> Path:
    """Linux: the XDG autostart folder, ``$XDG_CONFIG_HOME/autostart``."""
    import platformdirs

    return platformdirs.user_config_path() / "autostart"


def launch_agents_dir() -> Path:
    """macOS: the user's LaunchAgents folder."""
    return Path.home() / "Library" / "LaunchAgents"
