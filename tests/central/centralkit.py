"""Helpers of the central tests: the real ingest server as a process, a fault-injecting HTTPS proxy in front
of it, and the row-for-row comparison of a hall's SQLite record with the central tables."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
from hallq.controller import schema
from hallq.shared import central as contract
from pg import free_port

ROOT = Path(__file__).resolve().parents[2]
HALLQ = str(ROOT / ".venv/bin/hallq")


class CentralServer:
    """``hallq central serve`` in a process of its own (HTTPS on a free loopback port)."""

    def __init__(self, workdir: Path, dsn: str, tls_dir: Path, extra: list[str] | None = None):
        self.extra = extra or []
        self.workdir = Path(workdir)
        self.dsn = dsn
        self.tls_dir = tls_dir
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.log = self.workdir / "central.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30) -> CentralServer:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [HALLQ, "central", "--db", self.dsn, "serve", "--listen", f"127.0.0.1:{self.port}",
                 "--tls-dir", str(self.tls_dir), *self.extra], stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.url}/v1/health", verify=ssl.create_default_context(cafile=str(self.tls_dir / "ca.crt")),
                              timeout=2)
                if r.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"hallq central serve did not come up:\n{self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class FaultProxy:
    """An HTTPS proxy in front of the centre that can answer 500 (before or after the centre applied the
    batch), hang past the hall's time-out (before or after), or pass the batch on (``mode``)."""

    MODES = ("pass", "500_before", "500_after", "hang_before", "hang_after")

    def __init__(self, upstream: str, tls_dir: Path, hang_s: float = 3.0):
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response
        from starlette.routing import Route

        self.upstream = upstream
        self.mode = "pass"
        self.hang_s = hang_s
        self.seen: dict[str, int] = {}
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        ca = ssl.create_default_context(cafile=str(tls_dir / "ca.crt"))

        async def forward(request: Request) -> Response:
            mode = self.mode
            self.seen[mode] = self.seen.get(mode, 0) + 1
            body = await request.body()
            if mode == "500_before":
                return Response(b"injected", status_code=500)
            if mode == "hang_before":
                await asyncio.sleep(self.hang_s)
                return Response(b"injected", status_code=500)
            try:
                async with httpx.AsyncClient(verify=ca, timeout=30) as client:
                    r = await client.post(f"{self.upstream}{request.url.path}", content=body,
                                          headers={"Authorization": request.headers.get("authorization", ""),
                                                   "Content-Type": "application/json"})
            except httpx.HTTPError:
                return Response(b"upstream down", status_code=502)
            if mode == "500_after":
                return Response(b"injected after the centre applied it", status_code=500)
            if mode == "hang_after":
                await asyncio.sleep(self.hang_s)
            return Response(r.content, status_code=r.status_code, media_type="application/json")

        app = Starlette(routes=[Route("/{path:path}", forward, methods=["POST", "GET"])])
        self.server = uvicorn.Server(uvicorn.Config(
            app, host="127.0.0.1", port=self.port, ssl_certfile=str(tls_dir / "server.crt"),
            ssl_keyfile=str(tls_dir / "server.key"), log_level="error", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> FaultProxy:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started, "the fault proxy did not start"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


# -- comparing the two records ------------------------------------------------------------------------------------
KINDS = {"tickets": contract.TicketRow, "calls": contract.CallRow, "ratings": contract.RatingRow,
         "followups": contract.FollowUpRow, "staff_sessions": contract.StaffSessionRow,
         "haocp_outbox": contract.HaocpRow, "device_events": contract.DeviceEventRow,
         "daily_figures": contract.DailyFiguresRow}


def _key(table: str, r: Any) -> tuple:
    if table == "haocp_outbox":
        return (r.rating_id,)
    if table == "daily_figures":
        return (str(r.day),)
    return (str(r.day), r.number) if table == "tickets" else (r.id,)


def hall_rows(db: Path | str) -> dict[str, list[Any]]:
    """The hall's record as contract rows (through the same JSON the outbox triggers make)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    out = {}
    try:
        for table, kind, cols, bools in schema.CENTRAL:
            t = KINDS[table]
            rows = [msgspec.json.decode(b, type=t) for (b,) in conn.execute(
                f"SELECT {schema.central_row_json(kind, cols, bools, 'x')} FROM {table} x")]
            out[table] = sorted(rows, key=lambda r, table=table: _key(table, r))
    finally:
        conn.close()
    return out


def central_rows(dsn: str, hall: str) -> dict[str, list[Any]]:
    """The centre's copy of one hall's record as contract rows."""
    out = {}
    with psycopg.connect(dsn) as conn:
        conn.execute("SET TIME ZONE 'Asia/Shanghai'")
        for table, t in KINDS.items():
            if table == "haocp_outbox":
                cur = conn.execute("SELECT rating_id, key, record, created_at FROM haocp_uploads WHERE hall = %s",
                                   (hall,))
                rows = [t(rating_id=a, key=b, record=c, created_at=d) for a, b, c, d in cur.fetchall()]
                out[table] = sorted(rows, key=lambda r: r.rating_id)
                continue
            cur = conn.execute(f"SELECT * FROM {table} WHERE hall = %s", (hall,))
            names = [d.name for d in cur.description]
            rows = []
            for r in cur.fetchall():
                d = dict(zip(names, r, strict=True))
                if "window_no" in d:
                    d["window"] = d.pop("window_no")
                for extra in ("hall", "src_stream", "src_seq"):
                    d.pop(extra)
                if table == "staff_sessions":
                    d.pop("day")
                d["kind"] = msgspec.inspect.type_info(t).tag  # type: ignore[attr-defined]
                rows.append(msgspec.convert(d, t))
            out[table] = sorted(rows, key=lambda r, table=table: _key(table, r))
    return out


def outbox_left(db: Path | str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT count(*) FROM central_outbox").fetchone()[0]
    finally:
        conn.close()


def wait_until(cond, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def set_up_centre(tmp: Path, dsn: str, hall: str = "test") -> tuple[Path, Path]:
    """Migrate, make the TLS folder and the hall's credentials; returns (tls folder, credentials file)."""
    from hallq.central import db, halls, tls

    with db.connect(dsn, autocommit=True) as conn:
        db.migrate(conn)
        creds = halls.add(conn, hall, "测试政务服务中心")
    tls_dir = tmp / "central-tls"
    tls.make(tls_dir, ["127.0.0.1", "localhost"])
    cred_file = creds.write(tmp / "hall-secrets" / "central.toml")
    os.chmod(cred_file, 0o600)
    return tls_dir, cred_file


# -- a simulated hall day through the real core and storage -------------------------------------------------------
SIM_HALL = """
[hall]
id = "{hall}"
name = "测试政务服务中心"
hours = [["00:00", "24:00"]]

[[categories]]
code = "A"
name = "社保医保"

[[categories]]
code = "B"
name = "不动产登记"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A", "B"]

[[windows]]
no = 2
name = "2号窗口"
categories = ["*"]

[[windows]]
no = 3
name = "3号窗口"
categories = ["B"]
"""

LEVELS = ("very_satisfied",) * 6 + ("satisfied",) * 3 + ("basic", "dissatisfied")


def hall_day(h: Any, day: Any, tickets: int, rng: Any, after_each: Any = None) -> None:
    """``tickets`` citizens on ``day`` (a date) through a StoredHall (tests/controller/controller_kit.py): each
    takes a number, is called at one of three windows, served with a case, and most rate; clerks sign in and out.
    ``after_each(i)`` runs after each citizen (the test's own checks)."""
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from hallq.shared.schemas import Case

    h.at(datetime(day.year, day.month, day.day, 8, 55, tzinfo=ZoneInfo("Asia/Shanghai")))
    h.tick()
    for w in (1, 2, 3):
        assert h.op(w, "open", client=f"caller-{w}")["ok"]
    step = timedelta(seconds=9 * 3600 / max(tickets, 1))
    for i in range(tickets):
        h.later(step.total_seconds() / 60)
        cat = "A" if rng.random() < 0.5 else "B"
        assert h.take(cat)["ok"]
        w = 3 if cat == "B" and rng.random() < 0.4 else rng.choice((1, 2))
        called = h.op(w, "next", client=f"caller-{w}")
        if called["ok"]:
            number = called["ticket"]["number"]
            h.later(0.5)
            if rng.random() < 0.05:
                h.op(w, "noshow", client=f"caller-{w}")
            else:
                h.op(w, "done", client=f"caller-{w}", case=Case(id=f"{day:%Y%m%d}{i:05d}", item_code="11100000000000000001"))
                if rng.random() < 0.8:
                    h.rate(w, number, level=rng.choice(LEVELS), client=f"pad-{w}")
        if after_each is not None:
            after_each(i)
    for w in (1, 2, 3):
        while h.op(w, "next", client=f"caller-{w}")["ok"]:
            h.op(w, "done", client=f"caller-{w}", case=Case(id=f"{day:%Y%m%d}L{w}", item_code="11100000000000000001"))
        h.op(w, "close", client=f"caller-{w}")
