"""The account facts: which account is logged in, and paper or live.

Read from two side replies (``/iserver/accounts`` and ``/sso/validate``), either of which
may be missing or odd: :func:`parse_account` takes whatever JSON came and never raises.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Account:
    """Which account is logged in, from ``/iserver/accounts`` and ``/sso/validate``."""

    ids: tuple[str, ...]
    paper: bool | None

    @property
    def kind(self) -> str:
        return "Paper" if self.paper else "Live" if self.paper is False else "Paper or live unknown"


def parse_account(accounts: Any, validate: Any = None) -> Account | None:
    """Account facts from the two replies (either may be missing or odd).

    Paper or live, in order of trust: ``isPaper``; ``LOGIN_TYPE`` (1 live, 2 paper);
    the id prefix (paper account ids start with ``DU``)."""
    if not isinstance(accounts, dict):
        return None
    raw = accounts.get("accounts")
    ids = tuple(a for a in raw if isinstance(a, str)) if isinstance(raw, list) else ()
    paper: bool | None = None
    login_type = validate.get("LOGIN_TYPE") if isinstance(validate, dict) else None
    if isinstance(accounts.get("isPaper"), bool):
        paper = accounts["isPaper"]
    elif type(login_type) is int and login_type in (1, 2):  # a real int: True == 1
        paper = login_type == 2
    elif ids:
        paper = all(a.startswith("DU") for a in ids)
    if not ids and paper is None:
        return None
    return Account(ids, paper)
