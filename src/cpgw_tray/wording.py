"""Words for people: durations in hours and minutes, and gateway error bodies summarised.

Pure functions (no I/O), shared by the status model's details and the tray's menu, so a
person reads "23 h 59 min" rather than "1439 min" and "HTTP 500 Internal Server Error"
rather than a JSON object cut in the middle.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TAGS = re.compile(r"<[^>]*>")
_LIMIT = 120  # characters of a non-JSON body kept in a summary


def duration(total_s: float, *, with_seconds: bool = False) -> str:
    """``86340`` -> ``23 h 59 min``; with seconds, ``125`` -> ``2 min 5 s`` and ``42`` ->
    ``42 s``; without, under half a minute is ``less than 1 min``."""
    total = max(0, round(total_s))
    if not with_seconds:
        total = round(total / 60) * 60
        if total == 0:
            return "less than 1 min"
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    parts = [f"{h} h"] if h else []
    if m:
        parts.append(f"{m} min")
    if with_seconds and (s or not parts):
        parts.append(f"{s} s")
    return " ".join(parts)


def excerpt(text: str, limit: int = 160) -> str:
    """``text`` on one line, cut to ``limit`` characters with "…"."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def summarise_body(body: str) -> str:
    """A gateway error body in a few words: ``{"error": "Internal Server Error",
    "statusCode": 500}`` -> ``HTTP 500 Internal Server Error``; an HTML page -> its text;
    anything else flattened and cut."""
    text = body.strip()
    if not text:
        return "an empty reply"
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        words = _json_words(parsed)
        if words:
            return words
    if text.startswith("<"):
        text = _TAGS.sub(" ", text)
    flat = " ".join(text.replace("{", " ").replace("}", " ").split())
    if not flat:
        return "a reply without text"
    return flat if len(flat) <= _LIMIT else flat[: _LIMIT - 1] + "…"


def _json_words(obj: dict[str, Any]) -> str:
    """The status code and the error's words of a JSON error object, if it has any."""
    code = obj.get("statusCode", obj.get("status"))
    said = [
        str(obj[key]).strip()
        for key in ("error", "message", "msg", "reason")
        if isinstance(obj.get(key), (str, int)) and not isinstance(obj.get(key), bool)
    ]
    said = [s for i, s in enumerate(said) if s and s not in said[:i]]
    head = f"HTTP {code}" if isinstance(code, int) and not isinstance(code, bool) else ""
    return " ".join(p for p in (head, ": ".join(said)) if p)


def http_reply(code: int, body: str) -> str:
    """``HTTP 500 Internal Server Error``, or ``HTTP 502: <the page's words>``, without a
    closing full stop (the caller's sentence ends it)."""
    summary = summarise_body(body).rstrip(".")
    return summary if summary.startswith(f"HTTP {code}") else f"HTTP {code}: {summary}"
