"""Applying a hall's batch: exactly once, in order, in one transaction.

The rules (:func:`apply`):

- the batch's hall must be the hall whose token came with it (else 403, nothing written);
- per (hall, stream) the centre holds ``acked``, the last ``seq`` applied. A batch starting after
  ``acked + 1`` leaves a gap: it is refused with 409 and ``expected = acked + 1`` (the hall sends from there;
  a gap is never skipped). A batch starting at or before ``acked`` is a repeat (the hall did not hear the
  answer): the rows up to ``acked`` are skipped, the rest applied. A stream the centre has never seen must
  start at seq 1;
- the rows are upserted (newest version wins: each kind's key, :data:`hallq.shared.central.KEYS`) together with
  the new ``acked`` and a line in ``batches``, in ONE transaction: either the whole batch is held and
  acknowledged, or nothing of it is;
- concurrent batches of one stream queue on the stream's row lock (``SELECT ... FOR UPDATE``), so two
  copies of a batch in flight are applied once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

import msgspec
import psycopg
from hallq.shared.central import (
    Ack,
    Batch,
    CallRow,
    DailyFiguresRow,
    DeviceEventRow,
    FollowUpNoteRow,
    FollowUpRow,
    HaocpRow,
    RatingRow,
    Record,
    StaffSessionRow,
    TicketRow,
    fields,
)
from psycopg.types.json import Jsonb

from . import db

#: The earliest day a row may have.
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Outcome:
    status: int  # HTTP status: 200 applied (or all repeated), 409 gap, 403 wrong hall
    ack: Ack
    applied: int = 0


def _day(r: Record) -> date:
    if isinstance(r, StaffSessionRow):
        return r.started_at.date()  # the hall's local date (the time carries the hall's offset)
    if isinstance(r, HaocpRow):
        return r.created_at.date()
    return r.day  # type: ignore[union-attr]


# kind -> (table, the hall's fields in order, the PostgreSQL columns in order, conflict key)
def _spec(kind: type, table: str, key: tuple[str, ...]) -> tuple[str, tuple[str, ...], tuple[str, ...], str]:
    names = fields(kind)
    rename = {"window": "window_no", "user": '"user"'}  # words reserved in SQL
    cols = ["hall"] + (["day"] if "day" not in names else []) + [rename.get(n, n) for n in names]
    cols += ["src_stream", "src_seq"]
    conflict = ", ".join(["hall", "day", *[k for k in key if k != "day"]])
    updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in ("hall", "day", *key))
    sql = (f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join(['%s'] * len(cols))}) "
           f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}")
    return table, names, tuple(cols), sql


SPECS = {
    TicketRow: _spec(TicketRow, "tickets", ("day", "number")),
    CallRow: _spec(CallRow, "calls", ("id",)),
    RatingRow: _spec(RatingRow, "ratings", ("id",)),
    FollowUpRow: _spec(FollowUpRow, "followups", ("id",)),
    StaffSessionRow: _spec(StaffSessionRow, "staff_sessions", ("id",)),
    DeviceEventRow: _spec(DeviceEventRow, "device_events", ("id",)),
    DailyFiguresRow: _spec(DailyFiguresRow, "daily_figures", ("day",)),
    FollowUpNoteRow: _spec(FollowUpNoteRow, "followup_notes", ("id",)),
    # a 好差评 record never changes once made; its status is the centre's (or 'hall': the hall uploads it)
    HaocpRow: ("haocp_uploads", fields(HaocpRow), (),
               "INSERT INTO haocp_uploads (hall, day, rating_id, key, record, created_at, status, src_stream, src_seq)"
               " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING"),
}


def _row_key(r: Record) -> tuple:
    if isinstance(r, HaocpRow):
        return (HaocpRow, r.rating_id)
    if isinstance(r, TicketRow):
        return (TicketRow, r.day, r.number)
    if isinstance(r, DailyFiguresRow):
        return (DailyFiguresRow, r.day)
    return (type(r), _day(r), r.id)  # type: ignore[union-attr]


#: kind -> the positions of its fields held as jsonb
_JSON_AT = {DeviceEventRow: (fields(DeviceEventRow).index("problems"),),
            DailyFiguresRow: (fields(DailyFiguresRow).index("figures"),)}


def rows_of(hall: str, stream: str, first: int, records: list[Record], haocp: str = "hall"
            ) -> dict[type, list[tuple]]:
    """The PostgreSQL rows of ``records`` per kind: the last version of each row only (newest wins)."""
    last: dict[tuple, tuple[int, Record]] = {}
    for i, r in enumerate(records):
        last[_row_key(r)] = (first + i, r)
    out: dict[type, list[tuple]] = {}
    for seq, r in sorted(last.values(), key=lambda x: x[0]):
        kind = type(r)
        if isinstance(r, HaocpRow):
            out.setdefault(kind, []).append((hall, _day(r), r.rating_id, r.key, r.record, r.created_at,
                                             "pending" if haocp == "central" else "hall", stream, seq))
            continue
        _, names, _, _ = SPECS[kind]
        values = [getattr(r, n) for n in names]
        for i in _JSON_AT.get(kind, ()):  # structures (a device's problems, a day's figures) as jsonb
            values[i] = Jsonb(msgspec.to_builtins(values[i]))
        row = (hall, _day(r), *values, stream, seq) if kind is StaffSessionRow else (hall, *values, stream, seq)
        out.setdefault(kind, []).append(row)
    return out


def apply(conn: psycopg.Connection, hall: str, batch: Batch, received_at: datetime | None = None) -> Outcome:
    """Apply ``batch`` from ``hall`` (authenticated); see the module's rules. ``conn`` is outside a transaction."""
    if batch.hall != hall:
        return Outcome(403, Ack(acked=0, expected=1, error=f"these credentials are hall {hall}'s, not {batch.hall}'s"))
    last_seq = batch.first + len(batch.records) - 1
    days = {_day(r) for r in batch.records}
    today = (received_at or datetime.now()).date()
    if min(days) < EARLIEST or max(days) > today + timedelta(days=2):
        # each month makes partitions: a day no hall's record can hold is refused (the hall cannot skip the row:
        # its shipping stops there and says why, until its record is put right)
        return Outcome(422, Ack(acked=0, expected=batch.first,
                                error=f"a row's day is outside {EARLIEST}..{today + timedelta(days=2)}"))
    # the partitions first (each in its own short transaction), outside the batch's transaction; the ingest
    # log's month by the centre's date give or take a day (its time zone may not be the session's)
    db.ensure_months(conn, days, [SPECS[k][0] for k in {type(r) for r in batch.records}])
    db.ensure_months(conn, {today - timedelta(days=1), today, today + timedelta(days=1)}, ["batches"])
    with conn.transaction():
        row = conn.execute("SELECT acked FROM streams WHERE hall = %s AND stream = %s FOR UPDATE",
                           (hall, batch.stream)).fetchone()
        if row is None:
            if batch.first != 1:
                return Outcome(409, Ack(acked=0, expected=1, error="a new stream starts at seq 1"))
            conn.execute("INSERT INTO streams (hall, stream) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                         (hall, batch.stream))
            row = conn.execute("SELECT acked FROM streams WHERE hall = %s AND stream = %s FOR UPDATE",
                               (hall, batch.stream)).fetchone()
        acked = int(row[0])  # type: ignore[index]
        central = conn.execute("SELECT haocp_central FROM halls WHERE id = %s", (hall,)).fetchone()
        haocp = "central" if central and central[0] else "hall"
        if batch.first > acked + 1:
            return Outcome(409, Ack(acked=acked, expected=acked + 1, haocp=haocp,  # type: ignore[arg-type]
                                    error=f"rows {acked + 1}..{batch.first - 1} are missing: send from {acked + 1}"))
        if last_seq <= acked:
            return Outcome(200, Ack(acked=acked, expected=acked + 1, haocp=haocp))  # type: ignore[arg-type]
        skip = acked + 1 - batch.first
        fresh = batch.records[skip:]
        with conn.cursor() as cur:
            for kind, rows in rows_of(hall, batch.stream, acked + 1, fresh, haocp).items():
                cur.executemany(SPECS[kind][3], rows)  # type: ignore[arg-type]
        conn.execute("UPDATE streams SET acked = %s, records = records + %s, last_at = now()"
                     " WHERE hall = %s AND stream = %s", (last_seq, len(fresh), hall, batch.stream))
        conn.execute("INSERT INTO batches (hall, stream, first_seq, last_seq, records, queued_first, queued_last,"
                     " received_at) VALUES (%s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))",
                     (hall, batch.stream, acked + 1, last_seq, len(fresh), batch.queued_first, batch.queued_last,
                      received_at))
    return Outcome(200, Ack(acked=last_seq, expected=last_seq + 1, haocp=haocp),  # type: ignore[arg-type]
                   applied=len(fresh))
