"""Call latency through Mosquitto: publish ``next``, receive the ``calls`` message (issue 3, benchmark 1).

A Mosquitto of its own, the real controller as a subprocess (``.venv/bin/hallq controller``) with a
durable database, and one plain paho client that plays the clerk of window 1: it publishes ``next`` and
times until the ``calls`` message for that ticket arrives. 2,000 calls, one at a time. In the same run the
broker's own round trip (publish a message, receive it back) is measured with the same client, so the
controller's share can be told apart. Target: p99 <= 5 ms.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
from harness import Mosquitto
from paho.mqtt.enums import CallbackAPIVersion

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
HALLQ = ROOT / ".venv" / "bin" / "hallq"
HALL = "bench"
CALLS = 2000


def bench_config(categories: int = 1, windows: int = 1) -> str:
    """A hall open all day with ``categories`` categories (prefixes A, B, ..., AA, AB, ...)."""
    codes = []
    for i in range(categories):
        codes.append(chr(65 + i) if i < 26 else chr(65 + i // 26 - 1) + chr(65 + i % 26))
    parts = [f'[hall]\nid = "{HALL}"\nname = "基准测试大厅"\n']
    for c in codes:
        parts.append(f'[[categories]]\ncode = "{c}"\nname = "业务{c}"\n')
    for n in range(1, windows + 1):
        parts.append(f'[[windows]]\nno = {n}\nname = "{n}号窗口"\ncategories = ["*"]\n')
    # these benches measure the controller's own speed with a few clients sending as fast as they can, far
    # beyond what the per-client limits allow a real device (bench_controller_flood measures the limits)
    parts.append("[limits.default]\nrate = 100000\nburst = 1000000\nopen_tickets = 1000000\n")
    return "\n".join(parts)


class Hall:
    """Mosquitto plus the controller subprocess, in a temporary directory."""

    def __init__(self, categories: int = 1, windows: int = 1, *, nodelay: bool = True):
        self.tmp = tempfile.TemporaryDirectory(prefix="hallq-bench-")
        d = Path(self.tmp.name)
        (d / "hall.toml").write_text(bench_config(categories, windows))
        self.db = d / "hall.db"
        self.broker = Mosquitto(d / "mosquitto", nodelay=nodelay).start()
        env = dict(os.environ, HALLQ_LOG_LEVEL="info")
        env.pop("HALLQ_CLOCK", None)
        self.log = d / "controller.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [str(HALLQ), "controller", "--config", str(d / "hall.toml"), "--broker", self.broker.url,
                 "--db", str(self.db)],
                env=env, stdout=subprocess.DEVNULL, stderr=log,
            )
        self.wait_online()

    def wait_online(self, timeout: float = 20.0) -> None:
        got = threading.Event()
        c = client(self.broker.port, "bench-wait")
        c.on_message = lambda cl, u, m: got.set() if m.payload == b"online" else None
        c.subscribe(f"hallq/{HALL}/controller/status", qos=1)
        if not got.wait(timeout):
            raise RuntimeError("the controller did not come online")
        close(c)

    def stop_controller(self) -> dict[str, int]:
        """SIGTERM the controller; what it says it did (requests handled, commits)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        m = re.search(r"(\d+) requests handled in (\d+) commits", self.log.read_text(errors="replace"))
        return {"requests_handled": int(m[1]), "commits": int(m[2])} if m else {}

    def stop(self) -> None:
        self.stop_controller()
        self.broker.stop()
        self.tmp.cleanup()


def client(port: int, client_id: str) -> paho.Client:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
    c.max_inflight_messages_set(1000)
    c.max_queued_messages_set(0)
    ready = threading.Event()
    c.on_connect = lambda *a: ready.set()
    c.on_socket_open = _nodelay
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError("cannot connect to the bench broker")
    return c


def _nodelay(client: paho.Client, userdata: object, sock: object) -> None:
    import socket

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        pass


def close(c: paho.Client) -> None:
    c.disconnect()
    c.loop_stop()


def request(c: paho.Client, who: str, action: str, payload: dict) -> None:
    c.publish(f"hallq/{HALL}/req/{who}/{action}", json.dumps(payload), qos=1)


def percentiles(xs: list[float]) -> dict[str, float]:
    def q(p: float) -> float:
        return round(percentile(xs, p) * 1000, 3)

    return {"p50_ms": q(50), "p90_ms": q(90), "p99_ms": q(99), "max_ms": round(max(xs) * 1000, 3),
            "mean_ms": round(statistics.fmean(xs) * 1000, 3)}


def run(calls: int = CALLS, *, nodelay: bool = True) -> dict:
    hall = Hall(categories=3, windows=1, nodelay=nodelay)
    try:
        port = hall.broker.port
        c = client(port, "caller-1")
        got = threading.Event()
        box: dict[str, object] = {}

        def on_message(cl: paho.Client, u: object, m: paho.MQTTMessage) -> None:
            box["t"] = time.perf_counter()
            box["m"] = m
            got.set()

        c.on_message = on_message
        subscribed = threading.Event()
        c.on_subscribe = lambda *a: subscribed.set()
        c.subscribe([(f"hallq/{HALL}/calls", 1), (f"hallq/{HALL}/reply/caller-1", 1), ("bench/echo", 1)])
        subscribed.wait(5)

        def roundtrip(topic: str, payload: str, expect: str) -> float:
            got.clear()
            t0 = time.perf_counter()
            c.publish(topic, payload, qos=1)
            while got.wait(5):
                m = box["m"]
                if m.topic == expect:  # type: ignore[attr-defined]
                    return box["t"] - t0  # type: ignore[operator]
                got.clear()
            raise RuntimeError(f"no message on {expect}")

        # fill the queue: calls tickets over three categories (999 numbers each at most)
        k = client(port, "kiosk-1")
        replies = threading.Semaphore(0)
        k.on_message = lambda *a: replies.release()
        k.subscribe(f"hallq/{HALL}/reply/kiosk-1", qos=1)
        time.sleep(0.2)
        for i in range(calls + 20):
            request(k, "kiosk-1", "take", {"req": f"t{i}", "category": "ABC"[i % 3]})
            if i >= 200:
                replies.acquire(timeout=10)
        for _ in range(200):
            replies.acquire(timeout=10)
        close(k)

        request(c, "caller-1", "window", {"req": "open", "window": 1, "op": "open",
                                          "staff": {"id": "b1", "name": "基准"}})
        time.sleep(0.3)
        # warm up both paths
        for i in range(20):
            roundtrip(f"hallq/{HALL}/req/caller-1/window", json.dumps({"req": f"w{i}", "window": 1, "op": "next"}),
                      f"hallq/{HALL}/calls")
            roundtrip("bench/echo", "x", "bench/echo")
        call_lat: list[float] = []
        broker_lat: list[float] = []
        for i in range(calls):
            call_lat.append(roundtrip(f"hallq/{HALL}/req/caller-1/window",
                                      json.dumps({"req": f"n{i}", "window": 1, "op": "next"}), f"hallq/{HALL}/calls"))
            broker_lat.append(roundtrip("bench/echo", "x" * 120, "bench/echo"))
        close(c)
        figures = percentiles(call_lat)
        return {
            "calls": calls,
            "call_latency": figures,
            "broker_roundtrip": percentiles(broker_lat),
            "target": "call p99 <= 5 ms",
            "met": figures["p99_ms"] <= 5.0,
        }
    finally:
        hall.stop()

