"""The gateway client against a hostile gateway: every request bounded in time and memory,
every bad reply a plain state, and the next check still sees the gateway as it is.

Real sockets and real time (the client's 1 s budget): marked e2e.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from cpgw_tray.client.api import GatewayClient, RateGovernor
from cpgw_tray.model.status import State, Status

from .conftest import TIMEOUT
from .hostile import (
    ACCOUNTS,
    Behaviour,
    Hostile,
    compressed,
    endless_chunked,
    huge_headers,
    many_headers,
    ready,
    reply,
    reset_mid_reply,
    silence,
    trickle_body,
    trickle_headers,
)

pytestmark = pytest.mark.e2e

DEEP = "[" * 100_000  # as reported; over the 64 KiB status cap, within the accounts cap
DEEP_UNDER_CAP = "[" * 60_000  # reaches the JSON check of a status reply


def timed(check: object) -> tuple[Status, float]:
    started = time.monotonic()
    status = check()  # type: ignore[operator]
    return status, time.monotonic() - started


def then_logged_out(hostile: Hostile, client: GatewayClient) -> None:
    """Checks go on: a later 401 is seen as it is."""
    hostile.set(reply(401, ""))
    after = client.auth_status()
    assert after.state is State.LOGGED_OUT, after.detail
    assert after.http_status == 401


@pytest.mark.parametrize(
    ("behaviour", "name"),
    [
        (trickle_body(), "trickling body"),
        (trickle_headers(), "trickling headers"),
        (silence(), "silence after TLS"),
    ],
    ids=["trickling-body", "trickling-headers", "silence"],
)
def test_slow_replies_end_at_the_deadline(
    hostile: Hostile, client: GatewayClient, behaviour: Behaviour, name: str
) -> None:
    assert client.auth_status().state is State.READY
    hostile.set(behaviour)
    status, took = timed(client.auth_status)
    assert status.state is State.NOT_RESPONDING, f"{name}: {status.detail}"
    assert f"within {TIMEOUT:g} s" in status.detail
    assert took < TIMEOUT + 1.0, f"{name} took {took:.2f} s"
    status, took = timed(client.tickle)
    assert status.state is State.NOT_RESPONDING and took < TIMEOUT + 1.0
    then_logged_out(hostile, client)


@pytest.mark.parametrize("action", ["reauthenticate", "logout"])
def test_actions_end_at_the_deadline(hostile: Hostile, client: GatewayClient, action: str) -> None:
    hostile.set(trickle_body(), "other")
    started = time.monotonic()
    outcome = getattr(client, action)()
    assert not outcome.ok and "no complete reply" in outcome.message
    assert time.monotonic() - started < TIMEOUT + 1.0


def test_account_facts_end_at_the_deadline(hostile: Hostile, client: GatewayClient) -> None:
    hostile.set(trickle_headers(), "accounts")
    started = time.monotonic()
    assert client.account(validate=False) is None
    assert time.monotonic() - started < TIMEOUT + 1.0


def test_endless_chunked_body_is_too_large(hostile: Hostile, client: GatewayClient) -> None:
    hostile.set(endless_chunked())
    status, took = timed(client.auth_status)
    assert status.state is State.ERROR and "reply too large" in status.detail
    assert status.http_status == 200 and took < TIMEOUT
    then_logged_out(hostile, client)


def test_gzip_bomb_is_too_large_without_inflating_it(
    hostile: Hostile, client: GatewayClient, bomb: bytes
) -> None:
    hostile.set(compressed(bomb))
    status, took = timed(client.auth_status)
    assert status.state is State.ERROR and "reply too large" in status.detail
    assert took < TIMEOUT  # inflating 1 GiB would take seconds
    then_logged_out(hostile, client)


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate"])
def test_compressed_replies_are_read(
    hostile: Hostile, client: GatewayClient, encoding: str
) -> None:
    import json
    import zlib

    data = json.dumps({"authenticated": False, "connected": True, "competing": False}).encode()
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}[encoding]
    deflater = zlib.compressobj(6, zlib.DEFLATED, wbits)
    body = deflater.compress(data) + deflater.flush()
    hostile.set(compressed(body, encoding.replace("raw-", "")))
    assert client.auth_status().state is State.NOT_AUTHENTICATED


def test_unasked_encoding_is_an_error(hostile: Hostile, client: GatewayClient) -> None:
    hostile.set(compressed(b"\x00\x01", "br"))
    status = client.auth_status()
    assert status.state is State.ERROR and "did not ask for (br)" in status.detail


@pytest.mark.parametrize("endpoint", ["auth_status", "tickle"])
@pytest.mark.parametrize(
    ("body", "words"),
    [(DEEP_UNDER_CAP, "nested deeper than 64 levels"), (DEEP, "reply too large")],
    ids=["60k", "100k"],
)
def test_deep_nesting_is_an_error(
    hostile: Hostile, client: GatewayClient, endpoint: str, body: str, words: str
) -> None:
    hostile.set(reply(200, body))
    status = getattr(client, endpoint)()
    assert status.state is State.ERROR and words in status.detail, status.detail
    then_logged_out(hostile, client)


def test_deep_nesting_in_accounts_leaves_the_facts_unknown(
    hostile: Hostile, client: GatewayClient
) -> None:
    hostile.set(reply(200, DEEP), "accounts")
    hostile.set(reply(200, DEEP), "other")  # /sso/validate too
    assert client.auth_status().state is State.READY
    assert client.account() is None
    hostile.set(reply(200, ACCOUNTS), "accounts")
    account = client.account(validate=False)
    assert account is not None and account.ids == ("DU1234567",) and account.paper is True


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("<html>hello</html>", "not JSON"),
        ('{"authenticated": NaN}', "not finite"),
        ('{"authenticated": true, "connected": 1e999}', "too large"),
        ('{"ssoExpires": Infinity, "iserver": {}}', "not finite"),
    ],
)
def test_bad_json_is_an_error(
    hostile: Hostile, client: GatewayClient, body: str, words: str
) -> None:
    hostile.set(reply(200, body))
    status = client.auth_status()
    assert status.state is State.ERROR and words in status.detail, status.detail
    then_logged_out(hostile, client)


@pytest.mark.parametrize("behaviour", [huge_headers(), many_headers()], ids=["long-line", "many"])
def test_huge_headers_are_an_error(
    hostile: Hostile, client: GatewayClient, behaviour: Behaviour
) -> None:
    hostile.set(behaviour)
    status, took = timed(client.auth_status)
    assert status.state is State.ERROR and "headers are too large" in status.detail
    assert took < TIMEOUT
    then_logged_out(hostile, client)


def test_reset_mid_reply_is_an_error(hostile: Hostile, client: GatewayClient) -> None:
    hostile.set(reset_mid_reply())
    status = client.auth_status()
    # the reset may land before or after the client reads the half reply
    assert status.state is State.ERROR and "connection" in status.detail, status.detail
    hostile.set(ready())
    assert client.auth_status().state is State.READY


def test_kill_9_and_restart_on_the_same_port(cert_dir: Path) -> None:
    here = Path(__file__).with_name("hostile.py")

    def start(port: int = 0) -> tuple[subprocess.Popen[str], int]:
        proc = subprocess.Popen(
            [sys.executable, str(here), "--port", str(port), "--cert-dir", str(cert_dir)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        return proc, int(proc.stdout.readline())

    first, port = start()
    second: subprocess.Popen[str] | None = None
    client = GatewayClient(
        f"https://127.0.0.1:{port}", timeout=TIMEOUT, verify=False, governor=RateGovernor(spacing=0)
    )
    try:
        assert client.auth_status().state is State.READY
        first.kill()  # SIGKILL: no goodbye on the kept-alive connection
        first.wait(timeout=5)
        assert client.auth_status().state is State.GATEWAY_DOWN
        second, again = start(port)
        assert again == port
        assert client.auth_status().state is State.READY
    finally:
        client.close()
        for proc in (first, second):
            if proc is not None:
                proc.kill()
                proc.wait(timeout=5)
                assert proc.stdout is not None
                proc.stdout.close()
    assert first.poll() is not None and second is not None and second.poll() is not None
