"""Issue 9 §4: a request carries its deadline (``ttl_ms``); the controller refuses ``expired`` (changing nothing) a
request it could not apply in time, and the sender waits longer than that deadline, so a kiosk that gave up was
refused or never served: no number is issued that the citizen never saw.

The core's rule is tested with explicit times and with generated sequences (hypothesis); the system test stops
the real controller process (SIGSTOP) behind a real Mosquitto for longer than a kiosk's deadline."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import time
from datetime import timedelta

import pytest
from controller_kit import HALL_TOML, SYSTEM_DEVICES, ControllerProc, Hall, code, number
from hallq.controller import core
from hallq.shared.mqtt import HallClient, RequestTimeout, request_ttl
from hallq.shared.schemas import REPLY_WAIT, TakeRequest, WindowRequest
from harness import Monitor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

TOML = HALL_TOML.replace("daily_quota = 5", "daily_quota = 999")


def send(h: Hall, client: str, payload, deadline_s: float | None) -> dict:
    """``payload`` as the app hands it over: with its deadline ``deadline_s`` seconds after ``h.now``."""
    deadline = None if deadline_s is None else h.now + timedelta(seconds=deadline_s)
    h.state, fx = core.handle(h.state, core.Request(client, payload, deadline), h.now)
    h.effects.append(fx)
    return json.loads(fx.reply[1])


def snapshot(h: Hall) -> tuple:
    s = h.state
    return (dict(s.seq), len(s.tickets), s.hall_seq, s.waiting_total, dict(s.open_by_client), len(s.replies),
            {w: (r.current, r.staff) for w, r in s.windows.items()})


# -- the pure core ------------------------------------------------------------------------------------------------
def test_a_request_past_its_deadline_is_refused_expired_and_changes_nothing():
    h = Hall(TOML).at("09:00")
    before = snapshot(h)
    a = send(h, "kiosk-1", TakeRequest(req="late", category="A", ttl_ms=3000), -0.001)
    assert code(a) == "expired" and "nothing was done" in a["error"]["message"]
    assert snapshot(h) == before and h.last.records == [] and not h.last.changed
    # a later copy of the same attempt (a resend, carrying what was left of the same deadline) is refused too,
    # and the refusal is not kept: a new attempt with the same req (a pad's journal, later) is served then
    assert code(send(h, "kiosk-1", TakeRequest(req="late", category="A", ttl_ms=1), -0.5)) == "expired"
    assert snapshot(h) == before and ("kiosk-1", "late") not in h.state.refusals
    assert number(send(h, "kiosk-1", TakeRequest(req="late", category="A", ttl_ms=3000), 3)) == "A001"
    # in time: served
    assert number(send(h, "kiosk-1", TakeRequest(req="ok", category="A", ttl_ms=3000), 0.001)) == "A002"


def test_a_repeat_of_a_served_request_gets_its_ticket_whatever_its_deadline():
    """The answer was lost after the number was issued: the kiosk's resend (same req) reaches the controller
    after the deadline. The number is the citizen's: the resend gets it, not ``expired``."""
    h = Hall(TOML).at("09:00")
    first = send(h, "kiosk-1", TakeRequest(req="k1", category="A", ttl_ms=3500), 3.5)
    h.later(3 / 60)  # 3 s later
    again = send(h, "kiosk-1", TakeRequest(req="k1", category="A", ttl_ms=500), -0.5)
    assert again == first and number(again) == "A001"
    assert h.state.seq["A"] == 1


def test_window_operations_expire_too():
    h = Hall(TOML).at("09:00")
    h.op(1, "open")
    h.take("A")
    before = snapshot(h)
    a = send(h, "caller-1", WindowRequest(req="n1", window=1, op="next", ttl_ms=2000), -1)
    assert code(a) == "expired" and snapshot(h) == before and not h.last.calls


def test_an_expired_request_costs_no_token_of_its_client():
    toml = TOML + "\n[limits.default]\nrate = 1\nburst = 2\nopen_tickets = 100\n"
    h = Hall(toml).at("09:00")
    for i in range(5):
        assert code(send(h, "kiosk-1", TakeRequest(req=f"x{i}", category="A", ttl_ms=1), -1)) == "expired"
    assert number(send(h, "kiosk-1", TakeRequest(req="y1", category="A"), None)) == "A001"
    assert number(send(h, "kiosk-1", TakeRequest(req="y2", category="A"), None)) == "A002"


def test_sender_clocks_measure_how_much_longer_a_copy_took_than_the_quickest():
    c = core.limits.SenderClocks()
    # the kiosk's monotonic clock is 1000 s behind ours; copies take 5 ms at best
    assert c.delay("kiosk-1", "aa", 0, 1000.005) == 0.0  # the first copy of a clock: taken as quick
    assert c.delay("kiosk-1", "aa", 1000, 1001.005) == pytest.approx(0.0)
    assert c.delay("kiosk-1", "aa", 2000, 1004.005) == pytest.approx(2.0)  # 2 s in a stopped controller's socket
    assert c.delay("kiosk-1", "aa", 5000, 1005.004) == 0.0  # quicker than ever: the new least
    assert c.delay("kiosk-1", "aa", 6000, 1006.005) == pytest.approx(0.001)
    # the sender restarted: another clock, another offset
    assert c.delay("kiosk-1", "bb", 7, 1007.0) == 0.0
    assert c.delay("kiosk-1", "bb", 1007, 1009.0) == pytest.approx(1.0)
    # clocks of other clients are their own
    assert c.delay("kiosk-2", "aa", 0, 2000.0) == 0.0
    # a clock that drifts (0.1 s per window, against ours): the least of the last windows follows it
    W = core.limits.OFFSET_WINDOW_S
    assert c.delay("kd", "cc", 0, 0.0) == 0.0
    for k in range(1, 4):
        c.delay("kd", "cc", int(k * W * 1000), k * W + 0.1 * k)
    # 0.3 s behind the first least by now: counted as 0.1 s (one window's drift), not 0.3
    assert c.delay("kd", "cc", int((3 * W + 1) * 1000), 3 * W + 1 + 0.3) == pytest.approx(0.1, abs=0.002)


@settings(max_examples=200, deadline=None)
@given(st.floats(-1e6, 1e6), st.lists(st.tuples(st.floats(0, 30), st.floats(0, 5)), min_size=1, max_size=40))
def test_sender_clocks_never_see_a_copy_quicker_than_it_was(offset, copies):
    """The estimated delay is never more than the true one beyond the quickest copy: the deadline never counts
    from before the true send (a request is never refused for time it did not spend)."""
    c = core.limits.SenderClocks()
    t, quickest = 0.0, None
    for gap, took in copies:
        t += gap
        received = t + took + offset
        quickest = took if quickest is None else min(quickest, took)
        d = c.delay("k", "aa", round(t * 1000), received)
        assert d <= took - quickest + 0.002


# one step of a generated run: (req index, seconds of deadline left when handled (None: no deadline), minutes later)
STEP = st.tuples(st.integers(0, 7), st.one_of(st.none(), st.floats(-5, 5).filter(lambda x: abs(x) >= 0.001)), st.sampled_from([0, 0.01, 0.1]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(STEP, min_size=1, max_size=30))
def test_generated_runs_never_serve_a_request_past_its_deadline(steps):
    """Whatever the order of first copies, repeats and deadlines: a copy handled past its deadline is never
    served (only a req served before gets its kept answer); every number given is in the state, once; a req
    once served keeps that answer."""
    h = Hall(TOML).at("09:00")
    first: dict[str, dict] = {}
    for i, left, later in steps:
        req = f"r{i}"
        before = snapshot(h)
        a = send(h, "kiosk-1", TakeRequest(req=req, category="A", ttl_ms=5000), left)
        if req in first and first[req]["ok"]:
            assert a == first[req]  # the kept answer, deadline or not
        else:
            if left is not None and left < 0:
                assert code(a) == "expired"  # past its deadline: never served
            first[req] = a
        if not a["ok"]:
            assert snapshot(h) == before
        h.later(later)
    served = {r: number(a) for r, a in first.items() if a["ok"]}
    assert len(set(served.values())) == len(served) == h.state.seq.get("A", 0)
    for n in served.values():
        assert h.state.tickets[n].client == "kiosk-1"


# -- the client ---------------------------------------------------------------------------------------------------
def test_the_client_stamps_every_copy_with_what_is_left_of_its_deadline(mosquitto):
    """No controller: the request times out; each copy sent carried ``ttl_ms``, less each time, and the client
    waited the margin longer than the first copy's deadline."""
    mon = Monitor(mosquitto.url, "hallq/test/req/#")
    c = HallClient(mosquitto.url, "test", "kiosk-1", on_fatal=lambda why: None).start()
    try:
        assert c.wait_connected(10)
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout):
            c.request("take", TakeRequest(req="t1", category="A"), timeout=4.0, resend_every=1.0)
        waited = time.monotonic() - t0
        deadline = time.monotonic() + 5
        while len(mon.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        ttls = [json.loads(m.payload)["ttl_ms"] for m in mon.messages]
        sent = [json.loads(m.payload)["sent"] for m in mon.messages]
        assert len({s["clock"] for s in sent}) == 1 and [s["ms"] for s in sent] == sorted(s["ms"] for s in sent)
        assert len(ttls) >= 4 and ttls == sorted(ttls, reverse=True) and len(set(ttls[:3])) == 3, ttls
        assert ttls[0] == pytest.approx(request_ttl(4.0) * 1000, abs=50)
        assert waited >= ttls[0] / 1000 * REPLY_WAIT - 0.05 and ttls[0] == pytest.approx(2000, abs=50)
        # copies sent after the deadline carry 1 ms: the controller answers them from its cache only (a served
        # request whose answer was lost), never by serving them
        assert ttls[-1] == 1
    finally:
        c.stop()
        mon.close()


# -- the real controller, stopped past a kiosk's deadline -------------------------------------------------------------
@pytest.fixture
def hall(mosquitto, tmp_path):
    ctl = ControllerProc(tmp_path / "controller", mosquitto.url, TOML + SYSTEM_DEVICES).start()
    mon = Monitor(mosquitto.url, "hallq/test/#")
    kiosk = HallClient(mosquitto.url, "test", "kiosk-1", on_fatal=lambda why: None).start()
    try:
        mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=30)
        assert kiosk.wait_connected(10)
        yield ctl, mon, kiosk
    finally:
        if ctl.alive():
            os.kill(ctl.proc.pid, signal.SIGCONT)
        kiosk.stop()
        mon.close()
        ctl.kill()


def test_a_kiosk_that_gave_up_on_a_stopped_controller_gets_no_number(hall):
    ctl, mon, kiosk = hall
    for i in range(1, 6):  # a kiosk at work: the controller learns how quick its copies can be
        ok = kiosk.request("take", TakeRequest(req=f"before{i}", category="A", channel="touch"), timeout=10,
                           resend_every=1)
        assert ok.ticket.number == f"A00{i}"
    os.kill(ctl.proc.pid, signal.SIGSTOP)  # a controller stalled (swapping, a long fsync, a debugger)
    try:
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout):
            kiosk.request("take", TakeRequest(req="stalled", category="A", channel="touch"), timeout=3.0,
                          resend_every=1.0)
        assert time.monotonic() - t0 >= 3.0
        time.sleep(2.0)
    finally:
        os.kill(ctl.proc.pid, signal.SIGCONT)  # it wakes up and finds the kiosk's copies waiting for it
    m = mon.wait_for("hallq/test/reply/kiosk-1", lambda m: json.loads(m.payload).get("req") == "stalled", timeout=20)
    answer = json.loads(m.payload)
    assert answer["ok"] is False and answer["error"]["code"] == "expired", answer
    after = kiosk.request("take", TakeRequest(req="after", category="A", channel="touch"), timeout=10, resend_every=1)
    assert after.ticket.number == "A006"  # A006: "stalled" took no number
    time.sleep(0.3)
    assert ctl.alive()
    with sqlite3.connect(ctl.db) as conn:
        rows = conn.execute("SELECT number FROM tickets WHERE client = 'kiosk-1' ORDER BY number").fetchall()
        assert rows == [(f"A00{i}",) for i in range(1, 7)]
        assert conn.execute("SELECT count(*) FROM replies WHERE req = 'stalled'").fetchone()[0] == 0
    # every answer to "stalled" the kiosk's copies got was `expired`: none carried a number
    answers = [json.loads(m.payload) for m in mon.messages if m.topic == "hallq/test/reply/kiosk-1"]
    assert all(not a["ok"] for a in answers if a.get("req") == "stalled")
