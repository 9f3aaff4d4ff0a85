"""Secrets removed from text that leaves this machine: the diagnostics bundle, the health
endpoint's replies on a non-loopback bind, hook output written to the log.

A :class:`Redactor` holds a corpus of secret *shapes* (regular expressions: headers,
cookies, tokens, webhook URLs, URLs with user info, IBKR account and session ids, the
login name and user id in JSON, YAML, key=value and command-line forms) and secret
*values* (strings removed wherever they appear: learnt where a login name or user id
is named unmistakably, :data:`LEARNERS`, or registered by the code that knows them, such
as a notification URL's token).
:data:`REDACTOR` is the process's one instance; :func:`register_shape`,
:func:`register_value` and :func:`register_url` add to it.

Notification (Apprise) URLs carry their secrets in any part — ``tgram://BOTTOKEN/CHATID``,
``pover://USER@TOKEN``, ``json://user:pass@host/path`` — so where one is shown
(:func:`redact_url`: ``config``, ``notify --test``, logs) only the scheme, a host that looks
like a host name or an address, and its port are kept. Pure but for the one instance's lock.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

REMOVED = "<removed>"
MIN_VALUE = 4  # shorter learnt or registered values would eat ordinary words

_QUOTED = r""""(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*'"""
# Keys whose value is secret, in any form: "key": "v", key=v, key: v, --key v
_PASSWORDS = r"ssl_?pwd|pass(?:word|wd|phrase)?|pwd|secret|client_?secret"
_TOKENS = (
    r"(?:access_|refresh_|auth_|api_|bot_|id_)?token|api_?key|x-api-key|apikey|private_?key"
    r"|authorization|proxy-authorization|set-cookie|cookie|session(?:_?id)?|sess(?:ion)?_?token"
    r"|x-sess-uuid|jsessionid|sid|credentials?"
)
_USERS = r"user_?name|user|login(?:_?name)?|account_?name|USER_NAME"
_USER_IDS = r"user_?id|USER_ID"


@dataclass(frozen=True)
class Shape:
    """One kind of secret: its name for the bundle's README and how to remove it."""

    name: str
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str]


def _keyed(keys: str, rest_of_line: bool) -> re.Pattern[str]:
    """``key`` followed by ``:`` or ``=`` (optionally quoted, as in JSON), then the value:
    quoted (escaped quotes included), else up to a separator or the end of the line."""
    unquoted = r"[^\r\n&\"']+" if rest_of_line else r"[^\s,;&}\]\"')]+"
    return re.compile(rf"""(?i)((?<![\w-])["']?(?:{keys})["']?\s*[:=]\s*)({_QUOTED}|{unquoted})""")


def _flag(keys: str) -> re.Pattern[str]:
    """A command-line option and its value: ``--password hunter3``, ``--token=x``."""
    return re.compile(rf"""(?i)((?<!\S)--?(?:{keys})(?:=|\s+))({_QUOTED}|[^\s"']+)""")


def _keep_quotes(match: re.Match[str]) -> str:
    value = match.group(2)
    quote = value[0] if value[:1] in ("'", '"') else ""
    return f"{match.group(1)}{quote}{REMOVED}{quote}"


CORPUS: tuple[Shape, ...] = (
    Shape(
        "webhook URLs (Slack, Discord, Telegram bot tokens)",
        re.compile(
            r"(?i)\b(https?://(?:hooks\.slack\.com|(?:\w+\.)?discord(?:app)?\.com/api/webhooks"
            r"|api\.telegram\.org)/?)[^\s\"'<>]*"
        ),
        rf"\1{REMOVED}",
    ),
    Shape(
        "Telegram bot tokens",
        re.compile(r"\b(?:bot)?\d{6,12}:[A-Za-z0-9_-]{30,}"),
        REMOVED,
    ),
    Shape(
        "notification URLs (Apprise schemes: everything after the scheme)",
        re.compile(
            r"(?i)\b((?:tgram|slack|discord|pover|pushover|ntfys?|matrixs?|signals?|mailtos?"
            r"|gotify|gotifys|pbul|join|msteams|twilio|json|jsons|form|forms)://)[^\s\"'<>]+"
        ),
        rf"\1{REMOVED}",
    ),
    Shape(
        "user and password in URLs (user:password@)",
        re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@\s\"'<>]+@"),
        rf"\1{REMOVED}@",
    ),
    Shape(
        "every cookie and the whole value of Authorization, X-Api-Key and Cookie headers",
        _keyed(
            r"authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key",
            rest_of_line=True,
        ),
        _keep_quotes,
    ),
    Shape(
        "Bearer, Basic and Token credentials",
        re.compile(r"\b((?i:bearer)|Basic|Token)\s+[A-Za-z0-9._~+/=-]*[0-9=][A-Za-z0-9._~+/=-]*"),
        rf"\1 {REMOVED}",
    ),
    Shape(
        "session cookies (JSESSIONID, x-sess-uuid, api, ...) anywhere",
        re.compile(
            r"(?i)((?<![\w-])(?:JSESSIONID|x-sess-uuid|XYZAB(?:_AM\.LOGIN)?|USERID|api"
            r"|[\w.-]*sess(?:ion)?[\w.-]*)=)([^\s;,&\"']+)"
        ),
        rf"\1{REMOVED}",
    ),
    Shape("passwords", _keyed(_PASSWORDS, rest_of_line=True), _keep_quotes),
    Shape("passwords on a command line", _flag(_PASSWORDS + "|" + _TOKENS), _keep_quotes),
    Shape("tokens, keys and session values", _keyed(_TOKENS, rest_of_line=False), _keep_quotes),
    Shape("login names", _keyed(_USERS, rest_of_line=False), _keep_quotes),
    Shape("login names on a command line", _flag(_USERS), _keep_quotes),
    Shape("user ids", _keyed(_USER_IDS, rest_of_line=False), _keep_quotes),
    Shape(
        "user names in home folders",
        re.compile(r"(?i)((?:/home/|/Users/|[A-Z]:\\Users\\))[^/\\\s\"']+"),
        r"\1<user>",
    ),
    Shape(
        "session ids (hex, any case; UUIDs)",
        re.compile(
            r"(?i)(?<![0-9a-z])(?:[0-9a-f]{20,}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}"
            r"-[0-9a-f]{4}-[0-9a-f]{12})(?![0-9a-z])"
        ),
        "<session-id>",
    ),
    Shape(
        "IBKR account ids (any case, with suffixes such as _Summary)",
        re.compile(r"(?i)(?<![0-9a-z])(?:DU|DF|U|F|I)\d{5,9}(?![0-9])"),
        "<account>",
    ),
)

# Where a login name or user id is named unmistakably (JSON, key=value without spaces,
# a command-line option), so that its value can be removed from every other line too;
# prose such as "user: please log in" teaches nothing.
LEARNERS = (
    re.compile(
        r"""(?i)(?:["']?(?:user_?name|login_?name)["']?\s*[:=]\s*["']?|["']user["']\s*:\s*["']"""
        r"""|(?<![\w-])(?:user|login)=|(?<!\S)--?(?:user(?:name)?|login)[= ]\s*["']?)"""
        r"""([A-Za-z0-9._@+-]{4,64})"""
    ),
    re.compile(r"""(?i)["']?user_?id["']?\s*[:=]\s*["']?(\d{5,})"""),
)


class Redactor:
    """Removes every shape and value it knows from text. Thread-safe; cheap to call."""

    def __init__(self, shapes: Iterable[Shape] = CORPUS) -> None:
        self._lock = threading.Lock()
        self._shapes = list(shapes)
        self._values: set[str] = set()
        self._values_re: re.Pattern[str] | None = None

    @property
    def shapes(self) -> list[Shape]:
        with self._lock:
            return list(self._shapes)

    def copy(self) -> Redactor:
        """A redactor with the same shapes and values, whose :meth:`learn` leaves this
        one alone (the bundle learns the login name of its own texts)."""
        other = Redactor(self.shapes)
        with self._lock:
            values = list(self._values)
        for value in values:
            other.add_value(value)
        return other

    def add_shape(self, shape: Shape) -> None:
        """Remove ``shape`` from now on (before the corpus's account and session ids)."""
        with self._lock:
            self._shapes.insert(0, shape)

    def add_value(self, value: str) -> None:
        """Remove ``value`` (case-insensitive) wherever it appears from now on; values
        shorter than :data:`MIN_VALUE` or already replaced are ignored."""
        value = value.strip().strip("\"'")
        if len(value) < MIN_VALUE or REMOVED in value:
            return
        with self._lock:
            if value not in self._values:
                self._values.add(value)
                ordered = sorted(self._values, key=len, reverse=True)
                self._values_re = re.compile("|".join(map(re.escape, ordered)), re.IGNORECASE)

    def add_url(self, url: str) -> None:
        """Remove a notification URL from now on: the whole of it, and each part of it
        that could be secret (a library may print a token alone)."""
        self.add_value(url)
        for secret in _secrets(url):
            self.add_value(secret)

    def learn(self, text: str) -> None:
        """Add the values of ``text``'s login names and user ids, so that the same name
        is removed from every other text too (e.g. in a sentence of the gateway's log)."""
        for pattern in LEARNERS:
            for match in pattern.finditer(text):
                self.add_value(match.group(1))

    def scrub(self, text: str) -> tuple[str, Counter[str]]:
        """``text`` without secrets, and how many of each shape were removed."""
        removed: Counter[str] = Counter()
        with self._lock:
            shapes, values = list(self._shapes), self._values_re
        if values is not None:
            text, count = values.subn(REMOVED, text)
            if count:
                removed["registered or learnt secret values"] += count
        for shape in shapes:
            text, count = shape.pattern.subn(shape.replacement, text)
            if count:
                removed[shape.name] += count
        return text, removed

    def __call__(self, text: str) -> str:
        return self.scrub(text)[0]


REDACTOR = Redactor()


def redact(text: str) -> str:
    """``text`` without any secret :data:`REDACTOR` knows."""
    return REDACTOR(text)


def register_value(value: str) -> None:
    """A secret known to the caller (a notification URL's token, a password read from a
    file): removed from every text redacted from now on."""
    REDACTOR.add_value(value)


def register_shape(name: str, pattern: str, replacement: str = REMOVED) -> None:
    """A kind of secret (``pattern``, a regular expression; ``replacement`` may use its
    groups, e.g. ``r"\\1<removed>"``), removed from every text redacted from now on."""
    REDACTOR.add_shape(Shape(name, re.compile(pattern), replacement))


def register_url(url: str) -> None:
    """A notification URL: the whole of it and each part that could be secret are removed
    from every text redacted from now on."""
    REDACTOR.add_url(url)


# ---------------------------------------------------------------- notification URLs
HIDDEN = "***"
_URL = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<rest>.*)$", re.DOTALL)
_HOST_NAME = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}$")
_PORT = re.compile(r"^[0-9]{1,5}$")


def redact_url(url: str) -> str:
    """``url`` with its secrets replaced: ``json://***@127.0.0.1:8080/***``,
    ``tgram://***/***``. Anything that is not a URL is hidden whole."""
    match = _URL.match(url.strip())
    if match is None:
        return HIDDEN
    scheme, rest = match["scheme"], match["rest"]
    where = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(where) :]
    user, at, hostport = where.rpartition("@")
    shown = f"{scheme}://" + (f"{HIDDEN}@" if at and user else "") + _host(hostport)
    if tail.strip("/"):
        shown += "/" + HIDDEN
    return shown


def _host(hostport: str) -> str:
    """The host and port when they look like them, else ``***``."""
    host, colon, port = hostport.rpartition(":") if not hostport.endswith("]") else ("", "", "")
    if not colon or not _PORT.match(port):
        host, port = hostport, ""
    if not _is_host(host):
        return HIDDEN
    return host + (f":{port}" if port else "")


def _is_host(host: str) -> bool:
    if host == "localhost" or _HOST_NAME.match(host):
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def redact_text(text: str, urls: Iterable[str]) -> str:
    """``text`` with each of ``urls`` (as given, and their parts that could be secret)
    replaced by its redacted form."""
    for url in sorted(urls, key=len, reverse=True):
        if url:
            text = text.replace(url, redact_url(url))
            for secret in _secrets(url):
                text = text.replace(secret, HIDDEN)
    return text


def _secrets(url: str) -> list[str]:
    """The parts of ``url`` a library might print alone (tokens, passwords, users), the
    longest first; short words are left alone so that ordinary text stays readable."""
    match = _URL.match(url.strip())
    if match is None:
        return []
    shown = redact_url(url)
    parts = re.split(r"[/?#&=@:]", match["rest"])
    found = {part for part in parts if len(part) >= 6 and part not in shown}
    return sorted(found, key=len, reverse=True)


_ANY_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s\"'<>\]\[,]+")
KEPT_SCHEMES = ("http", "https")  # the gateway's own URLs stay readable


def redact_notify_urls_in(text: str) -> str:
    """Every URL in ``text`` whose scheme is not http(s) — an Apprise URL — redacted
    (for text that may hold URLs nobody listed: settings files, old logs)."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        scheme = url.split("://", 1)[0].lower()
        return url if scheme in KEPT_SCHEMES else redact_url(url)

    return _ANY_URL.sub(one, text)
