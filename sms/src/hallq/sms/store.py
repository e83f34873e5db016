"""The gateway's record (SQLite): the inbox, the durable outbox, and today's phone numbers, encrypted.

What it promises:

- **Nothing lost, nothing twice.** A received text is committed (inbox) before the modem's copy is deleted;
  an answer or notice is committed (outbox, unique ``key``) before anything is sent, in the same transaction
  that marks its cause handled. Each part of an outgoing text is first stored in the modem (``AT+CMGW``, the
  index committed here), then sent from there (``AT+CMSS``); after a crash or a modem reset the modem's own
  status of that index (``STO SENT`` / ``STO UNSENT``) says whether it went, so no part is sent twice.
- **Phone numbers only for sending, only today.** ``phones`` holds, per person key, the number encrypted with
  AES-GCM under a key derived from the hall's secret and the day (the person key is the associated data).
  :meth:`Store.new_day` deletes every row of earlier days (with ``secure_delete`` on, SQLite overwrites
  them). Nothing else here holds a number: texts are keyed by the person key.
- Every write is ``synchronous=FULL`` in WAL mode. One :class:`Store` per thread (the modem link's and the
  app worker's), on the same file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hallq.shared.paths import ensure_parent

from .core import Tracked

SCHEMA = """
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,            -- a hash of the PDU(s): the same text read twice is one text
    day TEXT NOT NULL,
    person TEXT NOT NULL,
    text TEXT,                      -- cleared once handled
    received_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'new'   -- new | done
);
CREATE TABLE IF NOT EXISTS inparts (
    day TEXT NOT NULL, person TEXT NOT NULL, ref INTEGER NOT NULL, total INTEGER NOT NULL,
    seq INTEGER NOT NULL, text TEXT NOT NULL, pdu_hash TEXT NOT NULL, received_at REAL NOT NULL,
    PRIMARY KEY (day, person, ref, seq)
);
CREATE TABLE IF NOT EXISTS asks (
    msg TEXT NOT NULL, subject TEXT NOT NULL, action TEXT NOT NULL, person TEXT NOT NULL,
    day TEXT NOT NULL, asked_at REAL NOT NULL,
    PRIMARY KEY (msg, subject)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    day TEXT NOT NULL,
    person TEXT NOT NULL,
    text TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    parts_done INTEGER NOT NULL DEFAULT 0,
    stored_index INTEGER,           -- the modem's storage index of the part being sent
    stored_tries INTEGER NOT NULL DEFAULT 0,  -- sends tried of the stored part
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0,
    last_error TEXT,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, next_at, id);
CREATE TABLE IF NOT EXISTS phones (
    person TEXT NOT NULL, day TEXT NOT NULL, sealed BLOB NOT NULL, PRIMARY KEY (person, day)
);
CREATE TABLE IF NOT EXISTS tracked (
    day TEXT NOT NULL, number TEXT NOT NULL, category TEXT NOT NULL, person TEXT NOT NULL,
    ahead_at_issue INTEGER NOT NULL, ahead_sent INTEGER NOT NULL, called TEXT NOT NULL,
    cancelled INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, number)
);
CREATE TABLE IF NOT EXISTS counts (
    day TEXT NOT NULL, person TEXT NOT NULL, answered INTEGER NOT NULL, PRIMARY KEY (day, person)
);
"""


@dataclass(frozen=True, slots=True)
class Outgoing:
    id: int
    key: str
    day: str
    person: str
    text: str
    parts_done: int
    stored_index: int | None
    stored_tries: int
    attempts: int


@dataclass(frozen=True, slots=True)
class PendingAsk:
    msg: str
    subject: str
    action: str
    person: str
    asked_at: float


class Store:
    """One connection to the gateway's database (use one per thread)."""

    def __init__(self, path: str | Path, secret: bytes):
        self.path = Path(path)
        if len(secret) < 16:
            raise ValueError("the hall's secret key must be at least 16 bytes")
        self._secret = secret
        if str(path) != ":memory:":
            ensure_parent(self.path, "the SMS gateway's record")
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
        self.conn = sqlite3.connect(str(path), timeout=30, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=FULL")
        self.conn.execute("PRAGMA secure_delete=ON")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    def _tx(self):
        return _Tx(self.conn)

    # -- phone numbers ---------------------------------------------------------------------------------
    def _day_key(self, day: str) -> bytes:
        return hmac.new(self._secret, b"hallq sms phones v1|" + day.encode(), hashlib.sha256).digest()

    def _seal(self, person: str, day: str, number: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + AESGCM(self._day_key(day)).encrypt(nonce, number.encode("ascii"), person.encode("ascii"))

    def phone_of(self, person: str, day: str) -> str | None:
        """The number to text ``person`` (11 digits), or None when it is gone (a later day)."""
        row = self.conn.execute("SELECT sealed FROM phones WHERE person=? AND day=?", (person, day)).fetchone()
        if row is None:
            return None
        sealed = bytes(row[0])
        return AESGCM(self._day_key(day)).decrypt(sealed[:12], sealed[12:], person.encode("ascii")).decode("ascii")

    # -- the inbox --------------------------------------------------------------------------------------
    def receive(self, texts: list[tuple[str, str, str, str, str]]) -> list[str]:
        """Keep received texts (msg, day, person, phone, text) and their senders' numbers, in one
        transaction; returns the ids that were new (a text kept before is not kept again)."""
        new = []
        with self._tx() as c:
            for msg, day, person, phone, text in texts:
                if c.execute("SELECT 1 FROM inbox WHERE id=?", (msg,)).fetchone():
                    continue
                c.execute("INSERT INTO inbox (id, day, person, text, received_at) VALUES (?,?,?,?,?)",
                          (msg, day, person, text, time.time()))
                if not c.execute("SELECT 1 FROM phones WHERE person=? AND day=?", (person, day)).fetchone():
                    c.execute("INSERT INTO phones VALUES (?,?,?)", (person, day, self._seal(person, day, phone)))
                new.append(msg)
        return new

    def receive_part(self, day: str, person: str, phone: str, ref: int, total: int, seq: int, text: str,
                     pdu_hash: str) -> tuple[str, str] | None:
        """Keep one part of a long text; when all ``total`` parts are in, they become one inbox text and
        its (id, text) is returned."""
        with self._tx() as c:
            c.execute("INSERT OR IGNORE INTO inparts VALUES (?,?,?,?,?,?,?,?)",
                      (day, person, ref, total, seq, text, pdu_hash, time.time()))
            rows = c.execute("SELECT seq, text, pdu_hash FROM inparts WHERE day=? AND person=? AND ref=? "
                             "AND total=? ORDER BY seq", (day, person, ref, total)).fetchall()
            if len(rows) < total:
                return None
            full = "".join(r[1] for r in rows)
            msg = hashlib.sha256("|".join(r[2] for r in rows).encode()).hexdigest()[:20]
            c.execute("DELETE FROM inparts WHERE day=? AND person=? AND ref=?", (day, person, ref))
            if c.execute("SELECT 1 FROM inbox WHERE id=?", (msg,)).fetchone():
                return None
            c.execute("INSERT INTO inbox (id, day, person, text, received_at) VALUES (?,?,?,?,?)",
                      (msg, day, person, full, time.time()))
            if not c.execute("SELECT 1 FROM phones WHERE person=? AND day=?", (person, day)).fetchone():
                c.execute("INSERT INTO phones VALUES (?,?,?)", (person, day, self._seal(person, day, phone)))
            return msg, full

    def unhandled(self, day: str) -> list[tuple[str, str, str]]:
        """Today's texts not handled yet: (id, person, text), oldest first."""
        return self.conn.execute("SELECT id, person, text FROM inbox WHERE state='new' AND day=? "
                                 "ORDER BY received_at", (day,)).fetchall()

    def pending_asks(self, day: str) -> list[PendingAsk]:
        return [PendingAsk(*r) for r in self.conn.execute(
            "SELECT msg, subject, action, person, asked_at FROM asks WHERE day=? ORDER BY asked_at", (day,))]

    # -- the effects of one core step, in one transaction -------------------------------------------------
    def apply(self, day: str, *, sends: list[tuple[str, str, str]] = (), handled: list[str] = (),
              asks: list[tuple[str, str, str, str]] = (), answered: list[tuple[str, str]] = (),
              tracked: list[Tracked] = (), counts: list[tuple[str, int]] = ()) -> int:
        """Commit what a step decided: ``sends`` (key, person, text) into the outbox (a key already there
        is not added again), texts ``handled``, ``asks`` (msg, subject, action, person) made, asks
        ``answered`` (msg, subject), ``tracked`` tickets and ``counts``. Returns how many sends were new."""
        now = time.time()
        new = 0
        with self._tx() as c:
            for key, person, text in sends:
                cur = c.execute("INSERT OR IGNORE INTO outbox (key, day, person, text, created_at) "
                                "VALUES (?,?,?,?,?)", (key, day, person, text, now))
                new += cur.rowcount
            for msg in handled:
                c.execute("UPDATE inbox SET state='done', text=NULL WHERE id=?", (msg,))
            for msg, subject, action, person in asks:
                c.execute("INSERT OR IGNORE INTO asks VALUES (?,?,?,?,?,?)", (msg, subject, action, person, day, now))
                c.execute("UPDATE inbox SET state='done', text=NULL WHERE id=?", (msg,))
            for msg, subject in answered:
                c.execute("DELETE FROM asks WHERE msg=? AND subject=?", (msg, subject))
            for t in tracked:
                c.execute("INSERT OR REPLACE INTO tracked VALUES (?,?,?,?,?,?,?,?)",
                          (day, t.number, t.category, t.person, t.ahead_at_issue, int(t.ahead_sent),
                           ",".join(map(str, t.called)), int(t.cancelled)))
            for person, n in counts:
                c.execute("INSERT OR REPLACE INTO counts VALUES (?,?,?)", (day, person, n))
        return new

    def restore(self, day: str) -> tuple[dict[str, int], list[Tracked]]:
        counts = dict(self.conn.execute("SELECT person, answered FROM counts WHERE day=?", (day,)).fetchall())
        tracked = [
            Tracked(number, category, person, ahead, bool(sent), tuple(int(w) for w in called.split(",") if w),
                    bool(cancelled))
            for number, category, person, ahead, sent, called, cancelled in self.conn.execute(
                "SELECT number, category, person, ahead_at_issue, ahead_sent, called, cancelled FROM tracked "
                "WHERE day=?", (day,))
        ]
        return counts, tracked

    def new_day(self, today: str) -> int:
        """Forget every earlier day: phone numbers, texts, asks, tracked tickets, counts and outbox rows.
        Returns how many unsent messages were given up."""
        with self._tx() as c:
            lost = c.execute("SELECT COUNT(*) FROM outbox WHERE day<? AND state='pending'", (today,)).fetchone()[0]
            for table in ("phones", "inbox", "inparts", "asks", "tracked", "counts", "outbox"):
                c.execute(f"DELETE FROM {table} WHERE day<?", (today,))
        return lost

    # -- the outbox (the modem link's side) ---------------------------------------------------------------
    def next_outgoing(self, now: float) -> Outgoing | None:
        row = self.conn.execute(
            "SELECT id, key, day, person, text, parts_done, stored_index, stored_tries, attempts FROM outbox "
            "WHERE state='pending' AND next_at<=? ORDER BY next_at, id LIMIT 1", (now,)).fetchone()
        return Outgoing(*row) if row else None

    def next_due_at(self) -> float | None:
        row = self.conn.execute("SELECT MIN(next_at) FROM outbox WHERE state='pending'").fetchone()
        return row[0]

    def part_stored(self, oid: int, index: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE outbox SET stored_index=?, stored_tries=0 WHERE id=?", (index, oid))

    def part_trying(self, oid: int) -> None:
        """Committed before ``AT+CMSS``: a later try first asks the modem whether this one went."""
        with self._tx() as c:
            c.execute("UPDATE outbox SET stored_tries=stored_tries+1 WHERE id=?", (oid,))

    def part_unstored(self, oid: int) -> None:
        with self._tx() as c:
            c.execute("UPDATE outbox SET stored_index=NULL, stored_tries=0 WHERE id=?", (oid,))

    def part_sent(self, oid: int, total: int) -> bool:
        """One more part went; True when that was the last."""
        with self._tx() as c:
            c.execute("UPDATE outbox SET parts_done=parts_done+1, stored_index=NULL, stored_tries=0 WHERE id=?",
                      (oid,))
            done = c.execute("SELECT parts_done FROM outbox WHERE id=?", (oid,)).fetchone()[0] >= total
            if done:
                c.execute("UPDATE outbox SET state='sent', sent_at=? WHERE id=?", (time.time(), oid))
            return done

    def retry_later(self, oid: int, delay: float, error: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE outbox SET attempts=attempts+1, next_at=?, last_error=? WHERE id=?",
                      (time.time() + delay, error[:200], oid))

    def give_up(self, oid: int, error: str) -> None:
        with self._tx() as c:
            c.execute("UPDATE outbox SET state='failed', last_error=? WHERE id=?", (error[:200], oid))

    def stored_indices(self) -> set[int]:
        return {r[0] for r in self.conn.execute(
            "SELECT stored_index FROM outbox WHERE state='pending' AND stored_index IS NOT NULL")}

    def outbox_counts(self, day: str) -> tuple[int, int]:
        """(pending, failed today)."""
        pending = self.conn.execute("SELECT COUNT(*) FROM outbox WHERE state='pending'").fetchone()[0]
        failed = self.conn.execute("SELECT COUNT(*) FROM outbox WHERE state='failed' AND day=?", (day,)).fetchone()[0]
        return pending, failed


class _Tx:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


def today_str(d: date) -> str:
    return d.isoformat()
