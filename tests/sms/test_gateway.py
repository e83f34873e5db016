"""The SMS gateway against the real controller, a real Mosquitto and the modem emulator on a pty."""

from __future__ import annotations

import json

import pytest
from harness import ControllerProcess, Monitor
from sms_kit import HALL, HALL_TOML, Clerk, GatewayProcess, sms_toml, wait_until

PHONE = "+8613800138000"
PHONE2 = "+8613900139000"


@pytest.fixture
def hall(tmp_path, mosquitto):
    c = ControllerProcess(tmp_path / "controller", mosquitto.url, HALL_TOML, hall=HALL).start(wait_online=True)
    yield c
    c.stop()


@pytest.fixture
def gateway_factory(tmp_path, mosquitto, modem, secret_file):
    made = []

    def make(**sms):
        g = GatewayProcess(tmp_path / "sms", sms_toml(mosquitto.url, modem.port, secret_file, tmp_path / "sms" / "sms.db",
                                                      **sms))
        made.append(g)
        return g.start()

    yield make
    for g in made:
        g.stop()


def test_take_by_name_and_by_code_then_called(hall, gateway_factory, modem, mosquitto, tmp_path):
    mon = Monitor(mosquitto.url, f"hallq/{HALL}/#")
    gw = gateway_factory()
    modem.deliver(PHONE, "社保")
    [reply] = modem.wait_texts(PHONE, 1)
    assert "A001" in reply and "社保医保" in reply and "前面0人" in reply, reply
    modem.deliver(PHONE2, "b")
    [reply2] = modem.wait_texts(PHONE2, 1)
    assert "B001" in reply2 and "不动产登记" in reply2, reply2

    clerk = Clerk(mosquitto.url, 1)
    clerk.op("next")
    texts = modem.wait_texts(PHONE, 2)
    assert texts[1] == "【测试中心】请A001号到1号窗口办理。过号需重新取号。"

    # the take went with the phone's person key, never the number
    takes = [json.loads(m.payload) for m in mon.on(f"hallq/{HALL}/req/sms-1/take")]
    assert {t["channel"] for t in takes} == {"sms"}
    assert all(len(t["person"]) == 64 for t in takes)
    gw.stop()
    for blob in [m.payload for m in mon.messages] + [gw.log.read_bytes()] + [
            p.read_bytes() for p in (tmp_path / "sms").glob("sms.db*")]:
        for number in (b"13800138000", b"13900139000", b"3108108300F0", b"3109109300F0"):  # also as PDU digits
            assert number not in blob
    assert "138****8000" in gw.log_text()
    clerk.close()
    mon.close()


def test_help_status_duplicate_quota_and_the_daily_limit(hall, gateway_factory, modem):
    gateway_factory(max_texts_per_day=6)
    modem.deliver(PHONE, "你好")
    [help_] = modem.wait_texts(PHONE, 1)
    assert "A 社保医保" in help_ and "B 不动产登记" in help_ and "取消" in help_, help_
    modem.deliver(PHONE, "ａ")  # full-width
    assert "A001" in modem.wait_texts(PHONE, 2)[1]
    modem.deliver(PHONE, "社保医保")
    dup = modem.wait_texts(PHONE, 3)[2]
    assert "您已有社保医保的号码：A001" in dup, dup
    modem.deliver(PHONE, "查")
    assert "A001前面还有0人" in modem.wait_texts(PHONE, 4)[3]
    modem.deliver(PHONE, "户籍")
    assert "C001" in modem.wait_texts(PHONE, 5)[4]
    modem.deliver(PHONE2, "户籍办理")
    assert "今天户籍办理的号已取完" in modem.wait_texts(PHONE2, 1)[0]
    modem.deliver(PHONE, "Social Insurance")  # the 6th text of the day: answered
    assert "您已有" in modem.wait_texts(PHONE, 6)[5]
    modem.deliver(PHONE, "查")  # the 7th: not answered
    modem.deliver(PHONE2, "查")  # another phone still is
    modem.wait_texts(PHONE2, 2)
    assert len(modem.texts_to(PHONE)) == 6


def test_closed_hall_answers_with_its_hours(tmp_path, mosquitto, gateway_factory, modem):
    toml = HALL_TOML.replace('timezone = "Asia/Shanghai"', 'timezone = "Asia/Shanghai"\nhours = [["09:00", "12:00"], ["14:00", "17:30"]]')
    c = ControllerProcess(tmp_path / "closed", mosquitto.url, toml, hall=HALL, clock="2026-11-30T20:00:00+08:00")
    c.start(wait_online=True)
    try:
        gateway_factory()
        modem.deliver(PHONE, "A")
        [t] = modem.wait_texts(PHONE, 1)
        assert t == "【测试中心】现在不能取号。取号时间：09:00–12:00、14:00–17:30。"
    finally:
        c.stop()


def _exactly_once(modem, phones, count=1, settle=2.0):
    for p in phones:
        modem.wait_texts(p, count, timeout=40)
    import time

    time.sleep(settle)
    for p in phones:
        assert len(modem.texts_to(p)) == count, (p, modem.texts_to(p))


def test_cms_errors_are_retried_and_sent_once(hall, gateway_factory, modem):
    gateway_factory()
    modem.cms_error(500, times=2)
    modem.deliver(PHONE, "A")
    _exactly_once(modem, [PHONE])
    assert "A001" in modem.texts_to(PHONE)[0]


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_modem_reset_mid_send_loses_nothing_and_sends_nothing_twice(hall, gateway_factory, modem, when):
    gateway_factory()
    modem.reset_on_next_send(when, down_s=1.0)
    modem.deliver(PHONE, "A")
    _exactly_once(modem, [PHONE])
    modem.deliver(PHONE2, "B")  # and the modem works on after it was set up again
    _exactly_once(modem, [PHONE2])
    assert "AT+CMGF=0" in modem.commands[modem.commands.index("ATE0", 1):]  # set up again after the reset


def test_garbage_on_the_line_is_skipped(hall, gateway_factory, modem):
    gateway_factory()
    modem.garbage()
    modem.deliver(PHONE, "A")
    modem.garbage(b"\xff\xfe\xfd" * 50 + b"\r\n+CMGR: x,y\r\nZZZZ\r\n")
    modem.deliver(PHONE2, "B")
    _exactly_once(modem, [PHONE, PHONE2])


def test_a_modem_that_stops_answering_is_reopened_and_health_says_so(hall, gateway_factory, modem, mosquitto):
    topic = f"hallq/{HALL}/device/sms-1/health"
    mon = Monitor(mosquitto.url, topic)
    gw = gateway_factory()

    def health(pred, after=0):
        msg = mon.wait_for(topic, lambda m: mon.messages.index(m) >= after and pred(json.loads(m.payload)["modem"]),
                           timeout=25)
        return json.loads(msg.payload), mon.messages.index(msg)

    h, _ = health(lambda m: m["online"] and m.get("registration") == "home")
    assert h["role"] == "sms" and h["modem"]["sim"] == "ready" and h["modem"]["signal_dbm"] == -73
    from importlib.metadata import version

    assert h["version"] == version("hallq-sms")  # for the controller's devices registry
    modem.silence(6)
    _, i = health(lambda m: not m["online"])
    modem.deliver(PHONE, "A")  # stored while nobody listens (no +CMTI reaches the gateway)
    health(lambda m: m["online"], after=i + 1)
    _exactly_once(modem, [PHONE])  # found by listing the storage after the reopen
    assert "does not answer" in gw.log_text()
    mon.close()


def test_a_killed_gateway_answers_every_text_exactly_once(hall, gateway_factory, modem, tmp_path):
    import time

    modem.send_delay = 0.25
    gw = gateway_factory()
    phones = [f"+86137{i:08d}" for i in range(8)]
    for p in phones:
        modem.deliver(p, "社保")
    wait_until(lambda: len(modem.messages) >= 2, what="two answers")
    gw.kill()
    time.sleep(0.5)
    for p in phones[:3]:
        modem.deliver(p, "查")  # texts that arrive while the gateway is down
    gw.start()
    _exactly_once(modem, phones[3:], 1)
    _exactly_once(modem, phones[:3], 2)
    numbers = sorted(t.split("您的号码")[1][:4] for p in phones for t in modem.texts_to(p) if "您的号码" in t)
    assert numbers == [f"A{i:03d}" for i in range(1, 9)]


def test_three_ahead_notice_status_and_cancel(hall, gateway_factory, modem, mosquitto):
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import TakeRequest

    kiosk = HallClient(mosquitto.url, HALL, "kiosk-1").start()
    assert kiosk.wait_connected(10)
    for _ in range(5):
        kiosk.request("take", TakeRequest(req=kiosk.new_req(), category="A", channel="touch"), timeout=10)
    gateway_factory()
    modem.deliver(PHONE, "社保")
    [t] = modem.wait_texts(PHONE, 1)
    assert "A006" in t and "前面5人" in t and "前面剩3人时" in t, t
    clerk = Clerk(mosquitto.url, 1)
    clerk.op("next")  # A001
    clerk.op("next")  # A002: now 3 are ahead of A006
    texts = modem.wait_texts(PHONE, 2)
    assert texts[1] == "【测试中心】您的号码A006前面还有3人，请回到等候区留意叫号。"
    modem.deliver(PHONE, "查")
    assert "A006前面还有3人" in modem.wait_texts(PHONE, 3)[2]
    modem.deliver(PHONE2, "A")
    assert "A007" in modem.wait_texts(PHONE2, 1)[0]
    modem.deliver(PHONE2, "取消")
    assert modem.wait_texts(PHONE2, 2)[1] == "【测试中心】已取消号码A007。"
    modem.deliver(PHONE2, "查")
    assert "没有等候中的号码" in modem.wait_texts(PHONE2, 3)[2]
    clerk.op("next")  # A003: 2 ahead now; no second notice
    clerk.op("next")
    clerk.op("next")
    clerk.op("next")  # A006 is called
    assert modem.wait_texts(PHONE, 4)[3] == "【测试中心】请A006号到1号窗口办理。过号需重新取号。"
    clerk.close()
    kiosk.stop()
