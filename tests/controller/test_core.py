"""The pure core with explicit times: numbering, refusals, window operations, dispatch, ratings, midnight."""

from __future__ import annotations

from datetime import time, timedelta

import msgspec
import pytest
from controller_kit import HALL_TOML, Hall, at, code, number
from hallq.controller import core
from hallq.controller.core import state as core_state
from hallq.shared.schemas import Case, TakeRequest, WindowRequest


# -- numbering and take refusals ----------------------------------------------------------------------
def test_numbers_per_category_from_001(hall):
    assert [number(hall.take("A")) for _ in range(3)] == ["A001", "A002", "A003"]
    assert number(hall.take("B")) == "B001"
    assert number(hall.take("C")) == "H001"  # the category's prefix
    assert hall.state.seq == {"A": 3, "B": 1, "C": 1}


def test_take_answer_has_ticket_fields(hall):
    r = hall.take("A", priority="elderly")
    assert r["ok"] and r["req"] == "r1"
    t = r["ticket"]
    assert t["category"] == "A" and t["priority"] == "elderly" and t["ahead"] == 0
    assert t["issued_at"].startswith("2026-03-02T09:00:00+08:00")
    assert isinstance(t["est_wait_min"], int)


def test_unknown_category(hall):
    assert code(hall.take("Z")) == "unknown_category"


@pytest.mark.parametrize("when", ["08:59", "12:00", "13:30", "18:00", "23:59"])
def test_closed_outside_hours(when):
    h = Hall().at(when)
    r = h.take("A")
    assert code(r) == "closed" and "09:00–12:00" in r["error"]["message"]
    assert h.state.seq == {} and not h.last.records[:-1]  # only the cached answer is kept


@pytest.mark.parametrize("when", ["09:00", "11:59", "14:00", "17:59"])
def test_open_within_hours(when):
    assert Hall().at(when).take("A")["ok"]


def test_open_all_day_without_hours():
    toml = HALL_TOML.replace('hours = [["09:00", "12:00"], ["14:00", "18:00"]]\n', "")
    assert Hall(toml).at("03:00").take("A")["ok"]


def test_quota_full(hall):
    for _ in range(5):
        assert hall.take("A")["ok"]
    assert code(hall.take("A")) == "quota_full"
    assert hall.take("B")["ok"]
    assert hall.state.seq["A"] == 5


def test_three_digits_cap_numbers_at_999(hall):
    hall.state.seq["B"] = 999
    assert code(hall.take("B")) == "quota_full"


def test_duplicate_person_waiting_in_category(hall):
    p = "ab" * 16
    assert hall.take("A", person=p)["ok"]
    assert code(hall.take("A", person=p)) == "duplicate"
    assert hall.take("B", person=p)["ok"]  # another category is fine
    hall.op(1, "open")
    hall.op(1, "next")  # A001 called: no longer waiting
    assert number(hall.take("A", person=p)) == "A002"


def test_queue_says_which_categories_an_open_window_serves(hall):
    """``CategoryQueue.serving``: a window signed in and not paused serves its categories; opening, closing,
    pausing and resuming a window sends the ``queue`` topic again."""
    def serving() -> dict[str, bool]:
        return {c: q.serving for c, q in core.queue_state(hall.state, hall.now).categories.items()}

    assert serving() == {"A": False, "B": False, "C": False}  # nobody signed in yet
    hall.op(1, "open")
    assert "queue" in hall.last.changed and serving() == {"A": True, "B": False, "C": False}
    hall.op(2, "open")
    assert serving() == {"A": True, "B": True, "C": False}
    hall.op(2, "pause")
    assert "queue" in hall.last.changed and serving()["B"] is False
    hall.op(2, "resume")
    assert "queue" in hall.last.changed and serving()["B"] is True
    number(hall.take("C"))
    hall.op(3, "open")
    hall.op(3, "next")  # busy serving: it still serves its categories
    assert serving() == {"A": True, "B": True, "C": True}
    hall.op(1, "close")
    hall.op(2, "close")
    assert "queue" in hall.last.changed and serving() == {"A": True, "B": True, "C": True}  # window 3 takes all
    hall.op(3, "close")
    assert serving() == {"A": False, "B": False, "C": False}


# -- idempotent requests ------------------------------------------------------------------------------------
def test_same_req_gets_first_answer_and_changes_nothing(hall):
    payload = TakeRequest(req="same", category="A")
    first = hall.send("kiosk-1", payload)
    again = hall.send("kiosk-1", payload)
    assert first == again and hall.state.seq["A"] == 1
    assert hall.last.records == [] and hall.last.changed == set()
    # another client may use the same req
    assert number(hall.send("kiosk-2", payload)) == "A002"


def test_same_req_refusal_is_repeated_too(hall):
    hall.at("08:00")
    payload = TakeRequest(req="early", category="A")
    assert code(hall.send("kiosk-1", payload)) == "closed"
    hall.at("09:00")
    assert code(hall.send("kiosk-1", payload)) == "closed"


def test_malformed_gets_bad_request_or_the_first_answer(hall):
    first = hall.send("kiosk-1", TakeRequest(req="x1", category="A"))
    hall.state, fx = core.handle(hall.state, core.Malformed("kiosk-1", "x1", "bad"), hall.now)
    assert msgspec.json.decode(fx.reply[1]) == first
    hall.state, fx = core.handle(hall.state, core.Malformed("kiosk-1", "x2", "`category`: missing"), hall.now)
    r = msgspec.json.decode(fx.reply[1])
    assert r == {"req": "x2", "ok": False, "error": {"code": "bad_request", "message": "`category`: missing"}}
    assert fx.records == []


# -- window operations -------------------------------------------------------------------------------------
def test_window_must_be_open(hall):
    hall.take("A")
    for op in ("next", "pause", "resume"):
        assert code(hall.op(1, op)) == "not_allowed"
    assert hall.op(1, "close")["ok"]  # closing a closed window is harmless


def test_unknown_window(hall):
    assert code(hall.op(9, "open")) == "unknown_window"


def test_next_calls_and_announces(hall):
    hall.take("A")
    hall.op(1, "open")
    hall.later(3)
    r = hall.op(1, "next")
    assert r["ticket"]["number"] == "A001" and r["ticket"]["status"] == "called"
    fx = hall.last
    assert [c.ticket for c in fx.calls] == ["A001"] and fx.calls[0].window_name == "1号窗口"
    assert fx.calls[0].recall == 0
    assert {"queue", "board", 1} <= fx.changed
    ws = core.window_state(hall.state, 1)
    assert ws.status == "serving" and ws.ticket.number == "A001" and ws.staff.name == "clerk 1"
    v = hall.state.tickets["A001"].call
    assert v.wait_s == 180 and v.staff_id == "s1"


def test_next_on_empty(hall):
    hall.op(1, "open")
    r = hall.op(1, "next")
    assert code(r) == "empty"


def test_next_while_serving_finishes_current(hall):
    hall.take("A")
    hall.take("A")
    hall.op(1, "open")
    hall.op(1, "next")
    hall.later(5)
    assert number(hall.op(1, "next")) == "A002"
    t = hall.state.tickets["A001"]
    assert t.status == "done" and t.call.outcome == "done" and t.call.case_id is None
    assert t.call.ended_at - t.call.called_at == timedelta(minutes=5)
    # and when nobody waits any more, the current one is still finished, the answer is `empty`
    r = hall.op(1, "next")
    assert code(r) == "empty" and "A002 is done" in r["error"]["message"]
    assert hall.state.tickets["A002"].status == "done"
    assert core.window_state(hall.state, 1).status == "idle"


def test_recall(hall):
    hall.take("A")
    hall.op(1, "open")
    assert code(hall.op(1, "recall")) == "no_ticket"
    hall.op(1, "next")
    r = hall.op(1, "recall")
    assert r["ticket"]["recalls"] == 1
    assert hall.last.calls[0].recall == 1
    hall.op(1, "recall")
    assert hall.last.calls[0].recall == 2
    assert [c.recall for c in core.board(hall.state).calls] == [2, 1, 0]
    assert core.window_state(hall.state, 1).ticket.recalls == 2


def test_noshow_voids_the_ticket(hall):
    hall.take("A")
    hall.take("A")
    hall.op(1, "open")
    assert code(hall.op(1, "noshow")) == "no_ticket"
    hall.op(1, "next")
    r = hall.op(1, "noshow")
    assert r["ticket"]["status"] == "noshow"
    assert number(hall.op(1, "next")) == "A002"
    assert code(hall.op(1, "next")) == "empty"  # A001 cannot be called again
    assert hall.state.tickets["A001"].status == "noshow"


def test_done_with_case(hall):
    hall.take("A")
    hall.op(1, "open")
    assert code(hall.op(1, "done")) == "no_ticket"
    hall.op(1, "next")
    r = hall.op(1, "done", case=Case(id="C-1", item_code="110101", item_name="社保卡补办", kind="instant"))
    assert r["ticket"]["status"] == "done"
    v = hall.state.tickets["A001"].call
    assert (v.case_id, v.item_code, v.item_name, v.case_kind) == ("C-1", "110101", "社保卡补办", "instant")
    assert core.window_state(hall.state, 1).status == "idle"


def test_pause_and_resume(hall):
    hall.take("A")
    hall.op(1, "open")
    hall.op(1, "pause")
    assert core.window_state(hall.state, 1).status == "paused"
    assert code(hall.op(1, "next")) == "paused"
    assert hall.state.tickets["A001"].status == "waiting"
    hall.op(1, "resume")
    assert number(hall.op(1, "next")) == "A001"


def test_open_and_close_sign_clerks_in_and_out(hall):
    from hallq.shared.schemas import Staff

    hall.take("A")
    hall.op(2, "open", staff=Staff(id="w007", name="王芳"))
    ws = core.window_state(hall.state, 2)
    assert ws.status == "idle" and ws.staff.name == "王芳"
    hall.op(2, "next")
    hall.later(4)
    r = hall.op(2, "close")
    assert r["ticket"]["status"] == "done"  # closing finishes the current ticket
    ws = core.window_state(hall.state, 2)
    assert ws.status == "closed" and ws.staff is None and ws.ticket is None
    sessions = [r for fx in hall.effects for r in fx.records if isinstance(r, core.StaffSession)]
    assert sessions[-1].staff_name == "王芳" and sessions[-1].ended_at == hall.now


def test_transfer_to_category_keeps_number_and_goes_first(hall):
    hall.take("A")
    hall.take("B")
    hall.later(1)
    hall.take("B")
    hall.op(1, "open")
    hall.op(2, "open")
    hall.op(1, "next")  # A001 at window 1
    r = hall.op(1, "transfer", to={"category": "B"})
    assert r["ticket"]["number"] == "A001" and r["ticket"]["status"] == "transferred"
    assert core.window_state(hall.state, 1).status == "idle"
    # window 2 serves B: the transferred ticket goes before B001 and B002, which waited longer
    assert number(hall.op(2, "next")) == "A001"
    assert number(hall.op(2, "next")) == "B001"
    t = hall.state.tickets["A001"]
    assert [v.outcome for v in t.calls] == ["transferred", "done"]
    assert t.calls[1].first is False


def test_transfer_to_window(hall):
    hall.take("A")
    hall.take("A")
    for w in (1, 2, 3):
        hall.op(w, "open")
    hall.op(1, "next")
    hall.op(1, "transfer", to={"window": 3})
    assert number(hall.op(2, "next")) == "A002"  # window 2 may not take a ticket sent to window 3
    assert number(hall.op(3, "next")) == "A001"


def test_transfer_errors(hall):
    hall.take("A")
    hall.op(1, "open")
    assert code(hall.op(1, "transfer", to={"category": "B"})) == "no_ticket"
    hall.op(1, "next")
    assert code(hall.op(1, "transfer", to={"category": "Z"})) == "unknown_category"
    assert code(hall.op(1, "transfer", to={"window": 42})) == "unknown_window"
    assert code(hall.op(1, "transfer", to={"window": 1})) == "bad_request"
    assert hall.state.tickets["A001"].status == "called"  # refusals changed nothing


# -- dispatch ------------------------------------------------------------------------------------------------
def test_fifo_within_a_category(hall):
    for _ in range(3):
        hall.take("A")
        hall.later(1)
    hall.op(1, "open")
    assert [number(hall.op(1, "next")) for _ in range(3)] == ["A001", "A002", "A003"]


def test_priority_lead(hall):
    hall.take("A")  # 09:00
    hall.later(10)
    hall.take("A", priority="elderly")  # 09:10: effective 08:55, before A001
    hall.op(1, "open")
    assert number(hall.op(1, "next")) == "A002"
    assert number(hall.op(1, "next")) == "A001"


def test_priority_does_not_pass_long_waiters(hall):
    hall.take("A")  # 09:00
    hall.later(20)
    hall.take("A", priority="disabled")  # 09:20: effective 09:05, after A001 (09:00)
    hall.op(1, "open")
    assert number(hall.op(1, "next")) == "A001"


def test_priority_ahead_count(hall):
    hall.take("A")  # 09:00
    hall.later(10)
    hall.take("A")  # 09:10
    hall.later(10)
    r = hall.take("A", priority="pregnant")  # 09:20: effective 09:05, behind A001 only
    assert r["ticket"]["ahead"] == 1
    assert hall.take("A")["ticket"]["ahead"] == 3


def test_window_serves_all_its_categories_by_longest_wait(hall):
    hall.take("B")  # 09:00
    hall.later(1)
    hall.take("A")  # 09:01
    hall.op(2, "open")
    assert number(hall.op(2, "next")) == "B001"
    assert number(hall.op(2, "next")) == "A001"


# -- ratings --------------------------------------------------------------------------------------------------
def test_rate_once_per_ticket_called_at_that_window(hall):
    hall.take("A")
    hall.take("A")
    hall.op(1, "open")
    assert code(hall.rate(1, "A001")) == "not_ratable"  # not called yet
    hall.op(1, "next")
    hall.op(1, "done", case=Case(id="C-9", item_code="X1"))
    assert code(hall.rate(2, "A001")) == "not_ratable"  # another window
    assert code(hall.rate(1, "B777")) == "not_ratable"  # no such ticket today
    r = hall.rate(1, "A001", "satisfied")
    assert r == {"req": r["req"], "ok": True, "rating": {"id": 1}}
    rating = next(x for x in hall.last.records if isinstance(x, core.Rating))
    assert (rating.number, rating.window, rating.staff_id, rating.case_id, rating.item_code, rating.level) == (
        "A001", 1, "s1", "C-9", "X1", "satisfied")
    assert code(hall.rate(1, "A001")) == "already_rated"
    hall.op(1, "next")
    assert hall.rate(1, "A002")["rating"]["id"] == 2  # rating while still served is fine


def test_a_no_show_cannot_be_rated(hall):
    hall.take("A")
    hall.op(1, "open")
    hall.op(1, "next")
    hall.op(1, "noshow")
    assert code(hall.rate(1, "A001")) == "not_ratable"
    assert not any(isinstance(x, core.Rating) for x in hall.last.records)


def test_rate_after_transfer_at_either_window(hall):
    hall.take("A")
    hall.op(1, "open")
    hall.op(3, "open")
    hall.op(1, "next")
    hall.op(1, "transfer", to={"window": 3})
    hall.op(3, "next")
    assert hall.rate(1, "A001")["ok"]


# -- devices ---------------------------------------------------------------------------------------------------
DEVICES = """
[[devices]]
id = "kiosk-1"
role = "kiosk"

[[devices]]
id = "caller-1"
role = "window"
window = 1

[[devices]]
id = "pad-1"
role = "pad"
window = 1
"""


def test_devices_restrict_roles_and_windows():
    h = Hall(HALL_TOML + DEVICES).at("09:00")
    assert code(h.take("A", client="stranger")) == "not_allowed"
    assert code(h.take("A", client="caller-1")) == "not_allowed"
    assert h.take("A", client="kiosk-1")["ok"]
    assert code(h.op(1, "open", client="kiosk-1")) == "not_allowed"
    assert code(h.op(2, "open", client="caller-1")) == "not_allowed"
    assert h.op(1, "open", client="caller-1")["ok"]
    h.op(1, "next", client="caller-1")
    assert code(h.rate(1, "A001", client="kiosk-1")) == "not_allowed"
    assert code(h.rate(2, "A001", client="pad-1")) == "not_allowed"
    assert h.rate(1, "A001", client="pad-1")["ok"]


# -- midnight --------------------------------------------------------------------------------------------------
def test_midnight_rollover(hall):
    hall.take("A")
    hall.take("A")
    hall.take("B")
    hall.op(1, "open")
    hall.op(1, "next")
    hall.at(at("00:00", day=3))
    fx = hall.tick()
    expired = {r.number for r in fx.records if isinstance(r, core.TicketRec) and r.status == "expired"}
    assert expired == {"A002", "B001"}
    done = {r.number for r in fx.records if isinstance(r, core.TicketRec) and r.status == "done"}
    assert done == {"A001"}
    assert hall.state.day == at("00:00", day=3).date() and hall.state.seq == {}
    assert core.window_state(hall.state, 1).status == "closed"
    assert core.queue_state(hall.state, hall.now).categories["A"].waiting == 0
    assert {"queue", "board", 1, 2, 3} <= fx.changed
    hall.at(at("09:00", day=3))
    assert number(hall.take("A")) == "A001"
    assert code(hall.rate(1, "A001")) == "not_ratable"


def test_any_event_rolls_the_day_over(hall):
    hall.take("A")
    hall.at(at("09:00", day=3))
    assert number(hall.take("A")) == "A001"


# -- estimates and retained payloads -------------------------------------------------------------------------------
def test_estimate_grows_with_queue_and_shrinks_with_windows(hall):
    e1 = [hall.take("A")["ticket"]["est_wait_min"] for _ in range(4)]
    assert e1 == sorted(e1) and e1[-1] > e1[0]
    hall.op(1, "open")
    hall.op(1, "next")
    one = core.estimate_wait(hall.state, "A", 3, hall.now)
    hall.op(2, "open")
    hall.op(2, "next")
    two = core.estimate_wait(hall.state, "A", 3, hall.now)
    assert two < one


def test_estimate_is_zero_with_an_idle_window(hall):
    hall.op(1, "open")
    assert hall.take("A")["ticket"]["est_wait_min"] == 0


def test_estimate_learns_service_times(hall):
    hall.op(1, "open")
    for _ in range(5):
        hall.take("A")
    for _ in range(5):
        hall.op(1, "next")
        hall.later(20)
    assert hall.state.service_min["A"] > core.SERVICE_PRIOR_MIN + 4


def test_a_categorys_first_services_are_averaged_with_the_prior():
    """The first ten services: their plain mean with the 6-minute prior (as one service); then the EWMA."""
    st = core.new_state(Hall().cfg, at("09:00"))
    for _ in range(3):
        core.estimate.learn(st, "A", timedelta(minutes=15))
    assert st.service_min["A"] == pytest.approx((6 + 3 * 15) / 4)
    for _ in range(6):
        core.estimate.learn(st, "A", timedelta(minutes=15))
    assert st.service_min["A"] == pytest.approx((6 + 9 * 15) / 10)
    core.estimate.learn(st, "A", timedelta(minutes=5))  # the tenth: weight 0.1 from now on
    assert st.service_min["A"] == pytest.approx(14.1 + 0.1 * (5 - 14.1))


def test_estimate_plays_dispatch_forward():
    h = Hall().at("09:00")
    h.op(1, "open")
    h.take("A")
    h.op(1, "next")  # A001 at window 1 from 09:00, expected to take 6 min (the prior)
    h.later(2)
    for _ in range(3):
        h.take("A")
    # window 1 is free in 4 min, then A002, A003, A004 take 6 min each: the new ticket waits 4 + 18
    assert h.take("A")["ticket"]["est_wait_min"] == 22
    assert core.estimate_wait(h.state, "A", 4, h.now) == 28  # the queue topic's figure for one more


def test_estimate_counts_other_categories_on_shared_windows():
    h = Hall().at("09:00")
    h.op(2, "open")  # window 2 serves A and B
    h.take("B")
    h.take("B")
    h.op(2, "next")  # B001, free in 6 min
    h.later(1)
    # B002 is older than the new A ticket and goes first at the only open window
    assert h.take("A")["ticket"]["est_wait_min"] == 5 + 6


def test_estimate_priority_is_shorter():
    h = Hall().at("09:00")
    h.op(2, "open")
    for _ in range(4):
        h.take("B")
    h.op(2, "next")
    normal = h.take("B")["ticket"]["est_wait_min"]
    priority = h.take("B", priority="elderly")["ticket"]["est_wait_min"]
    assert priority < normal


def test_estimate_expects_priority_arrivals_ahead_of_normal_tickets():
    h = Hall().at("09:00")
    h.op(1, "open")
    for _ in range(3):
        h.take("A")
    h.op(1, "next")
    quiet = core.estimate_wait(h.state, "A", 2, h.now)
    h.state.first_issue = h.now - timedelta(hours=2)
    for i in range(30):  # a stream of priority tickets in the last hour
        core_state.note_issue(h.state, (h.now - timedelta(minutes=i * 2), "A", True))
    assert core.estimate.priority_rates(h.state, h.now) == {"A": 0.5}
    assert core.estimate_wait(h.state, "A", 2, h.now) > quiet
    core_state.forget_issues(h.state)
    for i in range(30):  # ... but two hours ago: not expected now
        core_state.note_issue(h.state, (h.now - timedelta(minutes=120 + i), "A", True))
    assert core.estimate_wait(h.state, "A", 2, h.now) == quiet


def test_estimate_expects_the_booked_appointments_still_to_come():
    h = Hall().at("09:00")
    h.op(1, "open")
    for _ in range(3):
        h.take("A")
    h.op(1, "next")
    quiet = core.estimate_wait(h.state, "A", 2, h.now)
    tomorrow = h.now.date() + timedelta(days=1)
    other_day = tuple(core.Booking(f"Z{i}", "A", tomorrow, time(9, 0), time(9, 30)) for i in range(4))
    core.handle(h.state, core.BookingsIn("bookings.csv", other_day), h.now)
    assert core.estimate_wait(h.state, "A", 2, h.now) == quiet
    bookings = tuple(core.Booking(f"Y{i}", "A", h.now.date(), time(9, 0), time(9, 30)) for i in range(4))
    core.handle(h.state, core.BookingsIn("bookings.csv", bookings), h.now)
    assert core.estimate_wait(h.state, "A", 2, h.now) > quiet


def test_estimate_is_the_median_of_days_played_with_the_measured_spread():
    h = Hall().at("09:00")
    h.op(1, "open")
    for _ in range(6):
        h.take("A")
    h.op(1, "next")
    for x in [1.0] * 10 + [21.0] * 5:  # services of 1 min, and a third of 21 min: mean 7.67
        core.estimate.learn(h.state, "A", timedelta(minutes=x))
    h.state.service_min["A"] = 7.67
    # the mean says 4 tickets x 7.67 + what is left of A001; most played days are far shorter
    e = core.estimate.wait_estimate(h.state, "A", 5, h.now)
    assert e.raw < 4 * 7.67
    assert e == core.estimate.wait_estimate(h.state, "A", 5, h.now)  # the same state, the same answer


def test_estimate_closed_formula_for_long_queues(monkeypatch):
    h = Hall().at("09:00")
    h.op(1, "open")
    for _ in range(3):
        h.take("A")
    h.op(1, "next")
    monkeypatch.setattr(core.estimate, "SIMULATE_MAX_WAITING", 0)
    # (2 ahead + 0.5) * 6 min / 1 window
    assert core.estimate_wait(h.state, "A", 2, h.now) == 15


def test_estimate_before_clerks_sign_in_counts_every_serving_window():
    h = Hall().at("09:00")
    for _ in range(3):
        h.take("C")  # only window 3 serves C, nobody signed in yet
    assert core.estimate_wait(h.state, "C", 3, h.now) == 18


def test_the_take_answer_and_the_queue_carry_the_range(hall):
    hall.op(1, "open")
    hall.op(1, "next")
    for _ in range(4):
        t = hall.take("A")["ticket"]
        low, high = t["est_wait_range"]
        assert low <= t["est_wait_min"] <= high and low % 5 == 0 and high % 5 == 0 and high > low
    q = core.queue_state(hall.state, hall.now).categories["A"]
    assert q.est_wait_range is not None and q.est_wait_range[0] <= q.est_wait_min <= q.est_wait_range[1]


def test_the_range_learns_from_today_s_calls():
    h = Hall().at("09:00")
    h.op(1, "open")
    h.take("A")
    h.op(1, "next")
    for _ in range(4):
        h.take("A")
    before = core.wait_estimate(h.state, "A", 4, h.now)
    # A001 until 09:06, then A002..A005 six minutes each: 30 min; the prior range is -25 % .. +49 % of
    # (30 + 5) around it (21.25 .. 47.15), out to whole five minutes
    assert (before.minutes, before.low, before.high) == (30, 20, 50)
    for _ in range(30):  # today the waits ran twice the estimate
        h.state.wait_errors.append((10.0, 20.0))
    after = core.wait_estimate(h.state, "A", 4, h.now)
    assert after.minutes == before.minutes  # the estimate itself stays the model's
    assert after.low > before.low and after.high > before.high


def test_the_range_learns_from_first_calls():
    h = Hall().at("09:00")
    h.op(1, "open")
    h.take("A")
    h.later(3)
    h.take("A")
    h.op(1, "next")  # A001 called 3 min after it was taken, told 0
    assert list(h.state.wait_errors) == [(0.0, 3.0)]
    h.later(6)
    h.op(1, "next")  # A002: its estimate then, against 6 min
    e, w = h.state.wait_errors[-1]
    assert w == 6.0 and e == h.state.tickets["A002"].est_raw


def test_an_appointment_before_its_slot_waits_at_least_until_then(hall):
    hall.op(1, "open")
    est = core.wait_estimate(hall.state, "A", 0, hall.now,
                             core.estimate._NewTicket(99, hall.now, "appointment", "A", slot_start=at("09:40")))
    assert est.minutes == 40


def test_the_estimate_plays_an_appointment_at_its_slot():
    h = Hall().at("09:20")
    h.op(1, "open")
    h.take("A")
    h.op(1, "next")  # A001 at window 1 until 09:26 (the 6-minute prior)
    h.take("A", priority="appointment")
    t = h.state.tickets["A002"]
    core_state.dequeue(h.state, t)
    t.slot_start = at("09:40")  # checked in for the 09:40 slot
    core_state.enqueue(h.state, t)
    core_state.forget_issues(h.state)  # no stream of priority tickets expected: the play alone
    # 09:26 the window is free, A002 is not due yet (nor within 4 min): it takes A003
    assert h.take("A")["ticket"]["est_wait_min"] == 6
    # 09:32 the same: A004
    assert h.take("A")["ticket"]["est_wait_min"] == 12
    # 09:38: A002 is due within 4 min: the window keeps itself free (dispatch rule 6) until 09:40; A002
    # does not go before A005 (taken 09:20; the test hall's guard is 15 min, an appointment yields 5), so
    # A005 at 09:40
    assert h.take("A")["ticket"]["est_wait_min"] == 20


def test_the_estimate_plays_a_window_kept_free_for_an_appointment():
    h = Hall().at("09:20")
    h.op(1, "open")
    h.take("A")
    h.op(1, "next")  # A001 at window 1 until 09:26 (the 6-minute prior)
    h.take("A", priority="appointment")
    t = h.state.tickets["A002"]
    core_state.dequeue(h.state, t)
    t.slot_start = at("09:28")
    core_state.enqueue(h.state, t)
    core_state.forget_issues(h.state)
    h.at("09:25")
    # 09:26 window 1 would take A003, but A002 is due at 09:28 and goes before it (09:28 + 5 - 15 < 09:25):
    # the window keeps itself free (dispatch rule 6), A002 09:28–09:34, then A003: 9 min from 09:25
    assert h.take("A")["ticket"]["est_wait_min"] == 9
    h.at("09:26")
    r = h.op(1, "next")  # and so the core does
    assert code(r) == "empty" and "A002" in r["error"]["message"]
    h.at("09:28")
    assert number(h.op(1, "next")) == "A002"


def test_no_priority_arrivals_are_expected_after_the_hall_stops_issuing_numbers():
    h = Hall().at("11:20")
    h.op(1, "open")
    for _ in range(6):
        h.take("A")
    h.op(1, "next")
    h.state.first_issue = at("09:00")

    def stream_until(now):  # a priority ticket every 30 s in the hour before ``now``
        core_state.forget_issues(h.state)
        for i in range(120):
            core_state.note_issue(h.state, (now - timedelta(seconds=i * 30), "A", True))

    stream_until(h.now)
    late = core.estimate_wait(h.state, "A", 5, h.now)
    h.at("10:20")
    stream_until(h.now)
    early = core.estimate_wait(h.state, "A", 5, h.now)
    assert late < early  # 11:20: numbers stop at 12:00, so 40 min of arrivals at most


def test_queue_and_board_payloads(hall):
    hall.take("A")
    hall.take("B")
    q = core.queue_state(hall.state, hall.now)
    assert q.categories["A"].waiting == 1 and q.categories["C"].waiting == 0
    hall.op(2, "open")
    for _ in range(12):
        hall.take("B")
    for _ in range(12):
        hall.op(2, "next")
    b = core.board(hall.state)
    # A001 (first issued) and B001..B011: newest first
    assert len(b.calls) == 10 and b.calls[0].ticket == "B011" and b.calls[-1].ticket == "B002"


def test_refused_window_ops_change_nothing(hall):
    hall.take("A")
    hall.op(1, "open")
    before = (hall.state.seq.copy(), hall.state.tickets["A001"].status, hall.state.windows[1].status)
    for payload in (
        WindowRequest(req="z1", window=1, op="done"),
        WindowRequest(req="z2", window=1, op="recall"),
        WindowRequest(req="z3", window=9, op="next"),
    ):
        hall.send("caller-1", payload)
        # nothing to write: the refusal is kept in memory only, for a repeat of its req (core/limits.py)
        assert hall.last.records == [] and ("caller-1", payload.req) in hall.state.refusals
        assert hall.last.calls == [] and hall.last.changed == set()
    assert before == (hall.state.seq, hall.state.tickets["A001"].status, hall.state.windows[1].status)


def test_rating_time_from_the_pad(hall):
    from datetime import datetime

    from hallq.shared.schemas import RateRequest

    hall.take("A")
    hall.take("A")
    hall.op(1, "open")
    hall.op(1, "next")
    hall.op(1, "next")
    hall.later(30)
    pressed = datetime(2026, 3, 2, 1, 5)  # naive: taken as hall time
    hall.send("pad-1", RateRequest(req="p1", window=1, ticket="A001", level="basic", at=pressed))
    r = next(x for x in hall.last.records if isinstance(x, core.Rating))
    assert r.at == at("01:05") and r.received_at == hall.now
    utc = datetime.fromisoformat("2026-03-02T01:10:00+00:00")
    hall.send("pad-1", RateRequest(req="p2", window=1, ticket="A002", level="basic", at=utc))
    r = next(x for x in hall.last.records if isinstance(x, core.Rating))
    assert r.at == at("09:10") and r.at.utcoffset() == timedelta(hours=8)


def _same_services(h, category, minutes, to=None, n=15):
    """``n`` measured services of ``category``, all of ``minutes`` (sent on to ``to``): plays draw no spread."""
    for _ in range(n):
        core.estimate.learn(h.state, category, timedelta(minutes=minutes), to)


def test_the_estimate_keeps_no_window_free_for_a_holder_who_has_not_come():
    h = Hall().at("09:22")
    h.op(1, "open")
    h.take("A")
    h.op(1, "next")  # A001 from 09:22, 6 min (every measured A service): window 1 free at 09:28
    _same_services(h, "A", 6.0)
    h.state.service_min["A"] = 6.0
    h.at("09:23")
    h.take("A")  # A002
    booking = (core.Booking("Y1", "A", h.now.date(), time(9, 30), time(10, 0)),)
    core.handle(h.state, core.BookingsIn("bookings.csv", booking), h.now)
    core_state.forget_issues(h.state)  # no priority tickets expected: the booked holder alone
    h.at("09:25")
    # the holder is expected at 09:30 (no check-ins today to learn from: at the slot's start). At 09:28 the
    # window takes A002: rule 6 keeps a window free only for a holder who has checked in, and nobody has
    # (keeping it free 09:28-09:30 for the holder, as the play did, gave 17). The holder is due from 09:30
    # and goes before A003 (the test hall's guard is 15 min): A002 09:28-09:34, the holder 09:34-09:40,
    # A003 at 09:40
    assert h.take("A")["ticket"]["est_wait_min"] == 15


def test_the_estimate_plays_the_transfers_the_services_make():
    h = Hall().at("09:00")
    h.op(2, "open")  # window 2 serves A and B
    _same_services(h, "A", 2.0, to="B")  # every A service ends after 2 min with a transfer to B ...
    _same_services(h, "B", 6.0)  # ... where services take 6 min
    core_state.forget_issues(h.state)
    h.take("A")
    h.op(2, "next")  # A001 from 09:00
    # A001 is expected to be sent on to B at 09:02, and a transfer goes first (rule 1): A001 at B
    # 09:02-09:08, then B001 (without the transfer played: 2)
    assert h.take("B")["ticket"]["est_wait_min"] == 8
    assert list(h.state.service_to["B"]) == [None] * 15
    assert list(h.state.service_to["A"]) == ["B"] * 15


def test_a_transfer_is_measured_with_where_it_sent_the_ticket():
    h = Hall().at("09:00")
    h.op(1, "open")
    h.take("A")
    h.take("A")
    h.op(1, "next")
    h.later(3)
    h.op(1, "transfer", to={"category": "B"})
    h.op(1, "next")
    h.later(5)
    h.op(1, "done")
    assert list(h.state.service_recent["A"]) == [3.0, 5.0]
    assert list(h.state.service_to["A"]) == ["B", None]
