"""The hall record's numbered migrations: a database written by the first release (no ``user_version``)
upgrades in place and keeps everything; a fresh one gets every step; a newer one is refused; a step that
fails leaves the database at the last whole step."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

import msgspec
import pytest
from controller_kit import HALL_TOML, StoredHall, at, number
from hallq.controller import config, followups, schema, stats
from hallq.controller.db import connect
from hallq.controller.haocp import outbox
from hallq.controller.storage import Storage, StorageError

DATA = Path(__file__).parent / "data"
#: The config the release-1 record was written with (see data/release-1.sql).
TOML = HALL_TOML + """
[haocp]
url = "http://127.0.0.1:9/haocp"
area_code = "320312"
followup_days = 5
"""
TABLES = {"meta", "tickets", "sequences", "windows", "staff_sessions", "calls", "ratings", "replies",
          "haocp_outbox", "followups"}


def release_1(tmp_path: Path) -> Path:
    db = tmp_path / "hall.db"
    c = sqlite3.connect(db)
    c.executescript((DATA / "release-1.sql").read_text(encoding="utf-8"))
    c.close()
    return db


def tables(c: sqlite3.Connection) -> set[str]:
    return {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_release_1_record_upgrades_in_place_and_keeps_everything(tmp_path):
    expect = json.loads((DATA / "release-1.expected.json").read_text(encoding="utf-8"))
    db = release_1(tmp_path)
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == 0
        assert dict(c.execute("SELECT key, value FROM meta"))["schema"] == "1"

    h = StoredHall(db, TOML, now=at("09:30", day=9))  # opens (and migrates) the record, loads the state
    c = h.storage.conn
    assert schema.version(c) == schema.VERSION
    assert tables(c) >= TABLES
    assert "schema" not in dict(c.execute("SELECT key, value FROM meta"))

    # what the record says, as the release said it
    now = at("09:30", day=9)
    # (too few numbers on those days to name quiet half hours: stats.QUIET_MIN_TICKETS)
    for key, day in (("friday", date(2026, 3, 6)), ("monday", date(2026, 3, 9))):
        got = json.loads(msgspec.json.encode(stats.compute(c, day, now)))
        # the per-category slice came after release 1: every figure the release had is as it was, and the
        # new slice adds up to the hall
        cats = got.pop("categories", {})
        assert got == expect[key], key
        assert sum(f.get("issued", 0) for f in cats.values()) == got["hall"].get("issued", 0)
        assert sum(f.get("served", 0) for f in cats.values()) == got["hall"].get("served", 0)
    assert followups.rows(c, include_closed=True) == expect["followups"]
    assert outbox.summary(c) == expect["haocp"]
    # the day in progress comes back: its queues, windows and numbering
    assert sorted(t.number for t in h.state.tickets.values() if t.waiting) == expect["waiting"]
    assert {str(w.no): [w.status, w.current] for w in h.state.windows.values()} == expect["windows"]
    assert dict(h.state.seq) == expect["seq"]

    # and the hall goes on: numbering continues, a bad rating opens its follow-up and its upload
    assert number(h.take("A")) == "A003"
    h.op(1, "done")
    assert h.rate(1, "A001", "very_dissatisfied")["ok"]
    assert [r["ticket"] for r in followups.rows(c)] == ["A002", "A001"]
    assert outbox.summary(c)["pending"] == expect["haocp"]["pending"] + 1
    h = h.restart()
    assert schema.version(h.storage.conn) == schema.VERSION
    assert number(h.take("A")) == "A004"
    h.storage.close()


def test_a_fresh_record_gets_every_step_and_a_second_open_changes_nothing(tmp_path):
    db = tmp_path / "new.db"
    h = StoredHall(db, TOML, now=at("09:00"))
    c = h.storage.conn
    assert schema.version(c) == schema.VERSION and tables(c) >= TABLES
    before = c.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    h = h.restart()
    assert h.storage.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() == before
    assert schema.migrate(h.storage.conn) == (schema.VERSION, schema.VERSION)
    h.storage.close()


def test_a_record_from_a_newer_hallq_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "newer.db"
    c = connect(db)
    schema.migrate(c)
    c.execute(f"PRAGMA user_version = {schema.VERSION + 1}")
    c.close()
    with pytest.raises(StorageError, match="newer hallq"):
        Storage(db, config.parse(TOML))
    c = sqlite3.connect(db)
    assert c.execute("PRAGMA user_version").fetchone()[0] == schema.VERSION + 1


def test_a_failing_step_leaves_the_record_at_the_last_whole_step(tmp_path, monkeypatch):
    db = tmp_path / "half.db"
    c = connect(db)
    monkeypatch.setattr(schema, "MIGRATIONS", (*schema.MIGRATIONS, "CREATE TABLE t1 (x);\nCREATE TABLE meta (y);\n"))
    monkeypatch.setattr(schema, "VERSION", len(schema.MIGRATIONS))
    with pytest.raises(schema.SchemaError, match=f"migration {schema.VERSION} failed"):
        schema.migrate(c)
    assert schema.version(c) == schema.VERSION - 1
    assert "t1" not in tables(c)  # the failed step's first statement is rolled back too
    c.close()


def test_statements_are_split_whole():
    assert schema._statements("CREATE TABLE a (x TEXT DEFAULT ';');\n\nDELETE FROM a;\n") == [
        "CREATE TABLE a (x TEXT DEFAULT ';');", "DELETE FROM a;"]
    with pytest.raises(ValueError):
        schema._statements("CREATE TABLE a (x")


def test_the_report_on_a_record_not_yet_upgraded_says_what_to_do(tmp_path):
    from click.testing import CliRunner
    from hallq.controller.cli import command

    db = release_1(tmp_path)
    res = CliRunner().invoke(command, ["report", "--db", str(db), "--date", "2026-03-06"])
    assert res.exit_code != 0 and "older hallq (schema 0)" in res.output and "upgrades it in place" in res.output
    StoredHall(db, TOML, now=at("09:30", day=9)).storage.close()  # the controller opens it once
    res = CliRunner().invoke(command, ["report", "--db", str(db), "--date", "2026-03-06"])
    assert res.exit_code == 0, res.output
