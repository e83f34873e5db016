"""A small city for the city dashboard's tests: the central PostgreSQL (migrated), halls registered with
``hallq.central.halls``, each hall's record shipped through the centre's own ingest (``ingest.apply``), a
real hall (Mosquitto + controller) whose broker BRIDGES its state topics to the city's Mosquitto, and
``hallq central web`` as a process of its own.

Until the hall's outbox ships by itself, :func:`ship` reads the hall's SQLite record and sends it as the
outbox would: the whole rows, in batches, through :func:`hallq.central.ingest.apply` (the same decoding and
upserts as the HTTPS endpoint)."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import msgspec
from hallq.central import halls as central_halls
from hallq.central import ingest
from hallq.shared.central import Batch, CallRow, FollowUpRow, RatingRow, StaffSessionRow, TicketRow, fields
from harness import HALLQ, ROOT, free_port, wait_port

PASSWORDS = {"boss": "boss-password-1", "viewer": "viewer-password-1", "clerk": "clerk-password-1"}

_TABLES = ((TicketRow, "tickets"), (CallRow, "calls"), (RatingRow, "ratings"), (FollowUpRow, "followups"),
           (StaffSessionRow, "staff_sessions"))


def hall_records(db: Path) -> list:
    """Every row of a hall's SQLite record as the outbox would ship it."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    out: list = []
    try:
        for kind, table in _TABLES:
            names = fields(kind)
            cur = conn.execute(f"SELECT * FROM {table}")
            cols = {c[0] for c in cur.description}
            for row in cur:
                d = {n: row[n] for n in names if n in cols and row[n] is not None}
                for flag in ("first", "rated"):
                    if flag in d:
                        d[flag] = bool(d[flag])
                out.append(msgspec.convert(d, kind, strict=False))
    finally:
        conn.close()
    return out


def _when(r) -> datetime:
    for name in ("closed_at", "finished_at", "ended_at", "at", "opened_at", "called_at", "issued_at", "started_at"):
        v = getattr(r, name, None)
        if isinstance(v, datetime):
            return v
    return datetime.now(UTC)


class Shipper:
    """One hall's outbox stream into the centre."""

    def __init__(self, hall: str):
        self.hall = hall
        self.stream = uuid.uuid4().hex
        self.next = 1

    def send(self, conn, records: list, size: int = 2000) -> int:
        sent = 0
        for i in range(0, len(records), size):
            chunk = records[i:i + size]
            # queued when they happened (the hall's clock; the tests' halls run on a scaled clock)
            times = [_when(r) for r in chunk]
            out = ingest.apply(conn, self.hall, Batch(hall=self.hall, stream=self.stream, first=self.next,
                                                      records=chunk, queued_first=min(times),
                                                      queued_last=max(times)))
            assert out.status == 200, out
            self.next += len(chunk)
            sent += out.applied
        return sent


def register(conn, hall: str, name: str, name_en: str, timezone: str = "Asia/Shanghai") -> None:
    central_halls.add(conn, hall, name)
    conn.execute("UPDATE halls SET name_en = %s, timezone = %s WHERE id = %s", (name_en, timezone, hall))


def bridge(hall_broker_conf: Path, hall: str, city_port: int) -> None:
    """Make a hall's Mosquitto bridge its retained state topics (never records or requests) to the city's."""
    topics = ["config", "queue", "stats", "board", "followups", "controller/status", "window/+/state",
              "device/+/status", "device/+/health"]
    lines = [f"connection city-{hall}", f"address 127.0.0.1:{city_port}", "cleansession true",
             f"remote_clientid bridge-{hall}", "try_private false", "restart_timeout 1 5"]
    lines += [f"topic hallq/{hall}/{t} out 1" for t in topics]
    with open(hall_broker_conf, "a") as f:
        f.write("\n".join(lines) + "\n")


class CityWeb:
    """``hallq central web`` as a process of its own."""

    def __init__(self, workdir: Path, dsn: str, broker_url: str, *, report_dsn: str | None = None,
                 env: dict[str, str] | None = None, rollup_every: float = 1.0):
        import os

        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.state = workdir / "city.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "city-web.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.args = [HALLQ, "central", "--db", dsn, "web", "--broker", broker_url, "--state", str(self.state),
                     "--listen", f"127.0.0.1:{self.port}", "--rollup-every", str(rollup_every),
                     "--name", "示范市政务服务", "--name-en", "Demo City Service Centres"]
        if report_dsn:
            self.args[self.args.index("web") + 1:self.args.index("web") + 1] = ["--report-db", report_dsn]
        self.proc: subprocess.Popen[bytes] | None = None

    def user(self, name: str, role: str, *extra: str) -> None:
        r = subprocess.run([HALLQ, "central", "web", "--state", str(self.state), "user", "add", name, "--role", role,
                            *extra], input=PASSWORDS[name] + "\n", text=True, capture_output=True, env=self.env,
                           timeout=60)
        assert r.returncode == 0, r.stderr

    def start(self) -> CityWeb:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        deadline = time.monotonic() + 40
        while True:
            try:
                wait_port(self.port, timeout=0.5)
                return self
            except TimeoutError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the city dashboard did not start:\n{self.log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def http(self, user: str | None = None) -> httpx.Client:
        c = httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)
        c.csrf = ""  # type: ignore[attr-defined]
        if user is not None:
            page = c.get("/login")
            token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = c.post("/login", data={"name": user, "password": PASSWORDS[user], "login_csrf": token})
            assert r.status_code == 303, r.text
            home = c.get(r.headers["location"], headers={"accept": "text/html"})
            m = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
            assert m, home.text[:500]
            c.csrf = m.group(1)  # type: ignore[attr-defined]
        return c


def wait_until(cond, timeout: float = 20.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


SCREENSHOTS = ROOT / "tests" / "central" / "out"
