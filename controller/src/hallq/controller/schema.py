"""The hall record's schema: numbered migrations, applied in order, counted by ``PRAGMA user_version``.

:func:`migrate` brings a database to :data:`VERSION` in place, each step in one transaction with the new
``user_version`` (a crash mid-way leaves the database at the last whole step). Migration 1 is the schema of
the first release exactly as it created it (``CREATE ... IF NOT EXISTS``): a database of that release has
``user_version`` 0 and all of those tables, so running migration 1 over it changes nothing but the
version, and the later steps upgrade it like any other. A database newer than this code is refused.

Never edit a migration that has been released: add the next one.

Tables: ``meta`` (hall id, name, time zone, hours: what ``report`` needs without the config file),
``tickets``, ``sequences``, ``windows``, ``staff_sessions``, ``calls`` (one row per call of a ticket to a
window, with its outcome, service time and case), ``ratings``, ``replies`` (the answers kept for repeated
``req``s), ``haocp_outbox`` (好差评 records to upload), ``followups`` (bad reviews to call back),
``appointments`` (bookings and their check-ins), ``pauses`` (each window's pauses, from pause to resume) and
``central_outbox`` (record changes to ship to the city's centre, filled by triggers), ``device_events`` (each
change of a device's status or hardware problems) and ``daily_figures`` (each closed day's figures).
Times are ISO 8601 with the hall's UTC offset; days are local ``YYYY-MM-DD``.
"""

from __future__ import annotations

import sqlite3

# -- the central outbox (migration 5) ------------------------------------------------------------------------
#: The rows shipped to the city's centre: (table, kind, columns, boolean columns), frozen as of migration 5
#: (a later migration that adds a column to one of these tables drops and remakes that table's triggers).
CENTRAL_V5: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("tickets", "ticket", (
        "day", "number", "category", "seq", "issued_at", "priority", "channel", "person", "appointment", "client",
        "est_wait_min", "ahead", "status", "queue", "to_window", "transferred_at", "window", "called_at", "recalls",
        "first_called_at", "finished_at", "rated", "slot_start", "slot_end"), ("rated",)),
    ("calls", "call", (
        "id", "day", "number", "category", "queue", "window", "staff_id", "staff_name", "called_at", "wait_s",
        "first", "priority", "recalls", "ended_at", "outcome", "case_id", "item_code", "item_name", "case_kind"),
     ("first",)),
    ("ratings", "rating", (
        "id", "day", "ticket", "window", "level", "at", "received_at", "client", "staff_id", "staff_name", "call_id",
        "case_id", "item_code"), ()),
    ("followups", "followup", (
        "id", "rating_id", "day", "ticket", "window", "level", "rated_at", "opened_at", "due", "staff_id",
        "staff_name", "case_id", "item_code", "closed_at", "called_back_by", "action"), ()),
    ("staff_sessions", "staff_session", ("id", "window", "staff_id", "staff_name", "started_at", "ended_at"), ()),
)


#: Columns that hold JSON text and travel as JSON (not as a string): the record's own structure.
JSON_COLUMNS = ("problems", "figures")


def central_row_json(kind: str, columns: tuple[str, ...], bools: tuple[str, ...], alias: str) -> str:
    """The SQL expression of one row as the centre's JSON record (``hallq.shared.central``)."""
    parts = [f"'kind', '{kind}'"]
    for c in columns:
        v = f"{alias}.{c}"
        if c in bools:
            v = f"json(CASE WHEN {v} THEN 'true' ELSE 'false' END)"
        elif c in JSON_COLUMNS:
            v = f"json({v})"
        parts.append(f"'{c}', {v}")
    return f"json_object({', '.join(parts)})"


#: As of migration 8: tickets carry ``vouched`` (migration 6), and each 好差评 record travels too (inserts only:
#: a record never changes once made; its upload status is the hall's own business).
CENTRAL_V8: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("tickets", "ticket", (*CENTRAL_V5[0][2], "vouched"), ("rated",)),
    *CENTRAL_V5[1:],
    ("haocp_outbox", "haocp", ("rating_id", "key", "record", "created_at"), ()),
)
#: As of migration 9: device events (status and hardware changes the controller saw) and closed days' figures.
CENTRAL_V9: tuple[tuple[str, str, tuple[str, ...], tuple[str, ...]], ...] = (
    *CENTRAL_V8,
    ("device_events", "device_event", (
        "id", "day", "at", "device", "role", "window", "listed", "status", "problems", "change"), ("listed",)),
    ("daily_figures", "daily_figures", ("day", "at", "figures"), ()),
)
#: What the central outbox ships now (the latest of the above).
CENTRAL = CENTRAL_V9


def _trigger(table: str, kind: str, cols: tuple[str, ...], bools: tuple[str, ...], event: str) -> str:
    return (f"CREATE TRIGGER central_{table}_{event.lower()} AFTER {event} ON {table}\n"
            "WHEN (SELECT value FROM meta WHERE key = 'central_stream') IS NOT NULL\n"
            f"BEGIN INSERT INTO central_outbox (kind, body) VALUES ('{kind}', "
            f"{central_row_json(kind, cols, bools, 'NEW')}); END;")


def _central_v8() -> str:
    t = CENTRAL_V8[0]
    out = ["DROP TRIGGER central_tickets_insert;", "DROP TRIGGER central_tickets_update;",
           _trigger(*t, "INSERT"), _trigger(*t, "UPDATE"), _trigger(*CENTRAL_V8[-1], "INSERT")]
    return "\n".join(out) + "\n"


def _central_v9() -> str:
    out = ["""CREATE TABLE device_events (
    id INTEGER PRIMARY KEY, day TEXT NOT NULL, at TEXT NOT NULL, device TEXT NOT NULL, role TEXT NOT NULL,
    window INTEGER, listed INTEGER NOT NULL, status TEXT NOT NULL, problems TEXT NOT NULL DEFAULT '[]',
    change TEXT NOT NULL
);""", "CREATE INDEX device_events_day ON device_events (day);",
           "CREATE INDEX device_events_device ON device_events (device, id);",
           """CREATE TABLE daily_figures (
    day TEXT PRIMARY KEY, at TEXT NOT NULL, figures TEXT NOT NULL
) WITHOUT ROWID;""",
           _trigger(*CENTRAL_V9[-2], "INSERT"),
           _trigger(*CENTRAL_V9[-1], "INSERT"), _trigger(*CENTRAL_V9[-1], "UPDATE")]
    return "\n".join(out) + "\n"


def _central_v5() -> str:
    out = ["""CREATE TABLE central_outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, body TEXT NOT NULL,
    queued_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);"""]
    for table, kind, cols, bools in CENTRAL_V5:
        for event in ("INSERT", "UPDATE"):
            out.append(
                f"CREATE TRIGGER central_{table}_{event.lower()} AFTER {event} ON {table}\n"
                "WHEN (SELECT value FROM meta WHERE key = 'central_stream') IS NOT NULL\n"
                f"BEGIN INSERT INTO central_outbox (kind, body) VALUES ('{kind}', "
                f"{central_row_json(kind, cols, bools, 'NEW')}); END;")
    return "\n".join(out) + "\n"


MIGRATIONS: tuple[str, ...] = (
    # 1: the first release (tickets, calls, ratings, replies; the 好差评 outbox; follow-ups)
    """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tickets (
    day TEXT NOT NULL, number TEXT NOT NULL, category TEXT NOT NULL, seq INTEGER NOT NULL,
    issued_at TEXT NOT NULL, priority TEXT, channel TEXT, person TEXT, appointment TEXT, client TEXT,
    est_wait_min INTEGER, ahead INTEGER, status TEXT NOT NULL, queue TEXT NOT NULL, to_window INTEGER,
    transferred_at TEXT, window INTEGER, called_at TEXT, recalls INTEGER NOT NULL DEFAULT 0,
    first_called_at TEXT, finished_at TEXT, rated INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, number)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sequences (
    day TEXT NOT NULL, category TEXT NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (day, category)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS windows (
    no INTEGER PRIMARY KEY, staff_id TEXT, staff_name TEXT, paused INTEGER NOT NULL DEFAULT 0,
    current TEXT, session_id INTEGER
);
CREATE TABLE IF NOT EXISTS staff_sessions (
    id INTEGER PRIMARY KEY, window INTEGER NOT NULL, staff_id TEXT NOT NULL, staff_name TEXT NOT NULL,
    started_at TEXT NOT NULL, ended_at TEXT
);
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY, day TEXT NOT NULL, number TEXT NOT NULL, category TEXT NOT NULL,
    queue TEXT NOT NULL, window INTEGER NOT NULL, staff_id TEXT, staff_name TEXT, called_at TEXT NOT NULL,
    wait_s REAL NOT NULL, first INTEGER NOT NULL, priority TEXT, recalls INTEGER NOT NULL DEFAULT 0,
    ended_at TEXT, outcome TEXT NOT NULL, case_id TEXT, item_code TEXT, item_name TEXT, case_kind TEXT
);
CREATE INDEX IF NOT EXISTS calls_day ON calls (day);
CREATE TABLE IF NOT EXISTS ratings (
    id INTEGER PRIMARY KEY, day TEXT NOT NULL, ticket TEXT NOT NULL, window INTEGER NOT NULL,
    level TEXT NOT NULL, at TEXT NOT NULL, received_at TEXT NOT NULL, client TEXT NOT NULL,
    staff_id TEXT, staff_name TEXT, call_id INTEGER, case_id TEXT, item_code TEXT,
    UNIQUE (day, ticket)
);
CREATE TABLE IF NOT EXISTS replies (
    client TEXT NOT NULL, req TEXT NOT NULL, payload BLOB NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (client, req)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS replies_at ON replies (at);
CREATE TABLE IF NOT EXISTS haocp_outbox (
    rating_id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, record TEXT NOT NULL, created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    next_try_at TEXT, sent_at TEXT, answer TEXT
);
CREATE INDEX IF NOT EXISTS haocp_outbox_pending ON haocp_outbox (status, rating_id);
CREATE TABLE IF NOT EXISTS followups (
    id INTEGER PRIMARY KEY, rating_id INTEGER NOT NULL UNIQUE, day TEXT NOT NULL, ticket TEXT NOT NULL,
    window INTEGER NOT NULL, level TEXT NOT NULL, rated_at TEXT NOT NULL, opened_at TEXT NOT NULL,
    due TEXT NOT NULL, staff_id TEXT, staff_name TEXT, case_id TEXT, item_code TEXT,
    closed_at TEXT, called_back_by TEXT, action TEXT
);
CREATE INDEX IF NOT EXISTS followups_open ON followups (closed_at, due);
""",
    # 2: the schema version is PRAGMA user_version, no longer a row of meta
    """
DELETE FROM meta WHERE key = 'schema';
""",
    # 3: appointments (bookings and their check-ins); an appointment ticket's slot
    """
CREATE TABLE appointments (
    code TEXT PRIMARY KEY, day TEXT NOT NULL, category TEXT NOT NULL, slot_start TEXT NOT NULL,
    slot_end TEXT NOT NULL, person TEXT, name TEXT, source TEXT NOT NULL, imported_at TEXT NOT NULL,
    checked_in_at TEXT, ticket TEXT, arrival TEXT
) WITHOUT ROWID;
CREATE INDEX appointments_day ON appointments (day);
ALTER TABLE tickets ADD COLUMN slot_start TEXT;
ALTER TABLE tickets ADD COLUMN slot_end TEXT;
""",
    # 4: windows' pauses (the statistics tell a paused window from an idle one); the days the record
    # already had were kept without them: meta 'pauses_from' is the last such day
    """
CREATE TABLE pauses (
    window INTEGER NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, PRIMARY KEY (window, started_at)
) WITHOUT ROWID;
INSERT OR REPLACE INTO meta (key, value) SELECT 'pauses_from', coalesce(max(day), '') FROM (
    SELECT day FROM tickets UNION ALL SELECT substr(started_at, 1, 10) FROM staff_sessions);
""",
    # 5: the outbox to the city's centre (hallq.controller.central_outbox): every change of a shipped table is
    # queued by a trigger in the same transaction as the change, once the hall has a central stream (meta
    # 'central_stream', set when [central] is first configured); a hall without [central] queues nothing.
    _central_v5(),
    # 6: which channel vouched for a ticket's priority (idcard | staff | appointment; issue 9 §5)
    """
ALTER TABLE tickets ADD COLUMN vouched TEXT;
""",
    # 7: a booking its source cancelled (hallq.controller.core.appointments)
    """
ALTER TABLE appointments ADD COLUMN cancelled_at TEXT;
""",
    # 8: the central outbox carries tickets' `vouched` and each rating's 好差评 record (the centre uploads
    # them when the city says so)
    _central_v8(),
    # 9: device events (each change of a device's status or hardware problems the controller saw on its retained
    # status/health; hallq.controller.devices) and each closed day's figures (hallq.controller.stats), both in
    # the record and shipped to the centre
    _central_v9(),
)

#: The schema version this code writes.
VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database cannot be brought to :data:`VERSION` (newer than this code, or a step failed)."""


def version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection) -> tuple[int, int]:
    """Apply the missing migrations; returns (version before, version after).

    ``conn`` is in autocommit mode (``isolation_level=None``), as :func:`~hallq.controller.db.connect`
    makes it.
    """
    before = version(conn)
    if before > VERSION:
        raise SchemaError(f"written by a newer hallq (schema {before}; this one knows up to {VERSION})")
    for n in range(before + 1, VERSION + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(MIGRATIONS[n - 1]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {n}")
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise SchemaError(f"migration {n} failed: {exc}") from exc
            raise
        conn.execute("COMMIT")
    return before, VERSION


def _statements(script: str) -> list[str]:
    """The statements of a migration (``executescript`` would commit the transaction first)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"an unfinished statement in a migration: {buf.strip()[:80]!r}")
    return out
