"""The Pico W firmware's adapter (picopad) under CPython, against real Mosquitto and the real controller:
``machine``, ``network`` and ``ntptime`` are test doubles (tests/rating_pad/pico/), ``umqtt.simple`` is a
double with its API carried by paho-mqtt. What runs is the firmware's own loop, state machine and journal."""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
import threading
import time as _time
from datetime import datetime
from pathlib import Path

import pytest
from padkit import wait_until

HERE = Path(__file__).resolve().parent
FIRMWARE = HERE.parents[1] / "rating-pad" / "firmware"
FAKES = ("machine", "network", "ntptime", "umqtt", "umqtt.simple", "picopad", "padcore", "padjournal")


class MicroTime:
    """MicroPython's ``time`` on CPython: ``ticks_ms`` wraps at 2**30 like the rp2 port's."""

    PERIOD = 1 << 30

    def ticks_ms(self) -> int:
        return (_time.monotonic_ns() // 1_000_000 + self.PERIOD - 5000) % self.PERIOD  # wraps 5 s in

    def ticks_diff(self, a: int, b: int) -> int:
        half = self.PERIOD // 2
        return (a - b + half) % self.PERIOD - half

    def sleep_ms(self, ms: int) -> None:
        _time.sleep(ms / 1000)

    def time(self) -> int:
        return int(_time.time())

    gmtime = staticmethod(_time.gmtime)


@pytest.fixture
def picopad(monkeypatch, tmp_path):
    for name in FAKES:
        sys.modules.pop(name, None)
    monkeypatch.syspath_prepend(str(FIRMWARE))
    monkeypatch.syspath_prepend(str(HERE / "pico"))
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module("picopad")
    monkeypatch.setattr(module, "time", MicroTime())
    yield module
    for name in FAKES:
        sys.modules.pop(name, None)


def retained(mosquitto, topic: str):
    """The retained message on ``topic``, decoded as the controller decodes a device's health."""
    from hallq.shared.schemas import DeviceHealth, decode
    from harness import Monitor

    mon = Monitor(mosquitto.url, topic)
    try:
        return decode(mon.wait_for(topic, lambda m: m.payload).payload, DeviceHealth)
    finally:
        mon.close()


def test_the_firmware_version_is_the_packages(picopad):
    """The Pico's firmware reports the version of the hallq-rating-pad it ships with."""
    import tomllib

    project = tomllib.loads((FIRMWARE.parent / "pyproject.toml").read_text())["project"]
    assert project["version"] == picopad.VERSION


def test_the_config_file_is_strict(picopad, tmp_path):
    good = tmp_path / "pad.json"
    good.write_text('{"ssid": "s", "password": "p", "broker": "h", "hall": "demo", "client": "pad-3", "window": 3,'
                    ' "buttons": [2, 3, 4, 5, 6]}')
    cfg = picopad.load_config(str(good))
    assert cfg["port"] == 1883 and cfg["leds"] == [] and cfg["utc_offset_min"] == 480
    for text, key in [('{"ssid": "s"}', "missing key password"),
                      (good.read_text()[:-1] + ', "colour": 1}', "unknown key colour"),
                      (good.read_text().replace("[2, 3, 4, 5, 6]", "[2, 3]"), "buttons")]:
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError, match=key):
            picopad.load_config(str(bad))


def test_the_pico_pad_rates_a_service_through_the_controller(picopad, mosquitto, controller, clerk, tmp_path):
    machine = sys.modules["machine"]
    (tmp_path / "pad.json").write_text(json.dumps({
        "ssid": "hall", "password": "pw", "broker": "127.0.0.1", "port": mosquitto.port, "hall": "padtest",
        "client": "pad-1", "window": 1, "buttons": [2, 3, 4, 5, 6], "leds": [16, 17, 18, 19, 20], "debounce_ms": 20,
    }))
    pad = picopad.PicoPad(picopad.load_config())
    runner = threading.Thread(target=pad.run, daemon=True)
    runner.start()
    try:
        wait_until(lambda: pad.mqtt is not None and pad.synced, what="the pad to connect and take the snapshot")
        health = retained(mosquitto, "hallq/padtest/device/pad-1/health")
        assert health.role == "pad" and health.version == picopad.VERSION and health.errors == []
        ticket = clerk.serve("CASE-PICO-1")
        wait_until(lambda: pad.led_mode == "pulse", what="the invitation")
        duties = set()
        for _ in range(20):
            duties.add(machine.PWMS[16].duty)
            _time.sleep(0.03)
        assert len(duties) > 5, "the LEDs pulse"
        machine.PINS[3].level = 0  # 满意
        _time.sleep(0.1)
        machine.PINS[3].level = 1
        wait_until(lambda: pad.led_mode == "one", what="the thank-you")
        wait_until(lambda: not pad.journal.pending and pad.sending is None, what="the controller's answer")
        assert [machine.PWMS[p].duty for p in (16, 17, 18, 19, 20)] == [0, 65535, 0, 0, 0]
        machine.PINS[6].level = 0  # another press during the thank-you: nothing
        _time.sleep(0.1)
        machine.PINS[6].level = 1
        _time.sleep(0.1)

        # offline: the broker goes away after the invitation; the press is kept in flash and sent later
        offline_ticket = clerk.serve("CASE-PICO-2")
        wait_until(lambda: pad.led_mode == "pulse", what="the second invitation")
        mosquitto.kill()
        wait_until(lambda: pad.mqtt is None, what="the pad to notice")
        pressed_at = datetime.now().astimezone()
        machine.PINS[6].level = 0  # 非常不满意
        _time.sleep(0.1)
        machine.PINS[6].level = 1
        wait_until(lambda: len(pad.journal.pending) == 1, what="the rating in the journal")
        _time.sleep(1.5)
        mosquitto.start()
        wait_until(lambda: not pad.journal.pending, timeout=20, what="the rating sent after reconnecting")
    finally:
        pad.running = False
        runner.join(5)
        if pad.mqtt is not None:
            pad.mqtt.disconnect()
    with sqlite3.connect(controller.db) as db:
        rows = db.execute("SELECT ticket, level, case_id, at FROM ratings").fetchall()
    assert [r[:3] for r in rows] == [(ticket, "satisfied", "CASE-PICO-1"),
                                     (offline_ticket, "very_dissatisfied", "CASE-PICO-2")]
    assert rows[0][3].endswith("+08:00"), "the Pico sends the time of the press in the hall's offset"
    assert abs((datetime.fromisoformat(rows[1][3]) - pressed_at).total_seconds()) < 1.5
    assert (tmp_path / "ratings.jsonl").exists()


def test_a_broker_that_stops_answering_never_freezes_the_loop(picopad, mosquitto, controller, clerk, tmp_path):
    """Issue 9 §4: umqtt.simple has no time-out and waits for a QoS 1 PUBACK without end; with the broker frozen
    (SIGSTOP: the TCP connection stays up, nothing answers) the pad must go on polling its buttons."""
    import os
    import signal

    machine = sys.modules["machine"]
    (tmp_path / "pad.json").write_text(json.dumps({
        "ssid": "hall", "password": "pw", "broker": "127.0.0.1", "port": mosquitto.port, "hall": "padtest",
        "client": "pad-1", "window": 1, "buttons": [2, 3, 4, 5, 6], "leds": [16, 17, 18, 19, 20], "debounce_ms": 20,
    }))
    pad = picopad.PicoPad(picopad.load_config())
    runner = threading.Thread(target=pad.run, daemon=True)
    runner.start()
    frozen = False
    try:
        wait_until(lambda: pad.mqtt is not None and pad.synced, what="the pad to connect and take the snapshot")
        ticket = clerk.serve("CASE-FROZEN")
        wait_until(lambda: pad.led_mode == "pulse", what="the invitation")
        os.kill(mosquitto.proc.pid, signal.SIGSTOP)
        frozen = True
        machine.PINS[2].level = 0  # 非常满意: the rating is published to a broker that does not answer
        _time.sleep(0.1)
        machine.PINS[2].level = 1
        wait_until(lambda: pad.led_mode == "one", what="the thank-you")
        _time.sleep(0.5)
        before = machine.PINS[2].reads
        _time.sleep(1.0)
        assert machine.PINS[2].reads - before > 20, "the loop froze while the broker did not answer"
        os.kill(mosquitto.proc.pid, signal.SIGCONT)
        frozen = False
        wait_until(lambda: not pad.journal.pending, timeout=30, what="the rating answered once the broker is back")
    finally:
        if frozen:
            os.kill(mosquitto.proc.pid, signal.SIGCONT)
        pad.running = False
        runner.join(10)
        if pad.mqtt is not None:
            pad.mqtt.disconnect()
    with sqlite3.connect(controller.db) as db:
        rows = db.execute("SELECT ticket, level FROM ratings").fetchall()
    assert rows == [(ticket, "very_satisfied")]
