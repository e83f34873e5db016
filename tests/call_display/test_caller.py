"""The window caller's pure core, and its buttons (gpiozero MockFactory) and keypad (synthetic evdev events)."""

from __future__ import annotations

import pytest
from evdev import InputEvent, ecodes
from gpiozero.pins.mock import MockFactory
from hallq.call_display import caller
from hallq.call_display.caller import Answer, CallerSettings, Press, Release, Send, Tell, Tick, WindowStatus
from hallq.shared.schemas import Staff, TransferTo

SETTINGS = CallerSettings(window=3, hold_seconds=1.5, transfer_to=TransferTo(category="C"),
                          staff=Staff(id="s07", name="李娜"))


def run(events, settings=SETTINGS, state=None):
    """Feed (time, event) pairs; return the state and every effect with its time."""
    s = state or caller.initial(settings)
    out = []
    for t, ev in events:
        s, effects = caller.handle(s, ev, t)
        out += [(t, e) for e in effects]
    return s, out


def test_next_recall_done_transfer_open_close_send_at_once():
    for action, expected in [("next", Send("next")), ("recall", Send("recall")), ("done", Send("done")),
                             ("transfer", Send("transfer", to=TransferTo(category="C"))),
                             ("open", Send("open", staff=Staff(id="s07", name="李娜"))), ("close", Send("close"))]:
        s, out = run([(0.0, Press(action))])
        assert out == [(0.0, expected)] and s.pending == expected.op


def test_one_request_at_a_time():
    s, out = run([(0.0, Press("next")), (0.1, Release("next")), (0.2, Press("next"))])
    assert out[0][1] == Send("next") and isinstance(out[1][1], Tell) and not out[1][1].error
    s, out = run([(0.3, Answer("next", True, ticket="B001")), (0.3, Release("next")), (0.4, Press("next"))], state=s)
    assert [e for _, e in out] == [Send("next")]


def test_noshow_needs_a_hold():
    s, out = run([(0.0, Press("noshow")), (1.0, Tick()), (1.2, Release("noshow"))])
    assert [e for _, e in out] == [Tell("过号需按住确认", "Hold for 1.5 s to mark a no-show", error=False)]
    assert s.pending is None
    s, out = run([(10.0, Press("noshow")), (11.0, Tick()), (11.5, Tick()), (11.6, Tick()), (13.0, Release("noshow"))])
    assert out == [(11.5, Send("noshow"))]  # sent once, when the hold is reached, not again on release


def test_noshow_confirmed_on_release_when_no_tick_came():
    _, out = run([(0.0, Press("noshow")), (2.0, Release("noshow"))])
    assert out == [(2.0, Send("noshow"))]


def test_pause_toggles_with_the_window_status():
    s, out = run([(0.0, WindowStatus("serving")), (0.0, Press("pause"))])
    assert out == [(0.0, Send("pause"))]
    s, out = run([(0.1, Answer("pause", True)), (0.2, Release("pause")), (0.3, Press("pause"))], state=s)
    assert out == [(0.3, Send("resume"))]


def test_refusals_become_notices():
    s, out = run([(0.0, Press("next")), (0.1, Answer("next", False, "empty", "no ticket waits for window 3"))])
    assert out[-1] == (0.1, Tell("无人等候", "Nobody is waiting")) and s.pending is None
    _, out = run([(0.0, Press("next")), (0.1, Answer("next", False, "paused", "window 3 is paused"))])
    assert out[-1][1].zh.startswith("窗口已暂停")
    _, out = run([(0.0, Press("recall")), (5.0, Answer("recall", False, "timeout"))])
    assert out[-1][1] == Tell("控制器无响应", "The controller does not answer")
    _, out = run([(0.0, Press("recall")), (5.0, Answer("recall", False, "duplicate", "odd"))])
    assert out[-1][1] == Tell("odd", "odd")


def test_missing_settings_are_told_not_sent():
    bare = CallerSettings(window=3)
    _, out = run([(0.0, Press("transfer"))], bare)
    assert out == [(0.0, Tell("未设置转移去向", "No transfer target is configured"))]
    _, out = run([(0.0, Press("open"))], bare)
    assert out[0][1].error


def test_key_repeat_and_unknown_actions():
    _, out = run([(0.0, Press("recall")), (0.05, Press("recall"))])
    assert len(out) == 1
    with pytest.raises(ValueError):
        run([(0.0, Press("explode"))])


def test_gpio_buttons_with_mock_pins():
    factory = MockFactory()
    got = []
    b = caller.GpioButtons({"next": "GPIO5", "noshow": "GPIO13"}, got.append, bounce_seconds=0, pin_factory=factory)
    try:
        pin = factory.pin(5)
        pin.drive_low()
        pin.drive_high()
        factory.pin(13).drive_low()
        assert got == [Press("next"), Release("next"), Press("noshow")]
    finally:
        b.close()
    with pytest.raises(ValueError):
        caller.GpioButtons({"fly": "GPIO6"}, got.append, pin_factory=factory)


def test_buzzer_beeps_on_a_mock_pin():
    factory = MockFactory()
    bz = caller.BuzzerBeeper("GPIO21", pin_factory=factory)
    try:
        bz.beep()
        bz.buzzer._blink_thread.join(2)
        states = [s.state for s in factory.pin(21).states]
        assert states[-4:] == [True, False, True, False]
    finally:
        bz.close()


def test_keypad_events():
    got = []
    k = caller.Keypad({"KEY_KP1": "next", "KEY_KP3": "noshow"}, got.append)
    for ev in [InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_KP1, 1), InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_KP1, 2),
               InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_KP1, 0), InputEvent(0, 0, ecodes.EV_MSC, 4, 458841),
               InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_A, 1), InputEvent(0, 0, ecodes.EV_KEY, ecodes.KEY_KP3, 1)]:
        k.feed(ev)
    assert got == [Press("next"), Release("next"), Press("noshow")]
    with pytest.raises(ValueError, match="unknown key"):
        caller.Keypad({"KEY_NOPE": "next"}, got.append)
