"""What the tray shows for one status, computed once per status: the icon, the tooltip,
the status rows and the fact rows, from the status, IBKR's clock, when the state began
and the last action's outcome. Pure but for the live rows' own clock (a countdown row
carries a function giving its text now). :class:`~cpgw_tray.tray.tray_app.TrayApp` only renders a
:class:`View`; the menu's sections read it for their ``entries(view)``.

An expected drop (:func:`~cpgw_tray.care.maintenance.expected_drop`, from the status's own
``maintenance_until``) is decided here once, with the restart window that explains it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from ..care import maintenance
from ..model.status import SESSION_STATES, State, Status
from . import rows
from .menu import Entry

if TYPE_CHECKING:
    from ..care.maintenance import IbkrClock
    from ..model.ibkr_clock import Window
    from .icons import Icon

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


@dataclass(frozen=True)
class View:
    """What the tray shows for one status."""

    status: Status
    icon: Icon
    tooltip: str
    window: Window | None  # the IBKR restart window that explains the state, if any
    rows: tuple[Entry, ...]  # the status rows and the facts, above the actions
    region: str  # the IBKR region whose restart windows apply
    hint: str  # how the region was chosen ("IBKR region: assumed …"), under Settings

    @property
    def expected(self) -> bool:
        """The state is an expected drop inside an IBKR restart window."""
        return self.window is not None


def compute(
    status: Status,
    *,
    since: datetime,
    last_action: str | None,
    ibkr: IbkrClock,
    wall: Callable[[], datetime],
    latest: Callable[[], Status] | None = None,
    came_from: State | None = None,
) -> View:
    """The view of ``status``: ``since`` when its state began (``came_from`` the state
    before), ``last_action`` the outcome of the last menu action, ``wall`` the clock the
    live rows count with and ``latest`` the status they count from (the one shown by
    then: a menu left in place when only facts changed still counts from the newest;
    default ``status``)."""
    window = ibkr.window(status) if maintenance.expected_drop(status) else None
    icon: Icon = maintenance.ICON if window else status.state
    title = tooltip(status, rows.window_row(window) + NO_ACTION if window else None)
    head = [Entry(line, enabled=False) for line in _head(status, window)]
    facts = _facts(
        status, window, (since, came_from), last_action, ibkr, wall, latest or (lambda: status)
    )
    return View(status, icon, title, window, (*head, *facts), ibkr.region, ibkr.choice.text)


def _head(status: Status, window: Window | None) -> list[str]:
    """The status row and its explanation, as many rows in every opening."""
    detail = rows.detail_rows(status)
    if window is None:
        return [f"Status: {status.label}", *detail]
    head = [  # the detail's advice (log in, restart) would be wrong here
        rows.window_row(window) + NO_ACTION,
        f"Status: {status.label} (expected during the restart)",
        "Checks once a minute until the session is back",
    ]
    return head + [" "] * (1 + len(detail) - len(head))


def _facts(
    status: Status,
    window: Window | None,
    since: tuple[datetime, State | None],
    last_action: str | None,
    ibkr: IbkrClock,
    wall: Callable[[], datetime],
    latest: Callable[[], Status],
) -> list[Entry]:
    """Rows about the session, the same rows for every opening in a state: since when,
    which account, time left (live countdowns), the last action's outcome."""
    state = status.state
    # what the last action came to (blank until there is one: the row stays put)
    last = Entry(last_action or " ", enabled=False)
    if state is State.UNKNOWN:  # nothing known yet but what an action said
        return [last]
    facts = [Entry(rows.since_row(state, *since), enabled=False)]
    if state in SESSION_STATES:
        kind = {True: "paper", False: "live", None: "paper or live unknown"}[status.paper]
        account = f"{status.account} ({kind})" if status.account else "unknown"
        server = status.server_name or "unknown"  # one row: the menu fits small screens
        facts.append(Entry(f"Account: {account}, server {server}", enabled=False))
        facts.append(_live(lambda: rows.login_left(latest(), wall()), every=15.0))
    if state is State.RATE_LIMITED:
        facts.append(_live(lambda: rows.next_check(latest(), wall()), every=1.0))
    if ibkr.enabled:  # the restart now or next, and the weekly full login
        told = window is not None  # the head says the window
        facts.append(_live(lambda: rows.restart_row(ibkr, wall(), told), 15.0))
        facts.append(_live(lambda: rows.token_row(ibkr, wall()), 15.0))
    facts.append(last)
    return facts


def _live(text: Callable[[], str], every: float) -> Entry:
    return Entry(text(), enabled=False, live=text, every=every)
