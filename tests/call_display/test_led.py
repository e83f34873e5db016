"""LED boards: codec vectors, frames through pyserial's loop://, the Modbus board through a pty."""

from __future__ import annotations

import os
import threading
import time

import pytest
import serial
from hallq.call_display import led
from hallq.call_display.led import FrameCodec, LedError, ModbusTextCodec
from hypothesis import given, settings
from hypothesis import strategies as st


def test_crc16_modbus_check_value():
    # The catalogue's check value of CRC-16/MODBUS, and the textbook read request 01 03 0000 000A → C5 CD.
    assert led.crc16_modbus(b"123456789") == 0x4B37
    assert led.crc16_modbus(bytes.fromhex("01030000000A")).to_bytes(2, "little") == bytes.fromhex("C5CD")


@pytest.mark.parametrize("kind,check", [("sum", "de"), ("xor", "76")])
def test_frame_vectors_by_hand(kind, check):
    # AA55 | addr 03 | cmd 01 | len 0004 | "A023" | sum of 03 01 00 04 41 30 32 33 = 0xDE, xor = 0x76
    frame = FrameCodec(b"\xaa\x55", 3, 1, kind).encode("A023")
    assert frame.hex() == "aa550301000441303233" + check


def test_frame_vector_crc_and_trailer():
    frame = FrameCodec(b"\xaa\x55", 3, 1, "crc16-modbus", b"\x0d").encode("A023")
    crc = led.crc16_modbus(bytes.fromhex("0301000441303233")).to_bytes(2, "little")
    assert frame == bytes.fromhex("aa550301000441303233") + crc + b"\x0d"


def test_gb2312_text():
    frame = FrameCodec(b"\xaa", 1, 1, "xor").encode("请窗口")
    assert frame[5:11] == bytes.fromhex("c7ebb4b0bfda")  # 请 C7EB, 窗 B4B0, 口 BFDA
    assert frame[3:5] == b"\x00\x06"
    # a character GB2312 lacks becomes a space, never a crash
    assert FrameCodec(b"\xaa", 1, 1, "xor").decode(FrameCodec(b"\xaa", 1, 1, "xor").encode("A€1")).text == "A 1"


@pytest.mark.parametrize("kind", ["sum", "xor", "crc16-modbus"])
def test_frames_through_loop(kind):
    port = serial.serial_for_url("loop://", timeout=0.2)
    codec = FrameCodec(b"\xaa\x55", 7, 0x21, kind, b"\x0d\x0a")
    board = led.SerialFrameLed("loop://", codec, port=port)
    port.write(b"\x00\x13garbage")  # noise on the line before the frame is skipped
    board.show("请 A023 号到 3 号窗口办理")
    got = codec.read(port)
    assert got == led.LedFrame(7, 0x21, "请 A023 号到 3 号窗口办理")
    with pytest.raises(LedError, match="timeout"):
        codec.read(port)  # nothing more on the line
    board.close()


def test_garbage_is_refused_with_a_clear_error():
    codec = FrameCodec(b"\xaa\x55", 1, 1, "crc16-modbus")
    good = codec.encode("A023")
    with pytest.raises(LedError, match="checksum"):
        codec.decode(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(LedError, match="header"):
        codec.decode(b"\x00" + good[1:])
    with pytest.raises(LedError, match="length"):
        codec.decode(good + b"\x00")
    with pytest.raises(LedError, match="short"):
        codec.decode(good[:4])
    port = serial.serial_for_url("loop://", timeout=0.1)
    port.write(good[:8])
    with pytest.raises(LedError, match="cut short"):
        codec.read(port)


def test_cut_never_splits_a_chinese_character():
    data = led.to_gb2312("A请到3号")
    assert led.cut_gb2312(data, 2) == b"A"
    assert led.cut_gb2312(data, 3) == led.to_gb2312("A请")
    assert led.cut_gb2312(data, 100) == data


def test_modbus_request_vector():
    req = ModbusTextCodec(slave=3, register=0x0010, registers=4).request("A023")
    body = bytes.fromhex("03 10 0010 0004 08") + b"A023    "
    assert req == body + led.crc16_modbus(body).to_bytes(2, "little")
    # too long: cut at a whole character, then no padding needed
    req = ModbusTextCodec(registers=2).request("请到窗口")
    assert req[7:11] == led.to_gb2312("请到")


class FakeModbusBoard:
    """A board at the far end of a pty: checks each request's CRC and answers like a Modbus slave."""

    def __init__(self, answer: str = "ok"):
        self.master, slave = os.openpty()
        self.path = os.ttyname(slave)
        self._slave = slave
        self.answer = answer
        self.requests: list[bytes] = []
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()

    def _run(self) -> None:
        buf = b""
        while True:
            try:
                buf += os.read(self.master, 512)
            except OSError:
                return
            if len(buf) >= 7 and len(buf) >= 9 + buf[6]:
                n = 9 + buf[6]
                frame, buf = buf[:n], buf[n:]
                assert led.crc16_modbus(frame[:-2]).to_bytes(2, "little") == frame[-2:]
                self.requests.append(frame)
                if self.answer == "ok":
                    resp = frame[:6]
                elif self.answer == "exception":
                    resp = bytes([frame[0], 0x90, 0x02])
                else:
                    continue
                os.write(self.master, resp + led.crc16_modbus(resp).to_bytes(2, "little"))

    def close(self) -> None:
        os.close(self.master)
        os.close(self._slave)


@pytest.mark.parametrize("answer", ["ok", "exception", "silent"])
def test_modbus_board_through_a_pty(answer):
    board_end = FakeModbusBoard(answer)
    codec = ModbusTextCodec(slave=5, register=0, registers=8)
    board = led.ModbusLed(board_end.path, codec, timeout=0.3)
    try:
        if answer == "ok":
            board.show("A023 请到3号")
            assert board_end.requests[0] == codec.request("A023 请到3号")
        elif answer == "exception":
            with pytest.raises(LedError, match="exception 0x02"):
                board.show("A023")
        else:
            with pytest.raises(LedError, match="no response"):
                board.show("A023")
    finally:
        board.close()
        board_end.close()


def test_modbus_response_checks():
    codec = ModbusTextCodec(slave=1, register=0, registers=4)
    ok = codec.expected_response()
    codec.check_response(ok)
    with pytest.raises(LedError, match="CRC"):
        codec.check_response(ok[:-1] + b"\x00")
    other = bytes.fromhex("01100000 0005".replace(" ", ""))
    with pytest.raises(LedError, match="unexpected"):
        codec.check_response(other + led.crc16_modbus(other).to_bytes(2, "little"))


def test_worker_sends_changes_only_and_survives_a_failing_board():
    class Flaky:
        def __init__(self):
            self.shown: list[str] = []
            self.fail = True

        def show(self, text):
            if self.fail:
                self.fail = False
                raise LedError("board kept quiet")
            self.shown.append(text)

        def close(self):
            pass

    board = Flaky()
    w = led.LedWorker(board)
    w.show("A")
    deadline = time.monotonic() + 2
    while w.errors == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert w.errors == 1 and w.last_error == "board kept quiet"
    for text in ("B", "B", "B", "C"):
        w.show(text)
        time.sleep(0.02)
    w.close()
    assert board.shown == ["B", "C"]


def test_pygame_board_lights_its_dots(screen):
    import pygame

    b = led.PygameLed(screen.font_path, screen.font_index, (96, 32))
    b.show("A023\n请到3号窗口")
    assert not b.scrolling
    bmp = b.bitmap()
    lit = sum(1 for x in range(96) for y in range(32) if bmp.get_at((x, y))[0] > 96)
    assert 100 < lit < 96 * 32 // 2
    assert {bmp.get_at((x, y))[:3] for x in range(96) for y in range(32)} <= {(0, 0, 0), (255, 255, 255)}
    surf = pygame.Surface((960, 320))
    b.draw(surf)
    assert surf.get_at((0, 0))[:3] == (12, 12, 12)  # between the dots
    centres = [surf.get_at((x * 10 + 5, y * 10 + 5))[:3] for x in range(96) for y in range(32)]
    assert centres.count((255, 40, 30)) == lit and centres.count((45, 12, 12)) == 96 * 32 - lit


def test_pygame_board_scrolls_a_long_line(screen):
    import pygame

    b = led.PygameLed(screen.font_path, screen.font_index, (96, 24), speed=24)
    b.show("请 A023 号到 3 号窗口办理")
    assert b.scrolling
    frames = [pygame.image.tobytes(b.bitmap(t), "RGB") for t in (0.0, 0.5, 1.0)]
    assert len(set(frames)) == 3


def test_what_the_boards_say():
    from datetime import datetime

    from call_display import samples
    from hallq.call_display import core

    s = core.initial(core.Settings(mode="window", window=2))
    s, _ = core.handle(s, core.WindowMsg(samples.window_state(2, ticket="A023")), 0)
    assert led.window_board_text(core.window_view(s, 0, datetime(2026, 1, 1))) == "A023 请到2号窗口\n正在办理"
    s, _ = core.handle(s, core.WindowMsg(samples.window_state(2, "paused", None)), 0)
    assert led.window_board_text(core.window_view(s, 0, datetime(2026, 1, 1))) == "2号窗口\n暂停服务"
    h = core.initial(core.Settings())
    h, _ = core.handle(h, core.CallMsg(samples.call("A023", 3)), 0)
    assert led.hall_strip_text(core.hall_view(h, 0, datetime(2026, 1, 1))) == "请 A023 号到 3 号窗口办理"


@given(
    text=st.text(alphabet=st.sampled_from("请到号窗口办理暂停服务ABCDEFGH0123456789 "), max_size=60),
    header=st.binary(min_size=1, max_size=3),
    address=st.integers(0, 255),
    command=st.integers(0, 255),
    kind=st.sampled_from(["sum", "xor", "crc16-modbus"]),
    trailer=st.binary(max_size=2),
)
@settings(max_examples=150, deadline=None)
def test_frames_round_trip(text, header, address, command, kind, trailer):
    codec = FrameCodec(header, address, command, kind, trailer)
    frame = codec.encode(text)
    assert codec.decode(frame) == led.LedFrame(address, command, text)
    for i in range(len(header), len(frame) - len(trailer)):  # any single flipped bit is caught
        bad = frame[:i] + bytes([frame[i] ^ 0x10]) + frame[i + 1 :]
        with pytest.raises(LedError):
            codec.decode(bad)
