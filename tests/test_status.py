"""The status model: every row of the contract and every reply shape the gateway sends."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from cpgw_tray.model.status import (
    GREEN,
    GREY,
    LOOKS,
    ORANGE,
    RED,
    YELLOW,
    Endpoint,
    Failure,
    Glyph,
    Meta,
    State,
    classify_failure,
    classify_reply,
    unknown,
)

URL = "https://127.0.0.1:5000/v1/api/iserver/auth/status"
META = Meta(URL, datetime(2026, 11, 26, 12, 0, 5, tzinfo=timezone.utc), 12.34)
A, T = Endpoint.AUTH_STATUS, Endpoint.TICKLE

READY = {
    "authenticated": True,
    "competing": False,
    "connected": True,
    "message": "",
    "MAC": "F4:03:43:CD:BD:C0",
    "fail": "",
    "hardware_info": "1c4558e8|F4:03:43:CD:BD:C0",
    "serverInfo": {
        "serverName": "JifC11113",
        "serverVersion": "Build 10.25.0m, Nov 17, 2023 11:29:27 AM",
    },
}
TIMED_OUT = {
    "authenticated": False,
    "competing": False,
    "connected": False,
    "MAC": "98:B2:C3:45:DE:F6",
}
FAILED = {
    "authenticated": False,
    "competing": False,
    "connected": True,
    "message": "",
    "serverInfo": {"serverName": None, "serverVersion": None},
    "fail": "Force compete capability must be used together with compete flag",
}
TICKLE = {
    "session": "9fe1c272dc44e023a3aefe52b71d42bd",
    "ssoExpires": 444936,
    "collission": False,
    "userId": 132329622,
    "hmds": {"error": "no bridge"},
    "iserver": {
        "authStatus": {
            "authenticated": True,
            "competing": False,
            "connected": True,
            "message": "",
            "MAC": "F4:03:43:DC:B4:60",
            "serverInfo": {
                "serverName": "JifZ34060",
                "serverVersion": "Build 10.33.1f, Feb 5, 2025 10:21:09 AM",
            },
        }
    },
}


# (endpoint, HTTP status, body, expected state) — one row per reply shape in gateway-facts.md
ROWS = [
    pytest.param(A, 200, READY, State.READY, id="auth-status-ready"),
    pytest.param(A, 200, TIMED_OUT, State.NOT_AUTHENTICATED, id="auth-status-timed-out-documented"),
    pytest.param(
        A, 200, FAILED, State.NOT_AUTHENTICATED, id="auth-status-brokerage-failed-ibeam73"
    ),
    pytest.param(
        A, 200, {**READY, "competing": True}, State.COMPETING, id="competing-while-authenticated"
    ),
    pytest.param(
        A, 200, {**FAILED, "competing": True}, State.COMPETING, id="competing-not-authenticated"
    ),
    pytest.param(
        A, 200, {**READY, "connected": False}, State.DISCONNECTED, id="authenticated-not-connected"
    ),
    pytest.param(
        A,
        200,
        {**READY, "lastTickle": 1, "established": True},
        State.READY,
        id="extra-fields-tolerated",
    ),
    pytest.param(
        A,
        200,
        {
            "passed": True,
            "authenticated": True,
            "connected": True,
            "competing": False,
            "hardware_info": "x",
        },
        State.READY,
        id="iserver-init-reply",
    ),
    pytest.param(T, 200, TICKLE, State.READY, id="tickle-ready"),
    pytest.param(
        T,
        200,
        {**TICKLE, "iserver": {"tickle": True, "authStatus": TICKLE["iserver"]["authStatus"]}},  # type: ignore[index]
        State.READY,
        id="tickle-older-build-tickle-true",
    ),
    pytest.param(
        T,
        200,
        {**TICKLE, "iserver": {"established": True, "authStatus": TICKLE["iserver"]["authStatus"]}},  # type: ignore[index]
        State.READY,
        id="tickle-established",
    ),
    pytest.param(
        T,
        200,
        {**TICKLE, "hmds": {"authStatus": {"authenticated": False, "connected": True}}},
        State.READY,
        id="tickle-hmds-not-authenticated-is-not-brokerage",
    ),
    pytest.param(
        T,
        200,
        {**TICKLE, "iserver": {"authStatus": TIMED_OUT}},
        State.NOT_AUTHENTICATED,
        id="tickle-iserver-logged-out",
    ),
    pytest.param(
        T, 200, {**TICKLE, "lastTickle": 1762317916425}, State.READY, id="tickle-last-tickle"
    ),
    pytest.param(T, 200, {"error": "no session"}, State.LOGGED_OUT, id="tickle-no-session"),
    pytest.param(T, 401, {"error": "no session"}, State.LOGGED_OUT, id="tickle-no-session-401"),
    pytest.param(T, 200, {"session": "x"}, State.ERROR, id="tickle-without-authstatus"),
    pytest.param(A, 401, "", State.LOGGED_OUT, id="401-empty"),
    pytest.param(
        A, 401, {"error": "whatever words", "statusCode": 401}, State.LOGGED_OUT, id="401-json"
    ),
    pytest.param(A, 401, "Access Denied", State.ACCESS_DENIED, id="access-denied-beats-401"),
    pytest.param(A, 404, "Access Denied", State.ACCESS_DENIED, id="access-denied-real-404"),
    pytest.param(A, 200, "Access Denied", State.ACCESS_DENIED, id="access-denied-any-status"),
    pytest.param(A, 403, "", State.ACCESS_DENIED, id="403"),
    pytest.param(A, 429, "", State.RATE_LIMITED, id="429"),
    pytest.param(
        A,
        400,
        {"error": "Init session first", "statusCode": 400},
        State.NOT_AUTHENTICATED,
        id="400-init-session-first",
    ),
    pytest.param(
        A,
        400,
        {"error": "Bad Request: no bridge", "statusCode": 400},
        State.NOT_AUTHENTICATED,
        id="400-no-bridge",
    ),
    pytest.param(
        A, 400, {"error": "something else", "statusCode": 400}, State.ERROR, id="400-other"
    ),
    pytest.param(A, 200, {"error": "not logged in"}, State.LOGGED_OUT, id="json-not-logged-in"),
    pytest.param(A, 200, {"error": "mystery"}, State.ERROR, id="json-other-error"),
    pytest.param(A, 500, {"error": "Internal Server Error"}, State.ERROR, id="500"),
    pytest.param(A, 503, "", State.ERROR, id="503"),
    pytest.param(A, 302, "", State.ERROR, id="other-non-2xx"),
    pytest.param(A, 200, "<html>AirPlay</html>", State.ERROR, id="not-json"),
    pytest.param(A, 200, "", State.ERROR, id="empty-200"),
    pytest.param(A, 200, [1, 2], State.ERROR, id="json-array"),
    pytest.param(
        A, 200, {**READY, "authenticated": "true"}, State.ERROR, id="authenticated-string"
    ),
    pytest.param(
        A,
        200,
        {k: v for k, v in READY.items() if k != "authenticated"},
        State.ERROR,
        id="authenticated-missing",
    ),
    pytest.param(A, 200, {**READY, "connected": 1}, State.ERROR, id="connected-not-bool"),
    pytest.param(
        A,
        200,
        {k: v for k, v in READY.items() if k != "competing"},
        State.ERROR,
        id="competing-missing-not-guessed",
    ),
]


@pytest.mark.parametrize(("endpoint", "code", "body", "expected"), ROWS)
def test_classify_reply(endpoint: Endpoint, code: int, body: object, expected: State) -> None:
    text = body if isinstance(body, str) else json.dumps(body)
    status = classify_reply(endpoint, code, text, META)
    assert status.state is expected, status.detail
    assert status.http_status == code
    assert status.url == URL and status.latency_ms == 12.34
    assert status.label == LOOKS[expected].label
    assert status.detail


def test_ready_carries_server_facts() -> None:
    status = classify_reply(A, 200, json.dumps(READY), META)
    assert (status.authenticated, status.connected, status.competing) == (True, True, False)
    assert status.server_name == "JifC11113"
    assert status.server_version == "Build 10.25.0m, Nov 17, 2023 11:29:27 AM"
    assert status.fail == "" and status.message == ""


def test_tickle_carries_sso_expiry_and_server() -> None:
    status = classify_reply(T, 200, json.dumps(TICKLE), META)
    assert status.sso_expires_s == pytest.approx(444.936)
    assert status.server_name == "JifZ34060"


def test_fail_text_is_shown_to_the_user() -> None:
    status = classify_reply(A, 200, json.dumps(FAILED), META)
    assert "Force compete capability" in status.detail
    assert status.fail == FAILED["fail"]
    assert status.server_name is None


def test_unexpected_reply_keeps_the_raw_detail() -> None:
    status = classify_reply(A, 200, json.dumps({**READY, "authenticated": "yes"}), META)
    assert '"authenticated": "yes"' in status.detail


def test_not_json_says_another_program_may_hold_the_port() -> None:
    status = classify_reply(A, 200, "<html>hello</html>", META)
    assert "not the gateway's" in status.detail and "port 5000" in status.detail


def test_429_keeps_retry_after() -> None:
    status = classify_reply(A, 429, "", META, retry_after_s=30)
    assert status.retry_after_s == 30 and "30 s" in status.detail


@pytest.mark.parametrize(
    ("failure", "state", "words"),
    [
        (Failure.REFUSED, State.GATEWAY_DOWN, "Nothing is listening on 127.0.0.1:5000"),
        (Failure.TIMEOUT, State.NOT_RESPONDING, "no reply within 2 s"),
        (Failure.TLS_PLAINTEXT, State.ERROR, "answers without TLS"),
        (Failure.TLS_CERT, State.ERROR, "did not verify"),
        (Failure.TLS, State.ERROR, "TLS handshake"),
        (Failure.CONNECTION, State.ERROR, "The connection failed"),
    ],
)
def test_classify_failure(failure: Failure, state: State, words: str) -> None:
    status = classify_failure(failure, "no reply within 2 s", META)
    assert status.state is state
    assert words in status.detail
    assert status.http_status is None


def test_what_to_do_next() -> None:
    def detail(code: int, body: object) -> str:
        text = body if isinstance(body, str) else json.dumps(body)
        return classify_reply(A, code, text, META).detail

    assert "Log in at https://127.0.0.1:5000/" in detail(401, "")
    assert "ips.allow" in detail(404, "Access Denied") and "root/conf.yaml" in detail(
        404, "Access Denied"
    )
    assert "Reauthenticate" in detail(200, TIMED_OUT)
    assert "TWS" in detail(200, {**READY, "competing": True})


# ------------------------------------------------------------------ looks and contract

CONTRACT = {  # state: (colour, exit code)
    State.READY: (GREEN, 0),
    State.COMPETING: (ORANGE, 1),
    State.DISCONNECTED: (YELLOW, 1),
    State.NOT_AUTHENTICATED: (YELLOW, 1),
    State.LOGGED_OUT: (YELLOW, 1),
    State.GATEWAY_DOWN: (RED, 2),
    State.NOT_RESPONDING: (RED, 2),
    State.ACCESS_DENIED: (RED, 3),
    State.RATE_LIMITED: (ORANGE, 3),
    State.ERROR: (RED, 3),
    State.UNKNOWN: (GREY, None),
}


def test_contract_colours_and_exit_codes() -> None:
    assert {s.value for s in State} == {s.value for s in CONTRACT}
    assert GREEN == (46, 158, 68) and ORANGE == (245, 124, 0) and YELLOW == (242, 194, 0)
    assert RED == (211, 47, 47) and GREY == (128, 128, 128)
    for state, (colour, code) in CONTRACT.items():
        assert LOOKS[state].colour == colour, state
        assert LOOKS[state].exit_code == code, state


def test_glyph_differs_between_colour_groups() -> None:
    by_colour: dict[tuple[int, int, int], set[Glyph]] = {}
    for look in LOOKS.values():
        by_colour.setdefault(look.colour, set()).add(look.glyph)
    # one glyph per colour, except orange: one per state; no glyph in two colours
    assert by_colour[GREEN] == {Glyph.CHECK} and by_colour[YELLOW] == {Glyph.WARNING}
    assert by_colour[RED] == {Glyph.CROSS} and by_colour[GREY] == {Glyph.QUESTION}
    assert by_colour[ORANGE] == {Glyph.ARROWS, Glyph.HOURGLASS}


JSON_FIELDS = {
    "state",
    "label",
    "detail",
    "authenticated",
    "connected",
    "competing",
    "message",
    "fail",
    "server_name",
    "server_version",
    "http_status",
    "latency_ms",
    "checked_at",
    "url",
}


def test_json_has_every_contract_field() -> None:
    data = classify_reply(A, 200, json.dumps(READY), META).to_json()
    assert set(data) >= JSON_FIELDS
    assert data["state"] == "ready" and data["checked_at"] == "2026-11-26T12:00:05.000Z"
    assert data["http_status"] == 200 and data["latency_ms"] == 12.3
    json.dumps(data)
    down = classify_failure(Failure.REFUSED, "refused", META).to_json()
    assert set(down) >= JSON_FIELDS
    assert down["authenticated"] is None and down["http_status"] is None


def test_unknown_before_any_check() -> None:
    status = unknown("https://127.0.0.1:5000")
    assert status.state is State.UNKNOWN and status.checked_at is None
    assert status.look.colour == GREY and status.look.glyph is Glyph.QUESTION


def test_view_key_ignores_per_check_figures() -> None:
    one = classify_reply(A, 200, json.dumps(READY), META)
    two = classify_reply(A, 200, json.dumps(READY), Meta(URL, datetime.now(timezone.utc), 99.0))
    assert one.view_key() == two.view_key()
    assert one.view_key() != classify_reply(A, 401, "", META).view_key()
