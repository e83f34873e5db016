"""Soak: 20 simulated devices for minutes with injected faults, then a full audit (issue 9, tests and figures).

A Mosquitto of its own and the real controller process under libfaketime (its clock can be stepped) with a
supervisor that restarts it when it ends, as systemd does. The 20 devices, each with its own MQTT client:

- ``kiosk-1`` … ``kiosk-7`` take numbers (the project's ``HallClient``: 5 s time-out, the same ``req``
  resent every second, as the kiosk does), some by ID card with a person key and priority ``elderly``;
- ``sms-1`` takes numbers for phones (person keys);
- ``caller-1`` … ``caller-6`` sign in and call, recall, mark no-shows and finish tickets at windows 1-6;
- ``pad-1`` … ``pad-4`` rate the services of windows 1-4 (with the call's time, as the pads do);
- ``kiosk-8`` floods takes as fast as it can during the flood (a kiosk gone wrong: listed, so limited by
  its role; a process of its own, ``harness.Flooder``); ``junk-1`` (not listed) sends garbage all along, also on ``kiosk-3``'s request topic.

Faults, at fractions of the run: the broker killed (SIGKILL) at 0.20 and started again 3 s later; the
controller killed (SIGKILL) at 0.35 and restarted; the flood from 0.50 to 0.65; the clock stepped back an hour
at 0.75 and forward again at 0.85; garbage all along.

The audit then reads the record: every answer a device got matches it (a number given is that device's
ticket with that issue time, and the kept answer of that ``req`` is the same; a call is in ``calls`` for its
window; a rating in ``ratings``); no number was given to two requests; tickets nobody was told of are counted
(a kiosk that gave up while the controller was still to answer), and those of the devices' timed-out requests
are split by the ticket's issue time: issued after the device gave up (a request past its deadline served:
must be 0) or before (the answer was lost, e.g. the controller killed between commit and answer and back only
after the device's time-out). Latency is honest: a request that timed out
counts as its 5 s. Target: the kiosks' p99 during the flood <= 10x their p99 before any fault.

``make bench`` runs 2 minutes; ``HALLQ_SOAK_MINUTES=30 python -m bench soak`` (or ``python -m bench.bench_soak
--minutes 30``) the long one.
"""

from __future__ import annotations

import json
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))  # the broker harness
from harness import HALLQ, Flooder, Mosquitto

from bench.figures import percentile

HALL = "soak"
CATEGORIES = "ABCDEFGHIJKL"
KIOSKS, WINDOWS, PADS = 7, 6, 4
TIMEOUT_S = 5.0
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1")


def hall_toml() -> str:
    parts = [f'[hall]\nid = "{HALL}"\nname = "耐久测试大厅"\ntimezone = "UTC"\n']
    parts += [f'[[categories]]\ncode = "{c}"\nname = "业务{c}"\n' for c in CATEGORIES]
    parts += [f'[[windows]]\nno = {n}\nname = "{n}号窗口"\ncategories = ["*"]\n' for n in range(1, WINDOWS + 1)]
    parts += [f'[[devices]]\nid = "kiosk-{i}"\nrole = "kiosk"\n' for i in range(1, KIOSKS + 2)]
    parts += ['[[devices]]\nid = "sms-1"\nrole = "sms"\n']
    parts += [f'[[devices]]\nid = "caller-{n}"\nrole = "window"\nwindow = {n}\n' for n in range(1, WINDOWS + 1)]
    parts += [f'[[devices]]\nid = "pad-{n}"\nrole = "pad"\nwindow = {n}\n' for n in range(1, PADS + 1)]
    return "\n".join(parts)


@dataclass
class Sent:
    device: str
    action: str
    req: str
    payload: dict
    t0: float  # monotonic, since the start of the run
    latency: float | None = None  # None: no answer (time-out or link down)
    outcome: str = ""  # ok | the error code | timeout | link_down
    answer: dict | None = None
    gave_up_at: float | None = None  # wall-clock time the device gave up waiting (time-out)


@dataclass
class Log:
    sent: list[Sent] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, s: Sent) -> None:
        with self.lock:
            self.sent.append(s)


class Run:
    def __init__(self, minutes: float, workdir: Path):
        self.d = minutes * 60.0
        self.work = workdir
        self.t_start = time.monotonic()
        self.stop = threading.Event()
        self.flooding = threading.Event()
        self.log = Log()
        self.rng = random.Random(9)
        self.events: list[tuple[float, str]] = []
        self.exits: list[int] = []
        self.pad_queues = {n: queue.Queue() for n in range(1, PADS + 1)}
        # the hall's broker settings (README, "The broker's settings"; the provisioned mosquitto.conf)
        self.broker = Mosquitto(workdir / "mosquitto", extra="max_inflight_messages 1000\n").start()
        self.url = self.broker.url
        self.offset = workdir / "faketime.rc"
        self.offset.write_text("+0\n")
        (workdir / "hall.toml").write_text(hall_toml(), encoding="utf-8")
        self.db = workdir / "hall.db"
        self.ctl: subprocess.Popen | None = None
        self.ctl_lock = threading.Lock()
        self.expect_down = False

    def now(self) -> float:
        return time.monotonic() - self.t_start

    def note(self, what: str) -> None:
        self.events.append((round(self.now(), 1), what))

    # -- the controller and its supervisor ---------------------------------------------------------------------
    def start_controller(self) -> None:
        lib = next((p for p in FAKETIME_LIBS if Path(p).exists()), None)
        if lib is None:
            raise RuntimeError("libfaketime is missing (make setup installs it)")
        env = dict(os.environ, HALLQ_LOG_LEVEL="warning", LD_PRELOAD=lib,
                   FAKETIME_TIMESTAMP_FILE=str(self.offset), FAKETIME_CACHE_DURATION="1")
        env.pop("HALLQ_CLOCK", None)
        with open(self.work / "controller.log", "ab") as log:
            self.ctl = subprocess.Popen([str(HALLQ), "controller", "--config", str(self.work / "hall.toml"),
                                         "--broker", self.url, "--db", str(self.db)],
                                        env=env, stdout=subprocess.DEVNULL, stderr=log)

    def supervise(self) -> None:
        """Restart the controller when it ends (as systemd's Restart=always), counting its exit statuses."""
        while not self.stop.is_set():
            time.sleep(0.2)
            with self.ctl_lock:
                if self.ctl is not None and self.ctl.poll() is not None and not self.expect_down:
                    self.exits.append(self.ctl.returncode)
                    self.note(f"controller ended ({self.ctl.returncode}): restarted")
                    time.sleep(1.0)
                    self.start_controller()

    def kill_controller(self) -> None:
        with self.ctl_lock:
            self.expect_down = True
            self.ctl.send_signal(signal.SIGKILL)
            self.ctl.wait(10)
            self.note("controller SIGKILL")
            time.sleep(1.0)
            self.start_controller()
            self.expect_down = False

    # -- devices ---------------------------------------------------------------------------------------------
    def client(self, device: str):
        from hallq.shared.mqtt import HallClient

        c = HallClient(self.url, HALL, device, max_reconnect_delay=2.0, on_fatal=lambda why: None)
        c.start()
        c.wait_connected(20)
        return c

    def request(self, c, device: str, action: str, payload) -> Sent:
        from hallq.shared.mqtt import LinkDown, RequestError, RequestTimeout

        s = Sent(device, action, payload.req, json.loads(_enc(payload)), self.now())
        t0 = time.monotonic()
        try:
            r = c.request(action, payload, timeout=TIMEOUT_S, resend_every=1.0)
        except RequestError as e:
            s.latency, s.outcome = time.monotonic() - t0, e.code
        except LinkDown:
            s.outcome = "link_down"
        except RequestTimeout:
            s.outcome, s.gave_up_at = "timeout", time.time()
        else:
            s.latency, s.outcome, s.answer = time.monotonic() - t0, "ok", json.loads(_enc(r))
        self.log.add(s)
        return s

    def kiosk(self, i: int) -> None:
        from hallq.shared.schemas import TakeRequest

        rng = random.Random(i)
        c = self.client(f"kiosk-{i}")
        while not self.stop.is_set():
            time.sleep(rng.expovariate(1 / 1.5))
            card = rng.random() < 0.3
            p = TakeRequest(req=c.new_req(), category=rng.choice(CATEGORIES), channel="idcard" if card else "touch",
                            priority="elderly" if card and rng.random() < 0.3 else None,
                            person=f"{rng.getrandbits(128):032x}" if card else None)
            s = self.request(c, f"kiosk-{i}", "take", p)
            if s.outcome == "link_down":
                time.sleep(0.5)
        c.stop()

    def sms(self) -> None:
        from hallq.shared.schemas import TakeRequest

        rng = random.Random(77)
        c = self.client("sms-1")
        while not self.stop.is_set():
            time.sleep(rng.expovariate(1 / 3.0))
            p = TakeRequest(req=c.new_req(), category=rng.choice(CATEGORIES), channel="sms",
                            person=f"{rng.getrandbits(128):032x}")
            self.request(c, "sms-1", "take", p)
        c.stop()

    def caller(self, n: int) -> None:
        from hallq.shared.schemas import Staff, WindowRequest

        rng = random.Random(100 + n)
        c = self.client(f"caller-{n}")
        me = f"caller-{n}"
        while not self.stop.is_set():
            s = self.request(c, me, "window", WindowRequest(req=c.new_req(), window=n, op="open",
                                                            staff=Staff(id=f"s{n}", name=f"职员{n}")))
            if s.outcome == "ok":
                break
            time.sleep(1)
        while not self.stop.is_set():
            s = self.request(c, me, "window", WindowRequest(req=c.new_req(), window=n, op="next"))
            if s.outcome != "ok" or not s.answer or not s.answer.get("ticket"):
                time.sleep(0.5)
                continue
            t = s.answer["ticket"]
            time.sleep(rng.uniform(0.3, 1.5))
            if rng.random() < 0.1:
                self.request(c, me, "window", WindowRequest(req=c.new_req(), window=n, op="recall"))
            op = "noshow" if rng.random() < 0.05 else "done"
            d = self.request(c, me, "window", WindowRequest(req=c.new_req(), window=n, op=op))
            if d.outcome == "ok" and op == "done" and n <= PADS:
                self.pad_queues[n].put((t["number"], t["called_at"]))
        c.stop()

    def pad(self, n: int) -> None:
        from hallq.shared.schemas import LEVELS, RateRequest

        rng = random.Random(200 + n)
        c = self.client(f"pad-{n}")
        while not self.stop.is_set():
            try:
                number, called_at = self.pad_queues[n].get(timeout=0.5)
            except queue.Empty:
                continue
            if rng.random() < 0.7:
                self.request(c, f"pad-{n}", "rate", RateRequest(
                    req=c.new_req(), window=n, ticket=number, level=rng.choice(LEVELS),
                    called_at=datetime.fromisoformat(called_at)))
        c.stop()

    def raw(self, device: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=device)
        c.max_inflight_messages_set(1000)
        c.reconnect_delay_set(0.5, 2.0)
        c.connect_async("127.0.0.1", self.broker.port)
        c.loop_start()
        return c

    def junk(self) -> None:
        rng = random.Random(5)
        c = self.raw("junk-1")
        bodies = [lambda: bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 60))),
                  lambda: b"[" * rng.randint(100, 5000), lambda: b'{"req":"\xff\xfe","category":"A"}',
                  lambda: b'{"req":"j' + str(rng.random()).encode() + b'","category":"A","x":1}',
                  lambda: b'{"req":"j1","window":99,"op":"fly"}', lambda: b"null", lambda: b'"' + b"a" * 5000 + b'"']
        topics = [f"hallq/{HALL}/req/junk-1/take", f"hallq/{HALL}/req/junk-1/window", f"hallq/{HALL}/req/kiosk-3/take",
                  f"hallq/{HALL}/req/junk-1/nonsense", f"hallq/{HALL}/reply/controller", f"hallq/{HALL}/req/x/y/z"]
        n = 0
        while not self.stop.is_set():
            time.sleep(0.1)
            c.publish(rng.choice(topics), rng.choice(bodies)(), qos=1)
            n += 1
        self.junk_sent = n
        c.disconnect()
        c.loop_stop()

    def flood(self) -> None:
        """kiosk-8 gone wrong, from a process of its own as a device on the hall's network is (a flood from a
        thread of this process would also starve the honest devices' clients here of the GIL)."""
        sent, answers = 0, {}
        while not self.stop.is_set():
            if not self.flooding.wait(0.5):
                continue
            fl = Flooder(self.broker.port, HALL, "kiosk-8", "take", {"category": CATEGORIES[0]})
            while self.flooding.is_set() and not self.stop.is_set():
                time.sleep(0.1)
            out = fl.stop()
            sent += out["sent"]
            answers |= out["answers"]
        self.flood_sent, self.flood_answers = sent, answers

    # -- the run ---------------------------------------------------------------------------------------------
    def faults(self) -> None:
        d = self.d

        def at(frac: float) -> None:
            while self.now() < frac * d and not self.stop.is_set():
                time.sleep(0.05)

        at(0.20)
        self.broker.kill()
        self.note("broker SIGKILL")
        time.sleep(3)
        self.broker.start()
        self.note("broker started")
        at(0.35)
        self.kill_controller()
        at(0.50)
        self.flooding.set()
        self.note("flood on")
        at(0.65)
        self.flooding.clear()
        self.note("flood off")
        at(0.75)
        self.offset.write_text("-1h\n")
        self.note("clock stepped back 1 h")
        at(0.85)
        self.offset.write_text("+0\n")
        self.note("clock stepped forward 1 h")
        at(1.0)

    def go(self) -> dict:
        self.start_controller()
        threads = [threading.Thread(target=self.supervise, daemon=True)]
        threads += [threading.Thread(target=self.kiosk, args=(i,), daemon=True) for i in range(1, KIOSKS + 1)]
        threads += [threading.Thread(target=self.caller, args=(n,), daemon=True) for n in range(1, WINDOWS + 1)]
        threads += [threading.Thread(target=self.pad, args=(n,), daemon=True) for n in range(1, PADS + 1)]
        threads += [threading.Thread(target=f, daemon=True) for f in (self.sms, self.junk, self.flood)]
        self.t_start = time.monotonic()
        for t in threads:
            t.start()
        self.faults()
        self.stop.set()
        for t in threads[1:]:
            t.join(TIMEOUT_S + 10)
        time.sleep(1.0)
        with self.ctl_lock:
            self.expect_down = True
            self.ctl.terminate()
            try:
                self.ctl.wait(15)
            except subprocess.TimeoutExpired:
                self.ctl.kill()
        self.broker.stop()
        return self.audit()

    # -- the audit -------------------------------------------------------------------------------------------
    def audit(self) -> dict:
        with sqlite3.connect(self.db) as conn:
            tickets = {(d, n): (c, i, s) for d, n, c, i, s in conn.execute(
                "SELECT day, number, client, issued_at, status FROM tickets")}
            replies = {(c, r): json.loads(p) for c, r, p in conn.execute("SELECT client, req, payload FROM replies")}
            calls = {(n, w, ca) for n, w, ca in conn.execute("SELECT number, window, called_at FROM calls")}
            ratings = {(d, t): (w, lv) for d, t, w, lv in conn.execute("SELECT day, ticket, window, level FROM ratings")}
        problems: list[str] = []
        given: dict[tuple[str, str], tuple[str, str]] = {}
        outcomes: Counter = Counter()
        for s in self.log.sent:
            outcomes[f"{s.action}:{s.outcome}"] += 1
            if s.outcome != "ok":
                kept = replies.get((s.device, s.req))
                if s.outcome in ("timeout", "link_down"):
                    continue  # counted below among the tickets nobody was told of, if it was issued
                if kept is not None and kept.get("ok"):
                    problems.append(f"{s.device} {s.req}: told {s.outcome}, the record says ok")
                continue
            a = s.answer or {}
            kept = replies.get((s.device, s.req))
            if kept is not None and kept != a:
                problems.append(f"{s.device} {s.req}: the kept answer differs from the one received")
            if s.action == "take":
                t = a["ticket"]
                key = (t["issued_at"][:10], t["number"])
                row = tickets.get(key)
                if row is None:
                    problems.append(f"{s.device} {s.req}: {key} is not in the record")
                elif row[0] != s.device or datetime.fromisoformat(row[1]) != datetime.fromisoformat(t["issued_at"]):
                    problems.append(f"{s.device} {s.req}: {key} is another ticket in the record: {row}")
                if key in given and given[key] != (s.device, s.req):
                    problems.append(f"{key} given twice: {given[key]} and {(s.device, s.req)}")
                given[key] = (s.device, s.req)
            elif s.action == "window" and s.payload.get("op") == "next" and a.get("ticket"):
                t = a["ticket"]
                if not any(n == t["number"] and w == s.payload["window"] and
                           datetime.fromisoformat(ca) == datetime.fromisoformat(t["called_at"])
                           for n, w, ca in calls if n == t["number"]):
                    problems.append(f"{s.device} {s.req}: the call of {t['number']} is not in the record")
            elif s.action == "rate":
                day = None
                for (d, n), _ in tickets.items():
                    if n == s.payload["ticket"]:
                        day = d if (day is None or d > day) else day
                if ratings.get((day, s.payload["ticket"])) != (s.payload["window"], s.payload["level"]):
                    problems.append(f"{s.device} {s.req}: the rating of {s.payload['ticket']} is not in the record")
        flood_ok = {(r["ticket"]["issued_at"][:10], r["ticket"]["number"]): ("kiosk-8", q)
                    for q, r in getattr(self, "flood_answers", {}).items() if r.get("ok")}
        for key, who in flood_ok.items():
            if key in given:
                problems.append(f"{key} given twice: {given[key]} and {who}")
            given[key] = who
        untold = [k for k in tickets if k not in given]
        untold_by = Counter(tickets[k][0] for k in untold)
        # the devices' takes that timed out but were served: issued after the device gave up (the promise
        # broken the other way), or before it (the answer lost: e.g. the controller killed between its commit
        # and its answer, and back only after the device's time-out)
        after_gave_up, answer_lost, stepped = [], [], []
        for s in self.log.sent:
            kept = replies.get((s.device, s.req)) if s.outcome == "timeout" and s.action == "take" else None
            if kept is None or not kept.get("ok") or "ticket" not in kept:
                continue
            if 0.75 * self.d - TIMEOUT_S <= s.t0 <= 0.85 * self.d + TIMEOUT_S:
                stepped.append(s.req)  # the controller's clock was an hour back: its issue times say nothing here
                continue
            issued = datetime.fromisoformat(kept["ticket"]["issued_at"]).timestamp()
            (after_gave_up if issued > s.gave_up_at else answer_lost).append(
                f"{s.device} {s.req} {kept['ticket']['number']} issued {issued - s.gave_up_at:+.1f} s after giving up")

        def lat(lo: float, hi: float) -> dict:
            xs = [(s.latency if s.latency is not None else TIMEOUT_S) for s in self.log.sent
                  if s.action == "take" and s.device.startswith("kiosk") and lo * self.d <= s.t0 < hi * self.d]
            if not xs:
                return {"n": 0}
            return {"n": len(xs), "p50_ms": round(percentile(xs, 50) * 1000, 1),
                    "p99_ms": round(percentile(xs, 99) * 1000, 1), "timeouts": sum(1 for s in self.log.sent
                    if s.action == "take" and s.outcome in ("timeout", "link_down") and lo * self.d <= s.t0 < hi * self.d)}

        quiet, flood = lat(0.05, 0.18), lat(0.50, 0.65)
        ratio = round(flood["p99_ms"] / quiet["p99_ms"], 2) if quiet.get("n") and flood.get("n") else None
        return {
            "minutes": round(self.d / 60, 1),
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "events": self.events,
            "controller_exits_unplanned": self.exits,
            "requests": len(self.log.sent),
            "outcomes": dict(sorted(outcomes.items())),
            "tickets_in_record": len(tickets),
            "numbers_given": len(given),
            "flood": {"sent": getattr(self, "flood_sent", 0), "answered": len(getattr(self, "flood_answers", {})),
                      "issued": len(flood_ok)},
            "garbage_sent": getattr(self, "junk_sent", 0),
            "audit_problems": len(problems),
            "audit_examples": problems[:10],
            "tickets_nobody_was_told_of": len(untold),
            "untold_by_client": dict(untold_by),
            "issued_after_the_device_gave_up": len(after_gave_up),
            "issued_before_the_device_gave_up_answer_lost": len(answer_lost),
            "served_after_a_time_out_while_the_clock_was_stepped_back": len(stepped),
            "given_up_examples": (after_gave_up + answer_lost)[:10],
            "kiosk_take_latency_before_faults": quiet,
            "kiosk_take_latency_during_flood": flood,
            "p99_ratio_flood_vs_quiet": ratio,
            "target": "no audit problem, no number given twice; kiosks' p99 during the flood <= 10x before faults",
            "met": not problems and ratio is not None and ratio <= 10,
        }


def _enc(x) -> bytes:
    from hallq.shared.schemas import encode

    return encode(x)


def run(minutes: float | None = None) -> dict:
    m = minutes if minutes is not None else float(os.environ.get("HALLQ_SOAK_MINUTES", "2"))
    with tempfile.TemporaryDirectory(prefix="hallq-soak-") as tmp:
        r = Run(m, Path(tmp))
        try:
            out = r.go()
        finally:
            with r.ctl_lock:
                r.expect_down = True
                if r.ctl is not None and r.ctl.poll() is None:
                    r.ctl.kill()
            r.broker.stop()
        log = (Path(tmp) / "controller.log").read_text(errors="replace")
        out["controller_log_criticals"] = [ln[:200] for ln in log.splitlines() if "CRITICAL" in ln][:5]
        return out


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=2.0)
    print(json.dumps(run(ap.parse_args().minutes), ensure_ascii=False, indent=2))
