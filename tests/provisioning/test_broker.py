"""The broker that `init` configures, for real: Mosquitto 2.0 on a loopback port with the generated TLS
listener, password file and ACL. Every refusal and permission of the issue, on the wire."""

from __future__ import annotations

import ssl
import subprocess
import time

import pytest
from hallq.provisioning import broker as brokerfiles
from hallq.shared.topics import HallTopics
from provkit import HALL, connect, make_keyring

T = HallTopics(HALL)


def quiet(conn, topic: str, seconds: float = 0.6) -> bool:
    """Nothing arrives on ``topic`` for ``seconds``."""
    time.sleep(seconds)
    return conn.got(topic) == []


@pytest.fixture
def spy(hall):
    """The controller's user, subscribed to the whole hall: what reaches it reached the hall."""
    c = hall.controller()
    assert c.accepted
    assert c.subscribe(T.everything) == 1
    return c


# -- who may log in ---------------------------------------------------------------------------------------
def test_anonymous_is_refused(hall):
    c = connect(hall.port, None, None, ca=hall.ca)
    assert not c.accepted
    assert c.connect_rc and c.connect_rc[-1].is_failure
    c.close()


def test_wrong_password_is_refused(hall):
    c = connect(hall.port, "kiosk-1", "not-the-password", ca=hall.ca)
    assert not c.accepted
    assert "authori" in str(c.connect_rc[-1]).lower()
    c.close()


def test_another_devices_password_is_refused(hall):
    c = connect(hall.port, "window-1", hall.kr.password("kiosk-1"), ca=hall.ca)
    assert not c.accepted
    c.close()


def test_good_password_with_another_client_id_cannot_be_that_client(hall, spy):
    """The client id is the user name: kiosk-1's password with client id window-1 is kiosk-1, and nothing
    more. Window-1 stays connected, and what it sends as window-1 goes nowhere."""
    real = hall.login("window-1")
    assert real.accepted
    fake = hall.login("kiosk-1", client_id="window-1")
    assert fake.accepted  # Mosquitto 2.0 replaces the client id with the user name; it cannot refuse
    fake.publish(T.request("window-1", "window"), b'{"req":"x","window":1,"op":"next"}')
    assert quiet(spy, T.request("window-1", "window"))
    assert real.disconnects == [], "window-1 was pushed off by a client that claimed its id"
    # and a second login as kiosk-1 takes kiosk-1's session over: the broker knows it as kiosk-1
    again = hall.login("kiosk-1")
    assert again.accepted
    assert fake.wait(lambda: fake.disconnects, 5), "the broker did not know the first one as kiosk-1"


def test_a_client_that_does_not_trust_the_hall_ca_is_refused(hall, tmp_path):
    other = make_keyring(tmp_path, hall="other")
    with pytest.raises(ssl.SSLCertVerificationError):
        ctx = ssl.create_default_context(cafile=str(other.ca_file))
        import socket

        with socket.create_connection(("127.0.0.1", hall.port), timeout=5) as s, \
                ctx.wrap_socket(s, server_hostname="127.0.0.1"):
            pass
    # paho with the system's CAs (or another hall's CA) never gets a CONNACK
    for ca in (None, other.ca_file):
        c = connect(hall.port, "kiosk-1", hall.kr.password("kiosk-1"), ca=ca, wait=False)
        time.sleep(1.0)
        assert not c.accepted
        c.close()


def test_plain_mqtt_on_the_tls_port_is_refused(hall):
    c = connect(hall.port, "kiosk-1", hall.kr.password("kiosk-1"), ca=None, tls=False, wait=False)
    time.sleep(1.0)
    assert not c.accepted
    c.close()


def test_the_certificate_names_the_controller(hall):
    ctx = ssl.create_default_context(cafile=str(hall.ca))
    import socket

    with socket.create_connection(("127.0.0.1", hall.port), timeout=5) as s, \
            ctx.wrap_socket(s, server_hostname="hallq-controller.local") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


# -- what a kiosk may do ----------------------------------------------------------------------------------
def test_a_kiosk_can_take_and_read_what_it_needs(hall, spy):
    k = hall.login("kiosk-1")
    k.subscribe(T.reply("kiosk-1"))
    k.publish(T.request("kiosk-1", "take"), b'{"req":"k1","category":"A"}')
    assert spy.wait(lambda: spy.got(T.request("kiosk-1", "take")))
    spy.publish(T.reply("kiosk-1"), b'{"req":"k1","ok":true}')
    assert k.wait(lambda: k.got(T.reply("kiosk-1")))


@pytest.mark.parametrize("topic", [
    T.request("window-1", "window"), T.request("kiosk-2", "take"), T.request("kiosk-1", "window"),
    T.request("kiosk-1", "rate"), T.calls, T.board, T.window_state(1), T.config, T.queue, T.stats,
    T.controller_status, T.device_status("window-1"), f"{T.root}/devices",
])
def test_a_kiosk_cannot_publish_outside_its_own_topics(hall, spy, topic):
    k = hall.login("kiosk-1")
    k.publish(topic, b'{"forged":true}', retain=True)
    assert quiet(spy, topic), f"a kiosk's message reached {topic}"
    late = hall.login("display-hall")  # a retained forgery would reach every screen that connects later
    late.subscribe(T.everything)
    assert quiet(late, topic, 0.3)


def reads(hall, device: str, topics: list[str]) -> dict[str, bool]:
    """Which of ``topics`` reach ``device`` when the controller publishes on them (Mosquitto 2.0 grants a
    3.1.1 subscription and then withholds every message the ACL does not let the user read)."""
    d = hall.login(device)
    for t in {*topics, T.everything}:
        d.subscribe(t)
    c = hall.controller()
    for t in topics:
        c.publish(t, b"{}")
    c.publish(T.reply(device), b"{}")  # a marker: its own reply always arrives, and it comes last
    assert d.wait(lambda: d.got(T.reply(device)))
    time.sleep(0.2)
    return {t: bool(d.got(t)) for t in topics}


def test_a_kiosk_cannot_read_another_devices_replies(hall):
    got = reads(hall, "kiosk-1", [T.reply("window-1"), T.reply("kiosk-2"), T.calls, T.followups,
                                  T.device_health("window-1"), T.config, T.queue])
    assert got == {T.reply("window-1"): False, T.reply("kiosk-2"): False, T.calls: False, T.followups: False,
                   T.device_health("window-1"): False, T.config: True, T.queue: True}


def test_a_device_publishes_its_own_status_and_health_and_its_will(hall, spy):
    k = hall.login("kiosk-1", will=(T.device_status("kiosk-1"), "offline"))
    k.publish(T.device_health("kiosk-1"), b'{"role":"kiosk"}', retain=True)
    assert spy.wait(lambda: spy.got(T.device_health("kiosk-1")))
    k.client._sock_close()  # the power goes: the broker sends the Last Will
    assert spy.wait(lambda: [m for m in spy.got(T.device_status("kiosk-1")) if m.payload == b"offline"], 10)


# -- windows, pads, displays ------------------------------------------------------------------------------
def test_a_window_operates_only_through_its_own_topic(hall, spy):
    w = hall.login("window-1")
    w.publish(T.request("window-1", "window"), b'{"req":"w1"}')
    assert spy.wait(lambda: spy.got(T.request("window-1", "window")))
    for topic in (T.request("window-2", "window"), T.request("window-1", "take"), T.window_state(1), T.calls):
        w.publish(topic, b"{}")
        assert quiet(spy, topic, 0.3), topic
    got = reads(hall, "window-2", [T.calls, T.board, T.queue, T.window_state(1), T.config, T.reply("window-1")])
    assert got == {T.calls: True, T.board: True, T.queue: True, T.window_state(1): True, T.config: True,
                   T.reply("window-1"): False}


def test_a_pad_rates_and_reads_only_its_windows_state(hall, spy):
    got = reads(hall, "pad-1", [T.window_state(1), T.window_state(2), T.calls])
    assert got == {T.window_state(1): True, T.window_state(2): False, T.calls: False}
    p = hall.login("pad-1")
    p.publish(T.request("pad-1", "rate"), b'{"req":"p"}')
    assert spy.wait(lambda: spy.got(T.request("pad-1", "rate")))
    p.publish(T.request("pad-1", "take"), b"{}")
    assert quiet(spy, T.request("pad-1", "take"), 0.3)


def test_a_display_publishes_nothing_but_its_status_and_health(hall, spy):
    d = hall.login("display-hall")
    for topic in (T.request("display-hall", "take"), T.request("display-hall", "window"),
                  T.request("display-hall", "rate"), T.calls, T.board, T.window_state(1), T.config):
        d.publish(topic, b"{}")
        assert quiet(spy, topic, 0.3), topic
    d.publish(T.device_health("display-hall"), b"{}")
    d.publish(T.device_status("display-hall"), b"online")
    assert spy.wait(lambda: spy.got(T.device_health("display-hall")) and spy.got(T.device_status("display-hall")))
    shown = [T.calls, T.board, T.queue, T.window_state(2), T.config, T.stats, T.controller_status]
    got = reads(hall, "display-2", [*shown, T.followups, T.device_health("kiosk-1"), f"{T.root}/devices"])
    assert got == {**dict.fromkeys(shown, True), T.followups: False, T.device_health("kiosk-1"): False,
                   f"{T.root}/devices": False}


def test_only_the_controller_publishes_the_halls_state(hall):
    screen = hall.login("display-hall")
    screen.subscribe(T.calls)
    c = hall.controller()
    c.publish(T.calls, b'{"ticket":"A001"}')
    assert screen.wait(lambda: screen.got(T.calls))


# -- revoke and apply ---------------------------------------------------------------------------------------
def test_revoke_and_apply_cut_a_connected_device_off_within_5_s_and_keep_it_out(hall):
    from hallq.provisioning.bundle import bundle_files, write_bundle
    from hallq.shared.identity import load_identity
    from hallq.shared.mqtt import HallClient

    out = hall.broker.workdir.parent / "kiosk-1"
    write_bundle(bundle_files(hall.kr, "kiosk-1"), out)
    ident = load_identity(out / "device.toml")
    dev = HallClient(ident.broker, ident.hall, ident.device, min_reconnect_delay=0.2, max_reconnect_delay=0.5)
    dev.start()
    assert dev.wait_connected(10)
    other = hall.login("window-1")
    hall.kr.revoke("kiosk-1")
    t0 = time.monotonic()
    applied = hall.broker.reload()
    assert "reloaded" in applied.how
    deadline = t0 + 5
    while dev.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not dev.connected, "the revoked kiosk is still connected 5 s after apply"
    # it keeps trying (every 0.2-0.5 s) and is refused every time
    time.sleep(2.0)
    assert not dev.connected
    log = hall.broker.log.read_text()
    assert log.count("not authorised") >= 2, log[-1000:]
    assert other.disconnects == [], "apply cut off a device that was not revoked"
    fresh = hall.login("kiosk-1", password=ident.broker.password)
    assert not fresh.accepted
    dev.stop()


def test_rotate_replaces_the_credential(hall):
    old = hall.kr.password("window-2")
    before = hall.login("window-2")
    assert before.accepted
    hall.kr.rotate("window-2")
    hall.broker.reload()
    assert before.wait(lambda: before.disconnects, 5)
    assert not hall.login("window-2", password=old).accepted
    assert hall.login("window-2").accepted


def test_our_hashes_are_mosquitto_passwds(tmp_path):
    """A hash mosquitto_passwd wrote checks with our code, and ours with the broker (every login above)."""
    f = tmp_path / "pw"
    f.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(f), "alice", "s3cret pass"], check=True)
    _user, _, hashed = f.read_text().strip().partition(":")
    assert hashed.startswith("$7$")
    assert brokerfiles.check_password("s3cret pass", hashed)
    assert not brokerfiles.check_password("s3cret", hashed)
    ours = brokerfiles.hash_password("s3cret pass")
    assert ours.startswith(f"$7${brokerfiles.ITERATIONS}$") and brokerfiles.check_password("s3cret pass", ours)


def test_the_dashboard_reads_the_hall_and_its_devices_and_publishes_nothing_but_its_status(hall, spy):
    shown = [T.calls, T.queue, T.window_state(2), T.followups, T.devices, T.device_health("kiosk-1"),
             T.device_status("kiosk-1")]
    got = reads(hall, "dashboard", [*shown, T.reply("kiosk-1"), T.request("kiosk-1", "take")])
    assert got == {**dict.fromkeys(shown, True), T.reply("kiosk-1"): False, T.request("kiosk-1", "take"): False}
    d = hall.login("dashboard")
    for topic in (T.request("dashboard", "window"), T.request("window-1", "window"), T.calls, T.devices):
        before = len(spy.got(topic))
        d.publish(topic, b'{"forged":1}')
        time.sleep(0.3)
        assert len(spy.got(topic)) == before, topic


def test_a_monitor_reads_everything_and_publishes_nothing(hall, spy):
    topics = [T.calls, T.reply("kiosk-1"), T.request("kiosk-1", "take"), T.devices, T.device_health("pad-1")]
    cfg = hall.kr.hall_file
    cfg.write_text(cfg.read_text() + '\n[[devices]]\nid = "tech-monitor"\nrole = "monitor"\n')
    hall.kr.init(cfg)
    hall.broker.reload()
    assert reads(hall, "tech-monitor", topics) == dict.fromkeys(topics, True)
    m = hall.login("tech-monitor")
    before = len(spy.got(T.calls))
    m.publish(T.calls, b'{"forged":1}')
    time.sleep(0.3)
    assert len(spy.got(T.calls)) == before
