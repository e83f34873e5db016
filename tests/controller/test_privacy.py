"""Issue 9 §5: person keys leave the record once nothing needs them; per-clerk figures stay off public topics.

Through the real controller process: a record written on one day, the controller started on the next."""

from __future__ import annotations

import json
import sqlite3

from controller_kit import HALL_TOML, ControllerProc, StoredHall, at
from harness import Monitor

P = ["ab" * 16, "cd" * 16, "ef" * 16]


def test_person_keys_go_at_the_next_day_unless_a_follow_up_needs_them(mosquitto, tmp_path):
    work = tmp_path / "controller"
    work.mkdir()
    h = StoredHall(work / "hall.db", now=at("09:00", day=2))
    for p in P:
        h.take("A", channel="idcard", person=p)
    h.op(1, "open")
    h.op(1, "next")  # A001
    h.op(1, "next")  # A001 done, A002 called
    h.op(1, "done")
    h.rate(1, "A001", "very_dissatisfied")  # a bad review: a follow-up opens
    h.rate(1, "A002", "satisfied")
    h.storage.close()
    with sqlite3.connect(work / "hall.db") as conn:
        assert conn.execute("SELECT count(*) FROM tickets WHERE person IS NOT NULL").fetchone()[0] == 3

    mon = Monitor(mosquitto.url, "hallq/test/#")
    try:
        # the same day: the figures are out, per window but not per clerk
        ctl = ControllerProc(work, mosquitto.url, HALL_TOML, start="2026-03-02T10:00:00+08:00").start()
        mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=20)
        stats = json.loads(mon.wait_for("hallq/test/stats").payload)
        assert stats["windows"]["1"]["served"] == 2, stats
        assert "staff" not in stats  # per-clerk figures are not on the topic every screen and kiosk reads
        ctl.kill()
        with sqlite3.connect(work / "hall.db") as conn:  # the day is not over: every key is still needed
            assert conn.execute("SELECT count(*) FROM tickets WHERE person IS NOT NULL").fetchone()[0] == 3
        n = len(mon.messages)
        # the next day
        ctl = ControllerProc(work, mosquitto.url, HALL_TOML, start="2026-03-03T09:00:00+08:00").start()
        mon.wait_for("hallq/test/controller/status", lambda m: m in mon.messages[n:] and m.payload == b"online", 20)
    finally:
        mon.close()
        ctl.kill()
    with sqlite3.connect(work / "hall.db") as conn:
        kept = dict(conn.execute("SELECT number, person FROM tickets WHERE day = '2026-03-02'").fetchall())
    # A001's bad review is still being followed up; A002 (served and rated) and A003 (expired) need no key
    assert kept == {"A001": P[0], "A002": None, "A003": None}


def test_a_settled_follow_up_lets_its_key_go(tmp_path):
    h = StoredHall(tmp_path / "hall.db", now=at("09:00", day=2))
    h.take("A", channel="idcard", person=P[0])
    h.op(1, "open")
    h.op(1, "next")
    h.op(1, "done")
    h.rate(1, "A001", "dissatisfied")
    assert h.storage.forget_persons(at("09:00", day=3).date()) == 0  # the follow-up is open
    h.storage.conn.execute("UPDATE followups SET closed_at = ?", (at("10:00", day=3).isoformat(),))
    assert h.storage.forget_persons(at("09:00", day=4).date()) == 1
    assert h.storage.forget_persons(at("09:00", day=2).date()) == 0  # today's keys are still needed
