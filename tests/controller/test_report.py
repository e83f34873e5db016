"""``hallq controller report``: a day's figures as a table and as CSV."""

from __future__ import annotations

import csv
import io

from click.testing import CliRunner
from controller_kit import StoredHall
from hallq.controller.cli import command
from hallq.shared.schemas import Case, Staff


def a_day(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    h.op(1, "open", staff=Staff(id="w1", name="王芳"))
    for _ in range(3):
        h.take("A")
    h.later(12)
    h.op(1, "next")
    h.later(5)
    h.op(1, "done", case=Case(id="C1", item_code="X"))
    h.rate(1, "A001", "very_satisfied")
    h.op(1, "next")
    h.later(3)
    h.op(1, "noshow")
    h.storage.close()
    return h.db


def test_report_table(tmp_path):
    db = a_day(tmp_path)
    res = CliRunner().invoke(command, ["report", "--db", str(db), "--date", "2026-03-02"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "测试政务服务中心 (test) — 2026-03-02" in out
    assert "1号窗口" in out and "王芳 (w1)" in out and "09:00" in out
    hall_line = next(line for line in out.splitlines()[1:] if line.startswith("测试政务服务中心 "))
    assert hall_line.split()[1:6] == ["3", "2", "1", "1", "0"]
    assert "100.00%" in out
    # three numbers in the day say nothing about quiet times; windows and clerks take no numbers
    assert _quiet_line(out) == ("错时办事 quietest half hours: 取号不足 30 个，暂不推荐 (fewer than 30 numbers taken: "
                                "none named yet)")
    window_table = out.split("窗口 windows")[1].split("工作人员 clerks")[0].strip().splitlines()
    clerk_table = out.split("工作人员 clerks")[1].split("每半小时")[0].strip().splitlines()
    for table in (window_table, clerk_table):
        assert table[0].split()[:2] == ["叫号", "办结"], table[0]  # no 取号 (issued) column of zeros
    assert window_table[1].split()[1:4] == ["2", "1", "1"]


def test_report_csv(tmp_path):
    db = a_day(tmp_path)
    res = CliRunner().invoke(command, ["report", "--db", str(db), "--date", "2026-03-02", "--csv"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    hall = rows[0]
    assert hall["slice"] == "hall" and hall["issued"] == "3" and hall["served"] == "1" and hall["noshow"] == "1"
    assert hall["very_satisfied"] == "1" and hall["satisfaction"] == "1.0"
    assert hall["wait_mean_min"] == "14.5"  # 12 and 17 minutes
    assert {r["slice"] for r in rows} == {"hall", "window", "clerk", "half_hour"}
    assert {r["issued"] for r in rows if r["slice"] in ("window", "clerk")} == {""}  # not 0: not theirs to count


def test_report_bad_date(tmp_path):
    db = a_day(tmp_path)
    res = CliRunner().invoke(command, ["report", "--db", str(db), "--date", "March"])
    assert res.exit_code != 0 and "not a date" in res.output


def test_run_needs_a_config():
    res = CliRunner().invoke(command, [])
    assert res.exit_code != 0 and "--config" in res.output


def _quiet_line(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("错时办事"))


def test_report_judges_the_day_by_the_demo_clock(tmp_path, monkeypatch):
    """Run by the demo, `report` tells the time by the demo's scaled clock, not the wall clock.

    On a hall's first day only half hours that are over can be quiet. A morning with a ticket in every half
    hour and an empty afternoon: at 11:00 the afternoon has not come, so the quietest are morning ones; at
    18:30 by the demo's clock the day is over and the empty afternoon is the quietest.
    """
    import time

    h = StoredHall(tmp_path / "hall.db").at("09:00")
    for _ in range(6):
        for _ in range(5):  # 30 numbers: enough to tell quiet from busy
            assert h.take("B")["ok"]
        h.later(30)
    h.storage.close()
    args = ["report", "--db", str(h.db), "--date", "2026-03-02"]
    monkeypatch.setenv("HALLQ_CLOCK", f"2026-03-02T11:00:00+08:00,1,{time.time()}")
    morning = _quiet_line(CliRunner().invoke(command, args).output)
    monkeypatch.setenv("HALLQ_CLOCK", f"2026-03-02T18:30:00+08:00,1,{time.time()}")
    evening = _quiet_line(CliRunner().invoke(command, args).output)
    assert morning.endswith("09:00, 09:30, 10:00")
    assert evening.endswith("14:00, 14:30, 15:00")


def test_report_counts_the_days_appointments(tmp_path):
    from datetime import date, time

    from hallq.controller import core

    h = StoredHall(tmp_path / "hall.db").at("08:30")
    bookings = tuple(core.Booking(code=f"200{i}", category="A", day=date(2026, 3, 2), start=time(9), end=time(9, 30))
                     for i in range(1, 4))
    _, fx = core.handle(h.state, core.BookingsIn("day.csv", bookings), h.now)
    h.storage.write(fx.records)
    h.at("09:10")
    h.op(1, "open", staff=Staff(id="w1", name="王芳"))
    h.take("A", channel="appointment", priority="appointment", appointment="2001")
    h.later(2)
    h.op(1, "next")
    h.at("10:00")
    h.take("A", channel="appointment", priority="appointment", appointment="2002")  # late: a normal ticket
    h.storage.close()
    res = CliRunner().invoke(command, ["report", "--db", str(h.db), "--date", "2026-03-02"])
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.startswith("预约 appointments"))
    assert "booked 3, 签到 checked in 1, 迟到 late 1, 爽约 no-show" in line and "P90 2.0" in line
