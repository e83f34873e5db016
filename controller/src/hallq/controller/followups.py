"""Follow-ups of bad reviews (差评回访整改): every 不满意 or 非常不满意 must be called back and settled.

- When the controller stores a bad rating it opens a follow-up in the SAME transaction
  (:func:`open_row`), due ``followup_days`` working days after the day it was received (weekends and the
  ``[haocp] holidays`` skipped, ``[haocp] workdays`` counted: :func:`due_date`).
- ``hallq controller followups`` lists them; ``hallq controller followups close ID --by NAME --action TEXT``
  records who called the citizen back and what was done (:func:`close`).
- The open ones are published retained on ``hallq/{hall}/followups`` (:class:`Publisher`): at every
  (re)connection, whenever one is opened or closed (also by the command while the controller runs),
  and when a new day begins (``overdue`` changes).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from hallq.shared.schemas import FollowUp, FollowUps, Staff

BAD_LEVELS = ("dissatisfied", "very_dissatisfied")
DEFAULT_DAYS = 5

SCHEMA = """
CREATE TABLE IF NOT EXISTS followups (
    id INTEGER PRIMARY KEY, rating_id INTEGER NOT NULL UNIQUE, day TEXT NOT NULL, ticket TEXT NOT NULL,
    window INTEGER NOT NULL, level TEXT NOT NULL, rated_at TEXT NOT NULL, opened_at TEXT NOT NULL,
    due TEXT NOT NULL, staff_id TEXT, staff_name TEXT, case_id TEXT, item_code TEXT,
    closed_at TEXT, called_back_by TEXT, action TEXT
);
CREATE INDEX IF NOT EXISTS followups_open ON followups (closed_at, due);
"""


class FollowupError(ValueError):
    """A follow-up that cannot be closed (unknown, already closed, or without who and what)."""


# -- working days (pure) --------------------------------------------------------------------------------------
def is_working_day(d: date, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> bool:
    if d in set(workdays):
        return True
    return d.weekday() < 5 and d not in set(holidays)


def due_date(start: date, days: int, holidays: Iterable[date] = (), workdays: Iterable[date] = ()) -> date:
    """The day ``days`` working days after ``start`` (``start`` itself does not count)."""
    if days < 1:
        raise ValueError("a follow-up needs at least one working day")
    hol, work = set(holidays), set(workdays)
    d, left = start, days
    while left:
        d += timedelta(days=1)
        if is_working_day(d, hol, work):
            left -= 1
    return d


@dataclass(frozen=True)
class Rules:
    days: int = DEFAULT_DAYS
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()

    @classmethod
    def of(cls, haocp: Any) -> Rules:
        """The rules of a ``[haocp]`` section (the defaults when the hall has none)."""
        if haocp is None:
            return cls()
        return cls(haocp.followup_days, frozenset(date.fromisoformat(d) for d in haocp.holidays),
                   frozenset(date.fromisoformat(d) for d in haocp.workdays))


# -- the record ---------------------------------------------------------------------------------------------
def open_row(c: sqlite3.Connection, r: Any, rules: Rules) -> bool:
    """Open the follow-up of rating ``r`` (a ``core.Rating``) if it is a bad one, in the caller's transaction."""
    if r.level not in BAD_LEVELS:
        return False
    opened = r.received_at
    due = due_date(opened.date(), rules.days, rules.holidays, rules.workdays)
    c.execute(
        "INSERT OR IGNORE INTO followups (rating_id, day, ticket, window, level, rated_at, opened_at, due, staff_id,"
        " staff_name, case_id, item_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (r.id, r.day.isoformat(), r.number, r.window, r.level, r.at.isoformat(), opened.isoformat(),
         due.isoformat(), r.staff_id, r.staff_name, r.case_id, r.item_code),
    )
    return True


_COLS = ("id, ticket, window, level, rated_at, due, staff_id, staff_name, case_id, item_code, day, opened_at,"
         " closed_at, called_back_by, action")


def rows(conn: sqlite3.Connection, *, include_closed: bool = False) -> list[dict[str, Any]]:
    """Follow-ups, oldest first: the open ones, or all."""
    where = "" if include_closed else " WHERE closed_at IS NULL"
    try:
        found = conn.execute(f"SELECT {_COLS} FROM followups{where} ORDER BY id").fetchall()
    except sqlite3.OperationalError:  # a record from before follow-ups existed
        return []
    names = [n.strip() for n in _COLS.split(",")]
    return [dict(zip(names, r, strict=True)) for r in found]


def payload(conn: sqlite3.Connection, now: datetime) -> FollowUps:
    """The retained ``followups`` message: the open follow-ups, oldest first."""
    today = now.date().isoformat()
    items = [
        FollowUp(
            id=r["id"], ticket=r["ticket"], window=r["window"], level=r["level"],
            rated_at=datetime.fromisoformat(r["rated_at"]), due=r["due"], overdue=r["due"] < today,
            staff=Staff(id=r["staff_id"], name=r["staff_name"]) if r["staff_id"] and r["staff_name"] else None,
            case_id=r["case_id"], item_code=r["item_code"],
        )
        for r in rows(conn)
    ]
    return FollowUps(at=now, open=items)


def close(conn: sqlite3.Connection, followup_id: int, by: str, action: str, now: datetime) -> dict[str, Any]:
    """Record who called the citizen back and what was done; returns the closed follow-up."""
    by, action = by.strip(), action.strip()
    if not by:
        raise FollowupError("say who called the citizen back (--by)")
    if not action:
        raise FollowupError("say what was done (--action)")
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute("SELECT closed_at FROM followups WHERE id = ?", (followup_id,)).fetchone()
        if row is None:
            raise FollowupError(f"there is no follow-up {followup_id}")
        if row[0] is not None:
            raise FollowupError(f"follow-up {followup_id} was already closed at {row[0]}")
        conn.execute("UPDATE followups SET closed_at = ?, called_back_by = ?, action = ? WHERE id = ?",
                     (now.isoformat(), by, action, followup_id))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return next(r for r in rows(conn, include_closed=True) if r["id"] == followup_id)


def version(conn: sqlite3.Connection) -> tuple[Any, ...]:
    """Changes whenever a follow-up is opened or closed (cheap: for polling)."""
    try:
        return tuple(conn.execute("SELECT count(*), count(closed_at), max(id) FROM followups").fetchone())
    except sqlite3.OperationalError:
        return ()


class Publisher:
    """Keeps ``hallq/{hall}/followups`` (retained) up to date from the controller's worker thread."""

    POLL_EVERY = 0.5  # seconds

    def __init__(self, conn: sqlite3.Connection, client: Any, clock: Any):
        self.conn = conn
        self.client = client
        self.clock = clock
        self._seen: tuple[Any, ...] | None = None
        self._day: date | None = None  # ``overdue`` changes with the date
        self._polled = 0.0

    def publish(self) -> None:
        now = self.clock.now()
        self._seen = version(self.conn)
        self._day = now.date()
        self.client.publish(self.client.topics.followups, payload(self.conn, now), retain=True)

    def poll(self) -> None:
        """Publish again when a follow-up was opened or closed since the last time, or a new day began."""
        t = time.monotonic()
        if t - self._polled < self.POLL_EVERY or not self.client.connected:
            return
        self._polled = t
        if version(self.conn) != self._seen or self.clock.now().date() != self._day:
            self.publish()
