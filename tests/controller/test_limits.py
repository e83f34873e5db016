"""Issue 9 §5: per-client limits, a bounded reply cache, and priorities that need a voucher.

The rules live in hallq.controller.core.limits. The pure-core tests drive them with explicit times; the system
tests send through a real Mosquitto to the real controller process and read its record."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections import Counter

import paho.mqtt.client as paho
import pytest
from controller_kit import HALL_TOML, SYSTEM_DEVICES, ControllerProc, Hall, at, code, number
from hallq.controller import core
from hallq.shared.schemas import TakeRequest, WindowRequest
from harness import Monitor
from paho.mqtt.enums import CallbackAPIVersion

LIMITS = """
[limits]
replies = 100
refusals = 50
refusal_keep_s = 60

[limits.kiosk]
rate = 5
burst = 10
open_tickets = 100

[limits.sms]
rate = 1000
burst = 1000
open_tickets = 5

[limits.window]
rate = 1000
burst = 1000
"""
DEVICES = SYSTEM_DEVICES.replace('id = "kiosk-2"\nrole = "kiosk"',
                                 'id = "kiosk-2"\nrole = "kiosk"\nstaff_priorities = ["military", "disabled"]')
DEVICES += """
[[devices]]
id = "sms-1"
role = "sms"

[[devices]]
id = "sms-2"
role = "sms"
"""
TOML = HALL_TOML.replace("daily_quota = 5", "daily_quota = 999") + LIMITS + DEVICES


# -- the pure core ------------------------------------------------------------------------------------------------
def take(h: Hall, client: str, req: str, **kw) -> dict:
    return h.send(client, TakeRequest(req=req, category=kw.pop("category", "B"), **kw))


def test_a_burst_beyond_the_bucket_is_answered_busy_and_not_kept():
    h = Hall(TOML).at("09:00")
    answers = [take(h, "kiosk-1", f"r{i}") for i in range(12)]
    assert [a["ok"] for a in answers] == [True] * 10 + [False] * 2
    assert {code(a) for a in answers[10:]} == {"busy"}
    assert ("kiosk-1", "r10") not in h.state.replies and ("kiosk-1", "r10") not in h.state.refusals
    h.later(1 / 60 * 0.2)  # 0.2 s: one token back (5 a second)
    assert number(take(h, "kiosk-1", "r10")) == "B011"  # the same req, handled now
    assert code(take(h, "kiosk-1", "r11")) == "busy"
    # a repeat of an answered req gets its first answer, bucket or not
    assert number(take(h, "kiosk-1", "r0")) == "B001"


def test_a_clock_stepped_back_does_not_stall_the_buckets():
    h = Hall(TOML).at("10:00")
    for i in range(10):
        take(h, "kiosk-1", f"r{i}")
    h.at("09:00")  # an hour back: the core's own time stays at 10:00
    assert code(take(h, "kiosk-1", "x")) == "busy"
    h.later(1 / 60)  # a second later on the stepped clock: refilled, long before 10:00 comes again
    assert take(h, "kiosk-1", "y")["ok"]


def test_open_tickets_per_client_and_per_role():
    h = Hall(TOML).at("09:00")
    for i in range(5):
        assert take(h, "sms-1", f"r{i}", category="A")["ok"]
    assert code(take(h, "sms-1", "r5", category="A")) == "too_many"
    assert take(h, "sms-2", "s0", category="A")["ok"]  # another client holds its own
    assert take(h, "kiosk-1", "k0", category="A")["ok"]  # and a kiosk has its own role's limit
    h.op(1, "open")
    h.op(1, "next")  # A001 (sms-1's) is called: no longer waiting
    assert take(h, "sms-1", "r6", category="A")["ok"]
    assert h.state.open_by_client == {"sms-1": 5, "sms-2": 1, "kiosk-1": 1}


def test_a_hall_without_devices_gives_every_client_the_default_limits():
    h = Hall(HALL_TOML.replace("daily_quota = 5", "daily_quota = 999")).at("09:00")
    lim = h.cfg.limits.default
    oks = [take(h, "anyone", f"r{i}")["ok"] for i in range(lim.burst + 5)]
    assert oks.count(True) == lim.burst


def test_refusals_are_kept_in_memory_only_and_bounded_in_number_and_age():
    h = Hall(TOML).at("09:00")
    for i in range(80):  # not in [[devices]]: not_allowed (the bucket of an unlisted client is small)
        h.later(1 / 60)
        r = take(h, "intruder", f"x{i}")
        assert code(r) == "not_allowed" and h.last.records == []
    assert len(h.state.refusals) == 50  # [limits] refusals
    h.later(2)  # older than refusal_keep_s when the next refusal comes
    take(h, "intruder", "late")
    assert list(h.state.refusals) == [("intruder", "late")]


def test_the_reply_cache_keeps_the_newest_answers_only():
    h = Hall(TOML).at("09:00")
    h.op(1, "open")
    for i in range(150):
        h.send("caller-1", WindowRequest(req=f"p{i}", window=1, op="pause" if i % 2 == 0 else "resume"))
    assert len(h.state.replies) == 100
    assert ("caller-1", "p149") in h.state.replies and ("caller-1", "p0") not in h.state.replies


def test_a_refusal_that_changed_something_is_kept_like_an_answer():
    h = Hall(TOML).at("09:00")
    take(h, "kiosk-1", "t1", category="A")
    h.op(1, "open")
    h.op(1, "next")
    r = h.send("caller-1", WindowRequest(req="n2", window=1, op="next"))  # A001 done, nothing else waits
    assert code(r) == "empty"
    assert any(isinstance(x, core.CachedReply) for x in h.last.records)


def test_priorities_need_a_voucher():
    h = Hall(TOML).at("09:00")
    # a touch take from an ordinary kiosk claims no priority that needs a document
    for prio in ("military", "disabled", "pregnant", "elderly", "appointment"):
        h.later(1 / 60)
        r = take(h, "kiosk-1", f"t-{prio}", channel="touch", priority=prio)
        assert code(r) == "not_allowed", prio
    h.later(1 / 60)
    assert code(take(h, "kiosk-1", "sms", channel="sms", priority="elderly")) == "not_allowed"
    # the ID card vouches for the elderly (the kiosk read the birth date)
    t = take(h, "kiosk-1", "card", channel="idcard", priority="elderly")
    assert h.state.tickets[number(t)].vouched == "idcard"
    # a kiosk where staff confirm military and disabled (导服台), and nothing else
    t = take(h, "kiosk-2", "m", channel="staff", priority="military")
    assert h.state.tickets[number(t)].vouched == "staff"
    assert code(take(h, "kiosk-2", "p", channel="staff", priority="pregnant")) == "not_allowed"
    # there too, a touch take (no staff member's PIN on the kiosk) claims none
    assert code(take(h, "kiosk-2", "mt", channel="touch", priority="military")) == "not_allowed"
    assert take(h, "kiosk-2", "plain", channel="touch")["ok"]
    assert h.state.tickets[number(h.send("kiosk-2", TakeRequest(req="n", category="B")))].vouched is None


def test_a_new_day_forgets_the_open_tickets():
    h = Hall(TOML).at("11:00")
    take(h, "kiosk-1", "a")
    h.now = at("09:00", day=3)
    h.tick()
    assert h.state.open_by_client == {}


# -- through the real controller process ----------------------------------------------------------------------------
class Client:
    """A plain paho client sending as one client id, recording every answer it gets (by req)."""

    def __init__(self, port: int, name: str):
        self.name = name
        self.answers: dict[str, list[dict]] = {}
        self.cond = threading.Condition()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=name)
        c.max_inflight_messages_set(200)
        ready = threading.Event()
        c.on_connect = lambda cl, *a: cl.subscribe(f"hallq/test/reply/{name}", qos=1)
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(5)
        self.c = c

    def _on_message(self, client, userdata, msg) -> None:
        r = json.loads(msg.payload)
        with self.cond:
            self.answers.setdefault(r["req"], []).append(r)
            self.cond.notify_all()

    def send(self, action: str, payload: dict) -> None:
        self.c.publish(f"hallq/test/req/{self.name}/{action}", json.dumps(payload), qos=1)

    def wait(self, reqs, timeout: float = 30.0) -> bool:
        reqs = set(reqs)
        deadline = time.monotonic() + timeout
        with self.cond:
            while not all(len(self.answers.get(r, ())) >= 1 for r in reqs):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True

    def last(self, req: str) -> dict:
        with self.cond:
            return self.answers[req][-1]

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def limited(mosquitto, tmp_path):
    ctl = ControllerProc(tmp_path / "controller", mosquitto.url, TOML).start()
    mon = Monitor(mosquitto.url, "hallq/test/controller/status")
    clients: list[Client] = []
    try:
        mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=20)
        yield ctl, mon, lambda name: clients.append(Client(mosquitto.port, name)) or clients[-1]
    finally:
        for c in clients:
            c.close()
        mon.close()
        ctl.kill()


def test_a_flood_from_a_hand_written_client_leaves_no_rows_and_the_kiosks_served(limited):
    ctl, _mon, new = limited
    intruder, kiosk = new("intruder"), new("kiosk-1")
    reqs = [f"f{i}" for i in range(3000)]
    for req in reqs:
        intruder.send("take", {"req": req, "category": "B"})
    deadline = time.monotonic() + 60
    while (intruder.c.want_write() or intruder.c._out_messages) and time.monotonic() < deadline:
        time.sleep(0.1)  # everything sent and acknowledged by the broker
    time.sleep(2.0)
    with intruder.cond:
        got = Counter(a[-1]["error"]["code"] for a in intruder.answers.values())
    # not in [[devices]]: the controller subscribes to the listed devices' requests only, so it never reads these
    # (before, it answered not_allowed, then busy, and dropped the rest unanswered: tests/controller/test_flood.py
    # has a listed device's flood)
    assert sum(got.values()) == 0, got
    kiosk.send("take", {"req": "k1", "category": "B", "channel": "touch"})
    assert kiosk.wait(["k1"]) and kiosk.last("k1")["ok"]
    assert ctl.alive()
    with sqlite3.connect(ctl.db) as conn:
        # the flood's refusals changed nothing and were never written (3000 rows on the code before)
        assert conn.execute("SELECT count(*) FROM replies WHERE client = 'intruder'").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM tickets WHERE client = 'intruder'").fetchone()[0] == 0


def test_a_kiosk_beyond_its_rate_hears_busy_and_its_repeat_is_served_later(limited):
    ctl, _mon, new = limited
    k1, k2, caller, sms = new("kiosk-1"), new("kiosk-2"), new("caller-1"), new("sms-1")
    # 10 at once and 5 a second: of 18 sent at once, 10 are served and the rest busy (below twice the burst: the
    # gate lets them all through to the core)
    burst = [f"b{i}" for i in range(18)]
    for req in burst:
        k1.send("take", {"req": req, "category": "B", "channel": "touch"})
    assert k1.wait(burst)
    ok = [r for r in burst if k1.last(r)["ok"]]
    busy = [r for r in burst if not k1.last(r)["ok"]]
    assert len(ok) >= 10 and len(busy) >= 3 and {k1.last(r)["error"]["code"] for r in busy} == {"busy"}, k1.answers
    deadline = time.monotonic() + 40
    while busy and time.monotonic() < deadline:  # the same reqs again: handled now, not answered from a cache
        time.sleep(2.1)  # the bucket is full again
        for req in busy[:10]:
            k1.send("take", {"req": req, "category": "B", "channel": "touch"})
        sent = busy[:10]
        end = time.monotonic() + 20
        while any(len(k1.answers[r]) < 2 for r in sent) and time.monotonic() < end:
            time.sleep(0.05)
        for r in sent:
            k1.answers[r] = k1.answers[r][-1:]
        busy = [r for r in busy if not k1.last(r)["ok"]]
    assert not busy, k1.answers
    numbers = [k1.last(r)["ticket"]["number"] for r in burst]
    assert len(set(numbers)) == 18

    # open tickets: an SMS gateway of this hall holds at most 5 waiting tickets
    first = [f"o{i}" for i in range(6)]
    for req in first:
        sms.send("take", {"req": req, "category": "A", "channel": "sms"})
    assert sms.wait(first)
    assert [sms.last(r)["ok"] for r in first] == [True] * 5 + [False]
    assert sms.last("o5")["error"]["code"] == "too_many"
    caller.send("window", {"req": "w1", "window": 1, "op": "open", "staff": {"id": "s1", "name": "张三"}})
    caller.send("window", {"req": "w2", "window": 1, "op": "next"})
    assert caller.wait(["w1", "w2"]) and caller.last("w2")["ok"]
    time.sleep(0.3)
    sms.send("take", {"req": "o6", "category": "A", "channel": "sms"})
    assert sms.wait(["o6"]) and sms.last("o6")["ok"]

    # a touch take claims no priority that needs a document, unless staff confirm it at that kiosk
    k1.send("take", {"req": "m1", "category": "B", "channel": "touch", "priority": "military"})
    k2.send("take", {"req": "m2", "category": "B", "channel": "staff", "priority": "military"})
    k2.send("take", {"req": "m3", "category": "B", "channel": "touch", "priority": "military"})
    assert k1.wait(["m1"]) and k2.wait(["m2", "m3"])
    assert k1.last("m1")["error"]["code"] == "not_allowed"
    assert k2.last("m3")["error"]["code"] == "not_allowed"  # even there, only with a staff member's confirmation
    n = k2.last("m2")["ticket"]["number"]
    with sqlite3.connect(ctl.db) as conn:
        assert conn.execute("SELECT vouched, priority FROM tickets WHERE number = ?", (n,)).fetchone() == (
            "staff", "military")


def test_the_record_keeps_a_bounded_number_of_answers(limited, mosquitto):
    ctl, mon, new = limited
    caller = new("caller-1")
    caller.send("window", {"req": "open", "window": 1, "op": "open", "staff": {"id": "s1", "name": "张三"}})
    reqs = [f"p{i}" for i in range(300)]
    for i, req in enumerate(reqs):
        caller.send("window", {"req": req, "window": 1, "op": "pause" if i % 2 == 0 else "resume"})
    assert caller.wait(["open", *reqs])
    assert all(caller.last(r)["ok"] for r in reqs)
    ctl.kill()
    with sqlite3.connect(ctl.db) as conn:
        assert conn.execute("SELECT count(*) FROM replies").fetchone()[0] >= 300  # not pruned yet: a minute
    n = len(mon.messages)
    ctl.start()  # start-up prunes to [limits] replies (and so does every minute of running)
    mon.wait_for("hallq/test/controller/status", lambda m: m in mon.messages[n:] and m.payload == b"online", 20)
    with sqlite3.connect(ctl.db) as conn:
        assert conn.execute("SELECT count(*) FROM replies").fetchone()[0] <= 100
    caller.send("window", {"req": "p299", "window": 1, "op": "pause"})  # the newest is still answered the same
    deadline = time.monotonic() + 10
    while len(caller.answers["p299"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert caller.answers["p299"][1] == caller.answers["p299"][0]


def test_the_gate_drops_far_beyond_the_rate_and_forgets_idle_clients():
    from hallq.controller import config as cfgmod

    gate = core.limits.Gate(cfgmod.parse(TOML))
    # kiosk: 5 a second, 10 at once; the gate lets twice that through
    assert sum(gate.admit("kiosk-1", 100.0) for _ in range(50)) == 20
    assert gate.dropped == {"kiosk-1": 30}
    assert gate.admit("kiosk-1", 100.2)  # 10 a second back
    assert sum(gate.admit("intruder", 100.0) for _ in range(20)) == 10  # unlisted: 1 a second, 5 at once
    # a swarm of made-up client ids is forgotten as it refills, never kept without bound
    for i in range(20000):
        gate.admit(f"x{i}", 200.0 + i)
    assert len(gate.buckets) <= 16 * core.limits.SWEEP_AT
    # a demo clock 60 times faster: 60 times the rate
    fast = core.limits.Gate(cfgmod.parse(TOML), speed=60.0)
    assert sum(fast.admit("kiosk-1", 0.0) for _ in range(20)) == 20
    assert sum(fast.admit("kiosk-1", 1.0) for _ in range(1000)) == 20  # (capped at twice the burst)


def test_the_gate_silences_a_flooding_device_for_longer_each_time():
    from hallq.controller import config as cfgmod

    L = core.limits
    gate = L.Gate(cfgmod.parse(TOML))

    def flood(client: str, t: float, n: int = 500) -> list[float]:
        """``n`` requests within 0.1 s from ``t``: the cool-offs the gate decided on."""
        out = []
        for i in range(n):
            now = t + i * 0.1 / n
            if not gate.admit(client, now):
                cool = gate.silence(client, now)
                if cool is not None:
                    out.append(cool)
        return out

    # an honest kiosk at its rate (5 a second here) for a minute: never dropped, never silenced
    for i in range(300):
        assert gate.admit("kiosk-1", 10.0 + i * 0.2)
    assert gate.silenced == {} and "kiosk-1" not in gate.dropped
    assert flood("kiosk-2", 100.0) == [L.COOL_S]  # silenced once; the backlog still coming changes nothing
    assert gate.due(100.0 + L.COOL_S - 0.5) == []
    assert gate.due(100.2 + L.COOL_S) == ["kiosk-2"] and gate.silenced == {}
    t = 100.3 + L.COOL_S
    assert flood("kiosk-2", t) == [2 * L.COOL_S]  # flooding again at once: twice as long
    assert gate.due(t + 2 * L.COOL_S + 0.2) == ["kiosk-2"]
    t += 2 * L.COOL_S + 0.3
    assert flood("kiosk-2", t) == [4 * L.COOL_S]
    assert gate.due(t + 4 * L.COOL_S + 0.2) == ["kiosk-2"]
    assert flood("kiosk-2", t + 4 * L.COOL_S + 0.3 + L.COOL_MEMORY_S + 1) == [L.COOL_S]  # quiet a while: starts over
    # a client not in [[devices]] has no request topic of its own to stop (the controller does not read it)
    assert flood("intruder", 1000.0) == []
    # a hall without [[devices]] reads every client on one wildcard: nothing to silence, the gate drops
    open_hall = L.Gate(cfgmod.parse(HALL_TOML))
    assert [open_hall.silence("kiosk-2", 5.0) for _ in range(200)] == [None] * 200
