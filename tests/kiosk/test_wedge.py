from __future__ import annotations

from datetime import date

import pytest
from evdev import InputEvent, ecodes
from hallq.kiosk.wedge import WedgeDecoder, WedgeReader
from kiosk_kit import make_id

NUMBER = make_id(date(1990, 5, 17))
KEYS = {**{str(i): getattr(ecodes, f"KEY_{i}") for i in range(10)}, "X": ecodes.KEY_X}


def typed(text: str, t0: float = 1000.0, step: float = 0.01, enter: int = ecodes.KEY_ENTER) -> list[InputEvent]:
    """Key down, key up and SYN for each character, then Enter, as a wedge reader types them."""
    events = []
    t = t0
    for ch in [*text, None]:
        code = KEYS[ch] if ch is not None else enter
        for value in (1, 0):
            sec, usec = int(t), int((t % 1) * 1e6)
            events.append(InputEvent(sec, usec, ecodes.EV_KEY, code, value))
            events.append(InputEvent(sec, usec, ecodes.EV_SYN, 0, 0))
            t += step / 2
    return events


def feed(dec: WedgeDecoder, events: list[InputEvent]) -> list[str]:
    return [e for e in (dec.feed(ev) for ev in events) if e is not None]


def test_digits_and_x_then_enter():
    dec = WedgeDecoder()
    assert feed(dec, typed("11010519491231002X")) == ["11010519491231002X"]
    assert feed(dec, typed("123", t0=2000, enter=ecodes.KEY_KPENTER)) == ["123"]


def test_keypad_digits_count():
    dec = WedgeDecoder()
    ev = [InputEvent(5, 0, ecodes.EV_KEY, ecodes.KEY_KP7, 1), InputEvent(5, 1000, ecodes.EV_KEY, ecodes.KEY_KP0, 1),
          InputEvent(5, 2000, ecodes.EV_KEY, ecodes.KEY_ENTER, 1)]
    assert feed(dec, ev) == ["70"]


def test_a_pause_starts_afresh_and_key_repeats_are_ignored():
    dec = WedgeDecoder(gap=0.5)
    stray = [InputEvent(10, 0, ecodes.EV_KEY, ecodes.KEY_5, 1), InputEvent(10, 0, ecodes.EV_KEY, ecodes.KEY_5, 2)]
    assert feed(dec, stray + typed(NUMBER, t0=20.0)) == [NUMBER]


def test_foreign_characters_spoil_the_entry():
    dec = WedgeDecoder()
    ev = [InputEvent(5, 0, ecodes.EV_KEY, ecodes.KEY_SEMICOLON, 1), *typed("1234", t0=5.001)]
    assert feed(dec, ev) == ["?1234"]
    assert feed(dec, [InputEvent(9, 0, ecodes.EV_KEY, ecodes.KEY_ENTER, 1)]) == []  # nothing: no entry


@pytest.mark.parametrize(("text", "valid"), [(NUMBER, True), (NUMBER[:-1] + ("1" if NUMBER[-1] != "1" else "2"), False),
                                             ("1234", False)])
def test_reader_turns_entries_into_numbers(text, valid):
    got = []
    r = WedgeReader("/dev/input/event-test", lambda n, why: got.append((n, why)), lambda o, d: None)
    for ev in typed(text):
        r.process(ev)
    assert len(got) == 1
    number, why = got[0]
    if valid:
        assert number is not None and number.masked() == NUMBER[:3] + "*" * 11 + NUMBER[-4:] and why is None
    else:
        assert number is None and why and text not in why


def test_opening_a_missing_device_is_a_clear_error():
    r = WedgeReader("/dev/input/no-such-event", lambda n, w: None, lambda o, d: None)
    with pytest.raises(OSError, match="cannot open the card reader /dev/input/no-such-event"):
        r.open()


def test_a_missing_device_is_reported_offline_and_retried():
    import threading

    got = []
    seen = threading.Event()
    r = WedgeReader("/dev/input/no-such-event", lambda n, w: None, lambda o, d: (got.append((o, d)), seen.set()))
    r.retry = 0.05
    r.start()
    try:
        assert seen.wait(3)
        assert got[0][0] is False and "cannot open the card reader" in got[0][1]
    finally:
        r.stop()
    assert len(got) == 1  # reported once, not at every retry


def test_shift_before_x_is_not_a_character():
    dec = WedgeDecoder()
    body = NUMBER[:-1]
    ev = typed(body, t0=50.0)[:-4]  # without its Enter
    t = 50.5
    ev += [InputEvent(int(t), 500000, ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 1),
           InputEvent(int(t), 510000, ecodes.EV_KEY, ecodes.KEY_X, 1),
           InputEvent(int(t), 520000, ecodes.EV_KEY, ecodes.KEY_LEFTSHIFT, 0),
           InputEvent(int(t), 530000, ecodes.EV_KEY, ecodes.KEY_ENTER, 1)]
    assert feed(dec, ev) == [body + "X"]
