"""Appointments in the pure core, with explicit times: bookings kept, check-in by code or by ID card, the
early / on-time / late rules, the new refusals, dispatch within the slot, restart and the day's figures."""

from __future__ import annotations

from datetime import date, time

import pytest
from controller_kit import HALL_TOML, Hall, StoredHall, at, code, number
from hallq.controller import core, stats

KEY = "ab" * 32
OTHER = "cd" * 32


def booking(code_: str = "YY0001", category: str = "B", day: int = 2, start: str = "10:00", end: str = "10:30",
            person: str | None = None) -> core.Booking:
    h1, m1 = map(int, start.split(":"))
    h2, m2 = map(int, end.split(":"))
    return core.Booking(code=code_, category=category, day=date(2026, 3, day), start=time(h1, m1),
                        end=time(h2, m2), person=person, name="张*")


def booked(*bookings: core.Booking, toml: str = HALL_TOML, now: str = "08:00") -> Hall:
    h = Hall(toml).at(now)
    _, fx = core.handle(h.state, core.BookingsIn("bookings.csv", tuple(bookings)), h.now)
    assert len(fx.records) == len(bookings) and fx.reply is None
    return h


def checkin(h: Hall, category: str = "A", **kw) -> dict:
    kw.setdefault("priority", "appointment")
    return h.take(category, channel="appointment", **kw)


# (now, expected arrival): slot 10:00–10:30, grace 15 min
@pytest.mark.parametrize(("now", "arrival", "priority"), [
    ("09:05", "early", "appointment"),
    ("10:00", "on_time", "appointment"),
    ("10:30", "on_time", "appointment"),
    ("10:45", "on_time", "appointment"),
    ("10:45:01", "late", None),
    ("11:30", "late", None),
])
def test_check_in_by_code_early_on_time_and_late(now, arrival, priority):
    h = booked(booking())
    h.at(now)
    r = checkin(h, appointment="YY0001")
    t = r["ticket"]
    assert r["ok"] and t["category"] == "B"  # the booking's category, whatever was tapped
    assert t["appointment"]["arrival"] == arrival and t["appointment"]["code"] == "YY0001"
    assert t["appointment"]["slot_start"].startswith("2026-03-02T10:00")
    assert t.get("priority") == priority
    rec = h.state.tickets[t["number"]]
    assert (rec.slot_start is not None) == (arrival != "late")
    b = h.state.bookings["YY0001"]
    assert (b.checked_in_at, b.ticket, b.arrival) == (h.now, t["number"], arrival)
    assert b in h.last.records


def test_the_refusals_change_nothing():
    h = booked(booking(), booking("YY0002", day=3), booking("YY0003", person=KEY))
    h.at("10:05")
    before = (dict(h.state.seq), h.state.hall_seq)
    assert code(checkin(h, appointment="NOPE01")) == "unknown_appointment"
    assert code(checkin(h, appointment="YY0002")) == "not_today"
    assert code(checkin(h, person=OTHER)) == "unknown_appointment"
    assert code(checkin(h)) == "bad_request"  # neither a code nor a card
    assert (dict(h.state.seq), h.state.hall_seq) == before
    assert number(checkin(h, appointment="YY0001"))
    r = checkin(h, appointment="YY0001")
    assert code(r) == "already_checked_in" and "B001" in r["error"]["message"]
    assert h.state.bookings["YY0002"].checked_in_at is None


def test_check_in_by_id_card_picks_todays_open_booking():
    h = booked(booking("YY0001", "A", start="09:00", end="09:30", person=KEY),
               booking("YY0002", "B", start="14:00", end="14:30", person=KEY),
               booking("YY0003", "C", day=5, person=OTHER))
    h.at("09:10")
    assert code(checkin(h, person=OTHER)) == "not_today"
    assert "2026-03-05" in checkin(h, person=OTHER)["error"]["message"]
    t = checkin(h, "B", person=KEY)["ticket"]  # tapped B: the B booking, though A's slot comes first
    assert t["appointment"]["code"] == "YY0002" and t["appointment"]["arrival"] == "early"
    h.later(1)
    t = checkin(h, "C", person=KEY)["ticket"]  # no C booking: the one whose slot comes first
    assert t["appointment"]["code"] == "YY0001" and t["appointment"]["arrival"] == "on_time"
    assert code(checkin(h, person=KEY)) == "already_checked_in"


def test_late_refused_where_the_hall_says_so():
    h = booked(booking(), toml=HALL_TOML + "\n[appointments]\ngrace_min = 5\nlate = \"refuse\"\n")
    h.at("10:35")
    assert checkin(h, appointment="YY0001")["ticket"]["appointment"]["arrival"] == "on_time"
    h2 = booked(booking(), toml=HALL_TOML + "\n[appointments]\ngrace_min = 5\nlate = \"refuse\"\n")
    h2.at("10:35:01")
    r = checkin(h2, appointment="YY0001")
    assert code(r) == "too_late" and "10:00–10:30" in r["error"]["message"]
    assert h2.state.bookings["YY0001"].checked_in_at is None


def test_a_booked_citizen_gets_a_number_past_the_daily_quota():
    h = booked(booking(category="A"))  # A has a quota of 5
    h.at("09:00")
    for _ in range(5):
        number(h.take("A"))
    assert code(h.take("A")) == "quota_full"
    h.at("10:01")
    assert checkin(h, appointment="YY0001")["ticket"]["number"] == "A006"


def test_an_early_appointment_waits_for_its_slot_then_goes_first():
    h = booked(booking(category="A", start="10:00", end="10:30"))
    h.at("09:30")
    h.op(1, "open")
    early = checkin(h, appointment="YY0001")["ticket"]["number"]
    normal = number(h.take("A"))
    h.at("09:40")
    assert h.op(1, "next")["ticket"]["number"] == normal  # the slot has not started
    h.op(1, "done")
    h.at("09:50")
    later = number(h.take("A"))
    h.at("10:00")
    # from the slot's start, before a normal ticket taken within the guard (15 min here) before it
    assert h.op(1, "next")["ticket"]["number"] == early
    h.op(1, "done")
    assert h.op(1, "next")["ticket"]["number"] == later


def test_an_import_updates_open_bookings_but_never_a_checked_in_one():
    h = booked(booking(), booking("YY0002"))
    h.at("10:05")
    number(checkin(h, appointment="YY0001"))
    _, fx = core.handle(h.state, core.BookingsIn("bookings.csv", (
        booking(start="15:00", end="15:30"), booking("YY0002", start="15:00", end="15:30"),
        booking("YY0002", start="15:00", end="15:30"))), h.now)
    assert [r.code for r in fx.records] == ["YY0002"]
    assert f"{h.state.bookings['YY0001'].slot_start:%H:%M}" == "10:00"
    assert f"{h.state.bookings['YY0002'].slot_start:%H:%M}" == "15:00"


def test_bookings_and_check_ins_survive_a_restart_and_count_in_the_figures(tmp_path):
    h = StoredHall(tmp_path / "hall.db", now=at("08:00"))
    core.handle(h.state, core.BookingsIn("x.csv", (booking(), booking("YY0002", category="A"),
                                                   booking("YY0003", start="09:00", end="09:30"))), h.now)
    h.storage.write(h.state.bookings.values())
    h.at("09:55")
    h.op(3, "open")
    b = number(checkin(h, appointment="YY0001"))
    h = h.restart()
    assert h.state.bookings["YY0001"].ticket == b and h.state.tickets[b].slot_end is not None
    assert code(checkin(h, appointment="YY0001")) == "already_checked_in"
    h.at("10:02")
    assert h.op(3, "next")["ticket"]["number"] == b
    h.at("11:00")
    late = number(checkin(h, appointment="YY0002"))
    f = stats.compute(h.storage.conn, date(2026, 3, 2), at("11:00")).appointments
    assert (f.booked, f.checked_in, f.late, f.noshow) == (3, 1, 1, 1)
    assert f.wait_mean_min == 2.0 and f.wait_p90_min == 2.0
    assert h.state.tickets[late].slot_start is None
    h.storage.close()


def test_midnight_forgets_bookings_a_month_old():
    h = booked(booking(day=2), booking("YY0002", day=20))
    h.at(at("00:01", day=10).replace(month=4))
    h.tick()
    assert set(h.state.bookings) == {"YY0002"}  # 2026-03-02 is more than 30 days before 2026-04-10


def cancelled(b: core.Booking) -> core.Booking:
    return core.Booking(code=b.code, category=b.category, day=b.day, start=b.start, end=b.end, person=b.person,
                        name=b.name, cancelled=True)


def test_a_cancelled_booking_is_refused_at_check_in_and_can_be_booked_again():
    h = booked(booking(), booking("YY0002", person=KEY), booking("YY0003"))
    h.at("09:30")
    _, fx = core.handle(h.state, core.BookingsIn("bookings.csv", (
        cancelled(booking()), cancelled(booking("YY0002", person=KEY)))), h.now)
    assert [r.code for r in fx.records] == ["YY0001", "YY0002"]
    assert h.state.bookings["YY0001"].cancelled_at == h.now
    before = (dict(h.state.seq), h.state.hall_seq)
    h.at("10:00")
    r = checkin(h, appointment="YY0001")
    assert code(r) == "unknown_appointment" and "预约已取消" in r["error"]["message"]
    assert code(checkin(h, person=KEY)) == "unknown_appointment"  # the card's only booking was cancelled
    assert (dict(h.state.seq), h.state.hall_seq) == before
    # the same file again changes nothing (the first cancellation time stays); listed as booked, it is again
    _, fx = core.handle(h.state, core.BookingsIn("bookings.csv", (cancelled(booking()),)), h.now)
    assert fx.records == [] and h.state.bookings["YY0001"].cancelled_at == at("09:30")
    core.handle(h.state, core.BookingsIn("bookings.csv", (booking(),)), h.now)
    assert h.state.bookings["YY0001"].cancelled_at is None
    assert number(checkin(h, appointment="YY0001"))
    # a checked-in booking stays as it is: the citizen has the ticket
    t = number(checkin(h, appointment="YY0003"))
    _, fx = core.handle(h.state, core.BookingsIn("bookings.csv", (cancelled(booking("YY0003")),)), h.now)
    assert fx.records == [] and h.state.bookings["YY0003"].cancelled_at is None
    assert h.state.tickets[t].waiting


def test_a_cancelled_booking_survives_a_restart_and_is_no_no_show(tmp_path):
    h = StoredHall(tmp_path / "hall.db", now=at("08:00"))
    core.handle(h.state, core.BookingsIn("x.csv", (booking(), booking("YY0002"))), h.now)
    core.handle(h.state, core.BookingsIn("x.csv", (cancelled(booking("YY0002")),)), h.now)
    h.storage.write(h.state.bookings.values())
    h = h.restart()
    assert h.state.bookings["YY0002"].cancelled_at == at("08:00")
    assert code(checkin(h.at("10:00"), appointment="YY0002")) == "unknown_appointment"
    f = stats.compute(h.storage.conn, date(2026, 3, 2), at("11:00")).appointments
    assert (f.booked, f.checked_in, f.noshow, f.cancelled) == (1, 0, 1, 1)
    h.storage.close()


def test_the_estimate_expects_nobody_for_a_cancelled_booking():
    h = Hall().at("09:00")
    h.op(1, "open")
    for _ in range(3):
        h.take("A")
    h.op(1, "next")
    quiet = core.estimate_wait(h.state, "A", 2, h.now)
    core.handle(h.state, core.BookingsIn("b.csv", tuple(cancelled(booking(f"YY000{i}", "A", start="09:00",
                                                                          end="09:30")) for i in range(4))), h.now)
    assert core.estimate_wait(h.state, "A", 2, h.now) == quiet
    core.handle(h.state, core.BookingsIn("b.csv", tuple(booking(f"YY000{i}", "A", start="09:00", end="09:30")
                                                        for i in range(4))), h.now)
    assert core.estimate_wait(h.state, "A", 2, h.now) > quiet
