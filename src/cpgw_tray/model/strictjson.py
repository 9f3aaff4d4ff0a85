"""JSON from a stranger, decoded without surprises.

A gateway reply is untrusted text: it may nest ``[`` a hundred thousand deep (which makes
``json.loads`` recurse until ``RecursionError``), carry ``NaN``/``Infinity`` (not JSON,
but Python accepts them), numbers that overflow to infinity, or integers so long that
converting them costs seconds. :func:`loads` refuses all of these with a
:class:`BadJSON` whose message is plain words. What it returns has every string (keys
too) already cleaned by :func:`~cpgw_tray.model.wording.clean_tree`: this is where the
gateway's text is read, so it is made safe here, once. Pure: no I/O, no state.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from .wording import clean_tree

MAX_DEPTH = 64  # the gateway's replies nest 3 or 4 deep
MAX_DIGITS = 40  # the gateway's numbers are ids, milliseconds and counts

_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')  # after escapes are gone; linear, no backtracking
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class BadJSON(ValueError):
    """The text is not JSON this program accepts; the message says why, in plain words."""


def depth(text: str) -> int:
    """The deepest nesting of arrays and objects in ``text``, without recursion.

    Escapes are dropped first (so ``\\"`` cannot end a string), then whole strings, so
    brackets inside strings do not count; every regex here runs in linear time. An
    unterminated string leaves its brackets counted, which only over-counts (JSON that
    is not valid anyway)."""
    bare = _STRING.sub("", _ESCAPE.sub("", text))
    brackets = _NOT_BRACKET.sub("", bare)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0)


def _constant(name: str) -> Any:
    raise BadJSON(f"a number that is not finite ({name})")


def _float(text: str) -> float:
    if len(text) > 2 * MAX_DIGITS:
        raise BadJSON("a number too long")
    value = float(text)
    if not math.isfinite(value):
        raise BadJSON("a number too large")
    return value


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadJSON("a number too large")
    return int(text)


def loads(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` for untrusted text: :class:`BadJSON` for anything not plain JSON,
    nested deeper than ``max_depth``, or with non-finite or huge numbers; its strings
    cleaned (the text boundary)."""
    if depth(text) > max_depth:
        raise BadJSON(f"nested deeper than {max_depth} levels")
    try:
        decoded = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
        return clean_tree(decoded)
    except BadJSON:
        raise
    except ValueError as exc:
        raise BadJSON("not JSON") from exc


def loads_or_none(text: str, max_depth: int = MAX_DEPTH) -> Any:
    """:func:`loads`, or None for anything it refuses: for side replies, where a bad
    reply only means the facts it would have given stay unknown."""
    try:
        return loads(text, max_depth)
    except BadJSON:
        return None
