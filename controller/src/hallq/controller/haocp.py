"""The 好差评 link: every rating goes to the province's good/bad review system, exactly once.

- ``[haocp]`` in the hall config (:class:`~hallq.controller.config.HaocpSection`): ``url`` (left out: nothing is uploaded),
  ``area_code``, ``scheme``, ``followup_days``, ``holidays``.
- The outbox: when the controller stores a rating it inserts, in the SAME transaction, one row into
  ``haocp_outbox`` holding the finished JSON record (:func:`outbox_row`). A rating is thus never stored
  without its upload, nor uploaded without being stored.
- :class:`Uploader`, a thread of the controller, POSTs the pending rows oldest first. Transient failures
  (connection refused, time-outs, HTTP 408, 429 and 5xx) are retried with exponential backoff (tenacity);
  a row is marked ``sent`` only after a 2xx answer, ``rejected`` (and logged) after another 4xx. Rows stay
  in SQLite, so a restart goes on where it stopped.
- Exactly once: every record carries an idempotency key (``idempotencyKey`` in the body, and the
  ``Idempotency-Key`` header) made of the hall, the day and the ticket, which a hall rates once a day.
  A POST whose answer was lost is sent again with the same key, and the receiving side keeps one.

Record fields follow the provincial interface and the national data set (GB/T 39046-2020, table 9):
``projectNo`` (办件编号), ``taskCode`` (事项编码), ``taskName``, ``satisfaction`` (满意度代码),
``assessTime`` (``YYYYMMDDThhmmss``), ``pf`` (评价渠道: 5 = 政务大厅其他终端), ``areaCode`` (行政区划),
``assessNumber`` (评价次数, 1), ``windowNo``, ``ticket``. The satisfaction code is mapped explicitly by
``scheme``: ``gbt39046`` (1 = 非常满意 … 5 = 非常不满意, the national data set) or ``reverse``
(5 = 非常满意 … 1 = 非常不满意, as some provinces use).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from datetime import datetime, timedelta
from typing import Any

from .config import HaocpSection

log = logging.getLogger(__name__)

#: Satisfaction codes per scheme, best first (the order of ``hallq.shared.schemas.LEVELS``).
SCHEMES: dict[str, dict[str, str]] = {
    "gbt39046": {"very_satisfied": "1", "satisfied": "2", "basic": "3", "dissatisfied": "4",
                 "very_dissatisfied": "5"},
    "reverse": {"very_satisfied": "5", "satisfied": "4", "basic": "3", "dissatisfied": "2",
                "very_dissatisfied": "1"},
}
#: 评价渠道 (GB/T 39046): 1 PC, 2 mobile, 3 QR code, 4 hall tablet, 5 hall other terminal, 6 phone, 7 SMS.
CHANNELS = ("1", "2", "3", "4", "5", "6", "7")


# -- the code scheme, both ways ------------------------------------------------------------------------------
def satisfaction_code(level: str, scheme: str = "gbt39046") -> str:
    """The 好差评 satisfaction code of a level under ``scheme``."""
    try:
        return SCHEMES[scheme][level]
    except KeyError:
        raise ValueError(f"no satisfaction code for level {level!r} under scheme {scheme!r}") from None


def level_of(code: str, scheme: str = "gbt39046") -> str:
    """The level a satisfaction code stands for under ``scheme``."""
    for level, c in SCHEMES.get(scheme, {}).items():
        if c == str(code):
            return level
    raise ValueError(f"satisfaction code {code!r} means nothing under scheme {scheme!r}")


def assess_time(at: datetime) -> str:
    """``YYYYMMDDThhmmss`` in the hall's local time (``at`` already carries the hall's offset)."""
    return at.strftime("%Y%m%dT%H%M%S")


def idempotency_key(hall: str, day: str, ticket: str) -> str:
    return f"hallq-{hall}-{day.replace('-', '')}-{ticket}"


def record(*, hall: str, day: str, ticket: str, window: int, level: str, at: datetime, case_id: str | None,
           item_code: str | None, item_name: str | None, cfg: HaocpSection) -> dict[str, Any]:
    """The JSON record of one rating, as the province receives it."""
    return {
        "idempotencyKey": idempotency_key(hall, day, ticket),
        "projectNo": case_id or "",
        "taskCode": item_code or "",
        "taskName": item_name or "",
        "satisfaction": satisfaction_code(level, cfg.scheme),
        "assessTime": assess_time(at),
        "pf": cfg.channel,
        "areaCode": cfg.area_code,
        "assessNumber": 1,
        "windowNo": str(window),
        "ticket": ticket,
    }


# -- the outbox -----------------------------------------------------------------------------------------------
SCHEMA = """
CREATE TABLE IF NOT EXISTS haocp_outbox (
    rating_id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, record TEXT NOT NULL, created_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT,
    next_try_at TEXT, sent_at TEXT, answer TEXT
);
CREATE INDEX IF NOT EXISTS haocp_outbox_pending ON haocp_outbox (status, rating_id);
"""


def outbox_row(c: sqlite3.Connection, hall: str, r: Any, cfg: HaocpSection) -> None:
    """Insert the outbox row of rating ``r`` (a ``core.Rating``), inside the caller's transaction."""
    item_name = None
    if r.call_id is not None:
        row = c.execute("SELECT item_name FROM calls WHERE id = ?", (r.call_id,)).fetchone()
        item_name = row[0] if row else None
    day = r.day.isoformat()
    rec = record(hall=hall, day=day, ticket=r.number, window=r.window, level=r.level, at=r.at, case_id=r.case_id,
                 item_code=r.item_code, item_name=item_name, cfg=cfg)
    c.execute(
        "INSERT OR IGNORE INTO haocp_outbox (rating_id, key, record, created_at) VALUES (?, ?, ?, ?)",
        (r.id, rec["idempotencyKey"], json.dumps(rec, ensure_ascii=False), r.received_at.isoformat()),
    )


def summary(conn: sqlite3.Connection, day: str | None = None) -> dict[str, int]:
    """How many records are ``sent``, ``pending`` and ``rejected`` (of one day's ratings, if given)."""
    try:
        if day is None:
            rows = conn.execute("SELECT status, count(*) FROM haocp_outbox GROUP BY status").fetchall()
        else:
            rows = conn.execute(
                "SELECT o.status, count(*) FROM haocp_outbox o JOIN ratings r ON r.id = o.rating_id"
                " WHERE r.day = ? GROUP BY o.status", (day,)).fetchall()
    except sqlite3.OperationalError:  # a record written before the 好差评 link existed
        rows = []
    out = {"sent": 0, "pending": 0, "rejected": 0}
    out.update(dict(rows))
    return out


# -- the uploader ---------------------------------------------------------------------------------------------
class Transient(Exception):
    """A failure worth trying again (no connection, time-out, 408, 429, 5xx)."""


class Rejected(Exception):
    """The province refused the record itself (another 4xx): trying again cannot help."""


class Uploader:
    """Sends the outbox, oldest first, on its own thread and its own database connection."""

    IDLE_POLL = 0.3  # seconds between looks at an empty outbox

    def __init__(self, db_path: str, cfg: HaocpSection, clock: Any):
        import httpx

        if not cfg.url:
            raise ValueError("haocp.url is not set: there is nowhere to upload to")
        from .db import connect

        self.cfg = cfg
        self.url = cfg.url
        self.clock = clock
        self.conn = connect(db_path)
        self.http = httpx.Client(timeout=cfg.timeout_seconds, headers={"User-Agent": "hallq-haocp/1"})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: counters, for logs and tests
        self.sent = 0
        self.tries = 0
        self.rejected = 0

    def start(self) -> Uploader:
        self._thread = threading.Thread(target=self._run, name="haocp-uploader", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the POST in flight, if any (it is answered or times out)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.cfg.timeout_seconds + 2)
        self.http.close()
        self.conn.close()

    # -- one record -----------------------------------------------------------------------------------------
    def post(self, body: str, key: str) -> str:
        """POST one record; returns the answer's text, or raises :class:`Transient` / :class:`Rejected`."""
        import httpx

        self.tries += 1
        try:
            resp = self.http.post(self.url, content=body.encode("utf-8"),
                                  headers={"Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key})
        except httpx.TransportError as exc:  # refused, reset, timed out, DNS
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        if resp.is_success:
            return resp.text[:500]
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            raise Transient(f"HTTP {resp.status_code}: {resp.text[:200]}")
        raise Rejected(f"HTTP {resp.status_code}: {resp.text[:200]}")

    def _send(self, rating_id: int, key: str, body: str) -> None:
        from tenacity import Retrying, retry_if_exception_type, wait_exponential

        def note_failure(state: Any) -> None:
            exc = state.outcome.exception()
            wait = state.upcoming_sleep
            log.warning("好差评 upload of %s failed (%s); trying again in %.1f s", key, exc, wait)
            self._tx("UPDATE haocp_outbox SET attempts = attempts + 1, last_error = ?, next_try_at = ?"
                     " WHERE rating_id = ?",
                     (str(exc), (self.clock.now() + timedelta(seconds=wait)).isoformat(), rating_id))

        retrying = Retrying(
            retry=retry_if_exception_type(Transient),
            wait=wait_exponential(multiplier=self.cfg.retry_min_seconds, min=self.cfg.retry_min_seconds,
                                  max=self.cfg.retry_max_seconds),
            stop=lambda state: self._stop.is_set(),
            sleep=self._stop.wait,
            before_sleep=note_failure,
            reraise=True,
        )
        try:
            answer = retrying(self.post, body, key)
        except Transient:
            return  # stopping: the row stays pending for the next start
        except Rejected as exc:
            self.rejected += 1
            log.error("好差评 refused %s: %s", key, exc)
            self._tx("UPDATE haocp_outbox SET status = 'rejected', attempts = attempts + 1, last_error = ?"
                     " WHERE rating_id = ?", (str(exc), rating_id))
            return
        self.sent += 1
        log.info("好差评 accepted %s", key)
        self._tx("UPDATE haocp_outbox SET status = 'sent', attempts = attempts + 1, sent_at = ?, answer = ?,"
                 " last_error = NULL WHERE rating_id = ?", (self.clock.now().isoformat(), answer, rating_id))

    # -- the loop ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                row = self.conn.execute(
                    "SELECT rating_id, key, record FROM haocp_outbox WHERE status = 'pending'"
                    " ORDER BY rating_id LIMIT 1").fetchone()
            except sqlite3.Error:
                log.exception("好差评 outbox unreadable")
                row = None
            if row is None:
                self._stop.wait(self.IDLE_POLL)
                continue
            try:
                self._send(*row)
            except Exception:  # the uploader must outlive one bad record
                log.exception("好差评 upload of rating %s failed", row[0])
                self._stop.wait(self.cfg.retry_min_seconds)

    def _tx(self, sql: str, args: tuple) -> None:
        c = self.conn
        c.execute("BEGIN IMMEDIATE")
        try:
            c.execute(sql, args)
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")
