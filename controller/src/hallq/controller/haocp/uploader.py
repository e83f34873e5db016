"""The 好差评 uploader: a thread of the controller that POSTs the outbox, oldest first (see :mod:`.`)."""

from __future__ import annotations

import logging
import sqlite3
import threading
from datetime import timedelta
from typing import Any

from ..config import HaocpSection
from ..db import connect
from . import outbox

log = logging.getLogger(__name__)


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
        self.cfg = cfg
        self.url = cfg.url
        self.clock = clock
        self.conn = connect(db_path)
        self.http = httpx.Client(timeout=cfg.timeout_seconds, headers={"User-Agent": "hallq-haocp/1"})
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: when the city's centre uploads for the hall: the hall uploads a record itself only once it is this old
        #: (the fallback; ``[central] haocp_fallback_minutes``); None: no centre
        self.fallback: timedelta | None = None
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
            outbox.failed(self.conn, rating_id, str(exc), self.clock.now() + timedelta(seconds=wait))

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
            outbox.rejected(self.conn, rating_id, str(exc))
            return
        self.sent += 1
        log.info("好差评 accepted %s", key)
        outbox.sent(self.conn, rating_id, answer, self.clock.now())

    # -- the loop ---------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                cutoff = None
                if self.fallback is not None and outbox.central_mode(self.conn):
                    cutoff = (self.clock.now() - self.fallback).isoformat()
                row = outbox.next_pending(self.conn, cutoff)
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
