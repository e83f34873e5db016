"""Issue 9 §1 and issue 13: no payload can take a client off the network; a dead loop ends the process;
an unreachable broker is said at once, with its reason, and then at a steady interval.

Everything goes through a real Mosquitto; the garbage is generated (hypothesis) as well as the cases seen.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from hallq.shared.mqtt import EXIT_DEAD_LOOP, HallClient, LinkDown, RequestTimeout
from hallq.shared.schemas import PayloadError, TakeReply, TakeRequest, decode, peek_req
from hallq.shared.topics import HallTopics
from harness import CONNECT_S, ROOT, Monitor, Mosquitto, free_port
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_mqtt import Responder

T = HallTopics("test")

#: The message that killed the controller: a JSON string holding invalid UTF-8 (27 bytes).
BAD_UTF8 = b'{"req":"r1","x":"\xff\xfe\xfd"}' + b" " * 3
DEEP = b"[" * 5000 + b"]" * 5000
DEEP_OBJ = b'{"req":' * 3000 + b"1" + b"}" * 3000


def json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    return st.recursive(scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4),
                        max_leaves=20)


def garbage():
    """Payloads a broken or hostile client may send: any bytes, JSON with broken strings, deep nesting, odd JSON."""
    return st.one_of(
        st.binary(max_size=200),
        st.binary(min_size=1, max_size=40).map(lambda b: b'{"req":"' + b + b'"}'),
        st.binary(min_size=1, max_size=40).map(lambda b: b'{"req":"ok-1","category":"' + b + b'"}'),
        st.integers(min_value=100, max_value=20000).map(lambda n: b"[" * n + b"]" * n),
        st.integers(min_value=100, max_value=5000).map(lambda n: b'{"a":' * n + b"0" + b"}" * n),
        st.integers(min_value=1, max_value=20000).map(lambda n: b"[" * n),
        json_values().map(lambda v: json.dumps(v).encode()),
        json_values().map(lambda v: json.dumps({"req": v, "ticket": v}).encode()),
    )


def test_decode_turns_every_failure_into_payload_error():
    for p in (BAD_UTF8, DEEP, DEEP_OBJ, b"\x00\xff", b"", b"[" * 100000):
        with pytest.raises(PayloadError):
            decode(p, TakeRequest)
        assert peek_req(p) is None or isinstance(peek_req(p), str)


@settings(max_examples=300, deadline=None)
@given(garbage())
def test_decode_and_peek_never_raise_anything_else(payload):
    try:
        decode(payload, TakeRequest)
    except PayloadError:
        pass
    peek_req(payload)


@pytest.fixture
def live(mosquitto):
    """A HallClient subscribed to a hall topic, a responder answering its takes, a raw publisher."""
    responder = Responder(mosquitto.port)
    got: list[bytes] = []
    client = HallClient(mosquitto.url, "test", "kiosk-1", on_fatal=lambda why: got.append(b"FATAL " + why.encode()))
    client.subscribe(T.queue, lambda m: decode(m.payload, TakeRequest))  # a handler that lets PayloadError out
    client.subscribe(T.config, lambda m: got.append(m.payload))
    client.start()
    assert client.wait_connected(CONNECT_S)
    pub = Monitor(mosquitto.port, "nothing/#")
    yield client, pub, got
    client.stop()
    pub.close()
    responder.close()


def assert_serving(client: HallClient, got: list[bytes]) -> None:
    reply = client.request("take", TakeRequest(req=client.new_req(), category="A"), timeout=5)
    assert isinstance(reply, TakeReply)
    assert client._net_thread is not None and client._net_thread.is_alive()
    assert not [g for g in got if g.startswith(b"FATAL")]


def test_the_cases_seen_do_not_kill_the_client(live, caplog):
    client, pub, got = live
    with caplog.at_level(logging.WARNING, logger="hallq.shared.mqtt"):
        for topic in (T.reply("kiosk-1"), T.queue, T.config):
            for p in (BAD_UTF8, DEEP, DEEP_OBJ):
                pub.publish(topic, p)
        assert_serving(client, got)
        # the queue's payloads reach their handler on the dispatcher thread: it may still be at them
        deadline = time.monotonic() + 5
        while client.decode_errors[T.queue] < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
    # counted, and logged once per topic
    # on the reply topic BAD_UTF8 still has a readable req (no request waits for it: dropped, like a late answer)
    assert client.decode_errors[T.reply("kiosk-1")] == 2
    assert client.decode_errors[T.queue] == 3
    logged = [r.getMessage() for r in caplog.records if "does not fit the contract" in r.getMessage()]
    assert len([m for m in logged if T.reply("kiosk-1") in m]) == 1
    assert len([m for m in logged if T.queue in m]) == 1
    assert client.network_errors == 0


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(garbage(), min_size=1, max_size=5), where=st.sampled_from(["reply", "queue", "config"]))
def test_generated_garbage_never_takes_the_client_off_the_network(live, payloads, where):
    client, pub, got = live
    topic = {"reply": T.reply("kiosk-1"), "queue": T.queue, "config": T.config}[where]
    for p in payloads:
        pub.publish(topic, p)
    assert_serving(client, got)


DEAD_LOOP_SCRIPT = """
import sys, time, logging
logging.basicConfig(level=logging.INFO)
from hallq.shared.mqtt import HallClient
c = HallClient(sys.argv[1], "test", "victim-1")
c.start()
assert c.wait_connected(15)
def boom(*a):
    raise RuntimeError("a bug on the network thread")
c._paho.on_message = boom          # bypass every guard: the network thread itself dies
c.subscribe("hallq/test/queue", lambda m: None)
print("ready", flush=True)
time.sleep(60)
print("still alive, deaf", flush=True)
"""


def test_a_dead_network_loop_ends_the_process_non_zero(mosquitto):
    proc = subprocess.Popen([sys.executable, "-c", DEAD_LOOP_SCRIPT, mosquitto.url], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.5)  # let the subscription through
        m = Monitor(mosquitto.port, "nothing/#")
        m.publish("hallq/test/queue", b"{}")
        m.close()
        rc = proc.wait(15)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = proc.stderr.read().decode()
    assert rc == EXIT_DEAD_LOOP, err
    assert "network thread of victim-1 died" in err


def test_no_request_is_sent_while_the_link_is_down_nor_later(tmp_path, caplog):
    broker = Mosquitto(tmp_path / "b").start()
    responder = Responder(broker.port)
    seen_before = len(responder.seen)
    client = HallClient(broker.url, "test", "kiosk-1", min_reconnect_delay=0.2, max_reconnect_delay=0.5)
    client.start()
    try:
        assert client.wait_connected(CONNECT_S)
        broker.kill()
        deadline = time.monotonic() + 10
        while client.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(LinkDown):
            client.request("take", TakeRequest(req="ghost-1", category="A"), timeout=1)
        broker.start()
        responder.close()
        responder = Responder(broker.port)
        assert client.wait_connected(10)
        reply = client.request("take", TakeRequest(req="real-1", category="A"), timeout=5)
        assert reply.req == "real-1"
        time.sleep(0.5)
        assert "ghost-1" not in responder.seen
    finally:
        client.stop()
        responder.close()
        broker.stop()
    assert seen_before == 0


def test_a_request_given_up_is_withdrawn_from_the_outgoing_queue(mosquitto):
    """A publish still in paho's queue when its sender gives up is never delivered after that."""
    responder = Responder(mosquitto.port)
    client = HallClient(mosquitto.url, "test", "kiosk-1", auto_online=False)
    client.start()
    try:
        assert client.wait_connected(CONNECT_S)
        c = client._paho
        deadline = time.monotonic() + 5
        while c._out_messages and time.monotonic() < deadline:  # nothing else in flight
            time.sleep(0.01)
        # hold paho's sending back: the request stays queued, as it would behind a dead link
        with c._out_message_mutex:
            c._max_inflight_messages = 1
            c._inflight_messages = 1
        with pytest.raises(RequestTimeout):
            client.request("take", TakeRequest(req="late-1", category="A"), timeout=0.5)
        with c._out_message_mutex:
            assert not any(b"late-1" in m.payload for m in c._out_messages.values())
            c._inflight_messages = 0
            c._max_inflight_messages = 100
        reply = client.request("take", TakeRequest(req="next-1", category="A"), timeout=5)
        assert reply.req == "next-1"
        assert "late-1" not in responder.seen
    finally:
        client.stop()
        responder.close()


# -- the broker cannot be reached (issue 13) ----------------------------------------------------------------
def _run_and_read(args: list[str], until: str, timeout: float = 15.0) -> str:
    """Run a hallq command, collect its standard error until ``until`` shows up (or time runs out), stop it."""
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, cwd=ROOT,
                            env={**__import__("os").environ, "HALLQ_LOG_LEVEL": "info"})
    lines: list[str] = []

    def read() -> None:
        for raw in proc.stderr:
            lines.append(raw.decode(errors="replace"))

    t = threading.Thread(target=read, daemon=True)
    t.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not any(until in ln for ln in lines):
            time.sleep(0.1)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        t.join(5)
    return "".join(lines)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        (None, "connection refused"),
        ("mqtt://no-such-host.invalid:1883", "no such host 'no-such-host.invalid'"),
    ],
)
def test_controller_says_at_once_that_it_cannot_reach_the_broker(tmp_path, url, reason):
    from harness import HALLQ

    sys.path.insert(0, str(ROOT / "tests" / "controller"))
    from controller_kit import HALL_TOML

    (tmp_path / "hall.toml").write_text(HALL_TOML, encoding="utf-8")
    url = url or f"mqtt://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    err = _run_and_read([HALLQ, "controller", "--config", str(tmp_path / "hall.toml"), "--broker", url,
                         "--db", str(tmp_path / "hall.db")], until="cannot reach the broker")
    assert "cannot reach the broker" in err, err
    line = next(ln for ln in err.splitlines() if "cannot reach the broker" in ln)
    assert reason in line
    assert url.split("//")[1].split(":")[0] in line
    assert time.monotonic() - t0 < 10  # at once, not after 45 s


def test_unreachable_is_repeated_at_a_steady_interval_and_names_tls_and_auth(tmp_path, caplog):
    port = free_port()
    client = HallClient(f"mqtt://127.0.0.1:{port}", "test", "kiosk-9", unreachable_log_every=1.0,
                        min_reconnect_delay=0.1, max_reconnect_delay=0.2)
    with caplog.at_level(logging.ERROR, logger="hallq.shared.mqtt"):
        client.start()
        time.sleep(3.3)
        client.stop()
    said = [r.getMessage() for r in caplog.records if "cannot reach the broker" in r.getMessage()]
    assert 3 <= len(said) <= 5, said  # at once, then about once a second; not at every attempt
    assert client.connect_failures > len(said)

    # TLS to a plain listener
    broker = Mosquitto(tmp_path / "plain").start()
    caplog.clear()
    client = HallClient(f"mqtts://127.0.0.1:{broker.port}", "test", "kiosk-9")
    with caplog.at_level(logging.ERROR, logger="hallq.shared.mqtt"):
        client.start()
        deadline = time.monotonic() + 10
        while client.unreachable_reason is None and time.monotonic() < deadline:
            time.sleep(0.05)
        client.stop()
    assert client.unreachable_reason and client.unreachable_reason.startswith("TLS"), client.unreachable_reason
    broker.stop()

    # TLS to a broker whose certificate the client does not trust
    import tempfile

    certs_dir = tempfile.TemporaryDirectory(prefix="hallq-tls-")  # outside pytest's 0700 tree: Mosquitto drops root
    certs = Path(certs_dir.name)
    certs.chmod(0o755)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-days",
                    "2", "-keyout", str(certs / "key.pem"), "-out", str(certs / "cert.pem")], check=True,
                   capture_output=True)
    (certs / "key.pem").chmod(0o644)  # a throwaway key: Mosquitto reads it after dropping root
    tls = Mosquitto(tmp_path / "tls")
    tls.conf.write_text(tls.conf.read_text() + f"certfile {certs / 'cert.pem'}\nkeyfile {certs / 'key.pem'}\n")
    tls.start()
    client = HallClient(f"mqtts://127.0.0.1:{tls.port}", "test", "kiosk-9")
    client.start()
    deadline = time.monotonic() + 10
    while client.unreachable_reason is None and time.monotonic() < deadline:
        time.sleep(0.05)
    client.stop()
    tls.stop()
    certs_dir.cleanup()
    assert client.unreachable_reason and client.unreachable_reason.startswith("TLS: the broker's certificate is not"), \
        client.unreachable_reason

    # a broker that wants credentials
    locked = Mosquitto(tmp_path / "locked")
    locked.conf.write_text(locked.conf.read_text().replace("allow_anonymous true", "allow_anonymous false"))
    locked.start()
    client = HallClient(locked.url, "test", "kiosk-9")
    with caplog.at_level(logging.ERROR, logger="hallq.shared.mqtt"):
        client.start()
        deadline = time.monotonic() + 10
        while client.unreachable_reason is None and time.monotonic() < deadline:
            time.sleep(0.05)
        client.stop()
    locked.stop()
    assert client.unreachable_reason and client.unreachable_reason.startswith("auth"), client.unreachable_reason
    assert any("auth" in r.getMessage() and str(locked.port) in r.getMessage() for r in caplog.records)


@pytest.fixture
def controller(mosquitto, tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "controller"))
    from controller_kit import HALL_TOML, SYSTEM_DEVICES, ControllerProc, Requester

    r = Requester(mosquitto.port)
    c = ControllerProc(tmp_path / "controller", mosquitto.url, HALL_TOML + SYSTEM_DEVICES).start()
    r.mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=15)
    yield c, r
    c.kill()
    r.close()
    log = (tmp_path / "controller" / "controller.log").read_text()
    assert "Traceback" not in log, log[-3000:]


CONTROLLER_TOPICS = ("hallq/test/reply/controller-test", "hallq/test/req/kiosk-1/take", "hallq/test/req/kiosk-2/take",
                     "hallq/test/req/caller-1/window", "hallq/test/req/pad-1/rate")


def test_the_cases_seen_leave_the_controller_process_serving(controller):
    c, r = controller
    for topic in CONTROLLER_TOPICS:
        for p in (BAD_UTF8, DEEP, DEEP_OBJ):
            r.mon.publish(topic, p)
    reply = r.send("kiosk-1", "take", {"req": "after-garbage-1", "category": "B"}, timeout=10)
    assert reply["ok"] is True, reply
    assert c.alive()
    time.sleep(1)
    assert [m.payload for m in r.mon.on("hallq/test/controller/status")][-1] == b"online"


_n = iter(range(10**6))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payloads=st.lists(st.tuples(st.sampled_from(CONTROLLER_TOPICS), garbage()), min_size=1, max_size=6))
def test_generated_garbage_leaves_the_controller_process_serving(controller, payloads):
    c, r = controller
    for topic, p in payloads:
        r.mon.publish(topic, p)
    req = f"g-{next(_n)}"
    reply = r.send("kiosk-2", "take", {"req": req, "category": "B"}, timeout=10)
    assert reply["ok"] is True, reply
    assert c.alive()
