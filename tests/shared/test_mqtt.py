"""The MQTT client against real brokers: requests, timeouts, reconnects, Last Will, a slow handler."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from datetime import UTC

import paho.mqtt.client as paho
import pytest
from hallq.shared.mqtt import HallClient, RequestError, RequestTimeout
from hallq.shared.schemas import Error, ErrorReply, TakeReply, TakeRequest, Ticket, decode, encode
from hallq.shared.schemas import TakeRequest as TR
from hallq.shared.topics import HallTopics
from harness import ANSWER_S, CONNECT_S, Monitor
from paho.mqtt.enums import CallbackAPIVersion

T = HallTopics("test")


class Responder:
    """A plain paho client answering take requests like a controller would (for the client's tests)."""

    def __init__(self, port: int, refuse: bool = False):
        self.seen: list[str] = []
        self.refuse = refuse
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id="responder")
        ready = threading.Event()
        c.on_connect = lambda cl, *a: cl.subscribe(T.all_requests, qos=1)
        c.on_subscribe = lambda *a: ready.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert ready.wait(5)
        self.c = c

    def _on_message(self, client, userdata, msg):
        r = T.parse_request(msg.topic)
        req = decode(msg.payload, TR)
        self.seen.append(req.req)
        from datetime import datetime

        if self.refuse:
            answer = ErrorReply(req=req.req, error=Error(code="closed", message="the hall is closed"))
        else:
            answer = TakeReply(req=req.req, ticket=Ticket(number="A001", category=req.category,
                                                           issued_at=datetime.now(UTC), ahead=0,
                                                           est_wait_min=0))
        client.publish(T.reply(r.client), encode(answer), qos=1)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def port_of(broker) -> int:
    return broker.port


def test_request_gets_its_answer(any_broker):
    responder = Responder(port_of(any_broker))
    with HallClient(any_broker.url, "test", "kiosk-1") as client:
        assert client.wait_connected(CONNECT_S)
        reply = client.request("take", TakeRequest(req=client.new_req(), category="A"), timeout=ANSWER_S)
        assert isinstance(reply, TakeReply)
        assert reply.ticket.number == "A001"
    responder.close()


def test_refusal_raises_request_error(any_broker):
    responder = Responder(port_of(any_broker), refuse=True)
    with HallClient(any_broker.url, "test", "kiosk-1") as client:
        assert client.wait_connected(CONNECT_S)
        with pytest.raises(RequestError) as info:
            client.request("take", TakeRequest(req=client.new_req(), category="A"), timeout=ANSWER_S)
        assert info.value.code == "closed"
    responder.close()


def test_request_times_out_cleanly_when_nobody_answers(any_broker):
    with HallClient(any_broker.url, "test", "kiosk-1") as client:
        assert client.wait_connected(CONNECT_S)
        t0 = time.monotonic()
        with pytest.raises(RequestTimeout, match="no answer"):
            client.request("take", TakeRequest(req="lonely-1", category="A"), timeout=0.3)
        assert 0.25 < time.monotonic() - t0 < 2
        assert not client._pending  # nothing left behind


def test_request_times_out_when_the_broker_is_down(tmp_path):
    from harness import free_port

    client = HallClient(f"mqtt://127.0.0.1:{free_port()}", "test", "kiosk-1").start()
    try:
        with pytest.raises(RequestTimeout):
            client.request("take", TakeRequest(req="x-1", category="A"), timeout=0.3)
    finally:
        client.stop()


def test_availability_online_then_stopped(any_broker):
    mon = Monitor(any_broker.url)
    client = HallClient(any_broker.url, "test", "kiosk-1").start()
    mon.wait_for(T.device_status("kiosk-1"), lambda m: m.payload == b"online")
    client.stop()
    mon.wait_for(T.device_status("kiosk-1"), lambda m: m.payload == b"stopped")
    # a client connecting later still finds `stopped`: it was retained
    late = Monitor(any_broker.url, T.device_status("kiosk-1"))
    assert late.wait_for(T.device_status("kiosk-1")).payload == b"stopped"
    late.close()
    mon.close()


def test_sigkilled_client_leaves_offline(mosquitto):
    mon = Monitor(mosquitto.url)
    code = (
        "import sys, time\n"
        "from hallq.shared.mqtt import HallClient\n"
        f"c = HallClient('{mosquitto.url}', 'test', 'doomed', keepalive=2).start()\n"
        "c.wait_connected(15); print('up', flush=True); time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"up"
        mon.wait_for(T.device_status("doomed"), lambda m: m.payload == b"online")
        proc.kill()
        proc.wait()
        mon.wait_for(T.device_status("doomed"), lambda m: m.payload == b"offline", timeout=10)
    finally:
        proc.kill()
        mon.close()


def test_reconnects_and_resubscribes_after_broker_restart(mosquitto):
    got: list[bytes] = []
    client = HallClient(mosquitto.url, "test", "display-1", min_reconnect_delay=0.1, max_reconnect_delay=0.5)
    client.subscribe(T.calls, lambda m: got.append(m.payload))
    client.start()
    assert client.wait_connected(CONNECT_S)
    mosquitto.kill()
    deadline = time.monotonic() + 5
    while client.connected and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.connected
    mosquitto.start()
    assert client.wait_connected(10)
    mon = Monitor(mosquitto.url)
    # after the restart the subscription must be back: a fresh publish arrives
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        mon.publish(T.calls, b"{}")
        time.sleep(0.1)
    assert got
    # and the availability is online again on the restarted broker
    mon.wait_for(T.device_status("display-1"), lambda m: m.payload == b"online")
    client.stop()
    mon.close()


def test_a_paused_filter_is_unsubscribed_at_the_broker_until_resumed_across_reconnections(mosquitto):
    got: list[tuple[str, bytes]] = []
    cond = threading.Condition()
    tokens = itertools.count()

    def on(m) -> None:
        with cond:
            got.append((m.topic, m.payload))
            cond.notify_all()

    def heard(topic: str, timeout: float = 5.0) -> bool:
        """Publish on ``topic`` (a new payload each time) until the client hears one of them (or ``timeout``)."""
        sent: set[bytes] = set()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sent.add(payload := json.dumps({"n": next(tokens)}).encode())
            mon.publish(topic, payload)
            with cond:
                if cond.wait_for(lambda: any(t == topic and p in sent for t, p in got), 0.2):
                    return True
        return False

    def silent(topic: str, within: float = 10.0) -> bool:
        """The client stops hearing ``topic`` within ``within`` s: a message published then is not heard in 1 s.
        (The broker applies an UNSUBSCRIBE when it reads it; what it sent before still comes.)"""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if not heard(topic, 1.0):
                return True
        return False

    a, b = T.requests_of("kiosk-1"), T.requests_of("kiosk-2")
    client = HallClient(mosquitto.url, "test", "ctl", min_reconnect_delay=0.1, max_reconnect_delay=0.5)
    client.subscribe(T.all_requests, on, broker_filters=[a, b])  # one handler, a broker filter per device
    client.start()
    assert client.wait_connected(CONNECT_S)
    mon = Monitor(mosquitto.url)
    try:
        assert heard(T.request("kiosk-1", "take")) and heard(T.request("kiosk-2", "take"))
        assert heard(T.request("kiosk-3", "take"), 1.0) is False  # no filter asks for it
        assert client.pause(a) and not client.pause(a) and client.paused == {a}
        assert silent(T.request("kiosk-1", "take"))  # the broker no longer sends it
        assert heard(T.request("kiosk-2", "take"))
        mosquitto.kill()  # a reconnection subscribes what is not paused only
        mon.close()
        mosquitto.start()
        mon = Monitor(mosquitto.url)
        assert heard(T.request("kiosk-2", "take"), 15.0)
        assert heard(T.request("kiosk-1", "take"), 1.0) is False  # (a new broker session: nothing in flight)
        assert client.resume(a) and not client.resume(a) and client.paused == set()
        assert heard(T.request("kiosk-1", "take"))
    finally:
        client.stop()
        mon.close()


def test_slow_handler_does_not_block_requests(mosquitto):
    responder = Responder(mosquitto.port)
    release = threading.Event()
    client = HallClient(mosquitto.url, "test", "kiosk-1")
    client.subscribe(T.calls, lambda m: release.wait(10))
    client.start()
    assert client.wait_connected(CONNECT_S)
    mon = Monitor(mosquitto.url)
    mon.publish(T.calls, b"{}")
    time.sleep(0.1)
    # the dispatcher is stuck in the handler, yet replies still arrive (they never wait for it)
    reply = client.request("take", TakeRequest(req=client.new_req(), category="A"), timeout=3)
    assert reply.ticket.number == "A001"
    release.set()
    client.stop()
    responder.close()
    mon.close()


def test_handler_errors_are_counted_not_fatal(mosquitto):
    got = []
    client = HallClient(mosquitto.url, "test", "kiosk-1")
    client.subscribe(T.calls, lambda m: 1 / 0)
    client.subscribe(T.calls, lambda m: got.append(m))
    client.start()
    assert client.wait_connected(CONNECT_S)
    mon = Monitor(mosquitto.url)
    mon.publish(T.calls, b"{}")
    mon.publish(T.calls, b"{}")
    deadline = time.monotonic() + 5
    while len(got) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(got) == 2 and client.handler_errors == 2
    client.stop()
    mon.close()


def test_inline_handlers_run_on_the_network_thread_and_the_others_still_on_the_dispatcher(mosquitto):
    where: dict[str, list[str]] = {"inline": [], "dispatcher": [], "late": []}
    client = HallClient(mosquitto.url, "test", "controller-test")
    client.subscribe(T.all_requests, lambda m: where["inline"].append(threading.current_thread().name), inline=True)
    client.subscribe("hallq/test/req/#", lambda m: where["dispatcher"].append(threading.current_thread().name))
    client.subscribe(T.calls, lambda m: 1 / 0, inline=True)  # a failing inline handler is counted, not fatal
    client.start()
    assert client.wait_connected(CONNECT_S)
    mon = Monitor(mosquitto.url)
    mon.publish(T.request("kiosk-1", "take"), b"{}")
    mon.publish(T.calls, b"{}")

    def wait(pred):
        deadline = time.monotonic() + 5
        while not pred() and time.monotonic() < deadline:
            time.sleep(0.02)
        return pred()

    assert wait(lambda: where["inline"] and where["dispatcher"] and client.handler_errors == 1)
    assert where["inline"] == [client._net_thread.name] and where["dispatcher"] == [client._dispatcher.name]
    # a handler subscribed later is matched on the next message of a topic already seen (the memo is renewed)
    client.subscribe(T.all_requests, lambda m: where["late"].append(m.topic))
    mon.publish(T.request("kiosk-1", "take"), b"{}")
    assert wait(lambda: len(where["inline"]) == 2 and len(where["dispatcher"]) == 2 and where["late"])
    client.stop()
    mon.close()


def test_a_clean_stop_is_not_logged_as_a_lost_broker(mosquitto, caplog):
    client = HallClient(mosquitto.url, "test", "kiosk-1").start()
    assert client.wait_connected(CONNECT_S)
    with caplog.at_level("WARNING", logger="hallq.shared.mqtt"):
        client.stop()
    assert "lost the broker" not in caplog.text
