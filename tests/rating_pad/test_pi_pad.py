"""The Raspberry Pi pad: its config, its gpiozero adapter (MockFactory with MockPWMPin), and the whole pad
rating a real service through real Mosquitto and the real controller."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin
from hallq.rating_pad import padjournal
from hallq.rating_pad.app import PadApp
from hallq.rating_pad.config import ConfigError, GpioSection, load, parse
from hallq.rating_pad.hardware import GpioPad
from hallq.shared.schemas import DeviceHealth, decode
from padkit import pad_toml, wait_until

ROOT = Path(__file__).resolve().parents[2]


def press(factory: MockFactory, pin: str, hold: float = 0.03) -> None:
    factory.pin(pin).drive_low()
    time.sleep(hold)
    factory.pin(pin).drive_high()


# -- config ---------------------------------------------------------------------------------------------------
def test_config_defaults_and_client_id():
    cfg = parse('[pad]\nhall = "demo"\nwindow = 3\n')
    assert cfg.client_id == "pad-3"
    assert cfg.gpio.pin_factory == "native"
    assert cfg.screen is None
    assert cfg.core_settings == {"invite_ms": 30000, "thanks_ms": 4000, "debounce_ms": 30}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('[pad]\nhall = "demo"\nwindow = 3\ncolour = "red"\n', "colour"),
        ('[pad]\nhall = "demo"\n', "window"),
        ('[pad]\nhall = "demo"\nwindow = 0\n', "pad.window"),
        ('[pad]\nhall = "Demo Hall"\nwindow = 1\n', "hall id"),
        ('[pad]\nhall = "demo"\nwindow = 1\n[gpio]\nbuttons = ["GPIO5"]\n', "gpio.buttons"),
        ('[pad]\nhall = "demo"\nwindow = 1\n[gpio]\npin_factory = "fake"\n', "gpio.pin_factory"),
    ],
)
def test_config_refuses_bad_keys_naming_them(text, names):
    with pytest.raises(ConfigError, match=names):
        parse(text)


def test_the_example_config_loads():
    from pathlib import Path

    cfg = load(Path(__file__).resolve().parents[2] / "rating-pad/examples/pad.toml")
    assert cfg.pad.window == 1 and cfg.screen is not None and len(cfg.gpio.leds) == 5


# -- gpiozero adapter -----------------------------------------------------------------------------------------
@pytest.fixture
def factory():
    from gpiozero import Device

    f = MockFactory(pin_class=MockPWMPin)
    old, Device.pin_factory = Device.pin_factory, f
    yield f
    Device.pin_factory = old
    f.reset()


def test_buttons_report_edges_and_a_held_button_fires_once(factory):
    edges: list[tuple[int, bool]] = []
    pad = GpioPad(GpioSection(), lambda i, d: edges.append((i, d)))
    factory.pin("GPIO13").drive_low()
    time.sleep(0.2)  # held
    factory.pin("GPIO13").drive_high()
    press(factory, "GPIO26")
    assert edges == [(2, True), (2, False), (4, True), (4, False)]
    pad.close()


def test_leds_follow_the_effects(factory):
    pad = GpioPad(GpioSection(), lambda i, d: None)
    pins = [factory.pin(p) for p in ("GPIO12", "GPIO16", "GPIO20", "GPIO21", "GPIO25")]
    pad.apply(["leds", "one", 3])
    assert [p.state for p in pins] == [0, 0, 0, 1, 0]
    pad.apply(["leds", "pulse"])
    seen = set()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and len(seen) < 5:
        seen.add(round(pins[0].state, 1))
        time.sleep(0.02)
    assert len(seen) >= 5, f"the LEDs should fade in and out, saw {sorted(seen)}"
    pad.apply(["leds", "off"])
    assert [p.state for p in pins] == [0, 0, 0, 0, 0]
    pad.close()


def test_a_pad_without_leds(factory):
    pad = GpioPad(GpioSection(leds=None), lambda i, d: None)
    pad.apply(["leds", "pulse"])
    assert pad.leds == []
    pad.close()


# -- the whole pad ------------------------------------------------------------------------------------------
class RunningPad:
    def __init__(self, cfg_path, broker, factory):
        self.cfg = load(cfg_path)
        self.factory = factory
        self.app = PadApp(self.cfg, broker=broker, pin_factory=factory)
        self.effects: list[list] = []
        original = self.app._apply

        def record(effect):
            self.effects.append(effect)
            original(effect)

        self.app._apply = record
        self.app.start()
        assert self.app.client.wait_connected(10)
        self.thread = threading.Thread(target=self.app.run, daemon=True)
        self.thread.start()

    def press(self, level: int) -> None:
        press(self.factory, self.cfg.gpio.buttons[level])

    def invited(self, ticket: str) -> bool:
        return any(e[:2] == ["show", "invite"] and e[2]["ticket"] == ticket for e in self.effects)

    def stop(self) -> None:
        self.app.stop()
        self.thread.join(5)


def test_the_pad_rates_a_finished_service_through_the_controller(mosquitto, controller, clerk, monitor, tmp_path):
    factory = MockFactory(pin_class=MockPWMPin)
    pad = RunningPad(pad_toml(tmp_path), mosquitto.url, factory)
    try:
        wait_until(lambda: any(e[:2] == ["show", "idle"] for e in pad.effects), what="the retained window state")
        pad.press(0)  # outside an invitation: nothing
        ticket = clerk.serve("3203122026112300017")
        wait_until(lambda: pad.invited(ticket), what="the invitation")
        invite = next(e for e in pad.effects if e[:2] == ["show", "invite"])
        assert invite[2] == {"window": 1, "clerk": "李娜", "ticket": ticket}
        assert not any(e[0] == "rate" for e in pad.effects)
        pad.press(3)
        wait_until(lambda: pad.app.accepted == 1, what="the controller's answer")
        pad.press(0)  # during the thank-you: nothing
        time.sleep(0.1)
        rates = [e for e in pad.effects if e[0] == "rate"]
        assert len(rates) == 1
        called_at = rates[0][1].pop("called_at")  # the service rated: its call time, from the window state
        assert rates == [["rate", {"window": 1, "ticket": ticket, "level": "dissatisfied"}]]
        assert pad.app.pending == []
        rate_msgs = monitor.on("hallq/padtest/req/pad-1/rate")
        assert len(rate_msgs) == 1
        assert json.loads(rate_msgs[0].payload)["called_at"][:19] == called_at[:19]
        health = monitor.wait_for("hallq/padtest/device/pad-1/health")
        h = decode(health.payload, DeviceHealth)
        assert h.role == "pad" and h.errors == []
    finally:
        pad.stop()
    with sqlite3.connect(controller.db) as db:
        rows = db.execute("SELECT ticket, window, level, staff_name, case_id, item_code FROM ratings").fetchall()
    assert rows == [(ticket, 1, "dissatisfied", "李娜", "3203122026112300017", "000101001000")]
    assert padjournal.Journal(str(tmp_path / "ratings-1.jsonl")).pending == []


def test_a_touch_on_the_screen_rates_like_a_button(mosquitto, controller, clerk, tmp_path):
    import pygame

    shots = tmp_path / "shots"
    cfg_path = pad_toml(tmp_path)
    cfg_path.write_text(cfg_path.read_text() + f'\n[screen]\nmode = "headless"\nsize = [480, 320]\n'
                                               f'screenshot_dir = "{shots}"\n')
    factory = MockFactory(pin_class=MockPWMPin)
    pad = RunningPad(cfg_path, mosquitto.url, factory)
    try:
        wait_until(lambda: pad.app.screen is not None, what="the screen")
        ticket = clerk.serve("CASE-TOUCH")
        wait_until(lambda: pad.invited(ticket), what="the invitation")
        wait_until(lambda: any("invite" in p.name for p in shots.glob("*.png")), what="the invitation's picture")
        x, y, w, h = pad.app.screen.button_rects()[4]
        for kind in (pygame.MOUSEBUTTONDOWN, pygame.MOUSEBUTTONUP):
            pygame.event.post(pygame.event.Event(kind, pos=(x + w // 2, y + h // 2), button=1))
        wait_until(lambda: pad.app.accepted == 1, what="the controller's answer")
        wait_until(lambda: any("thanks" in p.name for p in shots.glob("*.png")), what="the thank-you picture")
    finally:
        pad.stop()
    with sqlite3.connect(controller.db) as db:
        assert db.execute("SELECT ticket, level FROM ratings").fetchall() == [(ticket, "very_dissatisfied")]


@pytest.mark.skipif(Path("/proc/device-tree/model").exists(), reason="this machine has GPIO")
def test_native_gpio_on_a_machine_without_it_is_one_clear_line(tmp_path):
    """gpiozero once printed four fallback warnings and an ignored exception before the real message."""
    import subprocess
    import sys

    cfg = tmp_path / "pad.toml"
    text = (ROOT / "rating-pad/examples/pad.toml").read_text(encoding="utf-8")
    cfg.write_text(text.replace('pin_factory = "mock"', 'pin_factory = "native"')
                   .replace("/var/lib/hallq/pad-ratings.jsonl", str(tmp_path / "pad.jsonl")), encoding="utf-8")
    assert 'pin_factory = "native"' in cfg.read_text()
    hallq = str(Path(sys.executable).with_name("hallq"))
    r = subprocess.run([hallq, "pad", "--config", str(cfg), "--broker", "mqtt://127.0.0.1:9"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("Error: cannot open the pad's GPIO: this machine has no Raspberry Pi GPIO (")
    assert lines[0].endswith('on a desk without buttons set [gpio] pin_factory = "mock"')


def test_a_screen_asked_for_where_there_is_none_stops_and_headless_runs(tmp_path):
    """Issue 13: ``mode = "window"`` on a machine without a display must say so and stop, and the way out it
    names (``--headless``) must exist: the pad once told the user to pass a flag it did not have."""
    import os
    import signal
    import subprocess
    import sys

    shots = tmp_path / "shots"
    cfg = tmp_path / "pad.toml"
    text = (ROOT / "rating-pad/examples/pad.toml").read_text(encoding="utf-8")
    cfg.write_text(text.replace('pin_factory = "native"', 'pin_factory = "mock"')
                   .replace("/var/lib/hallq/pad-ratings.jsonl", str(tmp_path / "pad.jsonl"))
                   + f'screenshot_dir = "{shots}"\n', encoding="utf-8")
    assert 'mode = "window"' in cfg.read_text()
    hallq = str(Path(sys.executable).with_name("hallq"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
    args = [hallq, "pad", "--config", str(cfg), "--broker", "mqtt://127.0.0.1:9"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1, r.stderr
    said = [ln for ln in r.stderr.splitlines() if "cannot reach the broker" not in ln]
    assert said == [said[0]] and said[0].startswith("Error: the pad's screen: no screen: SDL found no display"), \
        r.stderr  # one line: not SDL's own "error: XDG_RUNTIME_DIR is invalid" first
    assert "--headless" in said[0]
    proc = subprocess.Popen([*args, "--headless"], stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_until(lambda: any(shots.glob("*idle*.png")) or proc.poll() is not None, 60, "the idle screen")
        assert proc.poll() is None, proc.stderr.read()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert proc.returncode == 0


def test_a_rating_answered_expired_or_busy_is_sent_again_not_dropped(mosquitto, tmp_path):
    """Issue 9 §4: ``expired`` (the controller was too slow: nothing was done) and ``busy`` are not refusals of
    the rating: the pad keeps it and sends it again (same req) until the controller takes it. A responder stands
    in for the controller: ``expired``, then ``busy``, then the answer."""
    from harness import Monitor

    cfg = pad_toml(tmp_path)
    journal = padjournal.Journal(str(tmp_path / "ratings-1.jsonl"))
    rec = journal.add({"window": 1, "ticket": "A001", "level": "satisfied"}, None, "20261130T090000")
    answers = [{"ok": False, "error": {"code": "expired", "message": "late"}},
               {"ok": False, "error": {"code": "busy", "message": "busy"}},
               {"ok": True, "rating": {"id": 7}}]
    got: list[dict] = []
    mon = Monitor(mosquitto.url, "hallq/padtest/req/pad-1/rate")

    def answer(m) -> None:
        r = json.loads(m.payload)
        got.append(r)
        if len(got) <= len(answers):
            mon.publish("hallq/padtest/reply/pad-1", json.dumps({"req": r["req"], **answers[len(got) - 1]}).encode())

    factory = MockFactory(pin_class=MockPWMPin)
    pad = RunningPad(cfg, mosquitto.url, factory)
    try:
        deadline = time.monotonic() + 30
        while pad.app.accepted == 0 and time.monotonic() < deadline:
            for m in mon.messages[len(got):]:
                answer(m)
            time.sleep(0.05)
        assert pad.app.accepted == 1 and pad.app.refused == 0, got
        assert {r["req"] for r in got} == {rec["req"]} and len(got) >= 3
        assert pad.app.pending == []
    finally:
        pad.stop()
        mon.close()
