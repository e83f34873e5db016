"""The dashboard's outbox to the city's centre: the follow-ups' call-back notes of ``dashboard.db``.

The notes are the dashboard's own record (:mod:`.accounts`), written by the dashboard alone; the controller's
record (``hall.db``) is written by the controller. So the notes do not move into the controller's record, and
the controller does not read the dashboard's: ``dashboard.db`` has an outbox of its own, filled by a trigger on
``followup_notes`` in the same transaction as the note (nothing uncommitted is queued, nothing committed is
forgotten), and the dashboard process ships it with the controller's own shipper
(:class:`hallq.controller.shipper.Shipper` with ``outbox=`` this module), in a stream of its own under the
hall's credentials. Each database thus keeps one writer, and each stream is in order and exactly once at the
centre by the same rules as the record's (``hallq.central.ingest``).

Like the controller's, the trigger does nothing until the dashboard first starts with ``[central]`` in the
hall's config: :func:`enable` then makes the stream and queues every note already written, in one
transaction. A note's ``day`` (the centre's partition) is the UTC date of its time: the dashboard keeps
notes' times in UTC.
"""

from __future__ import annotations

import sqlite3

from hallq.controller.central_outbox import Pending, backlog, open_stream, pending, stream

__all__ = ["SCHEMA", "Pending", "acknowledge", "backlog", "enable", "pending", "stream"]


def note_json(alias: str) -> str:
    """The SQL expression of one note as the centre's JSON record (``hallq.shared.central.FollowUpNoteRow``)."""
    a = alias
    return (f"json_object('kind', 'followup_note', 'id', {a}.id, 'day', substr({a}.at, 1, 10), "
            f"'followup_id', {a}.followup_id, 'at', {a}.at, 'user', {a}.user, 'note', {a}.note)")


#: Part of the dashboard's schema (:data:`hallq.dashboard.accounts.SCHEMA` runs it at every start).
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS central_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL,
    queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TRIGGER IF NOT EXISTS central_followup_notes_insert AFTER INSERT ON followup_notes
WHEN (SELECT value FROM meta WHERE key = 'central_stream') IS NOT NULL
BEGIN INSERT INTO central_outbox (kind, body) VALUES ('followup_note', {note_json('NEW')}); END;
"""


def enable(conn: sqlite3.Connection) -> tuple[str, int]:
    """Make the stream if there is none, queueing every note written so far (one transaction).

    Returns (stream, rows queued now: 0 when it already existed)."""
    return open_stream(conn, lambda c: c.execute(
        f"INSERT INTO central_outbox (kind, body) SELECT 'followup_note', {note_json('n')} FROM followup_notes n"
        " ORDER BY id"))


def acknowledge(conn: sqlite3.Connection, upto: int, haocp: str = "hall") -> int:
    """Delete the rows the centre holds (``seq`` <= ``upto``); returns how many went. (``haocp`` is about the
    controller's 好差评 records; the dashboard has none.)"""
    conn.execute("BEGIN IMMEDIATE")
    try:
        n = conn.execute("DELETE FROM central_outbox WHERE seq <= ?", (upto,)).rowcount
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return n
