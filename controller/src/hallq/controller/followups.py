"""Follow-ups of bad reviews (差评回访整改): every 不满意 or 非常不满意 must be called back and settled.

- The core opens a follow-up with every bad rating (:class:`~hallq.controller.core.FollowUpRec`, due
  ``followup_days`` working days after the day it was received: :mod:`hallq.controller.core.workdays`), and
  the storage writes it in the same transaction as the rating.
- ``hallq controller followups`` lists them; ``hallq controller followups close ID --by NAME --action TEXT``
  records who called the citizen back and what was done (:func:`close`).
- The open ones are published retained on ``hallq/{hall}/followups`` (:class:`Publisher`): at every
  (re)connection, whenever one is opened or closed (also by the command while the controller runs),
  and when a new day begins (``overdue`` changes).
"""

from __future__ import annotations

import sqlite3
import time
from datetime import date, datetime
from typing import Any

from hallq.shared.redact import redact
from hallq.shared.schemas import FollowUp, FollowUps, Staff


class FollowupError(ValueError):
    """A follow-up that cannot be closed (unknown, already closed, or without who and what)."""


_COLS = ("id, ticket, window, level, rated_at, due, staff_id, staff_name, case_id, item_code, day, opened_at,"
         " closed_at, called_back_by, action")


def rows(conn: sqlite3.Connection, *, include_closed: bool = False) -> list[dict[str, Any]]:
    """Follow-ups, oldest first: the open ones, or all."""
    where = "" if include_closed else " WHERE closed_at IS NULL"
    found = conn.execute(f"SELECT {_COLS} FROM followups{where} ORDER BY id").fetchall()
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
    # a phone or ID number typed into them is kept masked: the record keeps them and ships them to the centre
    by, action = redact(by.strip()), redact(action.strip())
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
    return tuple(conn.execute("SELECT count(*), count(closed_at), max(id) FROM followups").fetchone())


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
