"""Sending to the phone and chat (``notify_urls``) through Apprise, on one worker
thread: events (and, with ``notify_on = ["all"]``, state changes) are handed in from any
thread and never wait; :mod:`.notify_outbox` decides what goes when.

Apprise is the optional extra ``notify``; it is imported on the worker's thread, the
first time something is sent. A send that takes longer than ``hook_timeout`` is
abandoned and logged; a failed send is retried for that URL with a growing pause, for at
most :data:`RETRY_FOR`. URLs are only ever shown redacted (:mod:`.redact`), Apprise's own
log lines included.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import TYPE_CHECKING

from ..model.urls import is_loopback
from ..redaction import redact_text, redact_url, register_url
from ..settings.values import parse_quiet
from .notify_outbox import Message, Outbox, phone_text

if TYPE_CHECKING:
    from ..model.person import Event
    from ..model.status import Status
    from ..settings.config import Config

log = logging.getLogger(__name__)

RETRY_FIRST = timedelta(seconds=10)
RETRY_MOST = timedelta(minutes=2)  # the longest pause between tries
RETRY_FOR = timedelta(minutes=10)
IDLE = 3600.0  # seconds the worker sleeps when nothing waits (a new message wakes it)
INSTALL = "pip install 'cpgw-tray[notify]'"


class AppriseMissing(Exception):
    """The ``notify`` extra is not installed."""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def computer_name(gateway_url: str) -> str:
    """The computer that runs the gateway: this one for a loopback URL, else its host."""
    from urllib.parse import urlsplit

    if is_loopback(gateway_url):
        return socket.gethostname()
    return urlsplit(gateway_url).hostname or gateway_url


def deliver(url: str, title: str, body: str, timeout: float) -> bool:
    """Send one message to one Apprise URL; False when it failed or took longer than
    ``timeout`` seconds (then it is abandoned on its own daemon thread). Raises
    :class:`AppriseMissing` without the extra."""
    try:
        import apprise
    except ImportError:
        raise AppriseMissing(f"Apprise is not installed: {INSTALL}") from None
    _hide_secrets_in_apprise_log()
    went: list[bool] = []

    def send() -> None:
        try:
            sender = apprise.Apprise()
            went.append(bool(sender.add(url) and sender.notify(body=body, title=title)))
        except Exception as exc:  # a plugin's own bug must not end the worker
            log.warning("notification to %s failed: %s", redact_url(url), _said(exc, url))
            went.append(False)

    thread = threading.Thread(target=send, name="notify-send", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning(
            "notification to %s abandoned after %g s (hook_timeout)", redact_url(url), timeout
        )
        return False
    return bool(went and went[0])


def _said(exc: BaseException, url: str) -> str:
    return redact_text(f"{type(exc).__name__}: {exc}", [url])


class _Redactor(logging.Filter):
    """Hides the URLs given to Apprise in its log records."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            record.msg = redact_text(record.getMessage(), self.urls)
            record.args = ()
        return True


_REDACTOR = _Redactor()


def hide(urls: Sequence[str]) -> None:
    """Remember ``urls`` as secrets that Apprise's log lines must not show."""
    _REDACTOR.urls.update(urls)


def _hide_secrets_in_apprise_log() -> None:
    """Apprise's log lines, and urllib3's debug lines of the requests it sends."""
    for name in ("apprise", "urllib3.connectionpool"):
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)


@dataclass
class _Retry:
    url: str
    body: str
    first: datetime
    pause: timedelta
    next: datetime


class Notifier:
    """The worker (see the module). :meth:`event` and :meth:`status` from any thread;
    :meth:`step` does one round of sending (the worker's loop, or a test's clock)."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        kinds: Sequence[str],
        quiet: str | None = None,
        timeout: float = 30.0,
        computer: str = "this computer",
        wall: Callable[[], datetime] = _utc_now,
        zone: tzinfo | None = None,
        send: Callable[[str, str, str, float], bool] = deliver,
    ) -> None:
        self.urls = list(urls)
        for url in self.urls:  # hook tails, the health endpoint, the bundle hide them too
            register_url(url)
        self.kinds = frozenset(kinds)
        self.timeout = timeout
        self.computer = computer
        self.title = f"IBKR gateway on {computer}"
        self.outbox = Outbox(quiet=parse_quiet(quiet) if quiet else None, zone=zone)
        self.sent = 0  # messages that went to a URL
        self.failed = 0  # sends that failed (each retry counts)
        self._wall = wall
        self._send = send
        self._retries: list[_Retry] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._dropped_told = 0
        self._missing = False
        self._state: dict[str | None, str] = {}  # the last state, by gateway name
        self._thread = threading.Thread(target=self._run, name="notify", daemon=True)
        hide(self.urls)

    @classmethod
    def from_config(cls, config: Config, *, wall: Callable[[], datetime] | None = None) -> Notifier:
        return cls(
            config.notify_urls,
            kinds=config.notify_on,
            quiet=config.notify_quiet,
            timeout=config.hook_timeout,
            computer=computer_name(config.url),
            wall=wall or _utc_now,
        )

    # ---------------------------------------------------------------- any thread
    def event(self, event: Event) -> None:
        """An event; it waits for the worker if ``notify_on`` names its kind."""
        if event.kind in self.kinds or "all" in self.kinds:
            text = phone_text(event.kind, event.message, self.computer)
            named = f"{event.gateway}: " if event.gateway else ""  # several: which one
            self._add(Message(event.kind, named + text, event.at))

    def status(self, status: Status) -> None:
        """A published status: with ``notify_on = ["all"]`` each state change goes out."""
        state = status.state.value
        before = self._state.get(status.gateway)
        changed = before is not None and state != before
        self._state[status.gateway] = state
        if changed and "all" in self.kinds:
            named = f" {status.gateway}" if status.gateway else ""
            text = f"The gateway{named} on {self.computer}: {status.label}. {status.detail}"
            self._add(Message("state", text, status.checked_at or self._wall()))

    def _add(self, message: Message) -> None:
        with self._lock:
            self.outbox.add(message)
        self._wake.set()

    # ---------------------------------------------------------------- the worker
    @property
    def thread(self) -> threading.Thread:
        """The sender's worker (a watcher sees that it still runs)."""
        return self._thread

    def start(self) -> None:
        shown = ", ".join(redact_url(url) for url in self.urls)
        log.info("phone and chat messages (%s) to %s", ", ".join(sorted(self.kinds)), shown)
        self._thread.start()

    def stop(self) -> None:
        """Send nothing more; a send under way is abandoned (its thread is a daemon)."""
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.clear()
            try:
                delay = self.step()
            except Exception:  # the worker goes on whatever a round did
                log.exception("sending notifications failed")
                delay = RETRY_FIRST.total_seconds()
            self._wake.wait(delay)

    def step(self) -> float:
        """Send what is due now, retry what failed; returns the seconds until the next
        round has something to do."""
        now = self._wall()
        with self._lock:
            texts = self.outbox.due(now)
            retries = [r for r in self._retries if r.next <= now]
            self._retries = [r for r in self._retries if r.next > now]
            dropped = self.outbox.dropped
        if dropped > self._dropped_told:
            log.warning("notification queue full: %d oldest messages dropped", dropped)
            self._dropped_told = dropped
        for text in texts:
            for url in self.urls:
                self._try(url, text, None, now)
        for retry in retries:
            self._try(retry.url, retry.body, retry, now)
        return self._next_delay(self._wall())

    def _try(self, url: str, body: str, retry: _Retry | None, now: datetime) -> None:
        if self._stopped.is_set() or self._missing:
            return
        try:
            went = self._send(url, self.title, body, self.timeout)
        except AppriseMissing as exc:
            log.error("cannot send notifications: %s", exc)
            self._missing = True
            return
        if went:
            self.sent += 1
            return
        self.failed += 1
        if retry is None:
            retry = _Retry(url, body, now, RETRY_FIRST, now)
        else:
            retry.pause = min(retry.pause * 2, RETRY_MOST)
        retry.next = now + retry.pause
        if retry.next - retry.first > RETRY_FOR:
            log.warning(
                "notification to %s given up after %d min of failures",
                redact_url(url),
                RETRY_FOR.total_seconds() // 60,
            )
            return
        log.info("notification to %s failed; next try in %s", redact_url(url), retry.pause)
        with self._lock:
            self._retries.append(retry)

    def _next_delay(self, now: datetime) -> float:
        with self._lock:
            times = [r.next for r in self._retries]
            wake = self.outbox.wake(now)
        if wake is not None:
            times.append(wake)
        if not times:
            return IDLE
        return max(0.0, (min(times) - now).total_seconds())
