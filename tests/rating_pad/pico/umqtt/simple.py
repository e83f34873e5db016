"""Test double of micropython-lib's ``umqtt.simple`` with its API (connect, subscribe and publish block;
``check_msg`` hands one waiting message to the callback on the caller's thread), carried by paho-mqtt to a
real broker. Lets the tests run picopad against real Mosquitto and the real controller under CPython."""

import queue
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class _Sock:
    """The client's socket: ``settimeout`` bounds the blocking waits as it does on MicroPython; umqtt.simple's
    ``check_msg`` leaves it blocking (``setblocking(True)``: no time-out) after each read."""

    def __init__(self, client):
        self.client = client
        self.timeout = None  # None: block without end, like a MicroPython socket by default

    def settimeout(self, t):
        self.timeout = t

    def setblocking(self, flag):
        self.timeout = None if flag else 0

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def _wait_forever(info):
    while not info.is_published():
        info.wait_for_publish(1)


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0, ssl=None):
        self.server = server
        self.port = port or 1883
        self.keepalive = keepalive or 60
        self.cb = None
        self.inbox = queue.Queue()
        self.c = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        if user:
            self.c.username_pw_set(user, password)
        if ssl is not None:  # umqtt.simple wraps its socket with this context, for the server's name
            self.c.tls_set_context(ssl)
        self.c.on_message = lambda c, u, m: self.inbox.put((m.topic.encode(), m.payload))
        self.sock = _Sock(self.c)

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.c.will_set(topic, msg, qos=qos, retain=retain)

    def connect(self, clean_session=True, timeout=None):
        done = threading.Event()
        self.c.on_connect = lambda *a: done.set()
        try:
            self.c.connect(self.server, self.port, self.keepalive)
        except ConnectionError as exc:
            raise OSError(str(exc)) from None
        self.c.loop_start()
        if not done.wait(5):
            raise OSError("no CONNACK")
        return 0

    def subscribe(self, topic, qos=0):
        done = threading.Event()
        self.c.on_subscribe = lambda *a: done.set()
        self.c.subscribe(topic, qos)
        if not done.wait(5):
            raise OSError("no SUBACK")

    def publish(self, topic, msg, retain=False, qos=0):
        if not self.c.is_connected():
            raise OSError("not connected")
        info = self.c.publish(topic, msg, qos=qos, retain=retain)
        if qos:  # umqtt.simple reads until the PUBACK comes: without a socket time-out, for ever
            t = self.sock.timeout
            try:
                if t is None:
                    _wait_forever(info)
                else:
                    info.wait_for_publish(t)
            except (RuntimeError, ValueError) as exc:
                raise OSError(str(exc)) from None
            if not info.is_published():
                raise OSError(110, "ETIMEDOUT")

    def check_msg(self):
        self.sock.setblocking(True)  # as umqtt.simple leaves it after its read
        if not self.c.is_connected():
            raise OSError("connection lost")
        try:
            topic, msg = self.inbox.get_nowait()
        except queue.Empty:
            return None
        self.cb(topic, msg)
        return None

    def ping(self):
        if not self.c.is_connected():
            raise OSError("connection lost")

    def disconnect(self):
        self.sock.close()
