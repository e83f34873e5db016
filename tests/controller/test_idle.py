"""Idle time with people waiting (per window and per clerk): a window open, not paused and serving no one
while a ticket it could call waited. Written through the real core into a real record, read back by
``stats.compute`` and ``hallq controller report``."""

from __future__ import annotations

import csv
import io
import sqlite3

from click.testing import CliRunner
from controller_kit import StoredHall, at
from hallq.controller import stats
from hallq.controller.cli import command
from hallq.shared.schemas import Staff

DAY = at("09:00").date()


def figures(h: StoredHall, when: str):
    conn = sqlite3.connect(h.db)
    try:
        return stats.compute(conn, DAY, at(when))
    finally:
        conn.close()


def test_idle_counts_only_time_with_someone_waiting_for_that_window(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    h.op(1, "open", staff=Staff(id="w1", name="王芳"))  # window 1 serves A
    h.op(2, "open", staff=Staff(id="w2", name="李明"))  # window 2 serves A and B
    h.later(10)
    h.take("B")  # 09:10: a B ticket waits: window 2 could call it, window 1 could not
    h.later(5)
    h.op(2, "next")  # 09:15: 5 idle minutes for window 2
    h.later(4)
    h.take("A")  # 09:19: both windows could call it; 2 is serving
    h.later(6)
    h.op(1, "next")  # 09:25: window 1 idle 6 minutes with A002 waiting
    h.later(10)
    h.op(2, "done")  # 09:35
    h.op(1, "done")
    h.later(5)  # 09:40: nobody waits: idle, but not with people waiting
    s = figures(h, "09:40")
    assert s.windows["1"].idle_waiting_min == 6.0
    assert s.windows["2"].idle_waiting_min == 5.0
    assert s.staff["w1"].idle_waiting_min == 6.0 and s.staff["w2"].idle_waiting_min == 5.0
    assert s.hall.idle_waiting_min is None  # a window's and a clerk's figure only
    assert all(f.idle_waiting_min is None for f in s.half_hours.values())
    assert "3" not in s.windows  # never open


def test_a_pause_is_not_idle_and_a_closed_window_is_not_idle(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    h.take("A")  # waits from 09:00
    h.op(1, "open", staff=Staff(id="w1", name="王芳"))
    h.later(2)
    h.op(1, "pause")  # 09:02-09:12 paused
    h.later(10)
    h.op(1, "resume")
    h.later(3)
    h.op(1, "close")  # 09:15
    h.later(30)
    h.op(1, "open", staff=Staff(id="w9", name="赵强"))  # 09:45: another clerk
    h.later(4)
    h.op(1, "next")  # 09:49
    s = figures(h, "10:00")
    assert s.windows["1"].idle_waiting_min == 9.0  # 2 before the pause, 3 after it, 4 after reopening
    assert s.staff["w1"].idle_waiting_min == 5.0
    assert s.staff["w9"].idle_waiting_min == 4.0


def test_a_pause_survives_a_restart(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    h.op(1, "open")
    h.op(1, "pause")
    h.later(5)
    h.take("A")
    h = h.restart()
    h.later(10)
    h.op(1, "resume")  # 09:15: the pause that began before the restart ends now
    h.later(2)
    h.op(1, "next")
    s = figures(h, "09:30")
    assert s.windows["1"].idle_waiting_min == 2.0
    rows = sqlite3.connect(h.db).execute("SELECT started_at, ended_at FROM pauses").fetchall()
    assert rows == [(at("09:00").isoformat(), at("09:15").isoformat())]


def test_a_ticket_transferred_to_a_window_waits_for_that_window_only(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    for w in (1, 2, 3):
        h.op(w, "open")
    h.take("A")
    h.op(1, "next")
    h.later(1)
    h.op(1, "transfer", to={"window": 3})  # 09:01: A001 waits for window 3 only
    h.later(7)
    s = figures(h, "09:08")
    assert s.windows["3"].idle_waiting_min == 7.0
    assert s.windows["1"].idle_waiting_min == 0.0 and s.windows["2"].idle_waiting_min == 0.0


def test_the_report_shows_idle_time_for_windows_and_clerks_only(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    h.op(1, "open", staff=Staff(id="w1", name="王芳"))
    h.take("A")
    h.later(7)
    h.op(1, "next")
    h.later(3)
    h.op(1, "close")
    h.storage.close()
    out = CliRunner().invoke(command, ["report", "--db", str(h.db), "--date", DAY.isoformat(), "--csv"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    assert {r["slice"]: r["idle_waiting_min"] for r in rows if r["slice"] in ("window", "clerk")} == {
        "window": "7.0", "clerk": "7.0"}
    assert {r["idle_waiting_min"] for r in rows if r["slice"] in ("hall", "half_hour")} == {""}
    table = CliRunner().invoke(command, ["report", "--db", str(h.db), "--date", DAY.isoformat()])
    assert table.exit_code == 0, table.output
    windows = table.output.split("窗口 windows")[1].split("工作人员 clerks")[0].strip().splitlines()
    assert windows[0].split()[-3] == "有人等候时空闲" and windows[1].split()[-3] == "7.0"
    hall = table.output.split("全厅 hall")[1].split("窗口 windows")[0]
    assert "有人等候时空闲" not in hall


def test_days_kept_before_pauses_were_kept_have_no_idle_figure(tmp_path):
    """A record upgraded to migration 4 could not tell a pause from idleness on the days it already had."""
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    h.op(1, "open")
    h.take("A")
    h.later(5)
    h.op(1, "next")
    h.storage.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('pauses_from', ?)", (DAY.isoformat(),))
    s = figures(h, "09:10")
    assert s.windows["1"].idle_waiting_min is None and s.windows["1"].called == 1
