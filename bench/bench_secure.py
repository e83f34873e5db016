"""The secure broker's cost (issue 16): ``next`` -> ``calls`` latency and durable takes/s through Mosquitto
with the TLS listener, password file and ACL that ``hallq provision init`` writes, side by side with the
open broker (plain TCP, anonymous), in one run, on the same hall and the same real controller.

Both halls list the same ``[[devices]]`` (so the controller's own check runs in both); in the secure one
every client logs in over TLS with its own credential from its bundle. Targets: the secure broker costs at
most 1.5x the open one in p99 call latency, and keeps >= 2,000 takes/s. Both halls run at once and the
measurements alternate between them (rounds), so a change of the machine's load weighs on both alike.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import resource
import ssl
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
from harness import Mosquitto, free_port
from paho.mqtt.enums import CallbackAPIVersion

from bench.bench_controller_latency import HALLQ, percentiles

HALL = "bench"
CALLS = 2000
KIOSKS = 6
PER_KIOSK = 1500
ROUNDS = 8
THROUGHPUT_ROUNDS = 2
IN_FLIGHT = 64
CATEGORIES = 40


@dataclass(frozen=True)
class Link:
    """How a client reaches the broker: a port, and for the secure broker the CA and each user's password."""

    port: int
    ca: str | None = None
    passwords: tuple[tuple[str, str], ...] = ()

    def connect(self, client_id: str) -> paho.Client:
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        c.max_inflight_messages_set(1000)
        c.max_queued_messages_set(0)
        if self.ca:
            c.username_pw_set(client_id, dict(self.passwords)[client_id])
            c.tls_set(ca_certs=self.ca, cert_reqs=ssl.CERT_REQUIRED)
        ready = threading.Event()
        c.on_connect = lambda cl, u, f, rc, p: ready.set() if not rc.is_failure else None
        c.on_socket_open = _nodelay
        c.connect("127.0.0.1", self.port)
        c.loop_start()
        if not ready.wait(10):
            raise RuntimeError(f"{client_id} cannot log in to the bench broker")
        return c


def _nodelay(client: paho.Client, userdata: object, sock: object) -> None:
    import socket

    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # type: ignore[attr-defined]
    except (OSError, AttributeError):
        pass


def close(c: paho.Client) -> None:
    c.disconnect()
    try:
        c.loop_stop()
    except AttributeError:  # paho's loop thread has already ended
        pass


def codes() -> list[str]:
    return [chr(65 + i) if i < 26 else chr(65 + i // 26 - 1) + chr(65 + i % 26) for i in range(CATEGORIES)]


def hall_toml(port: int) -> str:
    parts = [f'[hall]\nid = "{HALL}"\nname = "基准测试大厅"\n',
             f'[broker]\nhost = "127.0.0.1"\nport = {port}\n']
    parts += [f'[[categories]]\ncode = "{c}"\nname = "业务{c}"\n' for c in codes()]
    parts += [f'[[windows]]\nno = {n}\nname = "{n}号窗口"\ncategories = ["*"]\n' for n in (1, 2)]
    parts += ['[[devices]]\nid = "caller-1"\nrole = "window"\nwindow = 1\n']
    parts += [f'[[devices]]\nid = "kiosk-{i}"\nrole = "kiosk"\n' for i in range(KIOSKS)]
    # the kiosks here send as fast as they can (a throughput bench), far beyond a real kiosk's limits
    parts += ["[limits.kiosk]\nrate = 100000\nburst = 1000000\nopen_tickets = 1000000\n",
              "[limits.window]\nrate = 100000\nburst = 1000000\n"]
    return "\n".join(parts)


class BenchHall:
    """A broker (open, or the provisioned TLS + ACL one) and the real controller, in a temporary folder."""

    def __init__(self, secure: bool):
        self.tmp = tempfile.TemporaryDirectory(prefix="hallq-bench-secure-")
        d = Path(self.tmp.name)
        self.secure = secure
        env = dict(os.environ, HALLQ_LOG_LEVEL="info")
        env.pop("HALLQ_CLOCK", None)
        self.db = d / "hall.db"
        self.log = d / "controller.log"
        if secure:
            from hallq.provisioning.bundle import bundle_files, write_bundle
            from hallq.provisioning.keyring import Keyring
            from hallq.provisioning.local import LocalBroker

            (d / "hall.toml").write_text(hall_toml(free_port()))
            kr = Keyring(d / "keyring")
            kr.init(d / "hall.toml")
            write_bundle(bundle_files(kr, "controller"), d / "controller")
            self.broker = LocalBroker(kr.path, d / "mosquitto").start()
            users = ["caller-1", *(f"kiosk-{i}" for i in range(KIOSKS))]
            self.link = Link(self.broker.port, str(kr.ca_file), tuple((u, kr.password(u)) for u in users))
            argv = ["--device", str(d / "controller" / "device.toml")]
        else:
            self.broker = Mosquitto(d / "mosquitto").start()
            (d / "hall.toml").write_text(hall_toml(self.broker.port))
            self.link = Link(self.broker.port)
            argv = ["--config", str(d / "hall.toml"), "--broker", self.broker.url]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(HALLQ), "controller", *argv, "--db", str(self.db)], env=env,
                                         stdout=subprocess.DEVNULL, stderr=log)
        self.wait_online()

    def wait_online(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "online: retained state published" in self.log.read_text(errors="replace"):
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"the controller did not come online: {self.log.read_text()[-1500:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.broker.stop()
        self.tmp.cleanup()


class Caller:
    """The clerk of window 1: fills the hall's queue, opens the window, then times ``next`` -> ``calls``."""

    def __init__(self, link: Link):
        k = link.connect("kiosk-0")
        replies = threading.Semaphore(0)
        k.on_message = lambda *a: replies.release()
        k.subscribe(f"hallq/{HALL}/reply/kiosk-0", qos=1)
        time.sleep(0.2)
        for i in range(CALLS + 40):
            k.publish(f"hallq/{HALL}/req/kiosk-0/take", json.dumps({"req": f"t{i}", "category": codes()[i % 20]}),
                      qos=1)
            if i >= 200:
                replies.acquire(timeout=10)
        for _ in range(200):
            replies.acquire(timeout=10)
        close(k)
        self.c = c = link.connect("caller-1")
        self.got = threading.Event()
        self.at = 0.0

        def on_message(cl: paho.Client, u: object, m: paho.MQTTMessage) -> None:
            if m.topic == f"hallq/{HALL}/calls":
                self.at = time.perf_counter()
                self.got.set()

        c.on_message = on_message
        subscribed = threading.Event()
        c.on_subscribe = lambda *a: subscribed.set()
        c.subscribe([(f"hallq/{HALL}/calls", 1), (f"hallq/{HALL}/reply/caller-1", 1)])
        subscribed.wait(5)
        c.publish(f"hallq/{HALL}/req/caller-1/window",
                  json.dumps({"req": "open", "window": 1, "op": "open", "staff": {"id": "b1", "name": "基准"}}), qos=1)
        time.sleep(0.3)
        self.n = 0
        for _ in range(20):  # warm up
            self.one()

    def one(self) -> float:
        self.n += 1
        self.got.clear()
        t0 = time.perf_counter()
        self.c.publish(f"hallq/{HALL}/req/caller-1/window",
                       json.dumps({"req": f"n{self.n}", "window": 1, "op": "next"}), qos=1)
        if not self.got.wait(5):
            raise RuntimeError("no calls message")
        return self.at - t0

    def close(self) -> None:
        close(self.c)


def _kiosk(link: Link, index: int, tag: str, start: mp.Event, out: mp.Queue) -> None:
    name = f"kiosk-{index}"
    c = link.connect(name)
    slots = threading.Semaphore(IN_FLIGHT)
    done = threading.Event()
    counts = {"ok": 0, "refused": 0}
    lock = threading.Lock()

    def on_message(cl, u, m) -> None:
        ok = json.loads(m.payload).get("ok")
        with lock:
            counts["ok" if ok else "refused"] += 1
            if counts["ok"] + counts["refused"] == PER_KIOSK:
                done.set()
        slots.release()

    c.on_message = on_message
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.subscribe(f"hallq/{HALL}/reply/{name}", qos=1)
    subscribed.wait(5)
    cs = codes()
    start.wait()
    t0 = time.perf_counter()
    for i in range(PER_KIOSK):
        slots.acquire()
        c.publish(f"hallq/{HALL}/req/{name}/take", json.dumps({"req": f"{tag}-{index}-{i}", "category": cs[(i + index) % CATEGORIES]}),
                  qos=1)
    done.wait(180)
    t1 = time.perf_counter()
    close(c)
    out.put((t0, t1, counts["ok"], counts["refused"]))


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def takes_per_s(link: Link, tag: str, pids: dict[str, int] | None = None) -> dict:
    ctx = mp.get_context("fork")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_kiosk, args=(link, i, tag, start, out)) for i in range(KIOSKS)]
    for p in procs:
        p.start()
    time.sleep(1.5)
    cpu0 = {k: cpu_s(v) for k, v in (pids or {}).items()}
    kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start.set()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(10)
    t0, t1 = min(r[0] for r in results), max(r[1] for r in results)
    answered = sum(r[2] for r in results)
    kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU per 1,000 takes does not depend on what else the machine runs: what TLS and the ACL cost
    cpu = {f"{k}_cpu_ms_per_1000": round((cpu_s(v) - cpu0[k]) * 1e6 / answered, 1) for k, v in (pids or {}).items()}
    cpu["kiosks_cpu_ms_per_1000"] = round((kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime)
                                          * 1e6 / answered, 1)
    return {"answered": answered, "refused": sum(r[3] for r in results), "seconds": round(t1 - t0, 3),
            "takes_per_s": round(answered / (t1 - t0)), **cpu}


def run() -> dict:
    """Both halls run at once; the calls and the throughput runs alternate between them, so a machine whose
    load changes during the run weighs on both sides alike."""
    halls = {"open": BenchHall(secure=False), "secure_tls_acl": BenchHall(secure=True)}
    try:
        callers = {k: Caller(h.link) for k, h in halls.items()}
        lat: dict[str, list[float]] = {k: [] for k in halls}
        for r in range(ROUNDS):
            for k in (list(halls) if r % 2 == 0 else list(reversed(halls))):
                lat[k] += [callers[k].one() for _ in range(CALLS // ROUNDS)]
        for c in callers.values():
            c.close()
        thr: dict[str, list[dict]] = {k: [] for k in halls}
        for r in range(THROUGHPUT_ROUNDS):
            for k in (list(halls) if r % 2 == 0 else list(reversed(halls))):
                h = halls[k]
                thr[k].append(takes_per_s(h.link, f"r{r}", {"broker": h.broker.proc.pid, "controller": h.proc.pid}))
    finally:
        for h in halls.values():
            h.stop()
    out: dict = {"calls": CALLS, "kiosks": KIOSKS, "takes_per_run": KIOSKS * PER_KIOSK}
    for k in halls:
        rates = [t["takes_per_s"] for t in thr[k]]
        cpu = {key: round(sum(t[key] for t in thr[k]) / len(thr[k]), 1) for key in thr[k][0] if "cpu" in key}
        out[k] = {"call_latency": percentiles(lat[k]), "takes_per_s_runs": rates, "takes_per_s": max(rates),
                  "refused": sum(t["refused"] for t in thr[k]), **cpu}
    ratio = out["secure_tls_acl"]["call_latency"]["p99_ms"] / out["open"]["call_latency"]["p99_ms"]
    out["p99_ratio"] = round(ratio, 2)
    out["load_average"] = os.getloadavg()
    out["target"] = "secure p99 <= 1.5 x open p99; secure >= 2000 takes/s"
    out["met"] = ratio <= 1.5 and out["secure_tls_acl"]["takes_per_s"] >= 2000 and out["secure_tls_acl"]["refused"] == 0
    return out
