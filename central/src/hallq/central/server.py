"""The ingest endpoint: halls POST their batches here over HTTPS (``hallq central serve``).

``POST /v1/ingest`` with ``Authorization: Bearer <token>`` and a :class:`hallq.shared.central.Batch`:

- 401 without a valid, unrevoked token; 413 for a body over :data:`MAX_BODY`; 422 for a batch that does not
  fit the contract (decoded with the same schemas the hall encodes with); nothing is written for any of them;
- otherwise the rules of :func:`hallq.central.ingest.apply`: 200 + :class:`~hallq.shared.central.Ack` when
  held, 409 + Ack(expected) for a gap or a stream that does not start at 1, 403 for another hall's batch;
- 503 when the database cannot be reached (the hall tries again later; nothing was acknowledged).

``GET /v1/health``: 200 when the database answers.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import psycopg
from hallq.shared.central import INGEST_PATH, Ack, Batch
from hallq.shared.schemas import PayloadError, decode, encode, shorten
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import halls, ingest

log = logging.getLogger(__name__)

#: The largest batch body accepted (MAX_BATCH rows of a few hundred bytes each, with room).
MAX_BODY = 8 * 1024 * 1024


def _ack(status: int, ack: Ack) -> Response:
    return Response(encode(ack), status_code=status, media_type="application/json")


def _error(status: int, text: str) -> Response:
    return JSONResponse({"error": text}, status_code=status)


#: A token's hall is remembered this long (seconds): a revoked or rotated token stops working within it.
AUTH_CACHE_S = 30.0


def build(pool: ConnectionPool) -> Starlette:
    """The ASGI app over a pool of connections to the central database (autocommit connections)."""
    known: dict[str, tuple[str, float]] = {}  # token -> (hall, until): one query less per batch

    def who(conn: Any, token: str) -> str | None:
        hit = known.get(token)
        if hit is not None and hit[1] > time.monotonic():
            return hit[0]
        hall = halls.authenticate(conn, token)
        if hall is None:
            known.pop(token, None)
        else:
            if len(known) > 100_000:
                known.clear()
            known[token] = (hall, time.monotonic() + AUTH_CACHE_S)
        return hall

    def handle(token: str, body: bytes) -> Response:
        try:
            with pool.connection() as conn:
                hall = who(conn, token)
                if hall is None:
                    return _error(401, "unknown or revoked credentials")
                try:
                    batch = decode(body, Batch)
                except PayloadError as exc:
                    log.warning("hall %s sent a batch that does not fit the contract: %s", hall, exc)
                    return _error(422, f"not a batch: {exc}")
                out = ingest.apply(conn, hall, batch)
        except psycopg.OperationalError as exc:
            log.warning("central database unavailable: %s", shorten(str(exc).strip(), 200))
            return _error(503, "the central database is unavailable; try again later")
        except psycopg.errors.DataError as exc:  # a value PostgreSQL cannot hold (an out-of-range date ...)
            return _error(422, f"a row cannot be stored: {shorten(str(exc).strip(), 200)}")
        return _ack(out.status, out.ack)

    async def ingest_endpoint(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, "Authorization: Bearer <the hall's token> is needed")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return _error(413, f"a batch is at most {MAX_BODY} bytes")
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY:
                return _error(413, f"a batch is at most {MAX_BODY} bytes")
        return await run_in_threadpool(handle, auth[7:].strip(), body)

    def health_check() -> Response:
        try:
            with pool.connection(timeout=5) as conn:
                conn.execute("SELECT 1")
        except Exception:
            return _error(503, "the central database is unavailable")
        return JSONResponse({"ok": True})

    async def health(request: Request) -> Response:
        return await run_in_threadpool(health_check)

    return Starlette(routes=[
        Route(INGEST_PATH, ingest_endpoint, methods=["POST"]),
        Route("/v1/health", health, methods=["GET"]),
    ])


def open_pool(dsn: str, size: int = 8) -> ConnectionPool:
    def configure(conn: Any) -> None:
        conn.autocommit = True

    pool = ConnectionPool(dsn, min_size=1, max_size=size, configure=configure, open=False, timeout=10)
    pool.open(wait=False)
    return pool
