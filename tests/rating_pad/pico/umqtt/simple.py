"""Test double of micropython-lib's ``umqtt.simple`` with its API (connect, subscribe and publish block;
``check_msg`` hands one waiting message to the callback on the caller's thread), carried by paho-mqtt to a
real broker. Lets the tests run picopad against real Mosquitto and the real controller under CPython."""

import queue
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion


class _Sock:
    def __init__(self, client):
        self.client = client

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


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

    def connect(self, clean_session=True):
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
        if qos:
            info.wait_for_publish(5)

    def check_msg(self):
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
