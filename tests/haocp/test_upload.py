"""The 好差评 upload end to end: ratings through real Mosquitto into the real controller, each POSTed to a
local endpoint that refuses, times out, answers 500 and then accepts; exactly one accepted record per
rating, none lost across a controller restart."""

from __future__ import annotations

import sqlite3
import time

from hallq.controller.haocp import outbox as haocp_outbox


def outbox(db) -> dict[str, tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return {k: (s, a) for k, s, a in c.execute("SELECT key, status, attempts FROM haocp_outbox")}


def test_every_rating_is_accepted_once_through_refusals_timeouts_and_a_restart(hall, province):
    # refused: nothing listens on the province's port yet
    t1 = hall.serve_and_rate("CASE-0001", "very_satisfied")
    t2 = hall.serve_and_rate("CASE-0002", "dissatisfied")
    time.sleep(0.5)
    assert province.posts == []
    day = f"{hall.app.state.day:%Y%m%d}"
    k1, k2 = f"hallq-hcp-{day}-{t1}", f"hallq-hcp-{day}-{t2}"
    box = outbox(hall.db)
    assert {k: s for k, (s, _) in box.items()} == {k1: "pending", k2: "pending"}
    assert box[k1][1] >= 1, "the oldest record has been tried (and refused)"

    # then: a time-out (the province takes the first record but answers too late), a 500, then accepts
    province.script = ["timeout", "500"]
    province.start()
    accepted = province.wait_accepted(2)
    assert set(accepted) == {k1, k2}
    deadline = time.monotonic() + 5
    while {s for s, _ in outbox(hall.db).values()} != {"sent"} and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(s for s, _ in outbox(hall.db).values()) == ["sent", "sent"]
    whats = [p["what"] for p in province.posts if p["key"] == k1]
    assert whats == ["timeout", "500", "accept"], "the first record: timed out, 500, then accepted (a duplicate)"

    # a restart while the province answers 500: nothing is lost, nothing is sent twice
    province.script = ["500"] * 1000
    t3 = hall.serve_and_rate("CASE-0003", "very_dissatisfied")
    deadline = time.monotonic() + 5
    while not any(p["body"]["ticket"] == t3 for p in province.posts) and time.monotonic() < deadline:
        time.sleep(0.02)
    hall.stop()
    k3 = f"hallq-hcp-{day}-{t3}"
    assert outbox(hall.db)[k3][0] == "pending"
    province.script = []
    hall.start()
    accepted = province.wait_accepted(3)
    assert len(accepted) == 3
    assert accepted[k2]["satisfaction"] == "4" and accepted[k1]["satisfaction"] == "1"
    rec3 = next(v for v in accepted.values() if v["ticket"] == t3)
    assert rec3["satisfaction"] == "5" and rec3["projectNo"] == "CASE-0003" and rec3["taskCode"] == "000101001000"
    assert rec3["taskName"] == "城乡居民养老保险参保登记" and rec3["areaCode"] == "320312" and rec3["pf"] == "5"
    assert rec3["assessNumber"] == 1 and rec3["windowNo"] == "1" and len(rec3["assessTime"]) == 15
    # every POST of a record carried that record's key, and the province kept one record per key
    assert all(p["key"] == p["body"]["idempotencyKey"] for p in province.posts)
    time.sleep(0.3)
    assert sorted(s for s, _ in outbox(hall.db).values()) == ["sent", "sent", "sent"]
    assert haocp_outbox.summary(sqlite3.connect(hall.db)) == {"sent": 3, "pending": 0, "rejected": 0}


def test_a_record_the_province_refuses_is_not_sent_again(hall, province):
    province.script = ["400"]
    province.start()
    hall.serve_and_rate("CASE-0009", "satisfied")
    deadline = time.monotonic() + 5
    while "rejected" not in {s for s, _ in outbox(hall.db).values()} and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)
    assert [s for s, _ in outbox(hall.db).values()] == ["rejected"]
    assert len(province.posts) == 1 and province.accepted == {}
    assert hall.app.uploader.rejected == 1
