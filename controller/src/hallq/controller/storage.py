"""The hall's record in SQLite: what the core decided, committed before anyone hears of it.

- WAL journal with ``synchronous=FULL``: a committed transaction survives a power cut, and readers
  (``hallq controller report``) never block the controller. Checkpoints are not left to SQLite (which
  would run them inside some request's commit) but run by the app between requests.
- :meth:`Storage.write` writes the records of a whole batch of requests in ONE transaction (group commit:
  one fsync for all the requests that arrived together); the app publishes the answers only after it
  returns.
- :meth:`Storage.load` rebuilds the core's state after a restart (SIGKILL included): the day's tickets
  (waiting ones back in their queues), window states and clerks, numbering, and the cached answers to
  earlier ``req``s, so a repeated request gets its first answer again.

The storage decides nothing: every rule (a rating's 好差评 upload, a bad review's follow-up and its due
date, ...) is decided in the core and arrives here as a record to write. The tables and their numbered
migrations: :mod:`.schema`; the one place that opens the file: :mod:`.db`.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hallq.shared.paths import ensure_parent
from hallq.shared.schemas import Call, Staff

from . import core, schema
from .config import HallFile
from .db import DatabaseInUse, DbLock, connect

#: Answers to earlier requests are kept this long (a client repeats a request within seconds or minutes).
REPLY_RETENTION = timedelta(days=2)
#: Device events are kept this long (the last one of each device always: it is where a restart starts from).
DEVICE_EVENT_RETENTION = timedelta(days=400)


class StorageError(RuntimeError):
    """The database cannot be used (wrong hall, newer schema, unreadable)."""


class StorageUnwritable(StorageError):
    """The database cannot be written (read-only file system, disk full): exit 75 and let systemd retry."""


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


class Storage:
    """The controller's database; used from one thread (the app's worker)."""

    def __init__(self, path: str | os.PathLike[str], cfg: HallFile):
        self.path = Path(path)
        self.cfg = cfg
        #: The system says its clock is synchronised: the state is trusted even if the clock is behind the record.
        self.clock_synced = False
        self.lock = DbLock(self.path)
        try:
            ensure_parent(self.path, "the hall's record")
            self.lock.acquire()
        except DatabaseInUse as exc:
            raise StorageError(str(exc)) from None
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):  # the machine's state: try again later
                raise StorageUnwritable(f"cannot write the record {self.path}: {exc.strerror}") from None
            raise StorageError(f"{self.path}: cannot create the database: {exc.strerror or exc}") from None
        try:
            self._open(cfg)
        except BaseException:
            self.lock.release()
            raise

    def _open(self, cfg: HallFile) -> None:
        try:
            self.conn = connect(self.path)
            schema.migrate(self.conn)
        except schema.SchemaError as exc:
            raise StorageError(f"{self.path}: {exc}") from None
        except sqlite3.OperationalError as exc:  # read-only, full, locked: the machine's, not the file's fault
            raise StorageUnwritable(f"cannot write the record {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise StorageError(f"{self.path}: cannot open the database: {exc}") from None
        except OSError as exc:
            if exc.errno in (errno.EROFS, errno.ENOSPC, errno.EDQUOT):  # the machine's state: try again later
                raise StorageUnwritable(f"cannot write the record {self.path}: {exc.strerror}") from None
            raise StorageError(f"{self.path}: cannot create the database: {exc.strerror}") from None
        meta = dict(self.conn.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("hall") not in (None, cfg.hall.id):
            raise StorageError(f"{self.path} holds the record of hall {meta['hall']!r}, not {cfg.hall.id!r}")
        self._tx(lambda c: c.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [
                ("hall", cfg.hall.id),
                ("name", cfg.hall.name),
                ("timezone", cfg.hall.timezone),
                ("hours", json.dumps(cfg.hall.hours)),
                ("windows", json.dumps({w.no: w.name for w in cfg.windows})),
                ("window_categories", json.dumps({w.no: list(w.categories) for w in cfg.windows})),
            ],
        ))

    def close(self) -> None:
        self.conn.close()
        self.lock.release()

    def _tx(self, fn: Any) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            fn(c)
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    # -- writing ---------------------------------------------------------------------------------------------
    def write(self, records: Iterable[Any]) -> None:
        """Write the records of one batch in one transaction (each object's state as it is now)."""
        by_type: dict[type, dict[int, Any]] = {}
        for r in records:
            by_type.setdefault(type(r), {})[id(r)] = r
        if not by_type:
            return

        def run(c: sqlite3.Connection) -> None:
            if core.TicketRec in by_type:
                rows = [_ticket_row(t) for t in by_type[core.TicketRec].values()]
                # rowcount: the statement's own rows (total_changes would count the central outbox's triggers too)
                if c.executemany(_TICKET_SQL, rows).rowcount != len(rows):
                    raise sqlite3.IntegrityError(
                        "a ticket number of the day is already in the record as another ticket: not overwritten")
            if core.Sequence in by_type:
                c.executemany(
                    "INSERT INTO sequences (day, category, last) VALUES (?, ?, ?) "
                    "ON CONFLICT (day, category) DO UPDATE SET last = max(last, excluded.last)",
                    [(s.day.isoformat(), s.category, s.last) for s in by_type[core.Sequence].values()],
                )
            if core.CallRec in by_type:
                c.executemany(_CALL_SQL, [_call_row(v) for v in by_type[core.CallRec].values()])
            if core.StaffSession in by_type:
                c.executemany(
                    "INSERT OR REPLACE INTO staff_sessions (id, window, staff_id, staff_name, started_at, ended_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(s.id, s.window, s.staff_id, s.staff_name, _iso(s.started_at), _iso(s.ended_at))
                     for s in by_type[core.StaffSession].values()],
                )
            if core.PauseRec in by_type:
                c.executemany(
                    "INSERT OR REPLACE INTO pauses (window, started_at, ended_at) VALUES (?, ?, ?)",
                    [(z.window, _iso(z.started_at), _iso(z.ended_at)) for z in by_type[core.PauseRec].values()],
                )
            if core.WindowRec in by_type:
                c.executemany(
                    "INSERT OR REPLACE INTO windows (no, staff_id, staff_name, paused, current, session_id)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [(w.no, w.staff.id if w.staff else None, w.staff.name if w.staff else None, int(w.paused),
                      w.current, w.session.id if w.session else None)
                     for w in by_type[core.WindowRec].values()],
                )
            if core.Rating in by_type:
                self._insert_ratings(c, list(by_type[core.Rating].values()))
            if core.UploadRec in by_type:
                c.executemany(
                    "INSERT OR IGNORE INTO haocp_outbox (rating_id, key, record, created_at) VALUES (?, ?, ?, ?)",
                    [(u.rating_id, u.key, u.record, _iso(u.created_at)) for u in by_type[core.UploadRec].values()],
                )
            if core.FollowUpRec in by_type:
                c.executemany(
                    "INSERT OR IGNORE INTO followups (rating_id, day, ticket, window, level, rated_at, opened_at, due,"
                    " staff_id, staff_name, case_id, item_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(f.rating_id, f.day.isoformat(), f.ticket, f.window, f.level, _iso(f.rated_at), _iso(f.opened_at),
                      f.due.isoformat(), f.staff_id, f.staff_name, f.case_id, f.item_code)
                     for f in by_type[core.FollowUpRec].values()],
                )
            if core.BookingRec in by_type:
                c.executemany(_BOOKING_SQL, [_booking_row(b) for b in by_type[core.BookingRec].values()])
            if core.CachedReply in by_type:
                c.executemany(
                    "INSERT OR IGNORE INTO replies (client, req, payload, at) VALUES (?, ?, ?, ?)",
                    [(r.client, r.req, r.payload, _iso(r.at)) for r in by_type[core.CachedReply].values()],
                )

        self._tx(run)

    def _insert_ratings(self, c: sqlite3.Connection, ratings: list[core.Rating]) -> None:
        c.executemany(
            "INSERT INTO ratings (id, day, ticket, window, level, at, received_at, client, staff_id, staff_name,"
            " call_id, case_id, item_code) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(r.id, r.day.isoformat(), r.number, r.window, r.level, _iso(r.at), _iso(r.received_at), r.client,
              r.staff_id, r.staff_name, r.call_id, r.case_id, r.item_code) for r in ratings],
        )

    # -- device events and daily figures (migration 9) ------------------------------------------------------
    def write_device_events(self, events: Iterable[Any]) -> int:
        """Write :class:`~hallq.controller.devices.DeviceEvent` s in one transaction; returns how many."""
        rows = [(e.at.date().isoformat(), e.at.isoformat(), e.device, e.role, e.window, int(e.listed), e.status,
                 json.dumps(list(e.problems), ensure_ascii=False), e.change) for e in events]
        if rows:
            self._tx(lambda c: c.executemany(
                "INSERT INTO device_events (day, at, device, role, window, listed, status, problems, change)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows))
        return len(rows)

    def last_device_events(self) -> dict[str, tuple[str, tuple[str, ...]]]:
        """Each device's status and problems as its last recorded event left them."""
        return {d: (st, tuple(json.loads(p))) for d, st, p in self.conn.execute(
            "SELECT device, status, problems FROM device_events"
            " WHERE id IN (SELECT max(id) FROM device_events GROUP BY device)")}

    def days_without_figures(self, today: date) -> list[date]:
        """The days before ``today`` with tickets or clerks' sessions whose figures are not recorded yet."""
        d = today.isoformat()
        return [date.fromisoformat(x) for (x,) in self.conn.execute(
            "SELECT day FROM (SELECT DISTINCT day FROM tickets WHERE day < ?"
            " UNION SELECT DISTINCT substr(started_at, 1, 10) FROM staff_sessions WHERE started_at < ?)"
            " WHERE day NOT IN (SELECT day FROM daily_figures) ORDER BY day", (d, d))]

    def write_daily_figures(self, figures: Any) -> None:
        """Record a closed day's figures (a :class:`~hallq.shared.schemas.Stats`), once."""
        from hallq.shared.schemas import encode

        self._tx(lambda c: c.execute("INSERT OR IGNORE INTO daily_figures (day, at, figures) VALUES (?, ?, ?)",
                                     (figures.date, figures.at.isoformat(), encode(figures).decode())))

    def checkpoint(self) -> None:
        """Copy the write-ahead log into the database (the app does this when no request waits)."""
        self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def prune(self, now: datetime) -> int:
        """Forget cached answers older than :data:`REPLY_RETENTION`, and all but the newest ``[limits] replies``
        (the same bound as in memory); returns how many rows went."""
        keep = self.cfg.limits.replies

        def run(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM replies WHERE at < ?", (_iso(now - REPLY_RETENTION),))
            extra = c.execute("SELECT count(*) FROM replies").fetchone()[0] - keep
            if extra > 0:
                # the oldest `extra` by the `at` index, each deleted by its key: linear in the rows. (`NOT IN`
                # the newest `keep` was quadratic: 2.5 s at 21,000 rows, 28 s at 30,000, the worker stalled)
                c.execute("DELETE FROM replies WHERE (client, req) IN "
                          "(SELECT client, req FROM replies ORDER BY at, client, req LIMIT ?)", (extra,))
            old = (now - DEVICE_EVENT_RETENTION).date().isoformat()
            if c.execute("SELECT 1 FROM device_events WHERE day < ? LIMIT 1", (old,)).fetchone():
                c.execute("DELETE FROM device_events WHERE day < ? AND id NOT IN ("
                          "SELECT max(id) FROM device_events GROUP BY device)", (old,))

        before = self.conn.total_changes
        self._tx(run)
        return self.conn.total_changes - before

    def forget_persons(self, today: date) -> int:
        """Delete the person keys of the days before ``today`` (privacy: README, "What the hall keeps").

        A person key (an HMAC of the ID number or phone under the hall key, per day) is needed while its
        ticket may wait (one ticket per person and category, a holder's cancel) and while a bad review of
        that ticket is being followed up; after that nothing needs it. Kept: the keys of tickets with an open
        follow-up (cleared at the first purge after it is closed). The bookings of past days lose theirs too.
        Runs at start-up and at each new day; returns how many keys went."""
        d = today.isoformat()

        def run(c: sqlite3.Connection) -> None:
            c.execute(
                "UPDATE tickets SET person = NULL WHERE day < ? AND person IS NOT NULL AND NOT EXISTS ("
                "SELECT 1 FROM followups f WHERE f.day = tickets.day AND f.ticket = tickets.number"
                " AND f.closed_at IS NULL)", (d,))
            c.execute("UPDATE appointments SET person = NULL WHERE day < ? AND person IS NOT NULL", (d,))

        before = self.conn.total_changes
        self._tx(run)
        return self.conn.total_changes - before

    # -- reading back ------------------------------------------------------------------------------------------
    def load(self, now: datetime) -> core.HallState:
        """The core's state as it was at the last commit (a fresh hall if the database is new)."""
        c = self.conn
        row = c.execute("SELECT max(day) FROM (SELECT day FROM tickets UNION ALL SELECT day FROM sequences)").fetchone()
        day = date.fromisoformat(row[0]) if row and row[0] else now.date()
        d = day.isoformat()
        tickets = [_ticket(r) for r in c.execute(f"SELECT {_TICKET_COLS} FROM tickets WHERE day = ?", (d,))]
        calls = [_call(r) for r in c.execute(f"SELECT {_CALL_COLS} FROM calls WHERE day = ? ORDER BY id", (d,))]
        sessions = {
            r[0]: core.StaffSession(r[0], r[1], r[2], r[3], _dt(r[4]), _dt(r[5]))  # type: ignore[arg-type]
            for r in c.execute(
                "SELECT s.id, s.window, s.staff_id, s.staff_name, s.started_at, s.ended_at FROM staff_sessions s"
                " JOIN windows w ON w.session_id = s.id")
        }
        windows = [
            (no, Staff(id=sid, name=sname) if sid else None, bool(paused), current, sessions.get(session_id))
            for no, sid, sname, paused, current, session_id in c.execute(
                "SELECT no, staff_id, staff_name, paused, current, session_id FROM windows")
        ]
        sequences = dict(c.execute("SELECT category, last FROM sequences WHERE day = ?", (d,)).fetchall())
        for t in tickets:  # the numbers issued never go back, whatever a table says
            cat_last = int(t.number[-3:]) if t.number[-3:].isdigit() else 0
            if cat_last > sequences.get(t.category, 0):
                sequences[t.category] = cat_last
        replies = [
            core.CachedReply(client, req, bytes(payload), datetime.fromisoformat(at))
            for client, req, payload, at in c.execute(
                "SELECT client, req, payload, at FROM replies WHERE at >= ? ORDER BY at DESC LIMIT ?",
                (_iso(now - REPLY_RETENTION), self.cfg.limits.replies))
        ]
        rated = [r[0] for r in c.execute("SELECT ticket FROM ratings WHERE day = ?", (d,))]
        services = [  # with where a transfer sent its ticket on: its next call's queue, or where it waits
            (q, datetime.fromisoformat(e) - datetime.fromisoformat(s), to)
            for q, s, e, to in reversed(c.execute(
                "SELECT c.queue, c.called_at, c.ended_at, CASE WHEN c.outcome = 'transferred' THEN coalesce("
                " (SELECT n.queue FROM calls n WHERE n.day = c.day AND n.number = c.number AND n.id > c.id"
                "  ORDER BY n.id LIMIT 1),"
                " (SELECT t.queue FROM tickets t WHERE t.day = c.day AND t.number = c.number)) END"
                " FROM calls c WHERE c.ended_at IS NOT NULL AND c.outcome != 'expired'"
                " ORDER BY c.id DESC LIMIT 500").fetchall())
        ]
        board = [
            Call(ticket=v.number, category=v.category, window=v.window,
                 window_name=(self.cfg.window(v.window).name if self.cfg.window(v.window) else f"{v.window}"),
                 recall=v.recalls, at=v.called_at)
            for v in sorted(calls, key=lambda v: v.id, reverse=True)[: core.BOARD_SIZE]
        ]

        def next_id(table: str) -> int:
            return (c.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0] or 0) + 1

        return core.restore(
            self.cfg,
            now,
            day=day,
            tickets=tickets,
            calls=calls,
            windows=windows,
            sequences=sequences,
            replies=replies,
            rated=rated,
            next_call_id=next_id("calls"),
            next_rating_id=next_id("ratings"),
            next_session_id=next_id("staff_sessions"),
            services=services,
            board=board,
            latest=self.latest(),
            clock_synced=self.clock_synced,
            bookings=[_booking(r) for r in c.execute(
                f"SELECT {_BOOKING_COLS} FROM appointments WHERE day >= ?",
                ((day - timedelta(days=core.appointments.KEEP_DAYS)).isoformat(),))],
            pauses=[core.PauseRec(w, datetime.fromisoformat(a)) for w, a in c.execute(
                "SELECT window, started_at FROM pauses WHERE ended_at IS NULL")],
        )

    def latest(self) -> datetime | None:
        """The latest time in the record: its last answer or its last ticket issued."""
        c = self.conn
        times = [r[0] for r in c.execute("SELECT max(at) FROM replies UNION ALL SELECT max(issued_at) FROM tickets")]
        parsed = [datetime.fromisoformat(t) for t in times if t]
        return max(parsed) if parsed else None


# -- row mapping -------------------------------------------------------------------------------------------------
_TICKET_COLS = (
    "day, number, category, seq, issued_at, priority, channel, person, appointment, client, est_wait_min, ahead,"
    " status, queue, to_window, transferred_at, window, called_at, recalls, first_called_at, finished_at, rated,"
    " slot_start, slot_end, vouched"
)
# Insert-only for a number: a later write of the same (day, number) updates that ticket only if it is the same
# ticket (same issue time); a different ticket under a number already issued is never written over it.
_TICKET_SQL = (
    f"INSERT INTO tickets ({_TICKET_COLS}) VALUES ({', '.join('?' * 25)}) ON CONFLICT (day, number) DO UPDATE SET "
    + ", ".join(f"{c.strip()} = excluded.{c.strip()}" for c in _TICKET_COLS.split(",")[2:])
    + " WHERE tickets.issued_at = excluded.issued_at"
)


def _ticket_row(t: core.TicketRec) -> tuple:
    return (
        t.day.isoformat(), t.number, t.category, t.seq, _iso(t.issued_at), t.priority, t.channel, t.person,
        t.appointment, t.client, t.est_wait_min, t.ahead, t.status, t.queue, t.to_window, _iso(t.transferred_at),
        t.window, _iso(t.called_at), t.recalls, _iso(t.first_called_at), _iso(t.finished_at), int(t.rated),
        _iso(t.slot_start), _iso(t.slot_end), t.vouched,
    )


def _ticket(r: tuple) -> core.TicketRec:
    return core.TicketRec(
        day=date.fromisoformat(r[0]), number=r[1], category=r[2], seq=r[3], issued_at=datetime.fromisoformat(r[4]),
        priority=r[5], channel=r[6], person=r[7], appointment=r[8], client=r[9] or "", est_wait_min=r[10] or 0,
        ahead=r[11] or 0, status=r[12], queue=r[13], to_window=r[14], transferred_at=_dt(r[15]), window=r[16],
        called_at=_dt(r[17]), recalls=r[18], first_called_at=_dt(r[19]), finished_at=_dt(r[20]), rated=bool(r[21]),
        slot_start=_dt(r[22]), slot_end=_dt(r[23]), vouched=r[24],
    )


_BOOKING_COLS = ("code, day, category, slot_start, slot_end, person, name, source, imported_at, checked_in_at, ticket,"
                 " arrival, cancelled_at")
_BOOKING_SQL = f"INSERT OR REPLACE INTO appointments ({_BOOKING_COLS}) VALUES ({', '.join('?' * 13)})"


def _booking_row(b: core.BookingRec) -> tuple:
    return (b.code, b.day.isoformat(), b.category, _iso(b.slot_start), _iso(b.slot_end), b.person, b.name, b.source,
            _iso(b.imported_at), _iso(b.checked_in_at), b.ticket, b.arrival, _iso(b.cancelled_at))


def _booking(r: tuple) -> core.BookingRec:
    return core.BookingRec(
        code=r[0], day=date.fromisoformat(r[1]), category=r[2], slot_start=datetime.fromisoformat(r[3]),
        slot_end=datetime.fromisoformat(r[4]), person=r[5], name=r[6], source=r[7],
        imported_at=datetime.fromisoformat(r[8]), checked_in_at=_dt(r[9]), ticket=r[10], arrival=r[11],
        cancelled_at=_dt(r[12]),
    )


_CALL_COLS = (
    "id, day, number, category, queue, window, staff_id, staff_name, called_at, wait_s, first, priority, recalls,"
    " ended_at, outcome, case_id, item_code, item_name, case_kind"
)
_CALL_SQL = f"INSERT OR REPLACE INTO calls ({_CALL_COLS}) VALUES ({', '.join('?' * 19)})"


def _call_row(v: core.CallRec) -> tuple:
    return (
        v.id, v.day.isoformat(), v.number, v.category, v.queue, v.window, v.staff_id, v.staff_name,
        _iso(v.called_at), v.wait_s, int(v.first), v.priority, v.recalls, _iso(v.ended_at), v.outcome, v.case_id,
        v.item_code, v.item_name, v.case_kind,
    )


def _call(r: tuple) -> core.CallRec:
    return core.CallRec(
        id=r[0], day=date.fromisoformat(r[1]), number=r[2], category=r[3], queue=r[4], window=r[5], staff_id=r[6],
        staff_name=r[7], called_at=datetime.fromisoformat(r[8]), wait_s=r[9], first=bool(r[10]), priority=r[11],
        recalls=r[12], ended_at=_dt(r[13]), outcome=r[14], case_id=r[15], item_code=r[16], item_name=r[17],
        case_kind=r[18],
    )
