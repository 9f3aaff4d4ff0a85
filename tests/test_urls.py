"""The gateway URL checked in one place: what is accepted, what is refused, and that a
refusal is one line that never shows a password."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize(
    ("given", "root"),
    [
        ("https://127.0.0.1:5000", "https://127.0.0.1:5000"),
        (" https://127.0.0.1:5000/ ", "https://127.0.0.1:5000"),
        ("HTTPS://LocalHost:5000/v1/api", "https://localhost:5000"),
        ("https://127.0.0.1:5000/v1/api/", "https://127.0.0.1:5000"),
        ("http://[::1]:5000", "http://[::1]:5000"),
        ("https://localhost:", "https://localhost"),
        ("https://gw.example.com", "https://gw.example.com"),
    ],
)
def test_check_url_accepts_and_normalises(given: str, root: str) -> None:
    from cpgw_tray.model.urls import check_url

    assert check_url(given) == root


@pytest.mark.parametrize(
    ("given", "words"),
    [
        ("https://evil.example\\@127.0.0.1:5000", "user info"),
        ("https://evil.example\\.127.0.0.1:5000", "backslash"),
        ("https://user:s3cret@127.0.0.1:5000", "user info"),
        ("https://127.0.0.1:5000/v1/api/tickle", "path"),
        ("https://127.0.0.1:5000/other", "path"),
        ("https://127.0.0.1:5000/?x=1", "query"),
        ("https://127.0.0.1:5000/#top", "fragment"),
        ("https://127.0.0.1:99999", "port"),
        ("ftp://127.0.0.1:5000", "scheme"),
        ("https://127.0.0.1\t:5000", "control"),
        ("https://exa%6dple.com", "characters"),
        ("https://127.0.0.1:5000:6000", "port"),
        ("https://127.0.0.1:+5000", "port"),
    ],
)
def test_check_url_refuses_with_one_line_and_no_password(given: str, words: str) -> None:
    from cpgw_tray.model.urls import check_url

    with pytest.raises(ValueError, match=words) as refused:
        check_url(given)
    message = str(refused.value)
    assert "\n" not in message and "s3cret" not in message


def test_parsers_that_disagree_on_the_host_are_refused() -> None:
    """The reported URL: urlsplit reads 127.0.0.1 (loopback, TLS checks off), urllib3 —
    which requests connects with — reads evil.example."""
    from urllib.parse import urlsplit

    from urllib3.util import parse_url

    from cpgw_tray.model.urls import _urllib3_host

    url = "https://evil.example\\@127.0.0.1:5000"
    assert urlsplit(url).hostname == "127.0.0.1" and parse_url(url).host == "evil.example"
    assert _urllib3_host(url) != ("127.0.0.1", 5000)


def test_bad_url_exits_64_with_one_line_and_no_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from .conftest import run_cli

    code, out = run_cli("--url", "https://trader:hunter2@127.0.0.1:5000", "status")
    err = capsys.readouterr().err
    assert code == 64 and out == ""
    assert err.count("\n") == 1 and "hunter2" not in err and "trader" not in err
    assert "https://***@127.0.0.1:5000" in err
