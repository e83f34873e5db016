"""SIGKILL the controller in the middle of a load of concurrent takes: no answered ticket is lost, none is
issued twice, repeated requests get their first answer, and the retained state is out before ``online``."""

from __future__ import annotations

import json
import sqlite3
import threading
import time

import paho.mqtt.client as paho
from controller_kit import ControllerProc
from harness import Monitor
from paho.mqtt.enums import CallbackAPIVersion

HALL = """
[hall]
id = "test"
name = "重启测试大厅"

[[categories]]
code = "A"
name = "甲"

[[categories]]
code = "B"
name = "乙"

[[categories]]
code = "C"
name = "丙"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A", "B"]

[[windows]]
no = 2
name = "2号窗口"
categories = ["*"]

# the kiosks here send hundreds of takes at once, beyond a real kiosk's limits (those are test_limits.py's)
[limits.default]
rate = 10000
burst = 10000
open_tickets = 100000
"""

CLIENTS = 4
PER_CLIENT = 200
IN_FLIGHT = 16


class Kiosk(threading.Thread):
    """Sends PER_CLIENT takes with a window in flight, then repeats the unanswered ones until all are answered."""

    def __init__(self, port: int, index: int):
        super().__init__(daemon=True)
        self.name_ = f"k{index}"
        self.answers: dict[str, list[bytes]] = {}
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(IN_FLIGHT)
        self.all_answered = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=self.name_)
        ready = threading.Event()
        c.on_connect = lambda cl, *a: cl.subscribe(f"hallq/test/reply/{self.name_}", qos=1)
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(5)
        self.c = c
        self.reqs = [f"{self.name_}-{i}" for i in range(PER_CLIENT)]

    def _on_message(self, client, userdata, msg) -> None:
        req = json.loads(msg.payload)["req"]
        with self.lock:
            first = req not in self.answers
            self.answers.setdefault(req, []).append(msg.payload)
            if len(self.answers) == PER_CLIENT:
                self.all_answered.set()
        if first:
            self.slots.release()

    def _send(self, i: int) -> None:
        self.c.publish(f"hallq/test/req/{self.name_}/take",
                       json.dumps({"req": self.reqs[i], "category": "ABC"[i % 3]}), qos=1)

    def run(self) -> None:
        for i in range(PER_CLIENT):
            while not self.slots.acquire(timeout=1.0):
                # nobody answers (the controller is down or still starting): send what is unanswered again
                self._resend()
            self._send(i)
        deadline = time.monotonic() + 40
        while not self.all_answered.wait(1.0) and time.monotonic() < deadline:
            self._resend()

    def _resend(self) -> None:
        with self.lock:
            missing = [i for i, r in enumerate(self.reqs) if r not in self.answers]
        for i in missing[:IN_FLIGHT * 4]:
            if i < PER_CLIENT:
                self._send(i)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def answered(kiosks: list[Kiosk]) -> int:
    return sum(len(k.answers) for k in kiosks)


def test_sigkill_mid_load_loses_nothing_and_issues_nothing_twice(mosquitto, tmp_path):
    mon = Monitor(mosquitto.url, "hallq/test/#")
    ctl = ControllerProc(tmp_path, mosquitto.url, HALL).start()
    mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=15)
    kiosks = [Kiosk(mosquitto.port, i) for i in range(CLIENTS)]
    for k in kiosks:
        k.start()
    deadline = time.monotonic() + 20
    while answered(kiosks) < CLIENTS * PER_CLIENT // 3 and time.monotonic() < deadline:
        time.sleep(0.005)
    before_kill = answered(kiosks)
    ctl.kill()  # SIGKILL, in the middle of the load
    mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"offline", timeout=10)
    killed_at = len(mon.messages)
    time.sleep(0.3)
    ctl.start()
    for k in kiosks:
        k.join(60)
    assert all(k.all_answered.is_set() for k in kiosks), [len(k.answers) for k in kiosks]
    assert 0 < before_kill < CLIENTS * PER_CLIENT

    # after the restart: every retained topic again, before `online`
    after = mon.messages[killed_at:]
    topics = [m.topic for m in after]
    online = next(i for i, m in enumerate(after) if m.topic.endswith("controller/status") and m.payload == b"online")
    retained_before = set(topics[:online])
    assert {"hallq/test/config", "hallq/test/queue", "hallq/test/board", "hallq/test/stats",
            "hallq/test/window/1/state", "hallq/test/window/2/state"} <= retained_before

    ctl.terminate()
    numbers: dict[str, str] = {}
    for k in kiosks:
        for req, payloads in k.answers.items():
            # a request answered before and after the kill got the same answer both times
            assert len(set(payloads)) == 1, (req, payloads)
            r = json.loads(payloads[0])
            assert r["ok"], r
            numbers[req] = r["ticket"]["number"]
        k.close()
    # no number was given out twice
    assert len(set(numbers.values())) == len(numbers) == CLIENTS * PER_CLIENT
    # every answered ticket is in the record, and nothing else was issued
    with sqlite3.connect(ctl.db) as db:
        stored = dict(db.execute("SELECT number, client FROM tickets").fetchall())
        seqs = dict(db.execute("SELECT category, last FROM sequences").fetchall())
    assert set(stored) == set(numbers.values())
    for req, number in numbers.items():
        assert stored[number] == req.split("-")[0]
    # numbering never skipped back: each category's last number is the count of its tickets
    for cat, prefix in (("A", "A"), ("B", "B"), ("C", "C")):
        assert seqs[cat] == sum(1 for n in stored if n.startswith(prefix))
    mon.close()
