"""The shipper: a thread of the controller that sends the central outbox to the city's centre, in order.

It never touches the core or the worker's connection: it has its own SQLite connection and its own thread,
so a centre that is down, slow or refusing never delays a take, a call or a rating (its only write, deleting
acknowledged rows, is one short transaction).

The protocol (``hallq.shared.central``): POST the oldest rows (``first`` = the oldest ``seq``) with the hall's
token; on 200 the centre holds everything up to ``acked``: those rows are deleted. On 409 the centre names
the ``seq`` it needs: rows before it are held there already (an answer lost on the way) and are deleted;
if it needs a row this hall no longer has, shipping stops there with an error in the log (never skipped).
Anything else (no connection, time-out, 5xx) is tried again with a doubling pause; the rows stay until
acknowledged, however many days that takes.

The same class ships the hall dashboard's outbox (``dashboard.db``: the follow-ups' call-back notes,
:mod:`hallq.dashboard.notes_outbox`) in a stream of its own: ``outbox`` names the module that holds the
stream (``enable``, ``pending``, ``acknowledge``, ``backlog``), so each database keeps one writer.
"""

from __future__ import annotations

import logging
import random
import sqlite3
import ssl
import threading
import time
from datetime import UTC, datetime
from types import ModuleType
from typing import Any

from hallq.shared.central import INGEST_PATH, Ack, Credentials, CredentialsError
from hallq.shared.schemas import PayloadError, decode

from . import central_outbox
from .config import CentralSection
from .db import connect

log = logging.getLogger(__name__)


class ShipperError(ValueError):
    """The shipper cannot be set up (credentials of another hall, unreadable files): a config error."""


class Shipper:
    IDLE_POLL = 0.5  # seconds between looks at an empty outbox

    def __init__(self, db_path: str, hall: str, cfg: CentralSection, *, outbox: ModuleType = central_outbox,
                 what: str = "the record"):
        import httpx

        try:
            self.creds = Credentials.load(cfg.credentials)
        except CredentialsError as exc:
            raise ShipperError(str(exc)) from None
        if self.creds.hall != hall:
            raise ShipperError(f"{cfg.credentials} holds the credentials of hall {self.creds.hall}, not {hall}")
        self.cfg = cfg
        self.hall = hall
        self.url = cfg.url.rstrip("/") + INGEST_PATH
        self.outbox = outbox
        self.what = what
        self.conn = connect(db_path)
        self.stream, queued = outbox.enable(self.conn)
        if queued:
            log.info("central: %s: %d rows so far are queued for the centre (stream %s)", what, queued, self.stream)
        verify: Any = True
        if cfg.ca:
            try:
                verify = ssl.create_default_context(cafile=cfg.ca)
            except (OSError, ssl.SSLError) as exc:
                raise ShipperError(f"central.ca {cfg.ca}: {exc}") from None
        self.http = httpx.Client(
            verify=verify,
            timeout=cfg.timeout_seconds,
            headers={"Authorization": f"Bearer {self.creds.token}", "Content-Type": "application/json",
                     "User-Agent": "hallq-central-shipper/1"})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pause = 0.0
        #: counters, for logs and tests
        self.shipped = 0
        self.posts = 0
        self.failures = 0
        self.stuck: str | None = None  # why shipping cannot go on (a row the centre needs is gone)
        self._warned = 0.0

    def start(self) -> Shipper:
        self._thread = threading.Thread(target=self._run, name=f"central-shipper ({self.what})", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop after the POST in flight (answered or timed out); unacknowledged rows stay for the next start."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.cfg.timeout_seconds + 2)
        self.http.close()
        self.conn.close()

    # -- one batch ------------------------------------------------------------------------------------------
    def body(self, rows: list[central_outbox.Pending]) -> bytes:
        return batch_body(self.hall, self.stream, rows)

    def ship_once(self) -> int:
        """Send the oldest pending rows once; returns how many the centre newly acknowledged (0: nothing pending).
        Raises on a failure worth trying again."""
        import httpx

        rows = self.outbox.pending(self.conn, self.cfg.batch)
        if not rows:
            return 0
        if len(rows) < self.cfg.batch and self.cfg.linger_seconds > 0 and self.stuck is None:
            oldest = datetime.fromisoformat(rows[0].queued_at.replace("Z", "+00:00"))
            if (datetime.now(UTC) - oldest).total_seconds() < self.cfg.linger_seconds:
                return 0  # not full and not old yet: wait for more rows (see CentralSection.linger_seconds)
        self.posts += 1
        try:
            resp = self.http.post(self.url, content=self.body(rows))
        except httpx.HTTPError as exc:  # refused, reset, timed out, TLS
            raise Transient(f"{type(exc).__name__}: {exc}") from None
        if resp.status_code in (200, 409):
            try:
                ack = decode(resp.content, Ack)
            except PayloadError as exc:
                raise Transient(f"HTTP {resp.status_code} with an answer that is not an Ack: {exc}") from None
            held = ack.acked if resp.status_code == 200 else ack.expected - 1
            if resp.status_code == 409 and ack.expected < rows[0].seq:
                self.stuck = (f"the centre needs row {ack.expected} of stream {self.stream}, but this hall's "
                              f"oldest unacknowledged row is {rows[0].seq}: shipping stops here (never skipped)")
                raise Transient(self.stuck)
            self.stuck = None
            n = self.outbox.acknowledge(self.conn, held, ack.haocp) if held >= rows[0].seq else 0
            self.shipped += n
            if resp.status_code == 409 and n == 0:
                raise Transient(f"HTTP 409: {ack.error}")
            return n
        raise Transient(f"HTTP {resp.status_code}: {resp.text[:200]}")

    # -- the loop ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.ship_once()
            except Transient as exc:
                self._failed(str(exc))
                continue
            except sqlite3.Error as exc:
                self._failed(f"the outbox is unreadable: {exc}")
                continue
            except Exception as exc:  # the shipper must outlive anything one batch does
                log.exception("central: shipping failed")
                self._failed(f"{type(exc).__name__}: {exc}")
                continue
            if self._pause:
                log.info("central: the centre answers again")
            self._pause = 0.0
            if n == 0:
                self._stop.wait(self.IDLE_POLL)

    def _failed(self, why: str) -> None:
        self.failures += 1
        c = self.cfg
        self._pause = min(c.retry_max_seconds, max(c.retry_min_seconds, self._pause * 2))
        wait = self._pause * random.uniform(0.8, 1.2)
        if time.monotonic() - self._warned >= 60 or self.failures == 1:
            self._warned = time.monotonic()
            try:
                n, oldest = self.outbox.backlog(self.conn)
            except sqlite3.Error:
                n, oldest = -1, None
            log.warning("central: cannot ship %s to %s (%s); %d rows wait (oldest queued %s); trying again in %.1f s",
                        self.what, c.url, why[:300], n, oldest, wait)
        self._stop.wait(wait)


def batch_body(hall: str, stream: str, rows: list[central_outbox.Pending]) -> bytes:
    """The batch as JSON: the rows' own JSON spliced in as they were queued (not decoded and re-encoded)."""
    import json

    head = json.dumps({"hall": hall, "stream": stream, "first": rows[0].seq,
                       "queued_first": rows[0].queued_at, "queued_last": rows[-1].queued_at})
    return (head[:-1] + ', "records": [' + ", ".join(r.body for r in rows) + "]}").encode("utf-8")


class Transient(Exception):
    """A failure worth trying again."""
