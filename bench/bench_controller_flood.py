"""A flood from one client: the controller's memory, its record and the other clients' latency (issue 9 §5).

A Mosquitto of its own and the real controller process, with a hall that lists its devices. A kiosk gone
wrong, ``intruder`` (listed as a kiosk: a client not listed is not even read, the controller subscribes to
the listed devices' requests only), sends ``FLOOD`` takes as fast as the broker takes them (it does not wait
for answers: the controller drops most unanswered, then unsubscribes its topic for a while, see
``core.limits.Gate``); meanwhile the listed kiosk ``kiosk-1`` takes numbers at a real kiosk's pace and times
each answer. Reported: the controller's RSS before and after the flood (``VmRSS`` of
``/proc/PID/status``; ``VmHWM``, the peak, too), the rows of the ``replies`` table, how the intruder was
answered, and the kiosk's p99 during the flood against the same kiosk unloaded.

``HALLQ_FLOOD_N`` sets the flood's size (300,000 by default, the issue's); ``HALLQ_BENCH_TREE=/path/to/a/
checkout`` runs that checkout's controller instead (its ``*/src`` first on ``PYTHONPATH``): the figures of
an older commit, for a before/after. Targets: RSS after the flood within 20 MB of before; replies rows
bounded (``[limits] replies``); the kiosk's p99 during the flood <= 10x unloaded.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

from harness import Mosquitto

from bench.bench_controller_latency import HALLQ, client, close, percentiles

HALL = "flood"
FLOOD = int(os.environ.get("HALLQ_FLOOD_N", "300000"))
IN_FLIGHT = 500
KIOSK_TAKES = 80  # at KIOSK_RATE a second, before and during the flood
KIOSK_RATE = 5.0
CATEGORIES = "ABCDEF"

HALL_TOML = f"""
[hall]
id = "{HALL}"
name = "压力测试大厅"
""" + "".join(f'\n[[categories]]\ncode = "{c}"\nname = "业务{c}"\n' for c in CATEGORIES) + """
[[windows]]
no = 1
name = "1号窗口"
categories = ["*"]

[[devices]]
id = "kiosk-1"
role = "kiosk"

[[devices]]
id = "caller-1"
role = "window"
window = 1

[[devices]]
id = "intruder"
role = "kiosk"
"""


def rss(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":")
            out[k] = round(int(v.split()[0]) / 1024, 1)
    return {"rss_mb": out["VmRSS"], "peak_mb": out["VmHWM"]}


class Kiosk:
    """kiosk-1: one take at a time at a kiosk's pace; each answer timed."""

    def __init__(self, port: int):
        self.c = client(port, "kiosk-1")
        self.got = threading.Event()
        self.last: dict = {}
        self.c.on_message = self._on
        sub = threading.Event()
        self.c.on_subscribe = lambda *a: sub.set()
        self.c.subscribe(f"hallq/{HALL}/reply/kiosk-1", qos=1)
        sub.wait(5)
        self.n = 0

    def _on(self, cl, u, m) -> None:
        self.last = json.loads(m.payload)
        self.got.set()

    def takes(self, n: int) -> tuple[list[float], Counter]:
        lat: list[float] = []
        codes: Counter = Counter()
        for _ in range(n):
            t_next = time.monotonic() + 1 / KIOSK_RATE
            self.got.clear()
            self.n += 1
            req = f"k{self.n}"
            t0 = time.perf_counter()
            self.c.publish(f"hallq/{HALL}/req/kiosk-1/take",
                           json.dumps({"req": req, "category": CATEGORIES[self.n % len(CATEGORIES)],
                                       "channel": "touch"}), qos=1)
            while self.got.wait(30) and self.last.get("req") != req:
                self.got.clear()
            lat.append(time.perf_counter() - t0)
            codes["ok" if self.last.get("ok") else self.last.get("error", {}).get("code", "?")] += 1
            time.sleep(max(0.0, t_next - time.monotonic()))
        return lat, codes


def flood(port: int, n: int, out: dict) -> None:
    """Send ``n`` takes as fast as paho and the broker take them (a client gone wrong does not wait for answers;
    the controller drops what is far beyond the client's rate unanswered), counting the answers."""
    c = client(port, "intruder")
    codes: Counter = Counter()

    def on_message(cl, u, m) -> None:
        r = json.loads(m.payload)
        codes["ok" if r.get("ok") else r["error"]["code"]] += 1

    c.on_message = on_message
    sub = threading.Event()
    c.on_subscribe = lambda *a: sub.set()
    c.subscribe(f"hallq/{HALL}/reply/intruder", qos=1)
    sub.wait(5)
    t0 = time.perf_counter()
    for i in range(n):
        c.publish(f"hallq/{HALL}/req/intruder/take", json.dumps({"req": f"f{i}", "category": "A"}), qos=1)
        if i % IN_FLIGHT == IN_FLIGHT - 1:
            while len(c._out_messages) > IN_FLIGHT:  # paho's own queue stays bounded (acknowledged by the broker)
                time.sleep(0.002)
    deadline = time.monotonic() + 60
    while c._out_messages and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3.0)  # the last answers
    out.update(sent=n, seconds=round(time.perf_counter() - t0, 1), answered=sum(codes.values()),
               answers=dict(codes))
    close(c)


def run() -> dict:
    tree = os.environ.get("HALLQ_BENCH_TREE")
    with tempfile.TemporaryDirectory(prefix="hallq-flood-") as tmp:
        d = Path(tmp)
        (d / "hall.toml").write_text(HALL_TOML, encoding="utf-8")
        db = d / "hall.db"
        broker = Mosquitto(d / "mosquitto").start()
        env = dict(os.environ, HALLQ_LOG_LEVEL="warning")
        env.pop("HALLQ_CLOCK", None)
        if tree:
            env["PYTHONPATH"] = os.pathsep.join(str(p) for p in sorted(Path(tree).glob("*/src")))
        with open(d / "controller.log", "wb") as log:
            proc = subprocess.Popen([str(HALLQ), "controller", "--config", str(d / "hall.toml"), "--broker",
                                     broker.url, "--db", str(db)], env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            waiter = client(broker.port, "bench-wait")
            online = threading.Event()
            waiter.on_message = lambda cl, u, m: online.set() if m.payload == b"online" else None
            waiter.subscribe(f"hallq/{HALL}/controller/status", qos=1)
            if not online.wait(30):
                raise RuntimeError("the controller did not come online: " + (d / "controller.log").read_text()[-800:])
            close(waiter)
            kiosk = Kiosk(broker.port)
            time.sleep(1.0)
            before = rss(proc.pid)
            quiet, quiet_codes = kiosk.takes(KIOSK_TAKES)
            fl: dict = {}
            th = threading.Thread(target=flood, args=(broker.port, FLOOD, fl))
            th.start()
            time.sleep(2.0)  # the flood is on
            loaded: list[float] = []
            loaded_codes: Counter = Counter()
            while th.is_alive() and len(loaded) < KIOSK_TAKES:
                lat, codes = kiosk.takes(1)
                loaded += lat
                loaded_codes += codes
            th.join()
            time.sleep(2.0)
            after = rss(proc.pid)
            close(kiosk.c)
            alive = proc.poll() is None
            with sqlite3.connect(db) as conn:
                rows = conn.execute("SELECT count(*) FROM replies").fetchone()[0]
                tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            broker.stop()
        q, ld = percentiles(quiet), percentiles(loaded) if loaded else None
        ratio = round(ld["p99_ms"] / q["p99_ms"], 2) if ld else None
        return {
            "controller": tree or "this tree",
            "loadavg": Path("/proc/loadavg").read_text().split()[:3],
            "flood": fl,
            "controller_alive": alive,
            "memory_before": before,
            "memory_after": after,
            "rss_growth_mb": round(after["rss_mb"] - before["rss_mb"], 1),
            "replies_rows": rows,
            "tickets": tickets,
            "kiosk_unloaded": q | {"answers": dict(quiet_codes)},
            "kiosk_during_flood": (ld or {}) | {"takes": len(loaded), "answers": dict(loaded_codes)},
            "p99_ratio": ratio,
            "target": "RSS growth <= 20 MB; replies rows <= [limits] replies (20000); kiosk p99 during flood <= 10x",
            "met": bool(alive and after["rss_mb"] - before["rss_mb"] <= 20 and rows <= 20000
                        and ratio is not None and ratio <= 10),
        }
