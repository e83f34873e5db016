"""Growth past one machine: a hot standby by streaming replication (``pg_basebackup -R``), and the city
dashboard's pages served from it while the roll-up writes to the primary.

Real parts: two PostgreSQL 15 clusters (the primary from tests/central/pg.py; the standby cloned from it with
``pg_basebackup``, streaming its WAL), the records shipped through the centre's ingest into the primary,
``hallq central web --report-db <standby>``."""

from __future__ import annotations

import csv
import io
import os
import pwd
import sqlite3
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from city_kit import CityWeb, Shipper, hall_records, register, wait_until
from dashkit import HALL_TOML
from harness import Mosquitto
from pg import SUPERUSER, PgCluster
from seed import seed

DAYS = [date(2026, 11, 16), date(2026, 11, 17), date(2026, 11, 18)]


class Standby(PgCluster):
    """A hot standby of ``primary``: ``pg_basebackup`` of it (with -R: standby.signal and primary_conninfo),
    started on a port of its own, streaming the primary's WAL."""

    def __init__(self, primary: PgCluster):
        super().__init__(settings={"hot_standby": "on"})
        self.primary = primary

    def start(self) -> Standby:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="hallq-pg-standby-", dir="/tmp"))
            if self._as_postgres:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._run("pg_basebackup", "-D", str(self.data), "-h", "127.0.0.1", "-p", str(self.primary.port),
                      "-U", SUPERUSER, "-X", "stream", "-R", "--checkpoint=fast", "--no-sync")
        super().start()
        return self


@pytest.fixture
def primary_standby():
    primary = PgCluster().start()
    standby = None
    try:
        dsn = primary.create_database("city")
        from hallq.central import db

        db.forget_partitions()
        with db.connect(dsn, autocommit=True) as conn:
            db.migrate(conn, today=date(2026, 11, 23))
        standby = Standby(primary).start()
        yield primary, standby, dsn, standby.dsn("city")
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()


def _stats(db_path: Path, day: date):
    from hallq.controller import stats

    conn = sqlite3.connect(db_path)
    try:
        return stats.compute(conn, day, datetime.now(UTC))
    finally:
        conn.close()


def test_reports_are_served_from_a_streaming_standby(primary_standby, tmp_path):
    from hallq.controller import config

    _primary, standby, dsn, standby_dsn = primary_standby
    pconn = psycopg.connect(dsn, autocommit=True)
    sconn = psycopg.connect(standby_dsn, autocommit=True)
    assert sconn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is True
    assert pconn.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").fetchone()[0] == 1
    # the standby takes no writes
    with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        sconn.execute("INSERT INTO city_rollup_mark (one, received) VALUES (true, now())")

    register(pconn, "web", "测试政务服务中心", "Test Service Center")
    hall_db = tmp_path / "hall.db"
    seed(hall_db, config.parse(HALL_TOML), DAYS[0], 3, 150, seed=5)
    records = hall_records(hall_db)
    ship = Shipper("web")
    ship.send(pconn, [r for r in records if getattr(r, "day", None) in DAYS[:2]])

    broker = Mosquitto(tmp_path / "broker").start()
    web = CityWeb(tmp_path / "web", dsn, broker.url, report_dsn=standby_dsn)
    web.user("viewer", "viewer")
    web.start()
    try:
        c = web.http("viewer")

        def report(day: date) -> dict | None:
            r = c.get("/reports.csv", params={"by": "hall", "from": str(day)})
            assert r.status_code == 200, r.text[:300]
            rows = [x for x in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))) if x["slice"] == "hall"]
            return rows[0] if rows else None

        # the roll-up (on the primary) reaches the pages (read on the standby)
        got = wait_until(lambda: report(DAYS[1]), 60, "day 2 on the standby's report")
        assert int(got["issued"]) == _stats(hall_db, DAYS[1]).hall.issued
        assert report(DAYS[2]) is None
        # more of the record arrives at the primary: the standby's pages show it after the next roll-up
        ship.send(pconn, [r for r in records if getattr(r, "day", None) == DAYS[2]])
        got = wait_until(lambda: report(DAYS[2]), 60, "day 3 on the standby's report")
        theirs = _stats(hall_db, DAYS[2]).hall
        assert (int(got["issued"]), int(got["served"])) == (theirs.issued, theirs.served)
        assert float(got["satisfaction"]) == theirs.satisfaction

        # the pages' connections are on the standby, the roll-up's on the primary
        apps = lambda conn: {r[0] for r in conn.execute(  # noqa: E731
            "SELECT application_name FROM pg_stat_activity WHERE datname = 'city'").fetchall()}
        assert "hallq-city-web" in apps(sconn)
        assert "hallq-city-web" not in apps(pconn)
        assert "hallq-city-web" in {r[0] for r in sconn.execute(
            "SELECT application_name FROM pg_stat_activity WHERE application_name = 'hallq-city-web'")}

        # the standby goes away: the report pages say so in words (503), the live page stays up
        standby.stop(keep=True)
        r = c.get("/reports", params={"by": "hall", "from": str(DAYS[2])}, headers={"accept": "text/html"})
        assert r.status_code == 503 and "报表数据库暂时无法连接" in r.text
        assert c.get("/halls", headers={"accept": "text/html"}).status_code == 200
        # and it comes back, catching up from the primary
        standby.start()
        got = wait_until(lambda: c.get("/reports.csv", params={"by": "hall", "from": str(DAYS[2])}).status_code == 200,
                         60, "the report pages back with the standby")
        assert got
    finally:
        web.stop()
        broker.stop()
        pconn.close()
        sconn.close()
