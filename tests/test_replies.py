"""Hostile replies to the pure classifier: deep, non-finite or huge JSON, odd expiry and
login types, and properties (any bytes, any JSON) that must always give a valid state."""

from __future__ import annotations

import json
import math
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cpgw_tray.model.accounts import Account, parse_account
from cpgw_tray.model.status import Endpoint, State, Status, classify_reply

from .test_status import META, READY, A, T


@pytest.mark.parametrize("endpoint", [A, T])
@pytest.mark.parametrize(
    ("body", "words"),
    [
        ("[" * 100_000, "nested deeper than 64 levels"),
        ('{"a":' * 100_000, "nested deeper than 64 levels"),
        ('{"authenticated": NaN, "connected": true}', "not finite (NaN)"),
        ('{"authenticated": true, "x": -Infinity}', "not finite (-Infinity)"),
        ('{"authenticated": true, "x": 1e400}', "a number too large"),
        ('{"authenticated": true, "x": ' + "9" * 5000 + "}", "a number too large"),
    ],
)
def test_hostile_json_is_an_error_in_plain_words(endpoint: Endpoint, body: str, words: str) -> None:
    status = classify_reply(endpoint, 200, body, META)
    assert status.state is State.ERROR and words in status.detail
    assert status.http_status == 200


def test_hostile_json_after_a_401_is_still_logged_out() -> None:
    assert classify_reply(A, 401, "[" * 100_000, META).state is State.LOGGED_OUT


def test_depth_ignores_brackets_inside_strings() -> None:
    from cpgw_tray.model.strictjson import depth, loads

    text = json.dumps({"fail": "[[[[" * 100 + '\\"' + "{{{" * 100, "ok": [[1]]})
    assert depth(text) == 3
    assert loads(text)["ok"] == [[1]]
    assert depth('"\\\\"[[]]') == 2  # an escaped backslash ends the string before [[


@pytest.mark.parametrize("expires", ["NaN", "Infinity", "-5", "true", "1e300"])
def test_odd_sso_expiry_is_unknown_or_refused(expires: str) -> None:
    body = '{"ssoExpires": ' + expires + ', "iserver": {"authStatus": ' + json.dumps(READY) + "}}"
    status = classify_reply(T, 200, body, META)
    if expires in ("NaN", "Infinity"):
        assert status.state is State.ERROR  # not JSON numbers at all
    else:
        assert status.state is State.READY
        finite = status.sso_expires_s is None or math.isfinite(status.sso_expires_s)
        assert finite and (status.sso_expires_s is None or status.sso_expires_s >= 0)


def test_parse_account_login_type_must_be_a_real_number() -> None:
    assert parse_account({"accounts": ["U1"]}, {"LOGIN_TYPE": True}) == Account(("U1",), False)
    assert parse_account({"accounts": ["U1"]}, {"LOGIN_TYPE": 2}) == Account(("U1",), True)


# ------------------------------------------------------------------ properties

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=40,
)
AUTH_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "authenticated": JSON_VALUES,
        "connected": JSON_VALUES,
        "competing": JSON_VALUES,
        "fail": JSON_VALUES,
        "message": JSON_VALUES,
        "serverInfo": JSON_VALUES,
        "error": JSON_VALUES,
    },
)
TICKLE_LIKE = st.fixed_dictionaries(
    {},
    optional={
        "ssoExpires": JSON_VALUES,
        "iserver": st.fixed_dictionaries({}, optional={"authStatus": AUTH_LIKE | JSON_VALUES}),
        "error": JSON_VALUES,
    },
)
STATUSES = st.sampled_from([200, 400, 401, 403, 404, 429, 500, 503]) | st.integers(100, 599)


def assert_valid(status: Status) -> None:
    assert isinstance(status.state, State) and status.label and status.detail
    assert status.exit_code in (0, 1, 2, 3)
    json.dumps(status.to_json(), allow_nan=False)  # the contract's JSON, always writable
    for value in status.to_json().values():  # safe text: the boundary cleaned it
        if isinstance(value, str):
            value.encode("utf-8")  # no lone surrogates
            assert not [c for c in value if unicodedata.category(c) == "Cc"], repr(value)
            assert len(value) <= 2000


ANY_TEXT = st.text(st.characters(blacklist_categories=()), max_size=300)  # surrogates too


@settings(max_examples=200, deadline=None)
@given(endpoint=st.sampled_from([A, T]), code=STATUSES, body=st.binary(max_size=2000))
def test_any_bytes_classify_to_a_valid_state(endpoint: Endpoint, code: int, body: bytes) -> None:
    assert_valid(classify_reply(endpoint, code, body.decode("utf-8", "replace"), META))


@settings(max_examples=200, deadline=None)
@given(
    endpoint=st.sampled_from([A, T]),
    code=STATUSES,
    value=JSON_VALUES | AUTH_LIKE | TICKLE_LIKE,
    nesting=st.integers(0, 200),
)
def test_any_json_classifies_to_a_valid_state(
    endpoint: Endpoint, code: int, value: object, nesting: int
) -> None:
    body = "[" * nesting + json.dumps(value) + "]" * nesting
    assert_valid(classify_reply(endpoint, code, body, META))
    assert_valid(classify_reply(endpoint, code, json.dumps(value), META))


@settings(max_examples=200, deadline=None)
@given(
    accounts=JSON_VALUES
    | st.fixed_dictionaries({}, optional={"accounts": JSON_VALUES, "isPaper": JSON_VALUES}),
    validate=JSON_VALUES | st.fixed_dictionaries({}, optional={"LOGIN_TYPE": JSON_VALUES}),
)
def test_parse_account_never_raises(accounts: object, validate: object) -> None:
    account = parse_account(accounts, validate)
    assert account is None or (
        all(isinstance(i, str) for i in account.ids) and account.paper in (True, False, None)
    )


@settings(max_examples=200, deadline=None)
@given(
    endpoint=st.sampled_from([A, T]),
    code=STATUSES,
    words=ANY_TEXT,
    where=st.sampled_from(["message", "fail", "serverName", "error", "body"]),
)
def test_any_words_classify_to_a_state_and_safe_text(
    endpoint: Endpoint, code: int, words: str, where: str
) -> None:
    """For any text in any field (escapes, NUL, lone surrogates, newlines) or as the whole
    body, classification gives a state and only safe text."""
    auth: dict[str, object] = {"authenticated": True, "connected": True, "competing": False}
    if where == "serverName":
        auth["serverInfo"] = {"serverName": words, "serverVersion": words}
    elif where != "body":
        auth[where] = words
    reply: object = {"iserver": {"authStatus": auth}} if endpoint is T else auth
    body = words if where == "body" else json.dumps(reply)
    assert_valid(classify_reply(endpoint, code, body, META))
