"""Helpers for the provisioning tests: a hall with every kind of device, its keyring, its secure broker, and
plain paho clients that log in (or try to) over TLS."""

from __future__ import annotations

import ssl
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as paho
from hallq.provisioning.keyring import Keyring
from hallq.provisioning.local import LocalBroker
from harness import free_port
from paho.mqtt.enums import CallbackAPIVersion

HALL = "t1"


def hall_toml(port: int, hall: str = HALL, extra_devices: str = "") -> str:
    return f"""\
[hall]
id = "{hall}"
name = "测试中心"
hours = []

[[categories]]
code = "A"
name = "社保"

[[categories]]
code = "B"
name = "税务"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A"]

[[windows]]
no = 2
name = "2号窗口"
categories = ["A", "B"]

[broker]
host = "127.0.0.1"
port = {port}
addresses = ["hallq-controller.local"]

[[devices]]
id = "kiosk-1"
role = "kiosk"

[[devices]]
id = "window-1"
role = "window"
window = 1

[[devices]]
id = "window-2"
role = "window"
window = 2

[[devices]]
id = "pad-1"
role = "pad"
window = 1

[[devices]]
id = "display-hall"
role = "display"
mode = "hall"

[[devices]]
id = "display-2"
role = "display"
mode = "window"
window = 2
{extra_devices}"""


def make_keyring(tmp: Path, port: int | None = None, hall: str = HALL) -> Keyring:
    cfg = tmp / f"hall-{hall}.toml"
    cfg.write_text(hall_toml(port or free_port(), hall), encoding="utf-8")
    kr = Keyring(tmp / f"keyring-{hall}")
    kr.init(cfg)
    return kr


@dataclass
class Conn:
    """A plain paho client of the secure broker, recording what it gets."""

    client: paho.Client
    connect_rc: list = field(default_factory=list)
    disconnects: list = field(default_factory=list)
    messages: list = field(default_factory=list)
    granted: dict = field(default_factory=dict)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, pred, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
            return True

    @property
    def accepted(self) -> bool:
        return bool(self.connect_rc) and not self.connect_rc[-1].is_failure

    def subscribe(self, topic: str) -> int:
        """Subscribe and return the granted QoS (128: refused by the ACL)."""
        _, mid = self.client.subscribe(topic, qos=1)
        assert self.wait(lambda: mid in self.granted), f"no SUBACK for {topic}"
        return self.granted[mid]

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def got(self, topic: str) -> list[paho.MQTTMessage]:
        with self.cond:
            return [m for m in self.messages if paho.topic_matches_sub(topic, m.topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def connect(port: int, user: str | None, password: str | None, *, ca: Path | None, client_id: str | None = None,
            tls: bool = True, will: tuple[str, str] | None = None, wait: bool = True,
            reconnect: bool = False) -> Conn:
    c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id or user or f"anon-{free_port()}",
                    protocol=paho.MQTTv311)
    conn = Conn(c)
    if user:
        c.username_pw_set(user, password)
    if tls:
        c.tls_set(ca_certs=str(ca) if ca else None, cert_reqs=ssl.CERT_REQUIRED)
    if will:
        c.will_set(will[0], will[1], qos=1, retain=True)

    def on_connect(cl, ud, flags, rc, props):
        with conn.cond:
            conn.connect_rc.append(rc)
            conn.cond.notify_all()

    def on_disconnect(cl, ud, flags, rc, props):
        with conn.cond:
            conn.disconnects.append((time.monotonic(), rc))
            conn.cond.notify_all()

    def on_message(cl, ud, msg):
        with conn.cond:
            conn.messages.append(msg)
            conn.cond.notify_all()

    def on_subscribe(cl, ud, mid, rcs, props):
        with conn.cond:
            conn.granted[mid] = rcs[0].value
            conn.cond.notify_all()

    c.on_connect, c.on_disconnect, c.on_message, c.on_subscribe = on_connect, on_disconnect, on_message, on_subscribe
    if not reconnect:
        c.reconnect_delay_set(60, 60)
    c.connect_async("127.0.0.1", port, keepalive=30)
    c.loop_start()
    if wait:
        conn.wait(lambda: bool(conn.connect_rc) or bool(conn.disconnects), timeout=10)
    return conn


class Hall:
    """A keyring and its secure broker, with logins by device id."""

    def __init__(self, kr: Keyring, broker: LocalBroker):
        self.kr = kr
        self.broker = broker
        self.port = broker.port
        self.ca = kr.ca_file
        self.conns: list[Conn] = []
        self._controller: Conn | None = None

    def login(self, device: str, **kw) -> Conn:
        pw = kw.pop("password", None) or self.kr.password(device)
        c = connect(self.port, device, pw, ca=self.ca, **kw)
        self.conns.append(c)
        return c

    def controller(self) -> Conn:
        """The controller's one login (a second login under the same id would push the first off)."""
        if self._controller is None:
            self._controller = self.login("controller")
        return self._controller

    def close(self) -> None:
        for c in self.conns:
            c.close()
