"""The city dashboard on a city's worth of record: 300 halls × 90 days × 1,000 tickets a day, generated
straight into the central schema with ``generate_series`` (no halls, no HTTP: fast), rolled up day by day
with the city's own roll-up (:func:`hallq.central.web.figures.rollup`), then every page of the city
dashboard timed through ``hallq central web`` (HTTP, the server's own queries and templates).

Targets (issue 15): central dashboard queries p95 ≤ 500 ms on 90 days of data for 300 halls; PostgreSQL
size per hall-day. Also reported: the roll-up's time per city-day, rows per hall-day, and where a city
outgrows one primary (see central/README.md, "Sizing").

The generated day of a hall: 1,000 tickets over 08:30–17:30 in 5 categories, one call each (3 % no-show,
5 % transferred and called again at another window), 10 windows with one clerk each, 40 service items,
80 % rated (5 % dissatisfied or worse → a follow-up due 5 days later, closed after 3 days for days older
than a week). Waits and services are exponential (means 9 and 6 minutes).

    python -m bench city                        # 300 halls × 90 days (≈ 30-60 min on a loaded 2-core box)
    BENCH_CITY_DAYS=7 BENCH_CITY_HALLS=50 python -m bench city      # a quick look
    BENCH_CITY_KEEP=1 ...                        # keep the cluster (its folder is printed) to query it again
    BENCH_CITY_DIR=/tmp/city ...                 # the cluster lives there and is kept: generated when the folder
                                                 # is new, reused (migrated, pages timed again) when it exists
    BENCH_CITY_PAGES=0 ...                       # generate (and size) only, time no pages
    BENCH_CITY_REFRESH=0 ...                     # do not time the refresh of today (reusing a cluster)
    BENCH_CITY_ONLY="CSV,page 2" ...             # time only the pages whose name holds one of these
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import httpx

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "central"))
sys.path.insert(0, str(ROOT / "tests"))

HALLS = int(os.environ.get("BENCH_CITY_HALLS", "300"))
DAYS = int(os.environ.get("BENCH_CITY_DAYS", "90"))
PER_DAY = int(os.environ.get("BENCH_CITY_TICKETS", "1000"))
REPS = int(os.environ.get("BENCH_CITY_REPS", "20"))
#: The last this many days are rolled up by the city's roll-up (timed); each older day's roll-up rows are the
#: rows of the rolled-up day of the same weekday, moved to its date (the same rows per hall-day, so the pages'
#: queries read what 90 rolled-up days would hold). Rolling up all 90 city-days takes ~35 s each on a loaded
#: 2-core machine (≈ 50 min): BENCH_CITY_ROLLUP_DAYS=90 does it.
ROLLUP_DAYS = int(os.environ.get("BENCH_CITY_ROLLUP_DAYS", "7"))
LAST = date(2026, 11, 27)  # a Friday: "today" of the benchmark
#: A kept cluster's folder (generate into it when new, reuse it when it holds one) and whether to time the pages.
CLUSTER_DIR = os.environ.get("BENCH_CITY_DIR") or None
PAGES = os.environ.get("BENCH_CITY_PAGES", "1") != "0"
#: Whether to time the refresh of today (BENCH_CITY_REFRESH=0: not again when only the pages are timed again).
REFRESH = os.environ.get("BENCH_CITY_REFRESH", "1") != "0"
#: Time only the pages whose name holds one of these (comma-separated; e.g. "CSV,page 2": a re-time of two)
ONLY = [w for w in os.environ.get("BENCH_CITY_ONLY", "").split(",") if w]
SETTINGS = {"shared_buffers": "1GB", "max_wal_size": "2GB", "checkpoint_timeout": "30min",
            "maintenance_work_mem": "512MB", "work_mem": "64MB", "synchronous_commit": "off",
            "effective_cache_size": "8GB"}
TABLES = ("tickets", "calls", "ratings", "followups")

GEN_TICKETS = """
INSERT INTO tickets (hall, day, number, category, seq, issued_at, channel, status, queue, window_no, called_at,
                     first_called_at, finished_at, rated, src_stream, src_seq)
SELECT h.id, %(day)s, chr(65 + n %% 5) || lpad((n / 5 + 1)::text, 3, '0'), chr(65 + n %% 5), n / 5 + 1,
       t.issued, 'touch', CASE WHEN n %% 33 = 0 THEN 'noshow' ELSE 'done' END, chr(65 + n %% 5), 1 + n %% 10,
       t.issued + t.wait, t.issued + t.wait, t.issued + t.wait + t.service, n %% 5 <> 0, 'bench', n
FROM halls h CROSS JOIN generate_series(0, %(n)s - 1) n
CROSS JOIN LATERAL (SELECT (%(day)s::date + time '08:30' + (n * 32400.0 / %(n)s) * interval '1 second')
                            AT TIME ZONE h.timezone AS issued,
                           (-540 * ln(1 - random())) * interval '1 second' AS wait,
                           (-360 * ln(1 - random())) * interval '1 second' AS service) t
WHERE h.id LIKE 'b%%'
"""

GEN_CALLS = """
INSERT INTO calls (hall, day, id, number, category, queue, window_no, staff_id, staff_name, called_at, wait_s, first,
                   recalls, ended_at, outcome, item_code, item_name, src_stream, src_seq)
SELECT t.hall, t.day, t.src_seq * 2, t.number, t.category, t.queue, t.window_no, 'c' || t.window_no,
       '工作人员' || t.window_no, t.called_at, extract(epoch FROM t.called_at - t.issued_at), true, 0,
       t.finished_at, CASE WHEN t.status = 'noshow' THEN 'noshow' WHEN t.src_seq %% 20 = 7 THEN 'transferred'
       ELSE 'done' END, 'ITEM' || lpad((t.src_seq %% 40)::text, 2, '0'), '事项' || (t.src_seq %% 40),
       'bench', t.src_seq * 2
FROM tickets t WHERE t.day = %(day)s AND t.hall LIKE 'b%%'
UNION ALL
SELECT t.hall, t.day, t.src_seq * 2 + 1, t.number, t.category, t.queue, 1 + (t.window_no %% 10), 'c' || (1 + t.window_no %% 10),
       '工作人员' || (1 + t.window_no %% 10), t.finished_at + interval '1 minute', 60, false, 0,
       t.finished_at + interval '7 minutes', 'done', 'ITEM' || lpad((t.src_seq %% 40)::text, 2, '0'),
       '事项' || (t.src_seq %% 40), 'bench', t.src_seq * 2 + 1
FROM tickets t WHERE t.day = %(day)s AND t.hall LIKE 'b%%' AND t.src_seq %% 20 = 7
"""

GEN_RATINGS = """
INSERT INTO ratings (hall, day, id, ticket, window_no, level, at, received_at, client, staff_id, staff_name, call_id,
                     item_code, src_stream, src_seq)
SELECT c.hall, c.day, c.id, c.number, c.window_no,
       (ARRAY['very_satisfied','very_satisfied','very_satisfied','very_satisfied','very_satisfied','very_satisfied',
              'very_satisfied','very_satisfied','very_satisfied','very_satisfied','satisfied','satisfied',
              'satisfied','satisfied','satisfied','satisfied','basic','basic','dissatisfied',
              'very_dissatisfied'])[1 + (c.id * 7919) %% 20],
       c.ended_at, c.ended_at, 'pad-' || c.window_no, c.staff_id, c.staff_name, c.id, c.item_code, 'bench', c.id
FROM calls c WHERE c.day = %(day)s AND c.hall LIKE 'b%%' AND c.outcome = 'done' AND c.id %% 5 <> 0
"""

GEN_FOLLOWUPS = """
INSERT INTO followups (hall, day, id, rating_id, ticket, window_no, level, rated_at, opened_at, due, staff_id,
                       staff_name, item_code, closed_at, called_back_by, action, src_stream, src_seq)
SELECT r.hall, r.day, r.id, r.id, r.ticket, r.window_no, r.level, r.at, r.at, r.day + 5, r.staff_id, r.staff_name,
       r.item_code, CASE WHEN r.day < %(last)s::date - 7 THEN r.at + interval '3 days' END,
       CASE WHEN r.day < %(last)s::date - 7 THEN '回访员' END, CASE WHEN r.day < %(last)s::date - 7 THEN '已回访' END,
       'bench', r.id
FROM ratings r WHERE r.day = %(day)s AND r.hall LIKE 'b%%' AND r.level IN ('dissatisfied', 'very_dissatisfied')
"""


def _generate(conn, day: date) -> None:
    for sql in (GEN_TICKETS, GEN_CALLS, GEN_RATINGS, GEN_FOLLOWUPS):
        with conn.transaction():
            conn.execute(sql, {"day": day, "n": PER_DAY, "last": LAST})


def _generate_all(conn, first: date, res: dict) -> None:
    from hallq.central import db
    from hallq.central.web import figures

    conn.execute("INSERT INTO halls (id, name, name_en, token_sha256) SELECT 'b' || lpad(i::text, 3, '0'),"
                 " '第' || i || '政务服务中心', 'Service Centre ' || i, sha256(('bench' || i)::bytea)"
                 " FROM generate_series(1, %s) i", (HALLS,))
    d = first
    days = []
    while d <= LAST:
        days.append(d)
        d += timedelta(days=1)
    db.ensure_months(conn, days)
    print(f"{HALLS} halls × {DAYS} days × {PER_DAY} tickets, {first} … {LAST}")
    gen_s, roll_s = [], []
    t_all = time.perf_counter()
    for i, d in enumerate(days):
        t0 = time.perf_counter()
        _generate(conn, d)
        t1 = time.perf_counter()
        if i >= len(days) - ROLLUP_DAYS:
            figures.rollup(conn, d)
            roll_s.append(time.perf_counter() - t1)
        t2 = time.perf_counter()
        gen_s.append(t1 - t0)
        if i % 5 == 0 or i == len(days) - 1:
            print(f"  day {i + 1}/{len(days)} {d}: generated in {t1 - t0:.1f} s, rolled up in {t2 - t1:.1f} s"
                  f"  (load {Path('/proc/loadavg').read_text().split()[0]})", flush=True)
    rolled = days[len(days) - ROLLUP_DAYS:]
    for d in days[:len(days) - ROLLUP_DAYS]:
        src = next(r for r in rolled if r.weekday() == d.weekday())
        conn.execute(f"INSERT INTO city_figures SELECT %s, {', '.join(['kind', 'hall', 'key', 'name', *figures.COUNT_COLS])}"
                     f" FROM city_figures WHERE day = %s AND hall <> '{figures.CITY}' ORDER BY kind, hall, key", (d, src))
        conn.execute("INSERT INTO city_rollups (day, hall, rolled_at) SELECT %s, id, now() FROM halls", (d,))
    figures.respan_all(conn)  # the city's lines and the month/week spans of the copied days
    res["rolled_up_days"] = len(rolled)
    res["copied_rollup_days"] = len(days) - len(rolled)
    conn.execute("INSERT INTO city_rollup_mark (one, received) VALUES (true, now())")
    conn.execute("VACUUM ANALYZE")
    print(f"generated and rolled up in {time.perf_counter() - t_all:.0f} s; roll-up of one city-day "
          f"({HALLS} halls, the last {len(rolled)} days): mean {sum(roll_s) / len(roll_s):.2f} s, max {max(roll_s):.2f} s;"
          f" the {len(days) - len(rolled)} older days' roll-up rows copied from the same weekday")
    res["rollup_city_day_s_mean"] = round(sum(roll_s) / len(roll_s), 2)
    res["rollup_city_day_s_max"] = round(max(roll_s), 2)
    res["generate_city_day_s_mean"] = round(sum(gen_s) / len(gen_s), 2)


def _refresh(conn, res: dict) -> None:
    """What keeping today fresh costs: rolling up today again for one hall (a hall sent something since the
    last refresh), and for every hall, 50 at a time as :func:`figures.catch_up` does when all have."""
    from hallq.central.web import figures

    halls = [h for (h,) in conn.execute("SELECT id FROM halls ORDER BY id")]
    one = []
    for h in halls[:5]:
        t0 = time.perf_counter()
        figures.rollup(conn, LAST, [h])
        one.append((time.perf_counter() - t0) * 1000)
    t0 = time.perf_counter()
    for i in range(0, len(halls), figures.FEW_HALLS):
        figures.rollup(conn, LAST, halls[i:i + figures.FEW_HALLS])
    every = time.perf_counter() - t0
    res["refresh_one_hall_ms"] = [round(x) for x in one]
    res["refresh_all_halls_s"] = round(every, 1)
    print(f"refresh of today (the day rolled up again, its city lines and spans too): one hall "
          f"{', '.join(f'{x:.0f}' for x in one)} ms; all {len(halls)} halls, {figures.FEW_HALLS} at a time: "
          f"{every:.1f} s  (load {Path('/proc/loadavg').read_text().split()[0]})")


def _sizes(conn, tables=(*TABLES, "city_figures", "city_spans")) -> dict[str, tuple[int, int]]:
    """(bytes with indexes, rows) of each record table, over all its partitions."""
    out = {}
    for t in tables:
        b = conn.execute("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                         " WHERE c.relname = %s OR c.relname LIKE %s", (t, f"{t}_p%")).fetchone()[0]
        n = conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
        out[t] = (int(b), int(n))
    return out


def _report_sizes(conn, res: dict) -> None:
    sizes = _sizes(conn)
    hall_days = HALLS * DAYS
    total_b = sum(b for t, (b, _) in sizes.items() if t in TABLES)
    print("\nPostgreSQL size (tables + indexes, all partitions):")
    for t, (b, n) in sizes.items():
        print(f"  {t:<13} {b / 2**20:9.1f} MiB  {n:>11,} rows  {b / hall_days / 1024:7.1f} KiB/hall-day"
              f"  {n / hall_days:7.1f} rows/hall-day")
    print(f"  record total  {total_b / 2**30:9.2f} GiB  = {total_b / hall_days / 1024:.0f} KiB per hall-day "
          f"(+ roll-up {sizes['city_figures'][0] / hall_days / 1024:.1f} KiB)")
    res["size"] = {t: {"bytes": b, "rows": n, "kib_per_hall_day": round(b / hall_days / 1024, 1),
                       "rows_per_hall_day": round(n / hall_days, 1)} for t, (b, n) in sizes.items()}
    res["record_kib_per_hall_day"] = round(total_b / hall_days / 1024, 1)
    batches = conn.execute("SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class"
                           " WHERE relname LIKE 'batches%%'").fetchone()[0]
    print(f"  (the ingest log `batches` is empty here: the rows were generated, not shipped; bench_central "
          f"measures it: {batches} bytes)")


def _login(base: str, password: str) -> httpx.Client:
    c = httpx.Client(base_url=base, timeout=120)
    page = c.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", data={"name": "bench", "password": password, "login_csrf": token})
    assert r.status_code == 303, r.text[:300]
    return c


def run() -> dict:
    from pg import PgCluster

    cluster = PgCluster(settings=SETTINGS)
    try:
        return _run(cluster)
    except BaseException:
        if cluster.dir is not None:  # never leave a server running behind a failed run
            cluster.stop(keep=CLUSTER_DIR is not None)
        raise


def _run(cluster) -> dict:
    import psycopg
    from hallq.central import db
    from hallq.central.web import figures
    from harness import HALLQ, free_port, wait_port
    res: dict = {"halls": HALLS, "days": DAYS, "tickets_per_hall_day": PER_DAY,
                 "load_start": Path("/proc/loadavg").read_text().strip()}
    print(f"load average at start: {res['load_start']}")
    reuse = CLUSTER_DIR is not None and (Path(CLUSTER_DIR) / "data" / "PG_VERSION").exists()
    if reuse:
        cluster.dir = Path(CLUSTER_DIR)
        cluster.start()
        dsn = cluster.dsn("city")
    else:
        if CLUSTER_DIR is not None:  # a named, kept folder (the postgres user must be able to enter it)
            Path(CLUSTER_DIR).mkdir(parents=True, exist_ok=False)
            if os.geteuid() == 0:
                import pwd
                pw = pwd.getpwnam("postgres")
                os.chown(CLUSTER_DIR, pw.pw_uid, pw.pw_gid)
            cluster.dir = Path(CLUSTER_DIR)
            cluster._run("initdb", "-D", str(cluster.data), "-U", "hallq", "--auth=trust", "-E", "UTF8",
                         "--no-locale", "--no-sync")
        cluster.start()
        dsn = cluster.create_database("city")
    conn = psycopg.connect(dsn, autocommit=True)
    t_mig = time.perf_counter()
    before, after = db.migrate(conn, today=LAST)
    if reuse:
        res["migrated"] = [before, after]
        res["migrate_s"] = round(time.perf_counter() - t_mig, 1)
        print(f"reusing {CLUSTER_DIR}: schema {before} -> {after} in {res['migrate_s']} s")
    first = LAST - timedelta(days=DAYS - 1)
    if not reuse:
        _generate_all(conn, first, res)
    else:
        if before < after and before < 5:
            # a cluster generated before migration 0005: its copied roll-up rows were written in no order; the
            # roll-up writes a day's rows by slice (ORDER BY kind), so lay them out as the roll-up would
            t0 = time.perf_counter()
            conn.execute("CLUSTER city_figures USING city_figures_by_kind")
            print(f"city_figures laid out by slice in {time.perf_counter() - t0:.0f} s")
        conn.execute("VACUUM ANALYZE city_figures")
        conn.execute("VACUUM ANALYZE city_spans")
        conn.execute("VACUUM ANALYZE followups")
    if REFRESH:
        _refresh(conn, res)  # after the generation too
    hall_days = HALLS * DAYS
    if reuse:  # the record's size was measured when it was generated; the roll-up's only
        for t, (b, n) in _sizes(conn, ("city_figures", "city_spans")).items():
            print(f"  {t:<13} {b / 2**20:9.1f} MiB  {n:>11,} rows  {b / hall_days / 1024:7.1f} KiB/hall-day")
            res.setdefault("size", {})[t] = {"bytes": b, "rows": n, "kib_per_hall_day": round(b / hall_days / 1024, 1)}
    else:
        _report_sizes(conn, res)
    if not PAGES:
        conn.close()
        _finish(cluster, res)
        return res
    # the pages, through the city dashboard's own server
    state = Path(cluster.dir) / "city.db"
    password = "bench-password-1"
    env = {**os.environ, "HALLQ_CLOCK": f"{LAST.isoformat()}T11:00:00+08:00,1,{time.time()}"}
    if not state.exists():  # (a reused cluster has its account already)
        r = subprocess.run([HALLQ, "central", "web", "--state", str(state), "user", "add", "bench", "--role",
                            "viewer"], input=password + "\n", text=True, capture_output=True, env=env)
        assert r.returncode == 0, r.stderr
    port = free_port()
    mqtt_port = free_port()  # nothing listens: the live mirror stays empty (its cost is not the database's)
    web = subprocess.Popen([HALLQ, "central", "--db", dsn, "web", "--state", str(state), "--listen",
                            f"127.0.0.1:{port}", "--rollup-every", "0", "--broker", f"mqtt://127.0.0.1:{mqtt_port}"],
                           env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 60)
        c = _login(f"http://127.0.0.1:{port}", password)
        pages = [("halls (live)", "/halls")]
        pages.append(("hall page b001 (today by category + open follow-ups)", "/halls/b001"))
        pages.append(("follow-ups open, all halls", "/followups"))
        pages.append(("follow-ups overdue, all halls", "/followups?status=overdue"))
        pages.append(("follow-ups closed, all halls", "/followups?status=closed"))
        for span in (1, 7, 30, 90):
            start = LAST - timedelta(days=span - 1)
            for kind in figures.KINDS:
                pages.append((f"report by {kind}, {span} d", f"/reports?by={kind}&from={start}&to={LAST}"))
        pages.append(("report by clerk, 90 d, CSV", f"/reports.csv?by=clerk&from={first}&to={LAST}"))
        # the heaviest download: every clerk of the city over a range that starts and ends inside months and
        # blocks (17 pieces: ~51,000 rows summed into 3,000 lines)
        pages.append(("report by clerk, 2026-09-03 … 2026-11-13, CSV", "/reports.csv?by=clerk&from=2026-09-03"
                      "&to=2026-11-13"))
        last_page = -(-HALLS // 25)  # (the report by clerk shows 25 halls' clerks a page: the last page too)
        pages.append((f"report by clerk, 30 d, page {last_page}", f"/reports?by=clerk&from={LAST - timedelta(days=29)}"
                      f"&to={LAST}&page={last_page}"))
        for kind in ("clerk", "item", "category"):  # a range that starts and ends inside months and blocks
            pages.append((f"report by {kind}, 2026-09-03 … 2026-11-13", f"/reports?by={kind}&from=2026-09-03"
                          f"&to=2026-11-13"))
        m = re.search(r'href="([^"]+)" id="next-page"', c.get("/followups").text)
        if m:
            pages.append(("follow-ups open, all halls, page 2", m.group(1).replace("&amp;", "&")))
        pages.append(("report by category, 30 d, hall b007", f"/reports?by=category&from={LAST - timedelta(days=29)}"
                      f"&to={LAST}&hall=b007"))
        if ONLY:
            pages = [(name, path) for name, path in pages if any(w in name for w in ONLY)]
        print(f"\npages (HTTP through `hallq central web`, {REPS} times each after one warm-up), ms:")
        print(f"  {'page':<55} {'p50':>7} {'p95':>7} {'max':>7}  load (1 min)")
        all_ms = []
        worst = ("", 0.0)
        for name, path in pages:
            r = c.get(path)
            assert r.status_code == 200, (path, r.status_code, r.text[:300])
            ms = []
            for _ in range(REPS):
                t0 = time.perf_counter()
                r = c.get(path)
                ms.append((time.perf_counter() - t0) * 1000)
                assert r.status_code == 200
            all_ms += ms
            p95 = percentile(ms, 95)
            worst = max(worst, (name, p95), key=lambda x: x[1])
            load = Path("/proc/loadavg").read_text().split()[0]
            print(f"  {name:<55} {percentile(ms, 50):7.0f} {p95:7.0f} {max(ms):7.0f}  {load}", flush=True)
            res.setdefault("pages_ms", {})[name] = {"p50": round(percentile(ms, 50)), "p95": round(p95),
                                                    "max": round(max(ms)), "load": float(load)}
        p95_all = percentile(all_ms, 95)
        res["all_pages_p95_ms"] = round(p95_all)
        res["target_p95_ms"] = 500
        res["met"] = p95_all <= 500
        res["worst_page"] = {"name": worst[0], "p95": round(worst[1])}
        res["every_page_met"] = worst[1] <= 500
        print(f"\nall pages: p95 {p95_all:.0f} ms (target ≤ 500: {'met' if p95_all <= 500 else 'NOT met'}); "
              f"worst page p95 {worst[1]:.0f} ms ({worst[0]})")
    finally:
        web.terminate()
        web.wait(10)
        conn.close()
        _finish(cluster, res)
    return res


def _finish(cluster, res: dict) -> None:
    import atexit

    res["load_end"] = Path("/proc/loadavg").read_text().strip()
    print(f"load average at end: {res['load_end']}")
    if CLUSTER_DIR is not None:
        atexit.unregister(cluster.stop)
        cluster.stop(keep=True)
        print(f"cluster stopped and kept in {CLUSTER_DIR} (BENCH_CITY_DIR={CLUSTER_DIR} times it again; rm -rf it when done)")
    elif os.environ.get("BENCH_CITY_KEEP"):
        atexit.unregister(cluster.stop)
        print(f"cluster kept running in {cluster.dir} (port {cluster.port})")
    else:
        cluster.stop()


if __name__ == "__main__":
    run()
