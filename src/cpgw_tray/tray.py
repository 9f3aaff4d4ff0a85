"""The tray: icon, tooltip and menu, changed in one place on the tray's own thread.

:class:`TrayApp` holds the product's behaviour and talks to a small
:class:`~cpgw_tray.backends.Backend` interface (the pystray one is in :mod:`backends`;
tests use :mod:`backends.dummy`). The poller hands each result to
:meth:`TrayApp.on_status` on its own thread; that only *posts* :meth:`TrayApp.apply` to
the tray's thread, which changes the icon when the state changes, the tooltip after
each check and the menu when what it shows changed. Inside an IBKR restart window an
expected drop gets its own look and no notifications (:mod:`cpgw_tray.maintenance`).
The person policy's events and items are :mod:`cpgw_tray.person_menu`'s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from . import maintenance, opener, rows
from .maintenance import IbkrClock
from .menu import SEPARATOR, Entry, signature
from .person_menu import PersonItems
from .poller import Poller
from .session import SessionCare
from .status import SESSION_STATES, State, Status, unknown
from .urls import gateway_root

if TYPE_CHECKING:
    from .backends import Backend
    from .config import Config
    from .gateway import GatewayClient, Outcome
    from .history import History
    from .ibkr_clock import Window
    from .icons import Icon

log = logging.getLogger(__name__)

TOOLTIP_LIMIT = 127  # win32 raises ValueError beyond this
NO_ACTION = " — no action needed"


def tooltip(status: Status, headline: str | None = None) -> str:
    """``IBKR gateway: Ready — checked 12:01:05 (3 ms)``, cut to the win32 limit;
    ``headline`` replaces the label (an IBKR restart window's words)."""
    text = f"IBKR gateway: {headline or status.label}"
    if status.checked_at is not None:
        text += f" — checked {status.checked_at.astimezone().strftime('%H:%M:%S')}"
    if status.latency_ms is not None:
        text += f" ({status.latency_ms:.0f} ms)"
    return text if len(text) <= TOOLTIP_LIMIT else text[: TOOLTIP_LIMIT - 1] + "…"


class GatewayItems(Protocol):
    """The menu's gateway items (see :mod:`cpgw_tray.gatewayctl`), as the app uses them."""

    def entries(self) -> list[Entry]: ...
    def rescan_soon(self) -> None: ...
    def shutdown(self) -> None: ...


class SettingsPart(Protocol):
    """The menu's settings items (see :mod:`cpgw_tray.settings_menu`), as the app uses them."""

    def entries(self) -> list[Entry]: ...
    def save(self, name: str, value: Any) -> bool: ...


# ------------------------------------------------------------------------ the app

UTC_NOW = partial(datetime.now, timezone.utc)  # the default clock, as every other one


class TrayApp:
    """The tray's behaviour, independent of any toolkit."""

    def __init__(
        self,
        config: Config,
        client: GatewayClient,
        *,
        extra_entries: Callable[[], list[Entry]] | None = None,
        on_quit: Callable[[], None] | None = None,
        open_url: Callable[[str], bool] = opener.open_url,
        open_path: Callable[[Path], bool] = opener.open_path,
        now: Callable[[], datetime] = UTC_NOW,
        poller: Poller | None = None,
        history: History | None = None,
        log_path: Path | None = None,
        pause_file: Path | None = None,
    ) -> None:
        self.config = config
        self.client = client
        self.extra_entries = extra_entries
        self.history = history  # None: nothing recorded (the demo, tests)
        self._on_quit = on_quit
        self._open_url = open_url
        self._open_path = open_path
        self._now = now
        self.notifications = config.notifications
        self.status = unknown(config.url)
        self.since = now()
        self.came_from: State | None = None  # the state before the one shown (since_row)
        self.backend: Backend | None = None
        self.ibkr = IbkrClock.from_config(config)
        self.care = SessionCare(client, auto_reauth=config.auto_reauth, ibkr=self.ibkr)
        self.person_items = PersonItems(self)  # the person policy's notifications and rows
        self.person = self.person_items.care(self.care, config, pause_file, self._now)
        self.poller = poller or Poller(
            self.person.check,
            self.on_status,
            interval=config.interval,
            tickle=self.person.tickle,
            keepalive=config.keepalive,
            timeout=config.timeout,
            log_path=log_path,
            url=config.url,
        )
        self.poller.keepalive_paused = self.person.paused
        self.last_action: str | None = None  # the outcome of the last menu action
        # Also told of every status, on the poller's thread (the health endpoint, hooks).
        self.listeners: list[Callable[[Status], None]] = []
        self.gateway: GatewayItems | None = None
        self.settings: SettingsPart | None = None
        self._shown_icon: Icon | None = None
        self._known: State | None = None  # the last state that was not unknown, nor quiet
        self._was_quiet = False  # the last known state came inside a restart window's quiet
        self._shown_title: str | None = None
        self._shown_menu: tuple[Any, ...] | None = None
        self.quitting = threading.Event()

    # ---------------------------------------------------------------- lifecycle
    def start(self, backend: Backend) -> None:
        """Show the first icon and start polling. Returns at once (pystray's ``stop()``
        waits for the setup thread, so nothing here may block)."""
        self.backend = backend
        backend.post(self.refresh)
        self.poller.start()

    def quit(self) -> None:
        """Stop everything now; a hung request is abandoned, never awaited."""
        if self.quitting.is_set():
            return
        self.quitting.set()
        log.info("quitting")
        self.poller.stop()
        if self.gateway is not None:
            self.gateway.shutdown()
        if self._on_quit is not None:
            self._on_quit()
        if self.backend is not None:
            self.backend.stop()

    # ---------------------------------------------------------------- threads
    def on_status(self, status: Status) -> None:
        """Poller thread: hand the snapshot to the tray's thread. When the state changes,
        look again for the gateway process, on a worker (not delaying the icon)."""
        if self.history is not None:
            self.history.record(status)
        if self.backend is not None and not self.quitting.is_set():
            self.backend.post(lambda: self.apply(status))
        if self.gateway is not None and status.state is not self.status.state:
            self.gateway.rescan_soon()
        for listener in self.listeners:
            listener(status)

    def post_refresh(self) -> None:
        """Any thread: redraw the menu from the current snapshot."""
        if self.backend is not None:
            self.backend.post(self.refresh)

    def note(self, text: str | None) -> None:
        """Any thread: show the outcome of an action in the menu."""
        self.last_action = text
        self.post_refresh()

    def notify(self, title: str, message: str) -> None:
        """Any thread: a desktop notification, if the user wants them."""
        backend = self.backend
        if backend is not None and self.notifications and backend.has_notification:
            backend.post(lambda: backend.notify(message, title))

    def refresh(self) -> None:
        """Tray thread: re-apply the current snapshot (after a menu toggle)."""
        self.apply(self.status)

    def apply(self, status: Status) -> None:
        """Tray thread: the one place that changes the tray."""
        backend = self.backend
        if backend is None or self.quitting.is_set():
            return
        previous = self.status
        if status.state is not previous.state:
            self.since, self.came_from = self._now(), previous.state
            self.last_action = None  # the new state says how the action went
        self.status = status
        said = self.person_items.announce(self._was_quiet)  # before the menu: it may note
        window = self._expected_window(status)
        icon: Icon = maintenance.ICON if window else status.state
        if icon != self._shown_icon:
            log.debug("icon: %s", icon)
            backend.set_icon(icon)
            self._shown_icon = icon
        title = tooltip(status, rows.window_row(window) + NO_ACTION if window else None)
        if title != self._shown_title:
            backend.set_title(title)
            self._shown_title = title
        entries = self.entries()
        menu = signature(entries, live=backend.live_menu)
        if menu != self._shown_menu:
            backend.set_menu(entries)
            self._shown_menu = menu
        else:  # the same rows: their countdowns may have moved
            backend.refresh_live()
        was_quiet, before = self._was_quiet, self._known
        if self._note(status) and self._should_notify(before, status.state) and not said:
            after = "Not back after IBKR's restart: " if was_quiet else ""
            backend.notify(f"{after}{status.label}. {status.detail}", "IBKR gateway")

    def _note(self, status: Status) -> bool:
        """Remember whether this check fell in a restart window's quiet (inside it or 5
        minutes after), and its state if it counts (known, not quiet): a change in the
        quiet is judged later against the state before, so one notification follows
        only when the session has not come back. Returns whether it counts."""
        if status.state is State.UNKNOWN:
            return False
        self._was_quiet = self.ibkr.quiet(status)
        if self._was_quiet:
            return False
        self._known = status.state
        return True

    def _should_notify(self, before: State | None, state: State) -> bool:
        """Changes into and out of ``ready`` between counted states (see :meth:`_note`):
        not the first verdict after start, nor a stale one (grey after a resume)."""
        if not self.notifications or self.backend is None or not self.backend.has_notification:
            return False
        return before is not None and before is not state and State.READY in (before, state)

    def _expected_window(self, status: Status) -> Window | None:
        """The restart window that explains this state (shown with its own look)."""
        return self.ibkr.window(status) if maintenance.expected_drop(status) else None

    def _head(self, status: Status) -> list[str]:
        """The status row and its explanation, as many rows in every opening."""
        detail = rows.detail_rows(status)
        window = self._expected_window(status)
        if window is None:
            return [f"Status: {status.label}", *detail]
        head = [  # the detail's advice (log in, restart) would be wrong here
            rows.window_row(window) + NO_ACTION,
            f"Status: {status.label} (expected during the restart)",
            "Checks once a minute until the session is back",
        ]
        return head + [" "] * (1 + len(detail) - len(head))

    # ---------------------------------------------------------------- menu
    def entries(self) -> list[Entry]:
        """The menu, as a function of the current snapshot. Each state has a fixed row
        layout: a fact not known says so, so rows never move between openings."""
        status = self.status
        state = status.state
        items = [*self.person_items.head(status)]
        items += [Entry(line, enabled=False) for line in self._head(status)]
        items += self._facts()
        items += [SEPARATOR, Entry("Check now", self.check_now, default=True)]
        answers = status.http_status is not None and state is not State.ACCESS_DENIED
        items.append(Entry("Open login page", self.open_login, enabled=answers))
        if state is State.COMPETING:  # taking over logs the user out elsewhere: ask first
            take_over = Entry("Take the session over (logs out TWS / the phone)", self.take_over)
            items.append(Entry("Reauthenticate…", submenu=(take_over,)))
        else:
            can = state in (State.NOT_AUTHENTICATED, State.DISCONNECTED)
            items.append(Entry("Reauthenticate", self.reauthenticate, enabled=can))
        end = Entry("Yes, end the session", self.logout)
        items.append(Entry("Log out…", submenu=(end,), enabled=state in SESSION_STATES))
        items += [*self.person_items.entries(status), SEPARATOR]
        if self.gateway is not None:
            items += [*self.gateway.entries(), SEPARATOR]
        if self.extra_entries is not None:
            items += [*self.extra_entries(), SEPARATOR]
        if self.settings is not None:
            items += self.settings.entries()
        items += [
            Entry("Show history…", self.show_history, enabled=self.history is not None),
            Entry("Save diagnostics…", self.save_diagnostics),
            Entry("Notifications", self.toggle_notifications, checked=self.notifications),
            Entry("Quit", self.quit),
        ]
        return items

    def _facts(self) -> list[Entry]:
        """Rows about the session, the same rows for every opening in a state: since
        when, which account, time left (live countdowns), the last action's outcome."""
        status = self.status
        state = status.state
        # what the last action came to (blank until there is one: the row stays put)
        last = Entry(self.last_action or " ", enabled=False)
        if state is State.UNKNOWN:  # nothing known yet but what an action said
            return [last]
        facts = [Entry(rows.since_row(state, self.since, self.came_from), enabled=False)]
        if state in SESSION_STATES:
            kind = {True: "paper", False: "live", None: "paper or live unknown"}[status.paper]
            account = f"{status.account} ({kind})" if status.account else "unknown"
            facts.append(Entry(f"Account: {account}", enabled=False))
            facts.append(Entry(f"Server: {status.server_name or 'unknown'}", enabled=False))
            facts.append(self._live(self._login_left, every=15.0))
        if state is State.RATE_LIMITED:
            facts.append(self._live(self._next_check, every=1.0))
        if self.ibkr.enabled:  # the restart now or next, and the weekly full login
            told = self._expected_window(status) is not None  # the head says the window
            facts.append(self._live(lambda: rows.restart_row(self.ibkr, self._now(), told), 15.0))
            facts.append(self._live(lambda: rows.token_row(self.ibkr, self._now()), 15.0))
        facts.append(Entry(self.ibkr.choice.text, enabled=False))
        facts.append(last)
        return facts

    @staticmethod
    def _live(text: Callable[[], str], every: float) -> Entry:
        return Entry(text(), enabled=False, live=text, every=every)

    def _login_left(self) -> str:
        return rows.login_left(self.status, self._now())

    def _next_check(self) -> str:
        return rows.next_check(self.status, self._now())

    def check_now(self) -> None:
        """Menu: check at once (coalesced with a check already running)."""
        self.poller.check_now()

    def open_login(self) -> None:
        """Menu: the gateway's login page in the default browser."""
        url = gateway_root(self.config.url)
        self._open(lambda: self._open_url(url), url, "No browser found")

    def open_path(self, path: Path) -> None:
        """Menu: a file or folder (the gateway's log) with the desktop's program."""
        self._open(lambda: self._open_path(path), str(path), "Nothing here opens files")

    def _open(self, attempt: Callable[[], bool], target: str, why: str) -> None:
        """Off the tray's thread (a browser may take its time): where nothing can open
        ``target``, show it where the person can copy it: the menu and a notification."""

        def run() -> None:
            try:
                opened = attempt()
            except Exception:
                log.exception("opening %s failed", target)
                opened = False
            if opened:
                return
            log.warning("%s: %s", why, target)
            self.note(f"{why}; open {target} yourself")
            backend = self.backend
            if backend is not None and backend.has_notification:  # the click's answer
                backend.post(lambda: backend.notify(f"Open it yourself: {target}", why))

        threading.Thread(target=run, name="opener", daemon=True).start()

    def show_history(self) -> None:
        """Menu: the last 24 hours as a picture, opened, or its path in the menu."""

        def run() -> None:
            from datetime import timezone

            from . import paths
            from .history_cli import write_timeline

            assert self.history is not None
            try:
                path = write_timeline(
                    self.history,
                    paths.state_dir() / "history-24h.png",
                    datetime.now(timezone.utc),
                    self.config,
                )
            except Exception as exc:
                log.exception("cannot draw the history")
                self.note(f"History picture failed ({type(exc).__name__}); see the log")
                return
            if not self._open_url(path.as_uri()):
                self.note(f"History picture: {path}")

        threading.Thread(target=run, name="history", daemon=True).start()

    def save_diagnostics(self) -> None:
        """Menu: the support bundle; "saving…" at once, then its path (menu, notification)."""

        def run() -> None:
            from . import paths
            from .doctor import save_bundle

            name = f"diagnostics-{datetime.now():%Y%m%d-%H%M%S}.zip"
            try:
                path = save_bundle(paths.state_dir() / name, self.config)
            except Exception as exc:
                log.exception("cannot save the diagnostics")
                self.note(f"Diagnostics failed ({type(exc).__name__}); see the log")
                return
            self.note(f"Diagnostics saved: {path}")
            self.notify("Diagnostics saved", str(path))

        self.note("Saving diagnostics… (the doctor asks the gateway first)")
        threading.Thread(target=run, name="diagnostics", daemon=True).start()

    def reauthenticate(self) -> None:
        """Menu: start the brokerage session again (off the tray's thread)."""
        self._act("Reauthenticate", self.client.reauthenticate)

    def take_over(self) -> None:
        """Menu, after asking: take the session over from TWS or the phone."""
        self._act("Take over", lambda: self.client.reauthenticate(take_over=True))

    def logout(self) -> None:
        """Menu: end the session (off the tray's thread)."""
        self._act("Log out", self.client.logout)

    def _act(self, what: str, action: Callable[[], Outcome]) -> None:
        """Run a menu action on a worker thread; whatever happens is shown, never lost."""

        def run() -> None:
            try:
                outcome = action()
                message = outcome.message
                log.info("%s", message)
            except Exception as exc:
                log.exception("%s failed", what)
                message = f"{what} failed: internal error ({type(exc).__name__}); see the log"
                self.notify("cpgw-tray", message)
            self.care.forget()
            self.note(message)
            self.poller.check_now(fresh=True)

        threading.Thread(target=run, name="action", daemon=True).start()

    def toggle_notifications(self) -> None:
        """Menu: notifications on or off, saved to the settings file (else unchanged)."""
        wanted = not self.notifications
        if self.settings is None or self.settings.save("notifications", wanted):
            self.notifications = wanted
        self.post_refresh()
