"""Issue throughput: answered ``take``s per second with durable commits (issue 3, benchmark 2).

A Mosquitto of its own and the real controller as a subprocess (WAL, ``synchronous=FULL``: every answer
is about a committed ticket). Several kiosk clients, each in its own process (plain paho), keep a window
of requests in flight and count their answers; the rate is answered takes over the time from the first
request to the last answer. The numbers issued are then checked: all distinct, none missing.
Target: >= 2,000/s.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sqlite3
import time

from bench.bench_controller_latency import HALL, Hall, client, close

CLIENTS = 6
PER_CLIENT = 3000
IN_FLIGHT = 64
CATEGORIES = 40  # 999 numbers per category per day: 40 categories hold the run


def kiosk(port: int, n: int, index: int, start: mp.Event, out: mp.Queue) -> None:
    import threading

    name = f"kiosk-{index}"
    c = client(port, name)
    slots = threading.Semaphore(IN_FLIGHT)
    done = threading.Event()
    numbers: list[str] = []
    errors: list[str] = []

    def on_message(cl, u, m) -> None:
        r = json.loads(m.payload)
        if r.get("ok"):
            numbers.append(r["ticket"]["number"])
        else:
            errors.append(r["error"]["code"])
        slots.release()
        if len(numbers) + len(errors) == n:
            done.set()

    c.on_message = on_message
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.subscribe(f"hallq/{HALL}/reply/{name}", qos=1)
    subscribed.wait(5)
    codes = [chr(65 + i) if i < 26 else chr(65 + i // 26 - 1) + chr(65 + i % 26) for i in range(CATEGORIES)]
    start.wait()
    t0 = time.perf_counter()
    for i in range(n):
        slots.acquire()
        c.publish(f"hallq/{HALL}/req/{name}/take",
                  json.dumps({"req": f"{index}-{i}", "category": codes[(i + index) % CATEGORIES]}), qos=1)
    done.wait(120)
    t1 = time.perf_counter()
    close(c)
    out.put((t0, t1, numbers, errors))


def run() -> dict:
    hall = Hall(categories=CATEGORIES, windows=4)
    try:
        ctx = mp.get_context("fork")
        start, out = ctx.Event(), ctx.Queue()
        procs = [ctx.Process(target=kiosk, args=(hall.broker.port, PER_CLIENT, i, start, out))
                 for i in range(CLIENTS)]
        for p in procs:
            p.start()
        time.sleep(1.0)
        start.set()
        results = [out.get(timeout=180) for _ in procs]
        for p in procs:
            p.join(10)
        t0 = min(r[0] for r in results)
        t1 = max(r[1] for r in results)
        numbers = [n for r in results for n in r[2]]
        errors = [e for r in results for e in r[3]]
        done = hall.stop_controller()
        with sqlite3.connect(hall.db) as db:
            stored = db.execute("SELECT count(*) FROM tickets").fetchone()[0]
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
        rate = len(numbers) / (t1 - t0)
        return {
            "clients": CLIENTS,
            "in_flight_per_client": IN_FLIGHT,
            "answered": len(numbers),
            "refused": len(errors),
            "seconds": round(t1 - t0, 3),
            "takes_per_s": round(rate),
            "distinct_numbers": len(set(numbers)) == len(numbers),
            "stored_tickets": stored,
            "journal": f"{mode}, synchronous=FULL",
            "commits": done.get("commits"),  # group commit: requests that arrive together share one
            "requests_handled": done.get("requests_handled"),
            "target": ">= 2000 takes/s",
            "met": rate >= 2000 and not errors and len(set(numbers)) == len(numbers) == stored,
        }
    finally:
        hall.stop()
