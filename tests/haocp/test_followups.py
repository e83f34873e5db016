"""Follow-ups of bad reviews through the real controller: opened with the rating, published retained on
``hallq/{hall}/followups``, listed and closed with ``hallq controller followups``; and the day's report."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from datetime import date

from hallq.controller.core.workdays import Calendar
from hallq.shared.schemas import FollowUps, decode
from harness import Monitor

TOPIC = "hallq/hcp/followups"


def hallq(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hallq.shared.cli", *args], capture_output=True, text=True,
                          timeout=30)


def latest(monitor, n_open: int) -> FollowUps:
    msg = monitor.wait_for(TOPIC, lambda m: len(decode(m.payload, FollowUps).open) == n_open, timeout=10)
    return decode(msg.payload, FollowUps)


def test_bad_reviews_open_follow_ups_that_are_called_back_and_closed(hall, province, monitor, mosquitto):
    province.start()
    assert latest(monitor, 0).open == []  # published at start, retained
    good = hall.serve_and_rate("CASE-0101", "satisfied")
    bad = hall.serve_and_rate("CASE-0102", "dissatisfied")
    worse = hall.serve_and_rate("CASE-0103", "very_dissatisfied")
    fu = latest(monitor, 2)
    assert [(f.ticket, f.level, f.case_id) for f in fu.open] == [(bad, "dissatisfied", "CASE-0102"),
                                                                 (worse, "very_dissatisfied", "CASE-0103")]
    first = fu.open[0]
    assert first.staff is not None and first.staff.name == "李娜" and first.window == 1
    opened = first.rated_at.date()
    assert first.due == Calendar().due_date(opened, 5).isoformat() and not first.overdue
    assert good not in [f.ticket for f in fu.open]
    fresh = Monitor(mosquitto.url, TOPIC)  # a screen that starts now gets the open follow-ups at once
    try:
        m = fresh.wait_for(TOPIC)
        assert m.retain and len(decode(m.payload, FollowUps).open) == 2
    finally:
        fresh.close()

    listed = hallq("controller", "followups", "--db", str(hall.db))
    assert listed.returncode == 0, listed.stderr
    assert bad in listed.stdout and worse in listed.stdout and good not in listed.stdout and "不满意" in listed.stdout

    closed = hallq("controller", "followups", "--db", str(hall.db), "close", str(first.id), "--by", "王主任",
                   "--action", "电话回访，已补办并致歉")
    assert closed.returncode == 0, closed.stderr
    fu = latest(monitor, 1)  # the running controller publishes the change
    assert [f.ticket for f in fu.open] == [worse]

    again = hallq("controller", "followups", "close", str(first.id), "--by", "王主任", "--action", "x",
                  "--db", str(hall.db))
    assert again.returncode != 0 and "already closed" in again.stderr
    unknown = hallq("controller", "followups", "close", "999", "--by", "王主任", "--action", "x", "--db", str(hall.db))
    assert unknown.returncode != 0 and "no follow-up 999" in unknown.stderr
    nobody = hallq("controller", "followups", "close", str(fu.open[0].id), "--by", " ", "--action", "x",
                   "--db", str(hall.db))
    assert nobody.returncode != 0 and "--by" in nobody.stderr

    every = hallq("controller", "followups", "--db", str(hall.db), "--all", "--json")
    rows = [json.loads(line) for line in every.stdout.splitlines()]
    assert [(r["ticket"], r["called_back_by"], r["action"]) for r in rows] == [
        (bad, "王主任", "电话回访，已补办并致歉"), (worse, None, None)]

    province.wait_accepted(3)
    report = hallq("controller", "report", "--db", str(hall.db))
    assert report.returncode == 0, report.stderr
    assert "已上传 sent 3" in report.stdout and "待回访差评 open follow-ups: 1" in report.stdout
    assert "满意率" in report.stdout


def test_follow_ups_survive_a_restart(hall, province, monitor):
    bad = hall.serve_and_rate("CASE-0201", "very_dissatisfied")
    latest(monitor, 1)
    hall.stop()
    hall.start()
    deadline = time.monotonic() + 10
    while True:
        msgs = [m for m in monitor.on(TOPIC) if len(decode(m.payload, FollowUps).open) == 1]
        if len(msgs) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert len(msgs) >= 2, "published again after the restart"
    with sqlite3.connect(hall.db) as c:
        assert c.execute("SELECT ticket, due FROM followups").fetchall()[0][0] == bad
    assert date.fromisoformat(decode(msgs[-1].payload, FollowUps).open[0].due) > date.today()
