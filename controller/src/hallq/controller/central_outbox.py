"""The hall's outbox to the city's centre (``[central]`` in hall.toml): durable, in order, kept until acknowledged.

- Filled by SQLite triggers (migrations 5 and 8 in :mod:`.schema`): every insert or update of ``tickets``,
  ``calls``, ``ratings``, ``followups`` and ``staff_sessions``, and every new 好差评 record (``haocp_outbox``),
  queues the row as it now is, as the JSON record of
  :mod:`hallq.shared.central`, in the SAME transaction as the change. No code path that writes the record
  (the core's batches, ``followups close``, the dashboard) can forget it, and nothing is queued that was not
  committed.
- The triggers do nothing until the hall has a central stream (``meta`` key ``central_stream``). :func:`enable`
  makes one, in one transaction with a copy of everything the record already holds, when the controller first
  starts with ``[central]``: a hall that has never been configured for the centre works exactly as before and
  queues nothing. Once enabled, the outbox fills whether or not ``[central]`` is still configured, so a hall
  whose link is switched off for a while loses nothing.
- ``seq`` (AUTOINCREMENT) never repeats in a stream, even after every row has been deleted; commits are
  serialised, so the committed rows are always consecutive. A row is deleted only when the centre has
  acknowledged its ``seq`` (:func:`acknowledge`).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from . import schema


@dataclass(frozen=True)
class Pending:
    seq: int
    body: str  # the JSON record
    queued_at: str  # ISO 8601, UTC


def stream(conn: sqlite3.Connection) -> str | None:
    """The hall record's stream id, or None when the hall has never been enabled for the centre."""
    row = conn.execute("SELECT value FROM meta WHERE key = 'central_stream'").fetchone()
    return row[0] if row else None


def open_stream(conn: sqlite3.Connection, queue_all: Callable[[sqlite3.Connection], object]) -> tuple[str, int]:
    """Make the stream if there is none, with ``queue_all(conn)`` queueing everything already held, in the same
    transaction (an outbox's own :func:`enable`: this one's, and the dashboard's notes outbox).

    Returns (stream, rows queued now: 0 when it already existed)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = stream(conn)
        if found is not None:
            conn.execute("COMMIT")
            return found, 0
        sid = uuid.uuid4().hex
        before = conn.total_changes
        queue_all(conn)
        queued = conn.total_changes - before
        conn.execute("INSERT INTO meta (key, value) VALUES ('central_stream', ?)", (sid,))
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return sid, queued


def _queue_record(conn: sqlite3.Connection) -> None:
    for table, kind, cols, bools in schema.CENTRAL:
        order = {"tickets": "day, number", "haocp_outbox": "rating_id", "daily_figures": "day"}.get(table, "id")
        conn.execute(f"INSERT INTO central_outbox (kind, body) SELECT '{kind}', "
                     f"{schema.central_row_json(kind, cols, bools, 't')} FROM {table} t ORDER BY {order}")


def enable(conn: sqlite3.Connection) -> tuple[str, int]:
    """Make the stream if there is none, queueing everything the record already holds (one transaction).

    Returns (stream, rows queued now: 0 when it already existed)."""
    return open_stream(conn, _queue_record)


def new_stream(conn: sqlite3.Connection) -> tuple[str, int]:
    """Start a new stream: drop what waits, queue the whole record again under a new stream id.

    For a record restored from a backup: its outbox ``seq`` numbers would start again below what the centre
    has acknowledged, and the centre would take the new rows for repeats. Under a new stream the centre
    upserts every row again (the newest version of each wins), so nothing is lost or held twice."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("DELETE FROM central_outbox")
        conn.execute("DELETE FROM sqlite_sequence WHERE name = 'central_outbox'")  # a new stream starts at seq 1
        conn.execute("DELETE FROM meta WHERE key IN ('central_stream', 'central_haocp')")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return enable(conn)


def pending(conn: sqlite3.Connection, limit: int) -> list[Pending]:
    """The oldest rows not yet acknowledged (consecutive ``seq``), at most ``limit``."""
    return [Pending(*r) for r in conn.execute(
        "SELECT seq, body, queued_at FROM central_outbox ORDER BY seq LIMIT ?", (limit,))]


def acknowledge(conn: sqlite3.Connection, upto: int, haocp: str = "hall") -> int:
    """Delete the rows the centre holds (``seq`` <= ``upto``); returns how many went.

    ``haocp`` is who the centre said uploads the hall's 好差评 records: with ``central``, the records among the
    acknowledged rows that the hall has not uploaded yet become ``central`` in ``haocp_outbox`` (the hall's
    uploader leaves them to the centre). When the centre gives the upload back (``hall``), the records left to it
    become ``pending`` again (the province keeps one per idempotency key, should both have sent one)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        was = conn.execute("SELECT value FROM meta WHERE key = 'central_haocp'").fetchone()
        if haocp == "central":
            conn.execute(
                "UPDATE haocp_outbox SET status = 'central' WHERE status = 'pending' AND rating_id IN ("
                " SELECT json_extract(body, '$.rating_id') FROM central_outbox WHERE seq <= ? AND kind = 'haocp')",
                (upto,))
        elif was and was[0] == "central":
            conn.execute("UPDATE haocp_outbox SET status = 'pending' WHERE status = 'central'")
        if not was or was[0] != haocp:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('central_haocp', ?)", (haocp,))
        n = conn.execute("DELETE FROM central_outbox WHERE seq <= ?", (upto,)).rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return n


def backlog(conn: sqlite3.Connection) -> tuple[int, str | None]:
    """(rows waiting, when the oldest was queued)."""
    n, oldest = conn.execute("SELECT count(*), min(queued_at) FROM central_outbox").fetchone()
    return int(n), oldest
