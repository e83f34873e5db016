from __future__ import annotations

from datetime import date

import pytest
import serial
from hallq.kiosk import ga467
from hallq.kiosk.ga467 import (
    FrameDecoder,
    Ga467Error,
    Ga467Reader,
    Ga467StatusError,
    Ga467Timeout,
    build_base_info,
    encode_command,
    encode_response,
    parse_base_info,
)
from hallq.kiosk.idcard import InvalidIdNumber
from kiosk_kit import card_fields, make_id

NUMBER = make_id(date(1958, 3, 9))


# -- the codec -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("command", "frame"),
    [
        (ga467.RESET, "AA AA AA 96 69 00 03 10 FF EC"),
        (ga467.FIND_CARD, "AA AA AA 96 69 00 03 20 01 22"),
        (ga467.SELECT_CARD, "AA AA AA 96 69 00 03 20 02 21"),
        (ga467.READ_BASE, "AA AA AA 96 69 00 03 30 01 32"),
    ],
)
def test_command_frames_are_the_documented_bytes(command, frame):
    assert encode_command(*command) == bytes.fromhex(frame)


@pytest.mark.parametrize(
    ("status", "data", "frame"),
    [
        (0x9F, bytes(4), "AA AA AA 96 69 00 08 00 00 9F 00 00 00 00 97"),
        (0x80, b"", "AA AA AA 96 69 00 04 00 00 80 84"),
        (0x90, bytes(8), "AA AA AA 96 69 00 0C 00 00 90 00 00 00 00 00 00 00 00 9C"),
    ],
)
def test_answer_frames(status, data, frame):
    assert encode_response(status, data) == bytes.fromhex(frame)
    body = FrameDecoder().feed(bytes.fromhex(frame))[0]
    assert ga467.Response.from_body(body) == ga467.Response(status, data)


def test_decoder_skips_garbage_and_joins_split_frames():
    frames = encode_response(0x9F, bytes(4)) + encode_response(0x90, b"\x01\x02")
    stream = b"\x00\xaa\xaa\x13garbage\xaa" + frames
    dec = FrameDecoder()
    out = []
    for i in range(len(stream)):  # one byte at a time: every split point
        out += dec.feed(stream[i : i + 1])
    assert [ga467.Response.from_body(b).status for b in out] == [0x9F, 0x90]
    assert dec.garbage == 12 and not dec.buf


def test_decoder_drops_a_frame_with_a_bad_checksum_and_resynchronises():
    bad = bytearray(encode_response(0x90, b"\x01"))
    bad[-1] ^= 0xFF
    good = encode_response(0x80)
    dec = FrameDecoder()
    out = dec.feed(bytes(bad) + good)
    assert [ga467.Response.from_body(b).status for b in out] == [0x80]
    assert dec.bad_frames == 1


def test_decoder_refuses_absurd_lengths():
    dec = FrameDecoder()
    assert dec.feed(ga467.PREAMBLE + b"\xff\xff" + encode_response(0x80)) == [encode_response(0x80)[7:-1]]
    assert dec.bad_frames == 1


def test_base_info_text_block():
    data = build_base_info(card_fields(NUMBER))
    assert len(data) == 4 + 256 + 1024
    info = parse_base_info(data)
    assert info.name == "张三" and info.birth == "19580309" and info.address.startswith("北京市")
    assert info.id_number.birth_date == date(1958, 3, 9)
    assert NUMBER not in repr(info)


def test_base_info_with_an_invalid_number():
    bad = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
    with pytest.raises(InvalidIdNumber):
        parse_base_info(build_base_info(card_fields(bad)))
    with pytest.raises(Ga467Error):
        parse_base_info(build_base_info(card_fields(NUMBER))[:200])


# -- the reader through pyserial's loop:// -------------------------------------------------------------------
class Scripted:
    """pyserial loop:// with the module's answers queued behind each command the reader writes."""

    def __init__(self, answers: list[bytes]):
        self.port = serial.serial_for_url("loop://", timeout=0.02)
        self.answers = answers
        self.written: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.written.append(data)
        if self.answers:
            self.port.write(self.answers.pop(0))
        return len(data)

    def read(self, n: int) -> bytes:
        return self.port.read(n)

    def reset_input_buffer(self) -> None:
        self.port.reset_input_buffer()

    def close(self) -> None:
        self.port.close()


def test_reader_over_loop_reads_a_card():
    port = Scripted([encode_response(0x9F, bytes(4)), encode_response(0x90, bytes(8)),
                     b"\x17\x00junk" + encode_response(0x90, build_base_info(card_fields(NUMBER)))])
    r = Ga467Reader(port, timeout=0.5)
    info = r.read_card(date(2026, 11, 23))
    assert info is not None and info.id_number.age_on(date(2026, 11, 23)) == 68
    assert port.written == [encode_command(*ga467.FIND_CARD), encode_command(*ga467.SELECT_CARD),
                            encode_command(*ga467.READ_BASE)]


def test_reader_over_loop_no_card_and_error_statuses():
    r = Ga467Reader(Scripted([encode_response(0x80)]), timeout=0.5)
    assert r.read_card() is None
    r = Ga467Reader(Scripted([encode_response(0x9F), encode_response(0x81)]), timeout=0.5)
    assert r.read_card() is None
    r = Ga467Reader(Scripted([encode_response(0x9F), encode_response(0x90), encode_response(0x41)]), timeout=0.5)
    with pytest.raises(Ga467StatusError) as exc:
        r.read_card()
    assert exc.value.status == 0x41 and "reading the card failed" in str(exc.value)
    r = Ga467Reader(Scripted([encode_response(0x60)]), timeout=0.5)
    with pytest.raises(Ga467StatusError):
        r.reset()


def test_reader_times_out_when_nothing_or_only_garbage_comes():
    r = Ga467Reader(Scripted([]), timeout=0.2)
    with pytest.raises(Ga467Timeout):
        r.find_card()
    r = Ga467Reader(Scripted([b"\xaa\xaa\xaa\x96\x69\x00"]), timeout=0.2)  # a frame cut off
    with pytest.raises(Ga467Timeout):
        r.find_card()


# -- the reader through a pty, with a simulated module ------------------------------------------------------
def test_reader_through_a_pty(sam):
    reader = Ga467Reader.open(sam.url, timeout=1.0)
    try:
        reader.reset()
        assert reader.read_card() is None
        sam.card = NUMBER
        sam.garbage = b"\x00\x13\x96\x69noise"
        sam.split = 7  # answers arrive in 7-byte pieces
        info = reader.read_card()
        assert info is not None and info.id_number.masked() == NUMBER[:3] + "*" * 11 + NUMBER[-4:]
        assert reader.decoder.garbage > 0
        sam.status_override[ga467.READ_BASE] = 0x33
        with pytest.raises(Ga467StatusError):
            reader.read_card()
        sam.silent = True
        with pytest.raises(Ga467Timeout):
            reader.find_card()
    finally:
        reader.close()


def test_poller_reports_each_card_once_and_invalid_cards(sam):
    import threading

    got: list = []
    status: list = []
    seen = threading.Event()

    def on_card(number, problem):
        got.append((number, problem))
        seen.set()

    poller = ga467.Ga467Poller(Ga467Reader.open(sam.url, timeout=0.5), on_card, lambda o, d: status.append(o),
                               interval=0.02)
    poller.start()
    try:
        sam.card = NUMBER
        assert seen.wait(3)
        import time

        time.sleep(0.2)  # the card stays: no second report
        assert len(got) == 1 and got[0][0].masked().endswith(NUMBER[-4:])
        sam.card = None
        time.sleep(0.2)
        seen.clear()
        sam.card = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
        assert seen.wait(3)
        assert got[-1][0] is None and "check digit" in got[-1][1]
        assert status[0] is True
    finally:
        poller.stop()


def test_open_serial_refuses_unknown_options():
    with pytest.raises(ValueError):
        ga467.open_serial("serial:/dev/null?speed=9600")
    with pytest.raises(Ga467Error):
        ga467.open_serial("serial:/dev/does-not-exist")


def test_poller_reports_a_missing_reader_offline():
    import threading

    got = []
    done = threading.Event()
    poller = ga467.Ga467Poller("serial:/dev/no-such-reader", lambda n, p: None,
                               lambda o, d: (got.append((o, d)), done.set()), retry=0.1)
    poller.start()
    try:
        assert done.wait(3)
        assert got[0][0] is False and "/dev/no-such-reader" in got[0][1]
    finally:
        poller.stop()


def test_poller_opens_the_reader_again_after_it_stopped_answering(sam):
    import time

    status: list[bool] = []
    poller = ga467.Ga467Poller(sam.url, lambda n, p: None, lambda o, d: status.append(o), interval=0.01,
                               retry=0.05, timeout=0.1)
    poller.start()
    try:
        deadline = time.monotonic() + 5
        while status != [True] and time.monotonic() < deadline:
            time.sleep(0.02)
        sam.silent = True
        while sam.commands.count(ga467.RESET) < 2 and time.monotonic() < deadline:  # closed and opened again
            time.sleep(0.02)
        assert sam.commands.count(ga467.RESET) >= 2 and status[-1] is False
        sam.silent = False
        while status[-1] is not True and time.monotonic() < deadline:
            time.sleep(0.02)
        assert status[:2] == [True, False] and status[-1] is True
    finally:
        poller.stop()
