"""The embedded broker survives many devices connecting and subscribing at once (the demo's start)."""

import threading

import paho.mqtt.client as paho
from harness import Amqtt
from paho.mqtt.enums import CallbackAPIVersion


def test_connect_rush_drops_nobody(tmp_path):
    broker = Amqtt().start()
    try:
        # a retained topic, so every connecting session has retained messages to walk through
        pub = paho.Client(CallbackAPIVersion.VERSION2, client_id="seed")
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for i in range(30):
            pub.publish(f"hallq/t/window/{i + 1}/state", b"{}", qos=1, retain=True).wait_for_publish(5)
        disconnects = []
        clients = []

        def one(i: int, wave: int, ready: threading.Barrier) -> None:
            c = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{wave}-{i}")
            c.on_disconnect = lambda *a: disconnects.append(i)
            ready.wait(10)
            c.connect("127.0.0.1", broker.port)
            c.loop_start()
            # filters new to the broker that match retained messages: a connecting session awaits on
            # each of them while walking the subscriptions, and meanwhile the others add theirs
            n = (i + wave * 7) % 30 + 1
            c.subscribe([(f, 1) for f in (f"hallq/t/window/{n}/state", f"hallq/t/window/{n}/+",
                                           f"hallq/t/window/{n}/#", f"hallq/+/window/{n}/state",
                                           f"+/t/window/{n}/state", f"+/+/window/{n}/state")])
            clients.append(c)

        for wave in range(3):
            ready = threading.Barrier(31)
            threads = [threading.Thread(target=one, args=(i, wave, ready)) for i in range(30)]
            for t in threads:
                t.start()
            ready.wait(10)
            for t in threads:
                t.join(10)
        # give the broker time to work through the rush, then check nobody was thrown out
        probe = paho.Client(CallbackAPIVersion.VERSION2, client_id="probe")
        got = threading.Event()
        probe.on_message = lambda *a: got.set()
        probe.on_connect = lambda cl, *a: cl.subscribe("hallq/t/window/+/state", qos=1)
        probe.connect("127.0.0.1", broker.port)
        probe.loop_start()
        assert got.wait(10)
        assert disconnects == []
        for c in [*clients, probe, pub]:
            c.disconnect()
            c.loop_stop()
    finally:
        broker.stop()


def test_subscription_walk_tolerates_new_filters():
    """What amqtt does on connect (walk every filter) while another client subscribes (adds one)."""
    from hallq.demo.broker import _SnapshotDict

    subs = _SnapshotDict({"a/#": [], "b/+": []})
    walked = []
    for topic in subs:
        walked.append(topic)
        subs[f"new/{topic}"] = []  # another client's SUBSCRIBE lands mid-walk
    assert walked == ["a/#", "b/+"] and len(subs) == 4


def test_a_port_in_use_is_one_clear_line():
    """`hallq broker --port N` with N taken once printed three chained tracebacks."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    hallq = str(Path(sys.executable).with_name("hallq"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        r = subprocess.run([hallq, "broker", "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"Error: port {port} on 127.0.0.1 is in use: another broker (Mosquitto?) or program listens there; "
        "choose another --port, or use that broker"]
