"""Words for people: durations in hours and minutes, gateway error bodies summarised, and
the gateway's own text made safe.

Pure functions (no I/O), shared by the status model's details and the tray's menu, so a
person reads "23 h 59 min" rather than "1439 min" and "HTTP 500 Internal Server Error"
rather than a JSON object cut in the middle.

The text boundary: every string that comes from the gateway passes :func:`excerpt` once,
where the reply is read (:mod:`.strictjson` cleans every string of a decoded reply; the
status model and the client excerpt raw bodies and transport errors with it). After it a
string has no control characters or escape sequences (a terminal, a hook's environment, a
menu or a metrics label cannot be forged or broken by it), no NUL and no lone surrogates
(both become U+FFFD: they cannot be encoded or passed to a process), one line, and a cap.
"""

from __future__ import annotations

import json
import re
from typing import Any

_TAGS = re.compile(r"<[^>]*>")
_LIMIT = 120  # characters of a non-JSON body kept in a summary
FIELD_LIMIT = 400  # characters kept of one string in a gateway reply (a message, an id)
# ESC sequences: CSI; OSC, DCS, SOS, PM and APC up to their terminator; ESC + one char
_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"
    r"|(?:\x1b[\]P^_X]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b.?",
    re.DOTALL,
)
_UNSAFE = re.compile(r"[\x00\ud800-\udfff]")  # NUL and lone surrogates become U+FFFD
# Other controls (whitespace is folded after), C1, zero-width and bidirectional marks
_CONTROLS = re.compile(
    r"[\x01-\x08\x0e-\x1b\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]"
)


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
    """``text`` made safe (the text boundary: see above) on one line, cut to ``limit``
    characters with "…"."""
    text = _ESCAPES.sub("", text[: limit * 4 + 64])  # what can survive the cut, no more
    text = _CONTROLS.sub("", _UNSAFE.sub("\ufffd", text))
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def clean_tree(value: Any) -> Any:
    """A decoded JSON value with every string in it (keys too) passed through
    :func:`excerpt` with :data:`FIELD_LIMIT`."""
    if isinstance(value, str):
        return excerpt(value, FIELD_LIMIT)
    if isinstance(value, dict):
        return {excerpt(k, FIELD_LIMIT): clean_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_tree(v) for v in value]
    return value


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
    flat = excerpt(text.replace("{", " ").replace("}", " "), _LIMIT)
    return flat or "a reply without text"


def _json_words(obj: dict[str, Any]) -> str:
    """The status code and the error's words of a JSON error object, if it has any."""
    code = obj.get("statusCode", obj.get("status"))
    said = [
        excerpt(str(obj[key]), _LIMIT)
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
