"""A ``clientportal.gw``-shaped folder whose ``bin/run.sh`` runs the simulator the way
IBKR's script runs java, for trying the launcher without IBKR."""

from __future__ import annotations

import sys
from pathlib import Path

from ..constants import MAIN_CLASS

RUN_SH = """\
#!/bin/bash
# Simulated Client Portal Gateway, written by `cpgw-tray sim --make-gateway-dir`.
# Same layout and behaviour as IBKR's clientportal.gw: run it from this folder as
# `bash bin/run.sh root/conf.yaml`; it starts the server as a child (no exec).
config_file=${{1:-root/conf.yaml}}
echo "running"
echo " runtime path : simulator"
echo " config file  : $config_file"
"{python}" -m cpgw_tray sim --conf "$config_file" --main-class {main_class}
"""

RUN_BAT = """\
@echo off
rem Simulated Client Portal Gateway, written by cpgw-tray sim --make-gateway-dir.
set config_file=%1
if "%config_file%"=="" set config_file=root\\conf.yaml
echo running
"{python}" -m cpgw_tray sim --conf "%config_file%" --main-class {main_class}
"""

CONF_YAML = """\
    ip2loc: "US"
    proxyRemoteSsl: true
    proxyRemoteHost: "https://api.ibkr.com"
    listenPort: {port}
    listenSsl: true
    svcEnvironment: "v1"
    sslCert: "vertx.jks"
    sslPwd: "mywebapi"
    authDelay: 3000
    portalBaseURL: ""
    serverOptions:
        blockedThreadCheckInterval: 1000000
        eventLoopPoolSize: 20
        workerPoolSize: 20
        maxWorkerExecuteTime: 100
        internalBlockingPoolSize: 20
    cors:
        origin.allowed: "*"
        allowCredentials: false
    webApps:
        - name: "demo"
          index: "index.html"
    ips:
        allow:
            - 192.*
            - 131.216.*
            - 127.0.0.1
        deny:
            - 212.90.324.10
"""


class FolderNotEmpty(Exception):
    """The folder for a simulated gateway holds files already; nothing was written."""


def make_gateway_dir(path: Path, port: int = 5000) -> Path:
    """Write a ``clientportal.gw``-shaped folder whose ``bin/run.sh`` starts this
    simulator as a child, like IBKR's script starts java. ``run.sh`` gets no execute
    bit, as in IBKR's download. Never writes over anything: a folder that exists must be
    empty (else :class:`FolderNotEmpty`)."""
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise FolderNotEmpty(
            f"{path} is not empty: cpgw-tray never writes over a folder's files "
            "(a real gateway's run.sh or conf.yaml may be there); name a new or empty folder"
        )
    (path / "bin").mkdir(parents=True, exist_ok=True)
    (path / "root").mkdir(parents=True, exist_ok=True)
    (path / "logs").mkdir(exist_ok=True)
    values = {"python": sys.executable, "main_class": MAIN_CLASS}
    run_sh = path / "bin" / "run.sh"
    run_sh.write_text(RUN_SH.format(**values))
    run_sh.chmod(0o644)
    (path / "bin" / "run.bat").write_text(RUN_BAT.format(**values).replace("\n", "\r\n"))
    (path / "root" / "conf.yaml").write_text(CONF_YAML.format(port=port))
    return path
