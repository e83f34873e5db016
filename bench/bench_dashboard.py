"""Dashboard benchmarks, against Mosquitto, the real controller and ``hallq dashboard`` as processes.

Targets (issue 12): a take → the change visible in the browser (Debian's chromium) p95 ≤ 300 ms; 100 open
dashboards (SSE clients) on one server: update p95 ≤ 500 ms, server RSS ≤ 150 MB, CPU per event measured;
the day report page of a hall with 1,000 tickets a day over 30 days ≤ 300 ms.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import tempfile
import threading
import time
from datetime import date
from pathlib import Path

import httpx

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))

TAKES_BROWSER = 60
CLIENTS = 100
TAKES_SSE = 40
REPORT_REQUESTS = 20
TOTAL_RE = re.compile(r'id="waiting-total">(\d+)<')


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cookie(web, user: str = "viewer") -> str:
    c = web.http(user)
    return c.cookies["hallq_session"]


def browser_latency(web) -> dict:
    from browser import Browser

    b = Browser()
    try:
        b.login(web.url, "viewer", "viewer-password-1")
        b.wait(lambda: b.finds("#waiting-total"), what="the dashboard")
        time.sleep(1.0)
        b.driver.execute_script("""
          window.__seen = {};
          new MutationObserver(function () {
            var el = document.getElementById('waiting-total');
            if (el && !(el.textContent in window.__seen)) window.__seen[el.textContent] = Date.now();
          }).observe(document.getElementById('now'), {childList: true, subtree: true, characterData: true});
        """)
        lat = []
        for i in range(TAKES_BROWSER):
            t0 = time.time()
            web.take("AB"[i % 2])
            want = str(i + 1)
            b.wait(lambda w=want: b.driver.execute_script(f"return window.__seen['{w}'] || null"), timeout=10,
                   what="the take on the page")
            lat.append((b.driver.execute_script(f"return window.__seen['{want}']") / 1000.0 - t0) * 1000)
            time.sleep(0.15)
        return {"takes": len(lat), "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
                "max_ms": round(max(lat), 1), "target_p95_ms": 300}
    finally:
        b.close()


def sse_fanout(web) -> dict:
    cookie = _cookie(web)
    seen: dict[int, list[float]] = {}
    lock = threading.Lock()
    ready = threading.Event()
    connected = [0]

    async def client(i: int, http: httpx.AsyncClient, done: asyncio.Event) -> None:
        async with http.stream("GET", "/events/now", headers={"accept": "text/event-stream"}) as r:
            event = ""
            mine: set[int] = set()  # the totals this client has seen (a later re-render repeats them)
            with lock:
                connected[0] += 1
                if connected[0] == CLIENTS:
                    ready.set()
            async for line in r.aiter_lines():
                if done.is_set():
                    return
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:") and event == "now":
                    m = TOTAL_RE.search(line)
                    if m and int(m.group(1)) not in mine:
                        t = time.time()
                        mine.add(int(m.group(1)))
                        with lock:
                            seen.setdefault(int(m.group(1)), []).append(t)

    async def main(started: dict) -> None:
        limits = httpx.Limits(max_connections=CLIENTS + 5, max_keepalive_connections=CLIENTS + 5)
        async with httpx.AsyncClient(base_url=web.url, cookies={"hallq_session": cookie}, timeout=None,
                                     limits=limits) as http:
            done = asyncio.Event()
            tasks = [asyncio.create_task(client(i, http, done)) for i in range(CLIENTS)]
            started["done"] = done
            started["loop"] = asyncio.get_running_loop()
            await done.wait()
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    started: dict = {}
    th = threading.Thread(target=lambda: asyncio.run(main(started)), daemon=True)
    th.start()
    if not ready.wait(60):
        raise RuntimeError(f"only {connected[0]} SSE clients connected")
    time.sleep(2.0)
    pid = web.dash.proc.pid
    rss_idle = _rss_mb(pid)
    cpu0 = _cpu_s(pid)
    sent: dict[int, float] = {}
    start_total = max(seen) if seen else 0
    for i in range(TAKES_SSE):
        t0 = time.time()
        web.take("AB"[i % 2])
        sent[start_total + i + 1] = t0
        time.sleep(0.25)
    time.sleep(2.0)
    cpu1 = _cpu_s(pid)
    rss = _rss_mb(pid)
    started["loop"].call_soon_threadsafe(started["done"].set)
    th.join(10)
    lat = []
    missing = 0
    for total, t0 in sent.items():
        got = seen.get(total, [])
        missing += CLIENTS - len(got)
        lat += [(t - t0) * 1000 for t in got]
    return {"clients": CLIENTS, "events": TAKES_SSE, "updates": len(lat), "missed": missing,
            "p50_ms": round(percentile(lat, 50), 1), "p95_ms": round(percentile(lat, 95), 1),
            "max_ms": round(max(lat), 1), "target_p95_ms": 500,
            "rss_mb": round(rss, 1), "rss_idle_mb": round(rss_idle, 1), "target_rss_mb": 150,
            "cpu_ms_per_event": round((cpu1 - cpu0) * 1000 / TAKES_SSE, 1)}


def day_report(tmp: Path) -> dict:
    from dashkit import WebHall
    from hallq.controller import config
    from seed import seed

    toml = (ROOT / "controller" / "examples" / "hall.toml").read_text(encoding="utf-8")
    # the example hall's quotas would cap a day below 1,000 tickets
    toml = re.sub(r"daily_quota = \d+", "daily_quota = 999", toml).replace('id = "demo"', 'id = "web"', 1)
    cfg = config.parse(toml)
    t0 = time.monotonic()
    counts: list[int] = []
    web = WebHall(tmp, toml, history=lambda db, c: counts.append(seed(db, c, date(2026, 10, 24), 30, 1000)))
    seeded_s = time.monotonic() - t0
    try:
        c = web.http("viewer")
        day = "2026-11-20"
        lat = []
        for _ in range(REPORT_REQUESTS):
            t = time.perf_counter()
            r = c.get(f"/reports?from={day}", headers={"accept": "text/html"})
            lat.append((time.perf_counter() - t) * 1000)
            assert r.status_code == 200
        today = []
        for _ in range(5):
            t = time.perf_counter()
            assert c.get("/today", headers={"accept": "text/html"}).status_code == 200
            today.append((time.perf_counter() - t) * 1000)
        staffing = []
        for _ in range(5):
            t = time.perf_counter()
            assert c.get("/staffing", headers={"accept": "text/html"}).status_code == 200
            staffing.append((time.perf_counter() - t) * 1000)
        csv_t = time.perf_counter()
        assert c.get(f"/reports.csv?date={day}").status_code == 200
        csv_ms = (time.perf_counter() - csv_t) * 1000
        return {"tickets": counts[0], "days": 30, "windows": len(cfg.windows), "seed_s": round(seeded_s, 1),
                "report_day_p50_ms": round(percentile(lat, 50), 1),
                "report_day_p95_ms": round(percentile(lat, 95), 1), "target_p95_ms": 300,
                "today_p95_ms": round(percentile(today, 95), 1),
                "staffing_p95_ms": round(percentile(staffing, 95), 1), "csv_ms": round(csv_ms, 1)}
    finally:
        web.close()


def run() -> dict:
    from dashkit import WebHall

    out: dict = {}
    with tempfile.TemporaryDirectory(prefix="hallq-bench-dash-") as tmp:
        web = WebHall(Path(tmp) / "live")
        try:
            out["take_to_browser"] = browser_latency(web)
        finally:
            web.close()
        web = WebHall(Path(tmp) / "fanout")
        try:
            out["sse_100_clients"] = sse_fanout(web)
        finally:
            web.close()
        out["day_report_30_days"] = day_report(Path(tmp) / "report")
    return out
