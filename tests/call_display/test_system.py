"""The displays and the window caller against the real controller through real Mosquitto.

The controller runs as ``hallq controller --config controller/examples/hall.toml`` (windows 1-8; window 3
serves B, window 4 serves B and D, window 5 serves C). Display apps run in this process (headless, SDL's
dummy drivers) so the test can drive gpiozero mock pins and feed evdev events; one runs as a process
through the ``hallq display`` command."""

from __future__ import annotations

import json
import queue
import subprocess
import threading
import time
from datetime import datetime

import pytest
from call_display.kit import HALLQ, wait_until
from evdev import InputEvent, ecodes
from gpiozero.pins.mock import MockFactory
from hallq.call_display import core
from hallq.call_display.app import DisplayApp, Options
from hallq.call_display.config import parse
from hallq.shared.mqtt import HallClient
from hallq.shared.schemas import Call, DeviceHealth, Staff, TakeRequest, WindowRequest, decode
from harness import Monitor

WALL = datetime(2026, 11, 23, 10, 0)


class Running:
    def __init__(self, toml: str, options: Options | None = None):
        self.app = DisplayApp(parse(toml), options or Options())
        self.result: list[int] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.app.run()), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.app.stop_event.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.fixture
def clients(controller):
    kiosk = HallClient(controller.url, "demo", "kiosk-1").start()
    clerk = {}

    def take(category: str) -> str:
        return kiosk.request("take", TakeRequest(req=kiosk.new_req(), category=category)).ticket.number

    def op(window: int, op: str, **kw):
        c = clerk.get(window)
        if c is None:
            c = clerk[window] = HallClient(controller.url, "demo", f"window-{window}").start()
            assert c.wait_connected(5)
        return c.request("window", WindowRequest(req=c.new_req(), window=window, op=op, **kw))

    assert kiosk.wait_connected(5)
    yield take, op
    kiosk.stop()
    for c in clerk.values():
        c.stop()


def hall_toml(url: str, extra: str = "") -> str:
    return f'[display]\nhall = "demo"\nbroker = "{url}"\nscreen = "headless"\nfps = 30\n{extra}'


def test_hall_screen_follows_the_controller_and_speaks(controller, clients, quick_pack, tmp_path):
    take, op = clients
    op(5, "open", staff=Staff(id="s05", name="欧阳娜娜"))
    first, second = take("C"), take("C")
    trace = tmp_path / "trace.jsonl"
    toml = hall_toml(controller.url, f'[voice]\nbackend = "clips"\npack = "{quick_pack}"\nlanguages = ["zh"]\n')
    health = Monitor(controller.url, "hallq/demo/device/display-hall/#")
    r = Running(toml, Options(trace=trace))
    try:
        app = r.app
        wait_until(lambda: app._complete(), 5)
        h = decode(health.wait_for("hallq/demo/device/display-hall/health").payload, DeviceHealth)
        assert h.role == "display" and h.errors == []
        health.wait_for("hallq/demo/device/display-hall/status", lambda m: m.payload == b"online")
        health.close()
        # the retained queue follows the takes within the controller's core.PUBLISH_EVERY (it holds back changes
        # that come close together), so a display that connected in between hears of them a moment later
        wait_until(lambda: app.state.queue.categories["C"].waiting >= 2, 5)
        op(5, "next")
        wait_until(lambda: app.state.flash is not None and app.state.flash.call.ticket == first)
        v = core.hall_view(app.state, time.monotonic(), WALL)
        assert v.newest.ticket == first and v.newest.window == 5 and v.flashing and not v.offline
        op(5, "recall")
        wait_until(lambda: len(app.voice.played) >= 2, 5)
        assert [(p.ticket, p.recall) for p in app.voice.played] == [(first, 0), (first, 1)]
        assert app.voice.played[0].clips[:3] == ("chime", "zh/qing", "zh/C")
        op(5, "next")
        wait_until(lambda: next(w for w in core.hall_view(app.state, 0, WALL).windows if w.no == 5).ticket == second)
        # garbage on a state topic is refused and changes nothing
        wait_until(lambda: app.state.queue.categories["C"].waiting == 0)  # the controller's news is all in
        time.sleep(0.2)
        before = app.state.queue
        m = Monitor(controller.url, "hallq/demo/queue")
        m.publish("hallq/demo/queue", b'{"at": "x"')
        m.close()
        wait_until(lambda: app.bad_messages == 1)
        assert app.state.queue is before
    finally:
        r.stop()
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    kinds = [e["ev"] for e in events]
    assert kinds.index("connected") < kinds.index("complete")
    for ticket in (first, second):
        got = {e["ev"]: e["t"] for e in events if e.get("ticket") == ticket and e.get("recall") == 0}
        assert got["call"] <= got["frame"], got  # the frame that shows the call came after it
    assert [(e["ticket"], e["recall"]) for e in events if e["ev"] == "announce"][:2] == [(first, 0), (first, 1)]


def test_a_display_that_reboots_shows_the_current_picture_within_a_second(controller, clients, tmp_path):
    take, op = clients
    op(3, "open", staff=Staff(id="s03", name="司马相如"))
    ticket = take("B")
    op(3, "next")
    cfg = tmp_path / "display.toml"
    cfg.write_text(hall_toml(controller.url))
    shot, trace = tmp_path / "window3.png", tmp_path / "trace.jsonl"
    res = subprocess.run([HALLQ, "display", "--config", str(cfg), "--mode", "window", "--window", "3", "--size",
                          "1080x1920", "--screenshot", str(shot), "--trace", str(trace)],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert shot.stat().st_size > 10_000
    events = {e["ev"]: e["t"] for e in map(json.loads, trace.read_text().splitlines())}
    assert events["complete"] - events["connected"] < 1.0
    res = subprocess.run([HALLQ, "display", "--config", str(cfg), "--screenshot", str(tmp_path / "hall.png")],
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 0, res.stderr
    assert ticket


class FakeKeypad:
    """An input device that yields synthetic evdev events (what a USB keypad sends)."""

    def __init__(self):
        self.q: queue.Queue[InputEvent | None] = queue.Queue()
        self.grabbed = False

    def grab(self):
        self.grabbed = True

    def read_loop(self):
        while (ev := self.q.get()) is not None:
            yield ev

    def close(self):
        self.q.put(None)

    def key(self, name: str, hold: float = 0.0):
        code = ecodes.ecodes[name]
        self.q.put(InputEvent(0, 0, ecodes.EV_KEY, code, 1))
        if hold:
            time.sleep(hold)
        self.q.put(InputEvent(0, 0, ecodes.EV_KEY, code, 0))


def window_toml(url: str, window: int, caller: str) -> str:
    return (f'[display]\nhall = "demo"\nbroker = "{url}"\nscreen = "headless"\nmode = "window"\nwindow = {window}\n'
            f'fps = 30\nerror_seconds = 30\n'
            f'[caller]\nhold_seconds = 0.4\ntransfer_to = {{ category = "C" }}\n'
            f'staff = {{ id = "s0{window}", name = "诸葛孔明" }}\n{caller}')


def test_window_buttons_drive_the_controller(controller, clients):
    take, _ = clients
    factory = MockFactory()
    toml = window_toml(controller.url, 4, '[caller.gpio]\nbuttons = { open = "GPIO20", next = "GPIO5", '
                       'recall = "GPIO6", noshow = "GPIO13", transfer = "GPIO19", pause = "GPIO26" }\n'
                       'bounce_seconds = 0\nbuzzer = "GPIO21"\n')
    r = Running(toml, Options(pin_factory=factory))
    monitor = Monitor(controller.url, "hallq/demo/#")
    app = r.app

    def press(pin: int, hold: float = 0.0) -> None:
        # The window's broadcast can come before the answer to its request; the caller refuses a new press
        # until that answer is in (请稍候), as a clerk would see. Press when the last one is answered.
        wait_until(lambda: app.caller_state.pending is None, 10)
        p = factory.pin(pin)
        p.drive_low()
        if hold:
            time.sleep(hold)
        p.drive_high()

    def window():
        return core.window_view(app.state, time.monotonic(), WALL)

    try:
        wait_until(lambda: app._complete() and app.requester is not None, 5)
        press(20)  # open: the configured clerk signs in
        wait_until(lambda: window().staff == "诸葛孔明" and window().status == "idle")
        press(5)  # next, with nothing waiting for B or D
        wait_until(lambda: window().notice is not None)
        assert window().notice.zh == "无人等候"
        wait_until(lambda: len(factory.pin(21).states) >= 4, 3)  # the buzzer beeped
        assert any(s.state for s in factory.pin(21).states)

        first, second = take("D"), take("D")
        press(5)
        wait_until(lambda: window().ticket == first and window().status == "serving")
        press(6)  # recall
        call = monitor.wait_for("hallq/demo/calls", lambda m: decode(m.payload, Call).recall == 1)
        assert decode(call.payload, Call).ticket == first
        wait_until(lambda: app.state.flash is not None and app.state.flash.call.recall == 1)

        press(13)  # a tap on no-show only tells the clerk to hold it
        wait_until(lambda: window().notice is not None and window().notice.zh == "过号需按住确认")
        assert window().ticket == first
        press(13, hold=0.6)  # held: the citizen did not come
        wait_until(lambda: window().status == "idle" and window().ticket is None)

        press(5)
        wait_until(lambda: window().ticket == second)
        press(19)  # transfer to category C
        wait_until(lambda: window().status == "idle")
        wait_until(lambda: app.state.queue.categories["C"].waiting >= 1)

        press(26)  # pause
        wait_until(lambda: window().status == "paused" and window().status_zh == "暂停服务")
        press(5)  # next while paused is refused and shown
        wait_until(lambda: window().notice is not None and window().notice.zh.startswith("窗口已暂停"))
        press(26)  # resume
        wait_until(lambda: window().status == "idle")
    finally:
        monitor.close()
        r.stop()


def test_keypad_drives_the_controller(controller, clients):
    take, _ = clients
    pad = FakeKeypad()
    toml = window_toml(controller.url, 3, '[caller.keypad]\ndevice = "/dev/input/event-test"\n'
                       'keys = { KEY_KP0 = "open", KEY_KP1 = "next", KEY_KP2 = "recall", KEY_KP5 = "pause", '
                       'KEY_KPENTER = "done" }\n')
    r = Running(toml, Options(keypad_device=pad))
    app = r.app

    def window():
        return core.window_view(app.state, time.monotonic(), WALL)

    def key(name: str) -> None:
        wait_until(lambda: app.caller_state.pending is None, 10)  # the last request answered (see press above)
        pad.key(name)

    try:
        wait_until(lambda: app._complete() and app.requester is not None, 5)
        assert pad.grabbed
        key("KEY_KP0")
        wait_until(lambda: window().staff == "诸葛孔明")
        ticket = take("B")
        key("KEY_KP1")
        wait_until(lambda: window().ticket == ticket)
        key("KEY_KP2")
        wait_until(lambda: app.state.flash is not None and app.state.flash.call.recall == 1)
        key("KEY_KPENTER")  # done
        wait_until(lambda: window().status == "idle")
        key("KEY_KP5")
        wait_until(lambda: window().status == "paused")
        key("KEY_KP5")
        wait_until(lambda: window().status == "idle")
    finally:
        r.stop()


def settled(app, quiet: float = 0.4, timeout: float = 5.0) -> None:
    """Wait until the display has taken in everything retained (no change for ``quiet`` seconds)."""
    deadline = time.monotonic() + timeout
    version, since = app.state.version, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        if app.state.version != version:
            version, since = app.state.version, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return
    raise AssertionError("the display kept changing")


def test_controller_offline_shows_a_mark_and_keeps_the_picture(controller, clients):
    r = Running(hall_toml(controller.url))
    app = r.app
    try:
        wait_until(lambda: app._complete(), 5)
        settled(app)
        before = core.hall_view(app.state, 0, WALL)
        assert not before.offline
        controller.stop()
        try:
            wait_until(lambda: app.state.controller in ("stopped", "offline"), 10)
            after = core.hall_view(app.state, 0, WALL)
            assert after.offline
            assert (after.newest, after.windows, after.waiting) == (before.newest, before.windows, before.waiting)
        finally:
            controller.start()
        wait_until(lambda: not core.hall_view(app.state, 0, WALL).offline, 10)
    finally:
        r.stop()


class PtyReader:
    """The board's end of a pty, with the ``read(n)`` a codec reads frames from."""

    def __init__(self):
        import os

        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        import termios
        import tty

        tty.setraw(self.slave)
        termios.tcflush(self.slave, termios.TCIOFLUSH)

    def read(self, n: int, timeout: float = 3.0) -> bytes:
        import os
        import select

        out = b""
        deadline = time.monotonic() + timeout
        while len(out) < n and (left := deadline - time.monotonic()) > 0:
            if select.select([self.master], [], [], left)[0]:
                out += os.read(self.master, n - len(out))
        return out

    def close(self) -> None:
        import os

        os.close(self.master)
        os.close(self.slave)


def test_window_led_board_on_rs485_follows_the_window(controller, clients):
    from hallq.call_display.led import FrameCodec

    take, op = clients
    op(6, "open", staff=Staff(id="s06", name="上官婉儿"))
    board = PtyReader()
    toml = (f'[display]\nhall = "demo"\nbroker = "{controller.url}"\nscreen = "headless"\nmode = "window"\n'
            f'window = 6\n[led]\nprotocol = "frame"\nport = "{board.path}"\naddress = 6\nchecksum = "xor"\n')
    r = Running(toml)
    codec = FrameCodec(b"\xaa\x55", 6, 0x01, "xor")
    try:
        wait_until(lambda: r.app._complete(), 5)
        texts = [codec.read(board).text]
        ticket = take("E")  # window 6 serves D and E in the sample hall
        op(6, "next")
        while ticket not in texts[-1]:
            texts.append(codec.read(board).text)
        assert texts[-1] == f"{ticket} 请到6号窗口\n正在办理"
        assert texts[0] in ("6号窗口\n请稍候", f"{ticket} 请到6号窗口\n正在办理")
    finally:
        r.stop()
        board.close()


def test_led_board_drawn_on_the_screen(controller, clients, tmp_path):
    take, op = clients
    op(2, "open", staff=Staff(id="s02", name="李娜"))
    ticket = take("F")  # window 2 serves A and F
    op(2, "next")
    shot = tmp_path / "led.png"
    toml = hall_toml(controller.url, '[led]\nprotocol = "pygame"\ndots = [96, 24]\n')
    r = Running(toml, Options(screenshot=shot))
    r.thread.join(10)
    assert r.result == [0] and r.app.pygame_led.text == f"请 {ticket} 号到 2 号窗口办理"
    import pygame

    img = pygame.image.load(str(shot))
    reds = sum(1 for x in range(0, img.get_width(), 4) for y in range(0, img.get_height(), 4)
               if img.get_at((x, y))[:3] == (255, 40, 30))
    assert reds > 50


def test_no_sound_device_keeps_the_screen_and_says_so(controller, quick_pack, tmp_path):
    import os

    old = os.environ.get("SDL_AUDIODRIVER")
    os.environ["SDL_AUDIODRIVER"] = "no-such-driver"  # SDL cannot open any sound device
    try:
        health = Monitor(controller.url, "hallq/demo/device/display-hall/health")
        r = Running(hall_toml(controller.url, f'[voice]\nbackend = "clips"\npack = "{quick_pack}"\n'))
        try:
            wait_until(lambda: r.app._complete(), 5)
            msg = health.wait_for("hallq/demo/device/display-hall/health", lambda m: b"no sound device" in m.payload)
            assert r.app.voice is None and decode(msg.payload, DeviceHealth).role == "display"
        finally:
            r.stop()
            health.close()
    finally:
        if old is None:
            os.environ.pop("SDL_AUDIODRIVER", None)
        else:
            os.environ["SDL_AUDIODRIVER"] = old


def test_a_window_the_hall_lacks_is_said_on_screen_and_in_the_log(controller, tmp_path):
    """``--window 99`` on the sample hall (windows 1-8) once waited on 正在连接… forever."""
    cfg = tmp_path / "display.toml"
    cfg.write_text(hall_toml(controller.url) + "window = 99\n", encoding="utf-8")
    shot = tmp_path / "w99.png"
    r = subprocess.run([HALLQ, "display", "--config", str(cfg), "--mode", "window", "--headless", "--screenshot",
                        str(shot), "--wait", "20"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r.stderr
    assert "ERROR hallq.call_display.app: hall demo has no window 99 (its windows: 1, 2, 3, 4, 5, 6, 7, 8)" in r.stderr
    assert shot.exists()


def test_a_screen_asked_for_where_there_is_none_stops_with_one_line(controller, tmp_path):
    """Without a display SDL falls back to drawing offscreen: a window nobody sees. Say so and stop."""
    import os

    cfg = tmp_path / "display.toml"
    cfg.write_text(hall_toml(controller.url).replace('screen = "headless"', 'screen = "window"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if k not in ("SDL_VIDEODRIVER", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
    r = subprocess.run([HALLQ, "display", "--config", str(cfg)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 1
    assert "Error: no screen: SDL found no display" in r.stderr and "--headless" in r.stderr
    assert "XDG_RUNTIME_DIR" not in r.stderr  # SDL's Wayland probe once printed its own error line first
    assert "Traceback" not in r.stderr
    r = subprocess.run([HALLQ, "display", "--config", str(cfg), "--headless", "--screenshot",
                        str(tmp_path / "h.png")], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr  # asked for: headless is fine


def test_a_call_the_broker_delivers_again_is_announced_once(controller, clients, quick_pack):
    """Issue 9 §4: every call carries an id; a display announces each id once (QoS 1 may deliver twice)."""
    take, op = clients
    op(5, "open", staff=Staff(id="s05", name="欧阳娜娜"))
    take("C")
    calls = Monitor(controller.url, "hallq/demo/calls")
    r = Running(hall_toml(controller.url, f'[voice]\nbackend = "clips"\npack = "{quick_pack}"\nlanguages = ["zh"]\n'))
    try:
        app = r.app
        wait_until(lambda: app._complete(), 30)
        def mine():  # the module's controller is shared: other windows may call too
            return [(p.ticket, p.recall) for p in app.voice.played if p.ticket == first]

        first = op(5, "next").ticket.number
        wait_until(lambda: len(mine()) >= 1, 30)
        msg = calls.wait_for("hallq/demo/calls", lambda m: decode(m.payload, Call).ticket == first, timeout=30)
        assert decode(msg.payload, Call).id  # the controller names each announcement
        for _ in range(2):  # the same message again, as a broker redelivers it
            calls.publish("hallq/demo/calls", msg.payload)
        op(5, "recall")  # a recall is a new announcement (its own id) and comes after the repeats
        wait_until(lambda: len(mine()) >= 2, 30)
        time.sleep(0.3)
        assert mine() == [(first, 0), (first, 1)]
    finally:
        r.stop()
        calls.close()
