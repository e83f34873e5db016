"""The city's central ingest, against a real PostgreSQL 15 (fsync on) and ``hallq central serve`` (HTTPS).

Targets (issue 15): 300 simulated halls × 1,000 tickets a day pushed at 10× real time: ingest rate ≥ 5,000
records/s on this 2-core machine, lag p95 (a row queued in a hall → acknowledged by the centre), PostgreSQL
size per hall-day.

How:
- one hall-day of 1,000 citizens is made through the real core, storage and central outbox (the trigger-made
  rows exactly as a hall queues them: every version of tickets, calls, ratings, follow-ups, clerk sessions);
  each simulated hall sends those rows under its own id and token, in the shipper's wire format
  (:func:`hallq.controller.shipper.batch_body`), 500 rows a batch;
- capacity: ``CAPACITY_HALLS`` halls send a whole day each as fast as the centre takes it (``CONCURRENCY``
  batches in flight): records/s; then the PostgreSQL size of those hall-days (tables, indexes, partitions);
- 10× real time: all 300 halls, each releasing its day's rows on the day's own schedule (9 opening hours)
  sped up 10×, for ``LIVE_SECONDS``; each polls like the shipper (every 0.5 s when idle) and sends what is
  pending: lag = acknowledged − released, p50/p95/max.
The load generator shares the 2 cores with the server and PostgreSQL (its TLS and JSON cost CPU too).
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import httpx

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "central"))
sys.path.insert(0, str(ROOT / "tests" / "controller"))

HALLS = 300
TICKETS = 1000
CAPACITY_HALLS = int(os.environ.get("BENCH_CENTRAL_CAPACITY_HALLS", "40"))
CONCURRENCY = 8
BATCH = 500
SPEED = 10.0
LINGER = float(os.environ.get("BENCH_CENTRAL_LINGER", "15.0"))  # the shipper's default linger_seconds
OPEN_S = 9 * 3600
LIVE_SECONDS = float(os.environ.get("BENCH_CENTRAL_LIVE_SECONDS", "180"))
DAY = date(2026, 3, 2)


def _hall_day_rows(tmp: Path) -> list[tuple[str, str]]:
    """(body, queued_at) of one hall-day's outbox rows, made by the real core, storage and triggers."""
    from centralkit import SIM_HALL, hall_day
    from controller_kit import StoredHall
    from hallq.controller import central_outbox

    h = StoredHall(tmp / "day.db", SIM_HALL.format(hall="sim"))
    h.storage.conn.execute("PRAGMA synchronous=OFF")  # making the rows, not measuring the hall
    central_outbox.enable(h.storage.conn)
    hall_day(h, DAY, TICKETS, random.Random(1))
    rows = [(p.body, p.queued_at) for p in central_outbox.pending(h.storage.conn, 10**7)]
    h.storage.close()
    return rows


def _shift(body: str, days: int) -> str:
    return body.replace(DAY.isoformat(), date.fromordinal(DAY.toordinal() + days).isoformat())


class Sim:
    def __init__(self, hall: str, token: str, rows: list[str]):
        self.hall, self.token, self.rows = hall, token, rows
        self.stream = uuid.uuid4().hex
        self.next = 0  # index of the next row to send (seq = index + 1)

    def body(self, upto: int) -> bytes:
        from hallq.controller.central_outbox import Pending
        from hallq.controller.shipper import batch_body

        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        pend = [Pending(i + 1, self.rows[i], now) for i in range(self.next, upto)]
        return batch_body(self.hall, self.stream, pend)


RETRIES = {"n": 0}


async def _post(client: httpx.AsyncClient, url: str, sim: Sim, upto: int) -> int:
    for attempt in range(5):  # as the shipper: a dropped connection is tried again (the centre skips repeats)
        try:
            r = await client.post(url, content=sim.body(upto), headers={"Authorization": f"Bearer {sim.token}",
                                                                      "Content-Type": "application/json"})
            break
        except httpx.TransportError:
            RETRIES["n"] += 1
            if attempt == 4:
                raise
            await asyncio.sleep(0.2)
    if r.status_code != 200:
        raise RuntimeError(f"{sim.hall}: HTTP {r.status_code} {r.text[:200]}")
    acked = r.json()["acked"]
    sim.next = acked
    return acked


async def _capacity(url: str, ctx: ssl.SSLContext, sims: list[Sim]) -> tuple[int, float]:
    queue: asyncio.Queue[Sim] = asyncio.Queue()
    for s in sims:
        queue.put_nowait(s)
    sent = 0

    async with httpx.AsyncClient(verify=ctx, timeout=120,
                                 limits=httpx.Limits(max_connections=CONCURRENCY)) as client:
        async def worker() -> None:
            nonlocal sent
            while True:
                try:
                    s = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                while s.next < len(s.rows):
                    upto = min(len(s.rows), s.next + BATCH)
                    before = s.next
                    await _post(client, url, s, upto)
                    sent += s.next - before

        t0 = time.monotonic()
        await asyncio.gather(*[worker() for _ in range(CONCURRENCY)])
        return sent, time.monotonic() - t0


async def _live(url: str, ctx: ssl.SSLContext, sims: list[Sim], times: list[float]) -> dict:
    """Each hall releases row i at times[i] / SPEED seconds (from a random point of its day) and ships it."""
    lags: list[float] = []
    sent = 0
    t0 = time.monotonic() + 1.0
    end = t0 + LIVE_SECONDS
    rng = random.Random(7)
    offsets = {s.hall: rng.uniform(0, OPEN_S - LIVE_SECONDS * SPEED) for s in sims}  # halls are not in step

    def released(s: Sim, now: float) -> int:
        """How many of s's rows are released at monotonic ``now`` (counted from the hall's first row today)."""
        hall_t = offsets[s.hall] + (now - t0) * SPEED
        lo, hi = 0, len(times)
        while lo < hi:
            mid = (lo + hi) // 2
            if times[mid] <= hall_t:
                lo = mid + 1
            else:
                hi = mid
        return lo

    async with httpx.AsyncClient(verify=ctx, timeout=60, limits=httpx.Limits(max_connections=64)) as client:
        async def hall(s: Sim) -> None:
            nonlocal sent
            base = released(s, t0)  # the rows before this point were shipped earlier in the day (another stream)
            s.rows = s.rows[base:]
            await asyncio.sleep(rng.uniform(0, 0.5))
            while time.monotonic() < end:
                now = time.monotonic()
                upto = min(released(s, now) - base, s.next + BATCH)
                oldest = t0 + (times[base + s.next] - offsets[s.hall]) / SPEED if upto > s.next else now
                if upto > s.next and (upto - s.next >= BATCH or now - max(oldest, t0) >= LINGER):
                    first = s.next
                    await _post(client, url, s, upto)
                    done = time.monotonic()
                    for i in range(first, s.next):
                        rel = t0 + (times[base + i] - offsets[s.hall]) / SPEED
                        lags.append(done - max(rel, t0))
                    sent += s.next - first
                else:
                    await asyncio.sleep(0.5)  # the shipper's idle poll

        started = time.monotonic()
        await asyncio.gather(*[hall(s) for s in sims])
        wall = time.monotonic() - started
    lags.sort()
    return {"linger_s": LINGER, "rows": sent, "seconds": round(wall, 1), "rows_per_s": round(sent / wall, 1),
            "lag_p50_s": round(percentile(lags, 50), 3), "lag_p95_s": round(percentile(lags, 95), 3),
            "lag_max_s": round(lags[-1], 3) if lags else None}


def run() -> dict:
    import psycopg
    from centralkit import CentralServer
    from hallq.central import db, halls, tls
    from pg import PgCluster

    out: dict = {"target": {"ingest_records_per_s": 5000, "halls": HALLS, "tickets_per_hall_day": TICKETS,
                            "speed": SPEED}}
    tmp = Path(tempfile.mkdtemp(prefix="bench-central-"))
    load0 = os.getloadavg()
    t = time.monotonic()
    day_rows = _hall_day_rows(tmp)
    out["rows_per_hall_day"] = len(day_rows)
    out["make_hall_day_s"] = round(time.monotonic() - t, 1)
    # each row's moment in the day (seconds since opening), from the order the hall queued them
    times = [OPEN_S * i / len(day_rows) for i in range(len(day_rows))]

    cluster = PgCluster(fsync=True, settings={"shared_buffers": "256MB", "max_wal_size": "2GB"}).start()
    server = None
    try:
        dsn = cluster.create_database("central")
        tokens: dict[str, str] = {}
        with db.connect(dsn, autocommit=True) as conn:
            db.migrate(conn, today=DAY)
            db.ensure_months(conn, [DAY, date.today()])
            for i in range(HALLS):
                hid = f"H{i + 1:03d}"
                tokens[hid] = halls.add(conn, hid, f"第{i + 1}政务服务中心").token
        tls_dir = tmp / "tls"
        tls.make(tls_dir, ["127.0.0.1"])
        server = CentralServer(tmp, dsn, tls_dir).start()
        ctx = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))
        url = f"{server.url}/v1/ingest"
        bodies = [b for b, _ in day_rows]

        # capacity: whole hall-days as fast as the centre takes them
        sims = [Sim(h, tokens[h], bodies) for h in list(tokens)[:CAPACITY_HALLS]]
        sent, secs = asyncio.run(_capacity(url, ctx, sims))
        out["capacity"] = {"halls": len(sims), "rows": sent, "seconds": round(secs, 1),
                           "records_per_s": round(sent / secs, 1), "concurrency": CONCURRENCY, "batch": BATCH,
                           "loadavg_during": [round(x, 2) for x in os.getloadavg()]}
        with psycopg.connect(dsn) as conn:
            size = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
                " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = ANY(%s)",
                (["tickets", "calls", "ratings", "followups", "staff_sessions", "batches"],)).fetchone()[0]
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                      for t in ("tickets", "calls", "ratings", "followups", "staff_sessions")}
        size = int(size)
        out["size"] = {"hall_days": len(sims), "bytes": size, "mb_per_hall_day": round(size / len(sims) / 2**20, 2),
                       "rows_held_per_hall_day": {k: v // len(sims) for k, v in counts.items()}}

        # 10x real time, all halls, on the next day (new streams)
        live_bodies = [_shift(b, 1) for b in bodies]
        sims = [Sim(h, tokens[h], live_bodies) for h in tokens]
        out["live_10x"] = asyncio.run(_live(url, ctx, sims, times))
        out["live_10x"]["needed_rows_per_s"] = round(HALLS * len(bodies) / OPEN_S * SPEED, 1)
        out["transport_retries"] = RETRIES["n"]
        out["live_10x"]["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        if server is not None:
            server.stop()
        cluster.stop()
        subprocess.run(["rm", "-rf", str(tmp)], check=False)
    out["loadavg_before"] = [round(x, 2) for x in load0]
    out["nproc"] = os.cpu_count()
    return out
