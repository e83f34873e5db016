"""The central PostgreSQL: connecting, numbered migrations, monthly partitions.

- Migrations are the files ``migrations/NNNN_name.sql`` of this package, applied in order, each in one
  transaction together with its row in ``schema_migrations`` (under an advisory lock, so two ``hallq central``
  processes starting at once do not both apply one). Never edit a released migration: add the next one.
- The record tables are ``PARTITION BY RANGE`` on a date, one partition per month, named ``<table>_pYYYYMM``.
  :func:`ensure_months` makes the ones a batch needs (the ingest calls it before it writes; ``hallq central
  migrate`` makes this month's and the next's ahead of time). No DEFAULT partition: a row for a month without a
  partition is an error, never a row parked where the next partition's creation would have to move it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from importlib import resources

import psycopg

#: The tables partitioned by month on a date column (the record) or a timestamp (the ingest log).
PARTITIONED: dict[str, str] = {
    "tickets": "day",
    "calls": "day",
    "ratings": "day",
    "followups": "day",
    "staff_sessions": "day",
    "haocp_uploads": "day",
    "device_events": "day",
    "daily_figures": "day",
    "followup_notes": "day",
    "batches": "received_at",
}

_LOCK_MIGRATE = 0x68616C6C  # "hall": pg_advisory lock id for migrations
_LOCK_PARTITION = 0x70617274  # "part": for making partitions


class CentralDbError(RuntimeError):
    """The central database cannot be used (unreachable, newer schema than this code)."""


def migrations() -> list[tuple[int, str, str]]:
    """(number, name, SQL) of every migration this code knows, in order."""
    out = []
    for entry in resources.files("hallq.central").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_([a-z0-9_]+)\.sql", entry.name)
        if m:
            out.append((int(m.group(1)), m.group(2), entry.read_text(encoding="utf-8")))
    out.sort()
    numbers = [n for n, _, _ in out]
    if numbers != list(range(1, len(out) + 1)):
        raise CentralDbError(f"migrations are not numbered 1..n without gaps: {numbers}")
    return out


VERSION = len(migrations())


def connect(dsn: str, **kw) -> psycopg.Connection:
    try:
        return psycopg.connect(dsn, **kw)
    except psycopg.OperationalError as exc:
        raise CentralDbError(f"cannot reach the central database: {str(exc).strip().splitlines()[0]}") from None


def version(conn: psycopg.Connection) -> int:
    """The schema version of the database (0: none yet)."""
    if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:  # type: ignore[index]
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: psycopg.Connection, today: date | None = None) -> tuple[int, int]:
    """Apply the missing migrations; returns (version before, version after). Also makes this month's and
    next month's partitions of every record table."""
    conn.autocommit = True
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, name text NOT NULL,"
                     " applied_at timestamptz NOT NULL DEFAULT now())")
    before = version(conn)
    if before > VERSION:
        raise CentralDbError(f"the central database was written by a newer hallq (schema {before}; "
                             f"this one knows up to {VERSION})")
    for n, name, sql in migrations():
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATE,))
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (n,)).fetchone():
                continue  # another process applied it meanwhile
            conn.execute(sql)  # type: ignore[arg-type]  (a migration file: trusted SQL of this package)
            conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (n, name))
    today = today or date.today()
    ensure_months(conn, [today, _next_month(today)], [t for t in PARTITIONED if _exists(conn, t)])
    return before, version(conn)


def _exists(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None  # type: ignore[index]


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def partition_name(table: str, month: date) -> str:
    return f"{table}_p{month.year:04d}{month.month:02d}"


#: Partitions known to exist (per process; made once, never dropped by this code).
_known: set[tuple[str, str, str]] = set()


def ensure_months(conn: psycopg.Connection, days: Iterable[date], tables: Iterable[str] | None = None) -> list[str]:
    """Make the monthly partitions holding ``days`` for ``tables`` (all partitioned tables by default), each in
    its own short transaction (creating a partition locks its parent briefly). Returns the ones made."""
    months = sorted({date(d.year, d.month, 1) for d in days})
    made = []
    for table in tables or PARTITIONED:
        for m in months:
            name = partition_name(table, m)
            where = (str(conn.info.host), str(conn.info.port), conn.info.dbname)
            if (*where, name) in _known:
                continue
            was_auto = conn.autocommit
            if not was_auto and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                raise CentralDbError("ensure_months needs a connection outside a transaction")
            conn.autocommit = True
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_PARTITION,))
                    exists = conn.execute("SELECT to_regclass(%s)", (name,)).fetchone()[0]  # type: ignore[index]
                    if exists is None:
                        # names and bounds come from this module (table list, dates), not from input
                        conn.execute(
                            f"CREATE TABLE {name} PARTITION OF {table} "  # type: ignore[arg-type]
                            f"FOR VALUES FROM ('{m.isoformat()}') TO ('{_next_month(m).isoformat()}')")
                        made.append(name)
            finally:
                conn.autocommit = was_auto
            _known.add((*where, name))
    return made


def forget_partitions() -> None:
    """Forget the partitions seen (a test that drops its database)."""
    _known.clear()
