"""When the ``queue`` topic goes out and how old its estimates may be (core.views.QueueView), and that the
cheap ways of building it (and of a take's range) give what the plain ones give."""

from __future__ import annotations

import heapq
import json
import math
import random
from datetime import timedelta

import pytest
from controller_kit import Hall, at, number
from hallq.controller import core
from hallq.controller.core import estimate, views
from hallq.controller.core.dispatch import rank
from hallq.controller.core.state import LANE_CLASSES

EVERY = core.ESTIMATE_EVERY
GAP = core.PUBLISH_EVERY


def counts(q) -> dict:
    return {c: (x.waiting, x.order, x.oldest_at) for c, x in q.categories.items()}


def counts_of(state) -> dict:
    """What ``counts`` reads from a payload, straight from the state (no estimate worked out)."""
    return {c.code: (n := state.waiting_count(c.code), views.queue_order(state, c.code),
                     views.oldest_waiting(state, c.code) if n else None) for c in state.cfg.categories}


def estimates(q) -> dict:
    return {c: (x.est_wait_min, x.est_wait_range) for c, x in q.categories.items()}


def test_a_change_after_a_quiet_spell_goes_out_at_once_with_its_own_estimates(hall: Hall):
    view = core.QueueView()
    hall.op(3, "open")
    for _ in range(3):
        hall.take("B")
    q = view.changed(hall.state, hall.now)
    assert q is not None and q == core.queue_state(hall.state, hall.now)
    assert view.due() is None and not view.pending and not view.stale
    hall.later(5)  # a quiet spell
    hall.take("B")
    q = view.changed(hall.state, hall.now)
    assert q == core.queue_state(hall.state, hall.now)
    assert q.categories["B"].waiting == 4 and view.estimated_at == hall.now and view.due() is None


def test_changes_within_the_gap_go_out_together_by_its_end(hall: Hall):
    view = core.QueueView()
    hall.op(3, "open")
    t0 = hall.now
    assert view.changed(hall.state, t0) is not None
    hall.take("B")
    hall.now = t0 + GAP / 2
    assert view.changed(hall.state, hall.now) is None  # held back ...
    assert view.pending and view.due() == t0 + GAP  # ... until the end of the gap
    hall.now = t0 + GAP
    q = view.payload(hall.state, hall.now)
    assert counts(q) == counts(core.queue_state(hall.state, hall.now))
    assert q.categories["B"].waiting == 1 and not view.pending


def test_estimates_are_reused_within_the_interval_and_caught_up_by_its_end(hall: Hall):
    view = core.QueueView()
    hall.op(3, "open")
    t0 = hall.now
    first = view.changed(hall.state, t0)
    assert first is not None
    for i in range(1, 6):  # a take every 0.15 s: each goes out (past the gap), with the first estimates
        hall.now = t0 + i * timedelta(seconds=0.15)
        hall.take("B")
        q = view.changed(hall.state, hall.now)
        assert q is not None and counts(q) == counts(core.queue_state(hall.state, hall.now))
        assert estimates(q) == estimates(first) and view.estimated_at == t0
        assert view.stale and view.due() == t0 + EVERY
    assert estimates(core.queue_state(hall.state, hall.now)) != estimates(first)  # the reuse shows
    hall.now = t0 + EVERY
    q = view.payload(hall.state, hall.now)
    assert q == core.queue_state(hall.state, hall.now)  # every figure the state's own, as of now
    assert view.estimated_at == hall.now and not view.stale and view.due() is None


def test_a_clock_stepped_back_or_a_restored_state_is_estimated_afresh(hall: Hall):
    view = core.QueueView()
    hall.op(3, "open")
    hall.take("B")
    view.changed(hall.state, hall.now)
    hall.take("B")
    back = hall.now - timedelta(seconds=30)
    q = view.payload(hall.state, back)
    assert q == core.queue_state(hall.state, back) and view.estimated_at == back
    other = Hall().at("09:00")
    other.op(3, "open")
    q = view.payload(other.state, back + GAP)  # another state object (a restart restores one)
    assert q == core.queue_state(other.state, back + GAP) and view.estimated_at == back + GAP


@pytest.mark.parametrize("seed", range(3))
def test_what_goes_out_is_never_older_than_promised(seed: int):
    """A controller's worker, played with random batches and pauses: publish what ``changed`` gives, and
    ``payload`` when ``due`` has come. Every payload shows the state as it is; no change waits longer than
    the gap; no estimate shown was made more than ``EVERY`` before; and once things are quiet the topic
    holds exactly what a fresh ``queue_state`` gives."""
    rnd = random.Random(seed)
    h = Hall().at("09:00")
    view = core.QueueView()
    h.op(3, "open")
    h.op(2, "open", client="caller-2")
    sent: list = []
    changed_at = None

    def publish(q) -> None:
        assert counts(q) == counts_of(h.state)
        assert h.now - view.estimated_at < EVERY
        sent.append((h.now, q))

    for _ in range(160):
        h.now += timedelta(seconds=rnd.choice((0.01, 0.03, 0.08, 0.2, 0.5, 1.3)))
        due = view.due()
        if due is not None and h.now >= due:
            assert changed_at is None or h.now - changed_at <= GAP + timedelta(seconds=1.3)
            publish(view.payload(h.state, h.now))
            if not view.pending:
                changed_at = None
        batch = rnd.randint(1, 4)
        for _ in range(batch):
            if rnd.random() < 0.7:
                h.take(rnd.choice("ABC"), priority=rnd.choice((None, None, None, "elderly")))
            else:
                w = rnd.choice((2, 3))
                h.op(w, "next", client=f"caller-{w}")
        q = view.changed(h.state, h.now)
        if q is None:
            changed_at = changed_at or h.now
        else:
            publish(q)
            changed_at = None
    # quiet: whatever is due goes out, and then the topic is the state's own, estimates included
    while (due := view.due()) is not None:
        h.now = max(h.now, due)
        publish(view.payload(h.state, h.now))
    assert sent[-1][1] == core.queue_state(h.state, h.now)


def _plain_order(state, category):
    """queue_order as it was: every source merged by rank."""
    guard = state.lead
    transfers = sorted((t for t in state.transfers if t.to_window is None and t.queue == category),
                       key=lambda t: rank(t, guard))
    lanes = [state.lanes.get((category, cls)) or () for cls in LANE_CLASSES]
    return [t.number for t in heapq.merge(transfers, *lanes, key=lambda t: rank(t, guard))]


@pytest.mark.parametrize("seed", range(8))
def test_queue_order_is_the_merge_of_every_lane(seed: int):
    rnd = random.Random(seed)
    h = Hall().at("09:00")
    for w in (1, 2, 3):
        h.op(w, "open", client=f"caller-{w}")
    for _ in range(120):
        h.later(rnd.random())
        r = rnd.random()
        if r < 0.6:
            h.take(rnd.choice("BC"), priority=rnd.choice((None, None, "elderly", "disabled")))
        elif r < 0.8:
            w = rnd.choice((2, 3))
            h.op(w, "next", client=f"caller-{w}")
        else:
            w = rnd.choice((2, 3))
            cur = h.state.windows[w].current
            if cur is not None:
                to = rnd.choice(({"window": 2}, {"category": "B"}, {"category": "C"}))
                h.op(w, "transfer", client=f"caller-{w}", to=to)
        for c in "ABC":
            assert views.queue_order(h.state, c) == _plain_order(h.state, c)


def test_waiting_count_counts_lanes_and_transfers_to_the_queue(hall: Hall):
    hall.op(3, "open")
    for c in "BBCB":
        hall.take(c)
    hall.take("B", priority="elderly")
    hall.op(3, "next")  # the elderly citizen's B ticket
    hall.op(3, "transfer", to={"category": "C"})
    for c in "ABC":
        plain = sum(len(hall.state.lanes[(c, cls)]) for cls in LANE_CLASSES)
        plain += sum(1 for t in hall.state.transfers if t.to_window is None and t.queue == c)
        assert hall.state.waiting_count(c) == plain
    assert hall.state.waiting_count("C") == 2 and hall.state.waiting_count("B") == 3


def test_the_running_controller_catches_the_queue_up_after_a_burst(system):
    """A burst of takes: the retained queue ends up with every ticket, and with the estimates the core
    gives for the state after the burst (not those made at its first take)."""
    _, r = system
    n = 12
    for i in range(n):
        number(r.send("kiosk-1", "take", {"req": f"burst{i}", "category": "B"}))
    last = r.mon.wait_for("hallq/test/queue", lambda m: json.loads(m.payload)["categories"]["B"]["waiting"] == n)
    # the same takes on the pure core (no window is open: the estimate does not depend on when)
    h = Hall().at("09:00")
    for _ in range(n):
        h.take("B")
    want = core.queue_state(h.state, h.now).categories["B"]
    fresh = r.mon.wait_for("hallq/test/queue", lambda m: json.loads(m.payload)["categories"]["B"] == {
        "waiting": n, "est_wait_min": want.est_wait_min, "est_wait_range": list(want.est_wait_range),
        "order": want.order, "oldest_at": json.loads(m.payload)["categories"]["B"].get("oldest_at"),
        **({} if want.serving else {"serving": False})},
        timeout=5 + EVERY.total_seconds())
    assert json.loads(fresh.payload)["categories"]["B"]["order"] == [f"B{i:03d}" for i in range(1, n + 1)]
    assert last is not None


def _plain_quantiles(state) -> tuple[float, float]:
    errors = sorted((w - e) / (e + estimate.RANGE_SCALE_MIN) for e, w in state.wait_errors)
    if len(errors) < estimate.RANGE_MIN_SAMPLES:
        return estimate.RANGE_PRIOR
    return tuple(errors[max(math.ceil(q * len(errors)) - 1, 0)] for q in estimate.RANGE_QUANTILES)


def test_the_range_quantiles_are_worked_out_again_whenever_the_errors_change():
    """The range's quantiles are kept between takes (estimate._range_quantiles): after every first call,
    at midnight and for another state they are what working them out afresh gives."""
    rnd = random.Random(7)
    h = Hall().at("09:00")
    other = Hall().at("09:00")
    for w in (2, 3):
        h.op(w, "open", client=f"caller-{w}")
    seen = set()
    for i in range(600):
        h.later(rnd.random() * 2)
        if rnd.random() < 0.55:
            h.take(rnd.choice("BC"))
        else:
            w = rnd.choice((2, 3))
            h.op(w, "next", client=f"caller-{w}")
        if i % 50 == 0:
            assert estimate._range_quantiles(other.state) == estimate.RANGE_PRIOR  # another state between
        z = estimate._range_quantiles(h.state)
        assert z == _plain_quantiles(h.state)
        seen.add(z)
    assert len(h.state.wait_errors) == h.state.wait_errors.maxlen and len(seen) > 20  # it did move
    h.at(at("08:00", day=3)).tick()  # midnight clears the errors
    assert estimate._range_quantiles(h.state) == estimate.RANGE_PRIOR == _plain_quantiles(h.state)


@pytest.mark.parametrize("seed", range(6))
def test_the_views_kept_orders_are_the_merge_of_every_lane_after_any_change(seed: int):
    """QueueView extends each lane's numbers while the lane only grows at its tail: after takes, calls,
    cancels, check-ins that go in before others (appointments by due time), transfers and midnight, every
    payload's order is still the plain merge of the state."""
    from datetime import date, time

    from hallq.shared.schemas import CancelRequest

    rnd = random.Random(seed)
    h = Hall().at("08:00")
    bookings = tuple(core.Booking(code=f"YY{i:04d}", category="A", day=date(2026, 3, 2),  # A: held in one lane
                                  start=time(9 + i // 4, 15 * (i % 4)), end=time(9 + i // 4, 15 * (i % 4) + 14),
                                  person=None, name="张*") for i in range(12))
    core.handle(h.state, core.BookingsIn("bookings.csv", bookings), h.now)
    h.at("09:00")
    for w in (1, 2, 3):
        h.op(w, "open", client=f"caller-{w}")
    view = core.QueueView()
    persons: dict[str, str] = {}
    booked = list(bookings)
    rnd.shuffle(booked)  # a later slot may check in first: its ticket goes in behind the earlier ones' tickets
    checked: list[bool] = []
    for step in range(300):
        h.later(rnd.random() * 0.5)
        r = rnd.random()
        if step == 200:
            view.payload(h.state, h.now)
            h.at(at("09:00", day=3))  # midnight: every lane empties, numbering starts again
            h.tick()
            for w in (1, 2, 3):
                h.op(w, "open", client=f"caller-{w}")
        elif r < 0.5:
            person = f"{rnd.randrange(16**8):064x}" if rnd.random() < 0.3 else None
            elderly = person is None and rnd.random() < 0.2  # (a priority lane: the queue is merged)
            reply = h.take(rnd.choice("BBC"), person=person, client="sms-1" if person else "kiosk-1",
                           channel="sms" if person else "idcard" if elderly else None,
                           priority="elderly" if elderly else None)
            if person and reply.get("ok"):
                persons[reply["ticket"]["number"]] = person
        elif r < 0.6 and booked:
            checked.append(h.take("A", channel="appointment", priority="appointment",
                                  appointment=booked.pop().code)["ok"])
        elif r < 0.75:
            w = rnd.choice((2, 3))
            h.op(w, "next", client=f"caller-{w}")
        elif r < 0.85 and persons:
            n = rnd.choice(sorted(persons))
            h.send("sms-1", CancelRequest(req=h.req(), ticket=n, person=persons.pop(n)))
        elif r < 0.95:
            w = rnd.choice((2, 3))
            if h.state.windows[w].current is not None:
                h.op(w, "transfer", client=f"caller-{w}", to=rnd.choice(({"category": "B"}, {"category": "C"})))
        if rnd.random() < 0.5:
            q = view.payload(h.state, h.now)
            for c in "ABC":
                assert q.categories[c].order == _plain_order(h.state, c)
        for c in "ABC":  # the counts kept as tickets go in and out: what the lanes and transfers hold
            plain = sum(len(h.state.lanes[(c, cls)]) for cls in LANE_CLASSES)
            plain += sum(1 for t in h.state.transfers if t.to_window is None and t.queue == c)
            assert h.state.waiting_count(c) == plain
    assert checked.count(True) >= 3


def test_after_midnight_the_views_orders_start_again():
    h = Hall().at("17:00")
    view = core.QueueView()
    for _ in range(3):
        h.take("C")
    h.op(3, "open")
    h.op(3, "next")  # H001
    assert view.payload(h.state, h.now).categories["C"].order == ["H002", "H003"]
    h.at(at("09:00", day=3))
    h.tick()  # yesterday's tickets expire, the lanes empty, numbers start again
    for _ in range(3):
        h.take("C")
    assert view.payload(h.state, h.now).categories["C"].order == ["H001", "H002", "H003"] == _plain_order(h.state, "C")


def test_the_priority_takes_are_kept_beside_the_recent_takes():
    """``priority_recent`` is ``issues_recent``'s priority takes, in order, also once the oldest leave."""
    from hallq.controller.core import state as core_state

    h = Hall().at("09:00")
    rnd = random.Random(5)
    for i in range(1500):
        core_state.note_issue(h.state, (h.now + timedelta(seconds=i), rnd.choice("ABC"), rnd.random() < 0.3))
        if i % 97 == 0:
            assert list(h.state.priority_recent) == [e for e in h.state.issues_recent if e[2]]
    assert len(h.state.issues_recent) == h.state.issues_recent.maxlen
    assert list(h.state.priority_recent) == [e for e in h.state.issues_recent if e[2]]
    core_state.forget_issues(h.state)
    assert not h.state.priority_recent
