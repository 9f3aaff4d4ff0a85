"""``cpgw-tray doctor``: the set-up checks support questions are mostly about, each with a
verdict and the fix in one line — Java, the gateway folder and its ``conf.yaml``, the
port (AirPlay on macOS), ``ips.allow``, the certificate, paper or live, the clock."""

from __future__ import annotations

import argparse
import fnmatch
import os
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

from .. import paths
from ..client.api import Deferred, Unreachable, client_for
from ..constants import EXIT_NOT_PERMITTED, MAIN_CLASS
from ..model.status import Endpoint, Failure, State, classify_reply
from ..outlets.diagnostics import write_bundle
from ..process.identity import LaunchError, log_of
from ..process.preflight import find_directory, find_java, listeners, port_answers
from ..settings.config import ConfigError, read_conf_yaml
from .options import gateways_of, tell

if TYPE_CHECKING:
    from ..settings.config import Config

CLOCK_SLACK_S = 60.0  # IBKR's login and tokens need a clock within about a minute
MAC_PORT_HOLDERS = ("ControlCenter", "AirPlayXPCHelper", "AirPlayUIAgent")


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``ok`` None means "not applicable now" (neither pass nor fail)."""

    name: str
    ok: bool | None
    verdict: str
    fix: str = ""

    @property
    def mark(self) -> str:
        return "ok  " if self.ok else "FAIL" if self.ok is False else "--  "

    def line(self) -> str:
        text = f"[{self.mark}] {self.name}: {self.verdict}"
        return text + (f"\n       fix: {self.fix}" if self.fix else "")


class Doctor:
    """Runs the checks in order; later checks use what earlier ones found."""

    def __init__(self, config: Config, env: dict[str, str] | None = None) -> None:
        self.config = config
        self.env = dict(os.environ if env is None else env)
        self.folder: Path | None = None
        self.conf: dict[str, Any] | None = None
        self.port: int | None = urlsplit(config.url).port

    def run(self) -> list[Check]:
        return list(self.checks())

    def checks(self) -> Iterator[Check]:
        """Each check as soon as it is done (the gateway's may take ``timeout`` seconds)."""
        yield self.java()
        yield self.gateway_folder()
        yield self.conf_yaml()
        same = self.same_gateway()
        if same is not None:
            yield same
        yield self.ips_allow()
        yield self.port_holder()
        yield from self.gateway_reply()

    # -------------------------------------------------------------- the folder
    def java(self) -> Check:

        try:
            java = find_java(self.env)
        except LaunchError as exc:
            return Check("Java", False, "not found", str(exc).split(": ", 1)[-1])
        return Check("Java", True, f"{java.version} ({java.path})")

    def gateway_folder(self) -> Check:

        try:
            self.folder, how = find_directory(self.config.gateway_dir)
        except LaunchError as exc:
            return Check(
                "Gateway folder",
                None if not self.config.gateway_dir else False,
                str(exc).split(";")[0],
                "unpack IBKR's clientportal.gw and set gateway_dir (cpgw-tray config --edit)",
            )
        return Check("Gateway folder", True, f"{self.folder} ({how})")

    def conf_yaml(self) -> Check:
        import yaml

        if self.folder is None:
            return Check("conf.yaml", None, "no gateway folder to look in")
        path = self.folder / "root" / "conf.yaml"
        try:
            self.port, _ = read_conf_yaml(str(self.folder))
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (ConfigError, OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            return Check("conf.yaml", False, str(exc), f"restore {path} from IBKR's download")
        self.conf = data if isinstance(data, dict) else {}
        return Check("conf.yaml", True, f"readable; listenPort {self.port}")

    def same_gateway(self) -> Check | None:
        """The URL and the folder's ``conf.yaml`` name one gateway (the same port); None
        when there is no folder to compare or the URL came from it."""
        parts = urlsplit(self.config.url)
        if self.conf is None or self.port is None or "conf.yaml" in self.config.url_source:
            return None
        url_port = parts.port or (443 if parts.scheme == "https" else 80)
        if url_port == self.port:
            return Check("URL and folder", True, f"both port {self.port}")
        return Check(
            "URL and folder",
            False,
            f"two different gateways: the URL {self.config.url} is port {url_port}, "
            f"the folder's conf.yaml listens on {self.port}",
            "set url to the folder's gateway, or gateway_dir to the folder of the gateway "
            "at the URL (cpgw-tray config --edit)",
        )

    def ips_allow(self) -> Check:
        if self.conf is None:
            return Check("ips.allow", None, "no conf.yaml read")
        ips = self.conf.get("ips")
        allow = ips.get("allow") if isinstance(ips, dict) else None
        patterns = [str(p) for p in allow] if isinstance(allow, list) else []
        if any(fnmatch.fnmatchcase("127.0.0.1", p) for p in patterns):
            return Check("ips.allow", True, "covers 127.0.0.1")
        return Check(
            "ips.allow",
            False,
            "does not cover 127.0.0.1: the gateway answers 'Access Denied' to this computer",
            "add `- 127.0.0.1` under ips: allow: in root/conf.yaml, then restart the gateway",
        )

    # -------------------------------------------------------------- the port
    def port_holder(self) -> Check:

        port = self.port or 5000
        if not port_answers(port):
            return Check(f"Port {port}", True, "free: nothing listens (the gateway is not running)")
        holders = listeners(port)
        names = [_name(p) for p in holders]
        if any(_is_gateway(p) for p in holders):
            return Check(f"Port {port}", True, "held by the gateway")
        if any(_is_our_simulator(p) for p in holders):
            return Check(f"Port {port}", True, "held by cpgw-tray's simulator (`cpgw-tray sim`)")
        who = ", ".join(names) or "a program cpgw-tray may not inspect"
        if sys.platform == "darwin" and any(n.startswith(MAC_PORT_HOLDERS) for n in names):
            fix = (
                "macOS AirPlay Receiver holds it: turn it off in System Settings > General > "
                "AirDrop & Handoff, or set listenPort to another port in root/conf.yaml"
            )
        else:
            fix = f"stop {who}, or set listenPort to a free port in root/conf.yaml"
        if not holders:  # cannot see the holder (another user's): say what is known
            return Check(f"Port {port}", None, f"taken by {who}", fix)
        return Check(f"Port {port}", False, f"taken by {who}, not the gateway", fix)

    # -------------------------------------------------------------- the gateway
    def gateway_reply(self) -> list[Check]:
        """One status request: the certificate, paper or live, and the gateway's clock."""

        client = client_for(self.config)
        tell(f"asking {self.config.url} … up to {self.config.timeout:g} s")
        try:
            reply = client.call("POST", "iserver/auth/status", {})
        except Unreachable as exc:
            client.close()
            if exc.failure in (Failure.TLS_CERT, Failure.TLS_PLAINTEXT, Failure.TLS):
                fix = (
                    "give the gateway's certificate with --ca-bundle (ca_bundle), or set "
                    "insecure = true when the gateway is on this computer"
                    if exc.failure is Failure.TLS_CERT
                    else "another program answers on this port, or the gateway runs with "
                    "listenSsl: false (then use an http:// URL)"
                )
                return [Check("Certificate", False, exc.reason, fix)]
            what = f"the gateway does not answer ({exc.reason})"
            url = self.config.url
            if exc.failure is Failure.REFUSED or not _connects(url):
                said = f"nothing answers at {url}: {exc.reason}"
                fix = (
                    "start it (`cpgw-tray gateway start`, or bin/run.sh root/conf.yaml in "
                    "its folder), or point url at the gateway's port"
                )
            elif exc.failure is Failure.TIMEOUT:
                said = f"answers at {url} but hangs: {exc.reason}"
                fix = "it hangs when IBKR is unreachable: check the internet, or restart it"
            else:
                said = f"answers at {url}, but not as a gateway: {exc.reason}"
                fix = "another program may hold the port: see the Port check"
            return [
                Check("Gateway", False, said, fix),
                Check("Certificate", None, what),
                Check("Paper or live", None, what),
            ]
        except Deferred:
            client.close()
            return [Check("Gateway", None, "held back by the rate limit: try again in a minute")]
        verify = self.config.verify
        if verify is False:
            cert = Check("Certificate", True, "self-signed, not verified (loopback only)")
        elif isinstance(verify, str):
            cert = Check("Certificate", True, f"verified against {verify}")
        else:
            cert = Check("Certificate", True, "verified against the system's CAs")
        status = classify_reply(Endpoint.AUTH_STATUS, reply.http_status, reply.text, reply.meta)
        answers = Check("Gateway", True, f"answers at {self.config.url}: {status.label}")
        if status.state is State.READY:
            account = client.account(validate=True)
            kind = "unknown" if account is None else account.kind
            ids = ", ".join(account.ids) if account is not None and account.ids else "?"
            paper = Check("Paper or live", True, f"{kind} account {ids}")
        else:
            paper = Check("Paper or live", None, f"log in first ({status.label.lower()})")
        client.close()
        clock = clock_check(reply.headers.get("Date"), datetime.now(timezone.utc))
        return [answers, cert, paper, clock]


def _connects(url: str, timeout: float = 2.0) -> bool:
    """Whether the URL's host accepts a connection on its port (something listens)."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _name(proc: Any) -> str:
    try:
        return f"{proc.name()} (pid {proc.pid})"
    except Exception:
        return f"pid {proc.pid}"


def _is_our_simulator(proc: Any) -> bool:
    """``cpgw-tray sim`` (or ``python -m cpgw_tray sim``): a stand-in the person chose."""
    try:
        argv = proc.cmdline()
    except Exception:
        return False
    ours = any(part.endswith(("cpgw-tray", "cpgw_tray")) for part in argv)
    return ours and "sim" in argv


def _is_gateway(proc: Any) -> bool:

    try:
        return MAIN_CLASS in proc.cmdline()
    except Exception:
        return False


def clock_check(date_header: str | None, now: datetime) -> Check:
    """The computer's clock against the gateway's ``Date`` header."""
    if not date_header:
        return Check("Clock", None, "the gateway sent no Date header")
    try:
        theirs = parsedate_to_datetime(date_header)
    except (TypeError, ValueError):
        return Check("Clock", None, f"the gateway's Date header is unreadable: {date_header!r}")
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=timezone.utc)
    skew = (now - theirs).total_seconds()
    if abs(skew) <= CLOCK_SLACK_S:
        return Check("Clock", True, f"within {abs(skew):.0f} s of the gateway's")
    side = "ahead of" if skew > 0 else "behind"
    return Check(
        "Clock",
        False,
        f"{abs(skew):.0f} s {side} the gateway's",
        "turn on automatic time (NTP) on this computer",
    )


def arguments(name: str, parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dir", metavar="D", help="the clientportal.gw folder to check")
    parser.add_argument(
        "--bundle", metavar="FILE.zip", help="also write a diagnostics bundle for support"
    )
    parser.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace, out: TextIO) -> int:

    gateways = gateways_of(args, gateway_dir=args.dir)  # two on one port: exit 64 naming both
    checks: list[Check] = []
    for gateway in gateways:  # each gateway the settings name, in their order
        config = gateway.config
        folder = config.gateway_dir or "looked for in the usual places"
        named = f"gateway {gateway.name}: " if gateway.name else ""
        out.write(
            f"Checking {named}{config.url} (from {config.url_source}); gateway folder: {folder}\n"
        )
        for check in Doctor(config).checks():  # each verdict as it comes
            checks.append(check)
            out.write(check.line() + "\n")
            out.flush()
    failed = [c for c in checks if c.ok is False]
    skipped = [c.name for c in checks if c.ok is None]
    if failed:
        out.write(f"{len(failed)} problem(s) found: {', '.join(c.name for c in failed)}.\n")
    elif skipped:
        out.write(f"No problems found; not checked now: {', '.join(skipped)}.\n")
    else:
        out.write("All checks passed.\n")
    if args.bundle:
        path = save_bundle(Path(args.bundle), gateways[0].config, checks)
        out.write(f"Diagnostics bundle: {path}\n")
    return EXIT_NOT_PERMITTED if failed else 0


def save_bundle(target: Path, config: Config, checks: list[Check] | None = None) -> Path:
    """The diagnostics bundle (see :mod:`cpgw_tray.outlets.diagnostics`), running the doctor
    first unless its checks are given."""

    logs = [("cpgw-tray.log", paths.log_file())]
    if config.gateway_dir:  # the configured folder's gateway log, else every folder's
        gateway_logs = [log_of(Path(config.gateway_dir))]
    else:
        gateway_logs = sorted(paths.log_dir().glob("gateway-*.log"))
    logs += [(path.name, path) for path in gateway_logs]
    found = checks if checks is not None else Doctor(config).run()
    return write_bundle(target, config, [c.line() for c in found], logs, paths.history_file())
