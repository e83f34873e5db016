"""Test harness: real brokers on free loopback ports, and a monitor that listens to a whole hall.

Tests never replace the broker with an in-memory fake: :class:`Mosquitto` runs the real Mosquitto with a
generated config, :class:`Amqtt` the embedded broker that ``hallq broker`` runs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
HALLQ = str(Path(sys.executable).parent / "hallq")
ROOT = Path(__file__).resolve().parents[1]
# How long a test lets a client take to connect: the embedded broker runs in the test's own process, and on
# a loaded 2-core CI machine its CONNACK has been seen to take more than 5 s.
CONNECT_S = 20.0
# How long the contract tests wait for a request's answer. Their speed is not what they prove (bench/ measures
# it); the embedded broker runs inside the test process, sharing its interpreter with every thread the suite
# has running, and once in a whole CI run it took over 5 s to pass an answer on.
ANSWER_S = 20.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


class Mosquitto:
    """A Mosquitto of our own on a free loopback port; ``kill()`` and ``start()`` again keep the port."""

    name = "mosquitto"

    def __init__(self, workdir: Path, port: int | None = None, *, nodelay: bool = True, extra: str = ""):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.conf.write_text(
            f"listener {self.port} 127.0.0.1\n"
            "allow_anonymous true\n"
            "persistence false\n"
            f"set_tcp_nodelay {'true' if nodelay else 'false'}\n"
            "max_queued_messages 100000\n"
            f"log_dest file {self.log}\n"
            "log_type error\nlog_type warning\nlog_type notice\n" + extra
        )

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        if not Path(MOSQUITTO).exists():
            raise RuntimeError("mosquitto is not installed: run `make setup` (it installs the Debian package)")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_port(self.port)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Amqtt:
    """The embedded broker (amqtt) that ``hallq broker`` runs, on a free loopback port."""

    name = "amqtt"

    def __init__(self, workdir: Path | None = None, port: int | None = None):
        from hallq.demo.broker import EmbeddedBroker

        self.port = port or free_port()
        self._broker = EmbeddedBroker("127.0.0.1", self.port)

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> Amqtt:
        self._broker.start()
        wait_port(self.port)
        return self

    def stop(self) -> None:
        self._broker.stop()

    kill = stop


class Monitor:
    """A plain paho client that records every message under a topic filter, for assertions."""

    def __init__(self, url_or_port: str | int, topic_filter: str = "#"):
        port = url_or_port if isinstance(url_or_port, int) else int(str(url_or_port).rsplit(":", 1)[1])
        self.messages: list[paho.MQTTMessage] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"monitor-{free_port()}")
        c.on_message = self._on_message
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_connect = lambda cl, *a: cl.subscribe(topic_filter, qos=1)
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        if not self._subscribed.wait(5):
            raise TimeoutError("monitor could not subscribe")

    def _on_message(self, client: paho.Client, userdata: object, msg: paho.MQTTMessage) -> None:
        with self._cond:
            self.messages.append(msg)
            self._cond.notify_all()

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def wait_for(
        self, topic: str, predicate: Callable[[paho.MQTTMessage], bool] = lambda m: True, timeout: float = 5.0
    ) -> paho.MQTTMessage:
        """The first message (already seen or still to come) on ``topic`` that fits ``predicate``."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                for msg in self.messages[seen:]:
                    if paho.topic_matches_sub(topic, msg.topic) and predicate(msg):
                        return msg
                seen = len(self.messages)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no message on {topic} fitting the test within {timeout} s")
                self._cond.wait(left)

    def on(self, topic: str) -> list[paho.MQTTMessage]:
        with self._cond:
            return [m for m in self.messages if paho.topic_matches_sub(topic, m.topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class ControllerProcess:
    """The real hall controller, as ``hallq controller`` runs it, in a process of its own.

    ``config`` is a TOML file or TOML text (written to ``workdir/hall.toml``). With ``clock`` (ISO 8601) the
    controller runs on the scaled clock ``HALLQ_CLOCK`` that starts then, at ``speed``; the time of day the
    tests run at then does not matter (opening hours, midnight). Its log goes to ``workdir/controller.log``.
    """

    def __init__(self, workdir: Path, broker_url: str, config: Path | str, *, clock: str | None = None,
                 speed: float = 1.0, hall: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        if isinstance(config, Path):
            self.config = config
        else:
            self.config = self.workdir / "hall.toml"
            self.config.write_text(config, encoding="utf-8")
        self.db = self.workdir / "hall.db"
        self.log = self.workdir / "controller.log"
        self.url = broker_url
        self.hall = hall
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "HALLQ_LOG_LEVEL": "info"}
        if clock is not None:
            self.env["HALLQ_CLOCK"] = f"{clock},{speed},{time.time()}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, *, wait_online: bool = False, timeout: float = 20.0) -> ControllerProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [HALLQ, "controller", "--config", str(self.config), "--broker", self.url, "--db", str(self.db)],
                env=self.env, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT,
            )
        if wait_online:
            self.wait_online(timeout)
        return self

    def wait_online(self, timeout: float = 20.0) -> None:
        if self.hall is None:
            raise ValueError("wait_online needs the hall id")
        topic = f"hallq/{self.hall}/controller/status"
        m = Monitor(self.url, topic)
        try:
            m.wait_for(topic, lambda msg: msg.payload == b"online", timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"the controller did not come online:\n{self.log.read_text()[-2000:]}") from None
        finally:
            m.close()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: a power cut, as far as the controller can tell."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(5)

    def terminate(self) -> int:
        """SIGTERM, and the exit status."""
        self.proc.terminate()
        return self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not end in time."""
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class ControllerInProcess:
    """The real controller in this process (on the real clock), restartable on the same database."""

    def __init__(self, broker_url: str, db: Path, toml: str):
        from hallq.controller import config

        self.cfg = config.parse(toml)
        self.url = broker_url
        self.db = db
        self.app = None

    def start(self):
        from hallq.controller.app import Controller
        from hallq.shared.clock import real

        self.app = Controller(self.cfg, self.url, str(self.db), real(self.cfg.hall.timezone)).start()
        assert self.app.client.wait_connected(10)
        return self.app

    def stop(self) -> None:
        if self.app is not None:
            self.app.stop()
            self.app = None


#: A device gone wrong, in a process of its own (a flood sent from the test's process would also starve the
#: test's other clients of the GIL, which a flooding device on the hall's network does not): publishes requests
#: on ``topic`` as fast as paho and the broker take them (QoS 1, at most 1000 unacknowledged) without waiting
#: for answers, each ``body`` with its own ``req``, until SIGTERM; keeps the answers it gets on its reply topic
#: and prints ``{"sent": n, "answers": {req: answer}}``.
_FLOOD_SCRIPT = r"""
import json, os, signal, ssl, sys, time
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
port, user, ca, topic, reply, body = sys.argv[1:7]
body = json.loads(body)
answers, stop = {}, []
c = paho.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=paho.MQTTv311)
if os.environ.get("FLOOD_PASSWORD"):
    c.username_pw_set(user, os.environ["FLOOD_PASSWORD"])
if ca:
    c.tls_set(ca_certs=ca, cert_reqs=ssl.CERT_REQUIRED)
c.max_inflight_messages_set(1000)
def on_message(cl, u, m):
    try:
        r = json.loads(m.payload)
        answers[r["req"]] = r
    except (ValueError, KeyError, TypeError):
        pass
c.on_message = on_message
ready = []
c.on_subscribe = lambda *a: ready.append(1)
c.connect("127.0.0.1", int(port))
c.subscribe(reply, qos=1)
c.loop_start()
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
while not ready and not stop:
    time.sleep(0.01)
n = 0
while not stop:
    c.publish(topic, json.dumps({**body, "req": f"fl{n}"}), qos=1)
    n += 1
    if n % 500 == 0:
        while len(c._out_messages) > 1000 and not stop:
            time.sleep(0.002)
time.sleep(2.0)  # the last answers
c.disconnect()
c.loop_stop()
print(json.dumps({"sent": n, "answers": answers}))
"""


class Flooder:
    """Floods the hall ``hall`` as device ``device`` (its ``action`` requests, ``body`` each) from a process of its
    own, until :meth:`stop`; on a provisioned broker with the device's password (passed in the environment)
    and the hall's CA."""

    def __init__(self, port: int, hall: str, device: str, action: str, body: dict, *, password: str = "",
                 ca: str = ""):
        import json

        self.proc = subprocess.Popen(
            [sys.executable, "-c", _FLOOD_SCRIPT, str(port), device, ca, f"hallq/{hall}/req/{device}/{action}",
             f"hallq/{hall}/reply/{device}", json.dumps(body)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "FLOOD_PASSWORD": password})

    @property
    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> dict:
        """Stop it: ``{"sent": how many requests, "answers": {req: the answer}}``."""
        import json

        self.proc.terminate()
        try:
            out, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        if not out.strip():
            raise RuntimeError(f"the flooder said nothing: {err[-1000:]}")
        return json.loads(out)
