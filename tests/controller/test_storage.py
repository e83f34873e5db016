"""The SQLite record: what is committed comes back after a restart; statistics from the record."""

from __future__ import annotations

import sqlite3

import msgspec
import pytest
from controller_kit import HALL_TOML, StoredHall, at, code, number
from hallq.controller import core, stats
from hallq.controller.storage import Storage, StorageError, connect
from hallq.shared.schemas import Case, Staff, TakeRequest


@pytest.fixture
def stored(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    yield h
    h.storage.close()


def test_database_settings(stored):
    conn = stored.storage.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0  # the app checkpoints when idle
    stored.take("A")
    wal = stored.db.with_name(stored.db.name + "-wal")
    assert wal.stat().st_size > 0
    stored.storage.checkpoint()
    assert wal.stat().st_size == 0
    assert sqlite3.connect(stored.db).execute("SELECT count(*) FROM tickets").fetchone()[0] == 1


def test_restart_keeps_queues_windows_numbers_and_answers(stored):
    h = stored
    h.take("A")
    h.later(1)
    h.take("A", priority="elderly", person="cd" * 16)
    h.take("B")
    h.take("C")
    h.op(1, "open", staff=Staff(id="w1", name="李娜"))
    h.op(2, "open")
    h.op(2, "pause")
    first = h.op(1, "next")  # the priority ticket A002
    assert number(first) == "A002"
    h.op(3, "open")
    h.op(3, "next")  # A001
    h.op(3, "transfer", to={"category": "B"})
    repeat = TakeRequest(req="kiosk-req-1", category="B")
    answered = h.send("kiosk-2", repeat)
    before = h.state

    h = h.restart()
    st = h.state
    assert st.seq == before.seq == {"A": 2, "B": 2, "C": 1}
    assert {n: t.status for n, t in st.tickets.items()} == {n: t.status for n, t in before.tickets.items()}
    assert [t.number for t in st.transfers] == ["A001"]
    assert core.window_state(st, 1) == core.window_state(before, 1)
    assert core.window_state(st, 2).status == "paused"
    assert core.window_state(st, 3).status == "idle"
    assert ("A", "cd" * 16) not in st.waiting_persons  # A002 is being served
    assert [c.ticket for c in core.board(st).calls] == ["A001", "A002"]
    # the same req gets the first answer and changes nothing
    assert h.send("kiosk-2", repeat) == answered
    assert h.state.seq["B"] == 2
    # numbering goes on, never reused
    assert number(h.take("A")) == "A003"
    # the transferred ticket goes first at a window serving B
    assert number(h.op(3, "next")) == "A001"
    assert number(h.op(3, "next")) == "B001"
    # ids go on too
    h.op(1, "done")
    assert h.rate(1, "A002")["rating"]["id"] == 1
    h = h.restart()
    assert code(h.rate(1, "A002")) == "already_rated"
    h.op(3, "done")
    assert h.rate(3, "B001")["rating"]["id"] == 2
    h.storage.close()


def test_restart_on_a_later_day_expires_yesterdays_tickets(stored):
    h = stored
    h.take("A")
    h.take("B")
    h.op(1, "open")
    h.op(1, "next")
    h.storage.close()
    h = StoredHall(h.db, now=at("09:00", day=3)).at(at("09:00", day=3))
    assert h.state.day == at("09:00").date()  # loaded as it was
    h.tick()  # what the app does at start
    assert number(h.take("A")) == "A001"
    rows = dict(connect(h.db).execute("SELECT number, status FROM tickets WHERE day = '2026-03-02'").fetchall())
    assert rows == {"A001": "done", "B001": "expired"}
    h.storage.close()


def test_another_halls_database_is_refused(stored, tmp_path):
    from hallq.controller import config

    other = config.parse(HALL_TOML.replace('id = "test"', 'id = "other"'))
    with pytest.raises(StorageError, match="is in use by another controller"):
        Storage(stored.db, other)  # the lock first: the record is open
    stored.storage.close()
    with pytest.raises(StorageError, match="hall 'test'"):
        Storage(stored.db, other)


def test_one_transaction_per_write(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at("09:00")
    records = []
    for i in range(50):
        h.state, fx = core.handle(h.state, core.Request("kiosk-1", TakeRequest(req=f"q{i}", category="B")), h.now)
        records += fx.records
    # nothing is visible to another connection before the write, everything after it
    other = sqlite3.connect(h.db)
    assert other.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0
    h.storage.write(records)
    assert other.execute("SELECT count(*) FROM tickets").fetchone()[0] == 50
    assert other.execute("SELECT count(*) FROM replies").fetchone()[0] == 50
    assert other.execute("SELECT last FROM sequences WHERE category = 'B'").fetchone()[0] == 50
    h.storage.close()


def test_ratings_are_stored_with_ticket_window_staff_case_and_time(stored):
    h = stored
    h.take("A")
    h.op(1, "open", staff=Staff(id="w9", name="赵敏"))
    h.op(1, "next")
    h.later(6)
    h.op(1, "done", case=Case(id="BJ2026-1", item_code="3301-01", item_name="社保卡申领", kind="instant"))
    h.rate(1, "A001", "very_satisfied")
    row = h.storage.conn.execute(
        "SELECT ticket, window, staff_id, staff_name, case_id, item_code, level, at FROM ratings").fetchone()
    assert row == ("A001", 1, "w9", "赵敏", "BJ2026-1", "3301-01", "very_satisfied", h.now.isoformat())


def test_statistics_of_a_day(stored):
    h = stored
    h.op(1, "open", staff=Staff(id="w1", name="甲"))
    h.op(2, "open", staff=Staff(id="w2", name="乙"))
    for _ in range(4):
        h.take("A")
    h.at("09:40")
    h.take("A")
    h.op(1, "next")  # A001 waited 40 min
    h.later(10)
    h.op(1, "next")  # A001 served 10 min; A002 waited 50
    h.op(2, "next")  # A003 waited 50
    h.later(2)
    h.op(2, "noshow")
    h.op(2, "next")  # A004 waited 52
    h.later(4)
    h.op(2, "transfer", to={"category": "B"})
    h.op(1, "done")
    for lv, n in (("very_satisfied", "A001"), ("dissatisfied", "A002")):
        h.rate(1, n, lv)
    s = stats.compute(h.storage.conn, h.state.day, h.now)
    assert s.date == "2026-03-02"
    f = s.hall
    assert (f.issued, f.called, f.served, f.noshow, f.transferred) == (5, 4, 2, 1, 1)
    assert f.wait_mean_min == pytest.approx((40 + 50 + 50 + 52) / 4, abs=0.05)
    assert f.wait_p90_min == 52.0
    assert f.service_mean_min == pytest.approx((10 + 6 + 4) / 3, abs=0.05)
    assert f.ratings == {"very_satisfied": 1, "dissatisfied": 1} and f.satisfaction == 0.5
    assert s.windows["1"].served == 2 and s.windows["2"].noshow == 1 and s.windows["2"].transferred == 1
    assert s.staff["w1"].ratings == {"very_satisfied": 1, "dissatisfied": 1}
    assert s.half_hours["09:00"].issued == 4 and s.half_hours["09:30"].issued == 1
    assert s.half_hours["09:30"].called == 4 and s.half_hours["09:00"].wait_mean_min == pytest.approx(48.0)
    assert s.quiet_half_hours == []  # five numbers tell nothing about quiet times
    assert stats.staff_names(h.storage.conn, h.state.day) == {"w1": "甲", "w2": "乙"}
    # the payload fits the contract
    msgspec.json.decode(msgspec.json.encode(s))


def test_satisfaction_as_halls_report_it():
    acc = stats._Acc()
    acc.ratings.update({"very_satisfied": 13345, "satisfied": 363, "dissatisfied": 143})
    assert acc.figures().satisfaction == pytest.approx(0.9897, abs=1e-4)


def test_opening_slots():
    assert stats.opening_slots([["09:00", "12:00"], ["14:00", "15:00"]]) == [
        "09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "14:00", "14:30"]
    assert stats.opening_slots([["08:45", "09:30"]]) == ["08:30", "09:00"]
    assert len(stats.opening_slots([])) == 48


def test_quiet_half_hours_on_a_first_day_only_from_what_is_over_and_enough(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at(at("09:00"))
    assert h.take("B")["ok"]
    h.at(at("15:00"))
    s = stats.compute(h.storage.conn, h.now.date(), h.now)
    assert s.quiet_half_hours == []  # one ticket in the day once named three "quietest half hours"
    for slot, n in (("09:00", 9), ("09:30", 8), ("10:00", 3), ("10:30", 9)):
        h.at(at(slot))
        for _ in range(n):
            assert h.take("B")["ok"]
    h.at(at("11:00"))
    s = stats.compute(h.storage.conn, h.now.date(), h.now)
    assert s.quiet_half_hours == ["09:30", "10:00", "10:30"]  # 11:00 onwards is not over yet
    h.storage.close()


def test_quiet_half_hours_from_the_days_before(tmp_path):
    h = StoredHall(tmp_path / "hall.db").at(at("09:00", day=2))
    busy = {"09:00": 3, "09:30": 2, "10:00": 1, "14:00": 2, "14:30": 3, "15:00": 3, "15:30": 3, "16:00": 3,
            "16:30": 3, "17:00": 1, "17:30": 1, "10:30": 2, "11:00": 2, "11:30": 3}
    for day in (2, 3):
        for slot, n in sorted(busy.items()):  # in time order: the core's time never goes back
            h.at(at(slot, day=day))
            for _ in range(n):
                h.take("B")
    h.at(at("09:05", day=4))
    s = stats.compute(h.storage.conn, h.now.date(), h.now)
    assert s.quiet_half_hours == ["10:00", "17:00", "17:30"]
    h.storage.close()


def test_unusable_database_files(tmp_path):
    from controller_kit import Hall

    cfg = Hall().cfg
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not SQLite" * 100)
    with pytest.raises(StorageError, match="cannot open the database"):
        Storage(garbage, cfg)
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StorageError, match="cannot create the database"):
        Storage(blocker / "sub" / "hall.db", cfg)


def test_window_state_says_how_the_last_service_ended_also_after_a_restart(stored):
    h = stored
    h.take("A")
    h.take("A")
    h.op(1, "open")
    h.op(1, "next")
    h.later(2)
    h.op(1, "noshow")
    last = core.window_state(h.state, 1).last
    assert (last.number, last.outcome) == ("A001", "noshow")
    h.op(1, "next")
    h.later(3)
    h.op(1, "done")
    assert (core.window_state(h.state, 1).last.number, core.window_state(h.state, 1).last.outcome) == ("A002", "done")
    before = core.window_state(h.state, 1)
    h = h.restart()
    assert core.window_state(h.state, 1) == before


def test_device_events_and_closed_days_figures_are_kept(stored):
    from datetime import timedelta

    from hallq.controller.devices import DeviceEvent
    from hallq.controller.storage import DEVICE_EVENT_RETENTION
    from hallq.shared.schemas import Stats, decode

    s = stored.storage
    t = stored.now
    old = t - DEVICE_EVENT_RETENTION - timedelta(days=2)
    s.write_device_events([
        DeviceEvent(old, "pad-1", "pad", 1, True, "online", (), "status"),
        DeviceEvent(old, "kiosk-1", "kiosk", None, True, "online", (), "status"),
        DeviceEvent(old + timedelta(hours=1), "kiosk-1", "kiosk", None, True, "online", ("paper_out",), "health"),
        DeviceEvent(t, "kiosk-1", "kiosk", None, True, "offline", ("paper_out",), "status")])
    assert s.last_device_events() == {"pad-1": ("online", ()), "kiosk-1": ("offline", ("paper_out",))}
    s.prune(t)  # the old ones go, but never a device's last one (where a restart starts from)
    left = s.conn.execute("SELECT device, status, problems, day FROM device_events ORDER BY id").fetchall()
    assert left == [("pad-1", "online", "[]", old.date().isoformat()),
                    ("kiosk-1", "offline", '["paper_out"]', t.date().isoformat())]
    # a day with tickets that is over has its figures worked out once
    stored.take("A")
    assert s.days_without_figures(t.date()) == []
    assert s.days_without_figures(t.date() + timedelta(days=1)) == [t.date()]
    f = stats.compute(s.conn, t.date(), t)
    s.write_daily_figures(f)
    s.write_daily_figures(msgspec.structs.replace(f, at=t + timedelta(hours=1)))  # once: the first stays
    assert s.days_without_figures(t.date() + timedelta(days=1)) == []
    (body,), = s.conn.execute("SELECT figures FROM daily_figures").fetchall()
    assert decode(body, Stats) == f and f.hall.issued == 1


def test_prune_keeps_exactly_the_newest_answers(tmp_path):
    from datetime import timedelta

    h = StoredHall(tmp_path / "hall.db", HALL_TOML + "\n[limits]\nreplies = 100\n").at("09:00")
    s, t0 = h.storage, h.now
    # answers of one batch share their time: ties at the bound are cut too, the newest kept
    rows = [core.CachedReply(f"kiosk-{i % 3}", f"r{i:06d}", b"{}", t0 + timedelta(seconds=i // 7))
            for i in range(250)]
    s.write(rows)
    assert s.prune(t0 + timedelta(minutes=1)) == 150
    newest = sorted(rows, key=lambda r: (r.at, r.client, r.req))[-100:]
    left = set(s.conn.execute("SELECT client, req FROM replies").fetchall())
    assert left == {(r.client, r.req) for r in newest}
    assert s.prune(t0 + timedelta(minutes=1)) == 0  # within the bound: nothing goes
    h.storage.close()


def test_a_restart_keeps_where_the_measured_transfers_sent_their_tickets(stored):
    h = stored
    h.take("A")
    h.take("A")
    h.op(2, "open")  # window 2 serves A and B
    h.op(2, "next")  # A001
    h.later(2)
    h.op(2, "transfer", to={"category": "B"})
    h.op(2, "next")  # A001 again, at B (a transfer goes first)
    h.later(4)
    h.op(2, "done")
    h.op(2, "next")  # A002
    h.later(3)
    h.op(2, "transfer", to={"category": "C"})  # still waiting at C
    before = {c: list(d) for c, d in h.state.service_to.items()}
    assert before == {"A": ["B", "C"], "B": [None]}
    h = h.restart()
    assert {c: list(d) for c, d in h.state.service_to.items()} == before
    assert {c: list(d) for c, d in h.state.service_recent.items()} == {"A": [2.0, 3.0], "B": [4.0]}
