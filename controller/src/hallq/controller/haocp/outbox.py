"""The ``haocp_outbox`` table: what is pending, sent or rejected (the rows are written by the storage); rows the
city's centre uploads for the hall are ``central`` (marked by :mod:`hallq.controller.shipper`)."""

from __future__ import annotations

import sqlite3
from datetime import datetime

PENDING_SQL = ("SELECT rating_id, key, record FROM haocp_outbox WHERE status = 'pending'"
               " ORDER BY rating_id LIMIT 1")


def summary(conn: sqlite3.Connection, day: str | None = None) -> dict[str, int]:
    """How many records are ``sent``, ``pending`` and ``rejected`` (of one day's ratings, if given)."""
    if day is None:
        rows = conn.execute("SELECT status, count(*) FROM haocp_outbox GROUP BY status").fetchall()
    else:
        rows = conn.execute(
            "SELECT o.status, count(*) FROM haocp_outbox o JOIN ratings r ON r.id = o.rating_id"
            " WHERE r.day = ? GROUP BY o.status", (day,)).fetchall()
    out = {"sent": 0, "pending": 0, "rejected": 0}  # and "central" when the centre uploads some
    out.update(dict(rows))
    return out


def next_pending(conn: sqlite3.Connection, created_before: str | None = None) -> tuple[int, str, str] | None:
    """The oldest pending row: (rating id, idempotency key, JSON record), or None. With ``created_before`` (ISO
    time), only a row made before then (the centre uploads for the hall; the hall's link is the fallback)."""
    if created_before is None:
        return conn.execute(PENDING_SQL).fetchone()
    return conn.execute("SELECT rating_id, key, record FROM haocp_outbox WHERE status = 'pending'"
                        " AND created_at < ? ORDER BY rating_id LIMIT 1", (created_before,)).fetchone()


def central_mode(conn: sqlite3.Connection) -> bool:
    """For a hall that ships to a centre: the centre may upload this hall's ratings (its last answer to the
    shipper said so, or it has not answered yet: the hall waits for the fallback time rather than risk
    uploading what the centre uploads too)."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'central_haocp'").fetchone()
    return row is None or row[0] == "central"


def failed(conn: sqlite3.Connection, rating_id: int, error: str, next_try_at: datetime) -> None:
    _tx(conn, "UPDATE haocp_outbox SET attempts = attempts + 1, last_error = ?, next_try_at = ? WHERE rating_id = ?",
        (error, next_try_at.isoformat(), rating_id))


def rejected(conn: sqlite3.Connection, rating_id: int, error: str) -> None:
    _tx(conn, "UPDATE haocp_outbox SET status = 'rejected', attempts = attempts + 1, last_error = ?"
        " WHERE rating_id = ?", (error, rating_id))


def sent(conn: sqlite3.Connection, rating_id: int, answer: str, at: datetime) -> None:
    _tx(conn, "UPDATE haocp_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, answer = ?,"
        " last_error = NULL WHERE rating_id = ?", (at.isoformat(), answer, rating_id))


def _tx(conn: sqlite3.Connection, sql: str, args: tuple) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(sql, args)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
