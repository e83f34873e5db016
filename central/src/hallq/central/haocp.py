"""The city's one 好差评 link: the centre uploads its halls' ratings to the province when the city says so.

- ``hallq central haocp on HALL`` (``off`` to give it back): from then on the records of that hall's ratings
  that arrive are ``pending`` here, and every answer to the hall says ``haocp = "central"``; the hall marks the
  records the centre acknowledged as the centre's and does not upload them itself. A record the centre has not
  acknowledged within the hall's ``[central] haocp_fallback_minutes`` (the link down, the centre away) the
  hall uploads through its own link, as before: the province keeps one per idempotency key.
- The records are the hall's own (made by ``hallq.controller.haocp.record`` with the hall's area code and
  code scheme), uploaded unchanged with the same idempotency key (body and ``Idempotency-Key`` header): the
  same outbox semantics as the hall's uploader, oldest first, a transient failure (no connection, time-out,
  408, 429, 5xx) tried again with doubling pauses, another 4xx marked ``rejected`` and logged.
- :class:`Uploader` is a thread of ``hallq central serve --haocp-url URL``; several centres' uploaders may
  run at once (rows are claimed with ``FOR UPDATE SKIP LOCKED``).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import psycopg

log = logging.getLogger(__name__)


class HaocpError(ValueError):
    """A hall whose upload cannot be switched as asked."""


def switch(conn: psycopg.Connection, hall: str, central: bool) -> None:
    with conn.transaction():
        cur = conn.execute("UPDATE halls SET haocp_central = %s WHERE id = %s", (central, hall))
        if cur.rowcount != 1:
            raise HaocpError(f"there is no hall {hall}")


def summary(conn: psycopg.Connection) -> list[tuple[str, bool, int, int, int, int]]:
    """(hall, centre uploads?, pending, sent, rejected, left to the hall) per hall."""
    return conn.execute(
        "SELECT h.id, h.haocp_central, count(*) FILTER (WHERE u.status = 'pending'),"
        " count(*) FILTER (WHERE u.status = 'sent'), count(*) FILTER (WHERE u.status = 'rejected'),"
        " count(*) FILTER (WHERE u.status = 'hall')"
        " FROM halls h LEFT JOIN haocp_uploads u ON u.hall = h.id GROUP BY h.id ORDER BY h.id").fetchall()


class Transient(Exception):
    pass


class Rejected(Exception):
    pass


class Uploader:
    IDLE_POLL = 0.5

    def __init__(self, pool: Any, url: str, *, timeout: float = 10.0, retry_min: float = 1.0,
                 retry_max: float = 300.0):
        import httpx

        self.pool = pool
        self.url = url
        self.http = httpx.Client(timeout=timeout, headers={"User-Agent": "hallq-central-haocp/1"})
        self.retry_min, self.retry_max = retry_min, retry_max
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pause = 0.0
        self.sent = 0
        self.rejected = 0
        self.tries = 0

    def start(self) -> Uploader:
        self._thread = threading.Thread(target=self._run, name="central-haocp", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)
        self.http.close()

    def post(self, key: str, body: str) -> str:
        import httpx

        self.tries += 1
        try:
            r = self.http.post(self.url, content=body.encode("utf-8"), headers={
                "Content-Type": "application/json; charset=utf-8", "Idempotency-Key": key})
        except httpx.HTTPError as exc:
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        if r.is_success:
            return r.text[:500]
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise Transient(f"HTTP {r.status_code}: {r.text[:200]}")
        raise Rejected(f"HTTP {r.status_code}: {r.text[:200]}")

    def upload_one(self) -> bool:
        """Upload the oldest pending record of a hall the centre uploads for; False when there is none."""
        with self.pool.connection() as conn, conn.transaction():
            row = conn.execute(
                "SELECT u.hall, u.day, u.rating_id, u.key, u.record FROM haocp_uploads u"
                " JOIN halls h ON h.id = u.hall AND h.haocp_central"
                " WHERE u.status = 'pending' AND (u.next_try_at IS NULL OR u.next_try_at <= now())"
                " ORDER BY u.created_at LIMIT 1 FOR UPDATE OF u SKIP LOCKED").fetchone()
            if row is None:
                return False
            hall, day, rid, key, body = row
            where = (hall, day, rid)
            try:
                answer = self.post(key, body)
            except Transient as exc:
                self._pause = min(self.retry_max, max(self.retry_min, self._pause * 2))
                conn.execute("UPDATE haocp_uploads SET attempts = attempts + 1, last_error = %s,"
                             " next_try_at = now() + make_interval(secs => %s)"
                             " WHERE hall = %s AND day = %s AND rating_id = %s", (str(exc)[:500], self._pause, *where))
                log.warning("好差评 upload of %s failed (%s); again in %.1f s", key, exc, self._pause)
                return True
            except Rejected as exc:
                self.rejected += 1
                conn.execute("UPDATE haocp_uploads SET status = 'rejected', attempts = attempts + 1,"
                             " last_error = %s WHERE hall = %s AND day = %s AND rating_id = %s",
                             (str(exc)[:500], *where))
                log.error("好差评 refused %s: %s", key, exc)
                return True
            self._pause = 0.0
            self.sent += 1
            conn.execute("UPDATE haocp_uploads SET status = 'sent', attempts = attempts + 1, sent_at = now(),"
                         " answer = %s, last_error = NULL WHERE hall = %s AND day = %s AND rating_id = %s",
                         (answer, *where))
            return True

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.upload_one()
            except Exception:
                log.exception("好差评 upload failed")
                busy = False
            if not busy:
                self._stop.wait(self.IDLE_POLL)
            elif self._pause:
                self._stop.wait(min(self._pause, self.IDLE_POLL))
