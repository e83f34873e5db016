"""The dispatch policy (hallq.controller.core.dispatch) with explicit times, and the core's lanes against it.

The tables drive the pure function :func:`pick_next` with plain tickets; the property test drives the
whole core (takes, calls, transfers, appointments) and checks every ``next`` against :func:`pick_next`
over all the waiting tickets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from controller_kit import Hall, at, code, number
from hallq.controller.core import state as core_state
from hallq.controller.core.dispatch import ahead_of, pick_next
from hallq.controller.core.views import queue_order
from hypothesis import given, settings
from hypothesis import strategies as st

GUARD = timedelta(minutes=60)


@dataclass
class W:
    """A waiting ticket as the policy sees it."""

    name: str
    seq: int
    issued_at: datetime
    queue: str = "A"
    priority: str | None = None
    to_window: int | None = None
    transferred_at: datetime | None = None
    slot_start: datetime | None = None


def tickets(rows: list[tuple]) -> list[W]:
    """Rows: (name, issued, queue, kind), kind: normal | a priority (elderly ...) | appointment (no known
    slot) | appointment@HH:MM (its slot) | transfer@HH:MM (to the queue) | window<N>@HH:MM (to window N)."""
    out = []
    for i, (name, issued, queue, kind) in enumerate(rows, start=1):
        t = W(name, i, at(issued), queue)
        if kind == "normal":
            pass
        elif kind.startswith("appointment@"):
            t.priority, t.slot_start = "appointment", at(kind.split("@")[1])
        elif kind.startswith("transfer@"):
            t.transferred_at = at(kind.split("@")[1])
        elif kind.startswith("window"):
            no, when = kind.removeprefix("window").split("@")
            t.to_window, t.transferred_at = int(no), at(when)
        else:
            t.priority = kind
        out.append(t)
    return out


TABLE = [
    # (what it shows, waiting rows, window, its categories, now, expected)
    ("first come first served within a category",
     [("N1", "09:00", "A", "normal"), ("N2", "09:05", "A", "normal")], 1, "A", "09:30", "N1"),
    ("a shared window takes the longest wait among its categories",
     [("A1", "09:01", "A", "normal"), ("B1", "09:00", "B", "normal")], 2, "AB", "09:30", "B1"),
    ("a window calls only its categories",
     [("B1", "09:00", "B", "normal"), ("A1", "09:05", "A", "normal")], 1, "A", "09:30", "A1"),
    ("a priority ticket goes before normal tickets",
     [("N1", "09:00", "A", "normal"), ("P1", "09:10", "A", "elderly")], 1, "A", "09:30", "P1"),
    ("... each kind of priority",
     [("N1", "09:00", "A", "normal"), ("P1", "09:40", "A", "military")], 1, "A", "09:45", "P1"),
    ("the guard: not before a normal ticket taken 60 min or more earlier",
     [("N1", "08:10", "A", "normal"), ("P1", "09:10", "A", "disabled")], 1, "A", "09:30", "N1"),
    ("... but 59 min is within the guard",
     [("N1", "08:11", "A", "normal"), ("P1", "09:10", "A", "pregnant")], 1, "A", "09:30", "P1"),
    ("priority tickets among themselves: the first taken",
     [("P1", "09:10", "A", "elderly"), ("P2", "09:05", "B", "elderly")], 2, "AB", "09:30", "P2"),
    ("transfers first, before priority and older normal tickets",
     [("N1", "08:40", "A", "normal"), ("P1", "09:00", "A", "elderly"), ("T1", "08:50", "A", "transfer@09:20")],
     1, "A", "09:30", "T1"),
    ("the oldest transfer first",
     [("T1", "08:00", "A", "transfer@09:20"), ("T2", "09:00", "A", "transfer@09:10")], 1, "A", "09:30", "T2"),
    ("a transfer to another window is not this window's",
     [("T1", "08:00", "A", "window2@09:20"), ("N1", "09:00", "A", "normal")], 1, "A", "09:30", "N1"),
    ("a transfer to this window, whatever its category",
     [("N1", "08:00", "A", "normal"), ("T1", "09:00", "B", "window1@09:20")], 1, "A", "09:30", "T1"),
    ("an appointment is not called before its slot starts",
     [("Y1", "09:00", "A", "appointment@10:00"), ("N1", "09:05", "A", "normal")], 1, "A", "09:55", "N1"),
    ("... and goes first once it has",
     [("Y1", "09:00", "A", "appointment@10:00"), ("N1", "09:05", "A", "normal")], 1, "A", "10:00", "Y1"),
    ("appointments and priority tickets: the first due (slot start vs priority's issue)",
     [("Y1", "09:00", "A", "appointment@09:30"), ("P1", "09:20", "A", "elderly")], 1, "A", "09:40", "P1"),
    ("... a late arrival is due at its check-in",
     [("Y1", "09:50", "A", "appointment@09:30"), ("P1", "09:40", "A", "elderly")], 1, "A", "09:55", "P1"),
    ("... an appointment due first goes first",
     [("P1", "09:40", "A", "elderly"), ("Y1", "09:00", "A", "appointment@09:30")], 1, "A", "09:45", "Y1"),
    ("... but a priority ticket due less than 5 min after an appointment goes before it",
     [("Y1", "09:00", "A", "appointment@09:30"), ("P1", "09:34", "A", "elderly")], 1, "A", "09:40", "P1"),
    ("... and 5 min after does not",
     [("Y1", "09:00", "A", "appointment@09:30"), ("P1", "09:35", "A", "elderly")], 1, "A", "09:40", "Y1"),
    ("the guard holds for appointments too",
     [("N1", "08:00", "A", "normal"), ("Y1", "08:30", "A", "appointment@09:30")], 1, "A", "09:45", "N1"),
    ("a kiosk's appointment ticket without a known slot is due when taken",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:10", "A", "appointment")], 1, "A", "09:30", "Y1"),
    ("the same second: the ticket issued first in the hall",
     [("A1", "09:00", "A", "normal"), ("B1", "09:00", "B", "normal")], 2, "BA", "09:30", "A1"),
    ("nothing this window may call",
     [("B1", "09:00", "B", "normal"), ("T1", "08:00", "A", "window2@09:00")], 1, "A", "09:30", None),
    ("only an appointment whose slot has not started",
     [("Y1", "09:00", "A", "appointment@10:00")], 1, "A", "09:30", None),
]


@pytest.mark.parametrize(("rows", "window", "cats", "now", "expected"), [r[1:] for r in TABLE],
                         ids=[r[0] for r in TABLE])
def test_policy_table(rows, window, cats, now, expected):
    ts = tickets(rows)
    got = pick_next(window, tuple(cats), ts, at(now), GUARD)
    assert (got.name if got is not None else None) == expected
    # the order of the input does not matter
    got_rev = pick_next(window, tuple(cats), list(reversed(ts)), at(now), GUARD)
    assert got_rev is got


def test_a_stream_of_priority_tickets_cannot_hold_a_normal_ticket_back_beyond_the_guard():
    h = Hall().at("09:00")  # the test hall's guard is 15 min
    h.state.cfg.categories[0].daily_quota = None
    h.take("A")  # normal, 09:00
    h.op(1, "open")
    served = []
    for _ in range(40):  # a priority ticket every minute, the window serves one a minute
        h.later(1)
        h.take("A", priority="elderly")
        served.append(number(h.op(1, "next")))
    # A001 goes right after the priority tickets taken less than 15 minutes after it (09:01-09:14)
    assert served.index("A001") == 14


def test_the_core_keeps_transfers_first(hall):
    hall.take("A", priority="elderly")
    hall.take("A")
    hall.op(2, "open")
    assert number(hall.op(2, "next")) == "A001"
    hall.op(2, "transfer", to={"category": "B"})
    hall.later(1)
    hall.take("B", priority="elderly")
    hall.op(3, "open")
    assert number(hall.op(3, "next")) == "A001"  # before the newer priority ticket of B


def _check_in(h: Hall, number_: str, slot: str) -> None:
    """Make a waiting appointment ticket one for a booked slot (as the check-in gives it)."""
    t = h.state.tickets[number_]
    core_state.dequeue(h.state, t)
    t.slot_start = at(slot)
    core_state.enqueue(h.state, t)


def test_the_core_calls_an_appointment_at_its_slot(hall):
    hall.take("A", priority="appointment")
    _check_in(hall, "A001", "09:30")
    hall.take("A")
    hall.op(1, "open")
    assert number(hall.op(1, "next")) == "A002"  # 09:00: the slot has not started
    hall.at("09:30")
    hall.take("A")
    assert number(hall.op(1, "next")) == "A001"


def test_the_core_calls_appointments_in_the_order_of_their_slots(hall):
    hall.take("A", priority="appointment")
    _check_in(hall, "A001", "10:00")
    hall.take("A", priority="appointment")
    _check_in(hall, "A002", "09:30")  # checked in later, for an earlier slot
    hall.op(1, "open")
    hall.at("09:29")
    assert code(hall.op(1, "next")) == "empty"  # no slot has started: nothing to call yet
    hall.at("09:30")
    assert number(hall.op(1, "next")) == "A002"
    hall.at("10:00")
    assert number(hall.op(1, "next")) == "A001"


def test_ahead_counts_what_goes_first(hall):
    hall.take("A")  # 09:00
    hall.later(10)
    hall.take("A")  # 09:10
    hall.later(10)
    r = hall.take("A", priority="pregnant")  # 09:20, guard 15: after A001 (09:00), before A002 (09:10)
    assert r["ticket"]["ahead"] == 1
    assert hall.take("A")["ticket"]["ahead"] == 3
    t = hall.state.tickets["A003"]
    assert ahead_of(hall.state, t) == 1


def test_queue_order_is_the_call_order_and_agrees_with_ahead(hall):
    hall.take("A")  # A001 09:00
    hall.later(10)
    hall.take("A")  # A002 09:10
    hall.later(10)
    hall.take("A", priority="elderly")  # A003 09:20: guard 15, after A001, before A002
    hall.take("A", priority="appointment")
    _check_in(hall, "A004", "09:30")  # due 09:30: after A002 (09:10 + 15 = 09:25 < 09:30)
    order = queue_order(hall.state, "A")
    assert order == ["A001", "A003", "A002", "A004"]
    for i, n in enumerate(order):
        assert ahead_of(hall.state, hall.state.tickets[n]) == i
    hall.op(1, "open")
    hall.at("09:30")
    called = [number(hall.op(1, "next")) for _ in range(4)]
    assert called == order


# -- the lanes give the same answer as the pure policy ---------------------------------------------------------
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("take"), st.sampled_from("ABC"),
                  st.sampled_from([None, None, None, "elderly", "military", "appointment", "appointment"]),
                  st.integers(-30, 90)),
        st.tuples(st.just("next"), st.sampled_from([1, 2, 3])),
        st.tuples(st.just("transfer"), st.sampled_from([1, 2, 3]), st.sampled_from(["A", "B", "C", 1, 2, 3])),
        st.tuples(st.just("wait"), st.floats(0, 40)),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_core_dispatch_matches_pick_next(ops):
    h = Hall().at("09:00")
    for c in h.state.cfg.categories:
        c.daily_quota = None
    for w in (1, 2, 3):
        h.op(w, "open")
    for op in ops:
        if op[0] == "wait":
            h.later(op[1])
        elif op[0] == "take":
            _, cat, prio, slot_in = op
            r = h.take(cat, priority=prio)
            if r["ok"] and prio == "appointment" and slot_in >= 0:  # a booking with a slot
                _check_in(h, number(r), (h.now + timedelta(minutes=slot_in)).strftime("%H:%M:%S"))
        elif op[0] == "transfer":
            _, w, to = op
            if h.state.windows[w].current is None or to == w:
                continue
            target = {"category": to} if isinstance(to, str) else {"window": to}
            assert h.op(w, "transfer", to=target)["ok"]
        else:
            w = op[1]
            win = h.state.windows[w]
            waiting = [t for t in h.state.tickets.values() if t.waiting]
            assert h.state.waiting_total == len(waiting)
            idle = [x.categories for x in h.state.windows.values()
                    if x.no != w and x.staff is not None and not x.paused and x.current is None]
            expect = pick_next(w, win.categories, waiting, h.now, h.state.lead, idle)
            rep = h.op(w, "next")
            if expect is None:
                assert code(rep) == "empty"
            else:
                assert number(rep) == expect.number


# -- held capacity: a window keeps itself free for an appointment due within HOLD (rule 6) ----------------------
HOLD_TABLE = [
    # (what it shows, waiting rows, window, its categories, idle windows' categories, now, expected)
    ("a window that would start a normal ticket holds for an appointment due in 4 min",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", [], "09:56", None),
    ("... not earlier than that",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", [], "09:55:59", "N1"),
    ("... nor when another idle window may serve it",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", ["AB"], "09:57", "N1"),
    ("... but an idle window of another category does not cover it",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", ["C"], "09:57", None),
    ("... one idle window covers one appointment",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:20", "A", "appointment@10:00"),
      ("Y2", "09:21", "A", "appointment@10:00")], 1, "A", ["A"], "09:57", None),
    ("... it holds before a priority ticket too",
     [("P1", "09:50", "A", "elderly"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", [], "09:57", None),
    ("... but not before a transfer (it has queued once)",
     [("T1", "09:00", "A", "transfer@09:50"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", [], "09:57", "T1"),
    ("... and a due appointment is called",
     [("Y0", "09:00", "A", "appointment@09:30"), ("Y1", "09:20", "A", "appointment@10:00")], 1, "A", [], "09:57",
     "Y0"),
    ("... an appointment of a category the window does not serve: no hold",
     [("N1", "09:00", "A", "normal"), ("Y1", "09:20", "B", "appointment@10:00")], 1, "A", [], "09:57", "N1"),
]


@pytest.mark.parametrize(("rows", "window", "cats", "idle", "now", "expected"), [r[1:] for r in HOLD_TABLE],
                         ids=[r[0] for r in HOLD_TABLE])
def test_hold_table(rows, window, cats, idle, now, expected):
    ts = tickets(rows)
    got = pick_next(window, tuple(cats), ts, at(now), GUARD, [tuple(c) for c in idle])
    assert (got.name if got is not None else None) == expected


def test_the_core_keeps_a_window_free_for_an_appointment_due_soon(hall):
    hall.take("A")  # A001 normal
    hall.take("A", priority="appointment")
    _check_in(hall, "A002", "09:03")
    hall.op(1, "open")
    r = hall.op(1, "next")  # 09:00: A002 is due at 09:03, window 1 waits for it, and the clerk is told
    assert code(r) == "empty" and "A002" in r["error"]["message"] and "09:03" in r["error"]["message"]
    hall.op(2, "open")  # window 2 (A, B) opens: idle, so it covers A002 ...
    assert number(hall.op(1, "next")) == "A001"  # ... and window 1 takes the normal ticket
    hall.at("09:03")
    assert number(hall.op(2, "next")) == "A002"
