"""LED boards on RS-485: the window board above a window and the hall's scrolling strip.

The port is :class:`LedBoard` (``show(text)``, ``close()``). Implementations:

- :class:`SerialFrameLed`: the configurable frame most window boards speak in one variant or another::

      header | address | command | length (2 bytes, big-endian) | text (GB2312) | checksum | trailer

  The checksum covers ``address`` to the end of ``text``: ``sum`` (one byte, the sum modulo 256),
  ``xor`` (one byte) or ``crc16-modbus`` (two bytes, low byte first, as Modbus sends it). Header and
  trailer are configurable hex (``AA55`` and none by default).

- :class:`ModbusLed`: a vendor protocol, the **Modbus RTU text board**. Many boards sold for window screens
  (窗口屏, 条屏) keep their text in holding registers and take it with the standard Modbus RTU function
  0x10 (Write Multiple Registers). This module speaks it as the Modbus specification (Modbus Application
  Protocol v1.1b3 §6.12, Modbus over Serial Line v1.02 §2.5) defines it::

      request:   slave | 0x10 | start register (2) | register count (2) | byte count (1) | data | CRC
      response:  slave | 0x10 | start register (2) | register count (2) | CRC
      exception: slave | 0x90 | exception code (1) | CRC

  All 16-bit fields are big-endian, the CRC-16/Modbus low byte first. The board's text is the GB2312
  bytes of the message, two per register (first byte high), padded with spaces to the board's register
  count (``registers``; a board of 8 Chinese characters a line and 2 lines has 16 registers) and
  cut at a whole character when longer. The board answers within ``timeout``; no answer or an exception
  raises :class:`LedError`.

- :class:`PygameLed`: the same board drawn on a screen as red dots, for a desk without the board.

Serial ports are opened with :func:`serial.serial_for_url`, so ``loop://`` and ``/dev/pts/N`` work in
tests exactly as ``/dev/ttyUSB0`` does on a Pi.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import serial

log = logging.getLogger(__name__)

Checksum = Literal["sum", "xor", "crc16-modbus"]


class LedError(Exception):
    """A frame that does not fit the protocol (garbage on the line) or a board that refused or kept quiet."""


# -- checksums --------------------------------------------------------------------------------------------
def crc16_modbus(data: bytes) -> int:
    """CRC-16/Modbus: polynomial 0x8005 reflected (0xA001), initial value 0xFFFF, no final XOR."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def checksum_bytes(kind: Checksum, data: bytes) -> bytes:
    if kind == "sum":
        return bytes([sum(data) & 0xFF])
    if kind == "xor":
        x = 0
        for b in data:
            x ^= b
        return bytes([x])
    if kind == "crc16-modbus":
        return crc16_modbus(data).to_bytes(2, "little")
    raise ValueError(f"unknown checksum {kind!r}")


def to_gb2312(text: str) -> bytes:
    """GB2312 bytes of ``text``; a character GB2312 lacks becomes a space (logged once per text)."""
    try:
        return text.encode("gb2312")
    except UnicodeEncodeError:
        out = bytearray()
        for ch in text:
            try:
                out += ch.encode("gb2312")
            except UnicodeEncodeError:
                out += b" "
        log.warning("LED text %r has characters GB2312 lacks; they are shown as spaces", text)
        return bytes(out)


def cut_gb2312(data: bytes, limit: int) -> bytes:
    """At most ``limit`` bytes of GB2312 ``data``, never half a two-byte character."""
    if len(data) <= limit:
        return data
    i = 0
    while i < len(data):
        step = 2 if data[i] >= 0xA1 else 1
        if i + step > limit:
            break
        i += step
    return data[:i]


# -- the configurable frame ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LedFrame:
    address: int
    command: int
    text: str


@dataclass(frozen=True)
class FrameCodec:
    header: bytes = b"\xaa\x55"
    address: int = 1
    command: int = 0x01
    checksum: Checksum = "crc16-modbus"
    trailer: bytes = b""
    max_text: int = 1024

    def __post_init__(self) -> None:
        if not 0 <= self.address <= 255 or not 0 <= self.command <= 255:
            raise ValueError("address and command are single bytes")
        checksum_bytes(self.checksum, b"")

    @property
    def checksum_len(self) -> int:
        return 2 if self.checksum == "crc16-modbus" else 1

    def encode(self, text: str) -> bytes:
        body = cut_gb2312(to_gb2312(text), self.max_text)
        core = bytes([self.address, self.command]) + len(body).to_bytes(2, "big") + body
        return self.header + core + checksum_bytes(self.checksum, core) + self.trailer

    def decode(self, frame: bytes) -> LedFrame:
        """Check and take apart one whole frame; :class:`LedError` says what is wrong with it."""
        h = len(self.header)
        if frame[:h] != self.header:
            raise LedError(f"frame does not start with the header {self.header.hex()}: {frame[:8].hex()}")
        if len(frame) < h + 4:
            raise LedError(f"frame of {len(frame)} bytes is too short")
        length = int.from_bytes(frame[h + 2 : h + 4], "big")
        end = h + 4 + length
        expected = end + self.checksum_len + len(self.trailer)
        if len(frame) != expected:
            raise LedError(f"frame is {len(frame)} bytes; its length field says {expected}")
        core = frame[h:end]
        got = frame[end : end + self.checksum_len]
        want = checksum_bytes(self.checksum, core)
        if got != want:
            raise LedError(f"bad {self.checksum} checksum: got {got.hex()}, computed {want.hex()}")
        if frame[end + self.checksum_len :] != self.trailer:
            raise LedError(f"frame does not end with the trailer {self.trailer.hex()}")
        try:
            text = frame[h + 4 : end].decode("gb2312")
        except UnicodeDecodeError as exc:
            raise LedError(f"text is not GB2312: {exc}") from None
        return LedFrame(frame[h], frame[h + 1], text)

    def read(self, port: Any) -> LedFrame:
        """Read one frame from a serial port (skipping bytes before the header)."""
        h = len(self.header)
        window = b""
        while window != self.header:
            b = port.read(1)
            if not b:
                raise LedError("no frame (timeout while looking for the header)")
            window = (window + b)[-h:]
        fixed = port.read(4)
        if len(fixed) < 4:
            raise LedError("frame cut short after the header")
        length = int.from_bytes(fixed[2:4], "big")
        rest_len = length + self.checksum_len + len(self.trailer)
        rest = port.read(rest_len)
        if len(rest) < rest_len:
            raise LedError(f"frame cut short: {len(rest)} of {rest_len} bytes after the length")
        return self.decode(self.header + fixed + rest)


# -- Modbus RTU text board ------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModbusTextCodec:
    slave: int = 1
    register: int = 0
    registers: int = 32

    def __post_init__(self) -> None:
        if not 1 <= self.slave <= 247:
            raise ValueError("a Modbus slave address is 1-247")
        if not 1 <= self.registers <= 123:
            raise ValueError("function 0x10 writes 1-123 registers")

    def request(self, text: str) -> bytes:
        data = cut_gb2312(to_gb2312(text), self.registers * 2).ljust(self.registers * 2, b" ")
        pdu = (bytes([self.slave, 0x10]) + self.register.to_bytes(2, "big") + self.registers.to_bytes(2, "big")
               + bytes([len(data)]) + data)
        return pdu + crc16_modbus(pdu).to_bytes(2, "little")

    def expected_response(self) -> bytes:
        pdu = bytes([self.slave, 0x10]) + self.register.to_bytes(2, "big") + self.registers.to_bytes(2, "big")
        return pdu + crc16_modbus(pdu).to_bytes(2, "little")

    def check_response(self, data: bytes) -> None:
        """Raise :class:`LedError` unless ``data`` is the board's acknowledgement of :meth:`request`."""
        if len(data) >= 5 and data[1] == 0x90:
            if crc16_modbus(data[:3]).to_bytes(2, "little") != data[3:5]:
                raise LedError(f"garbled exception response {data.hex()}")
            raise LedError(f"board {data[0]} refused the text: Modbus exception {data[2]:#04x}")
        if len(data) < 8:
            raise LedError(f"short or no response from board {self.slave}: {data.hex() or 'nothing'}")
        if crc16_modbus(data[:6]).to_bytes(2, "little") != data[6:8]:
            raise LedError(f"bad CRC in the response {data[:8].hex()}")
        if data[:8] != self.expected_response():
            raise LedError(f"unexpected response {data[:8].hex()} (expected {self.expected_response().hex()})")


# -- the port and its implementations ------------------------------------------------------------------
class LedBoard(Protocol):
    def show(self, text: str) -> None: ...

    def close(self) -> None: ...


class SerialFrameLed:
    def __init__(self, url: str, codec: FrameCodec, *, baudrate: int = 9600, port: Any = None):
        self.codec = codec
        self.port = port if port is not None else serial.serial_for_url(url, baudrate=baudrate, timeout=0.5)

    def show(self, text: str) -> None:
        self.port.write(self.codec.encode(text))
        self.port.flush()

    def close(self) -> None:
        self.port.close()


class ModbusLed:
    def __init__(self, url: str, codec: ModbusTextCodec, *, baudrate: int = 9600, timeout: float = 0.5,
                 port: Any = None):
        self.codec = codec
        self.port = port if port is not None else serial.serial_for_url(url, baudrate=baudrate, timeout=timeout)

    def show(self, text: str) -> None:
        self.port.reset_input_buffer()
        self.port.write(self.codec.request(text))
        self.port.flush()
        head = self.port.read(2)
        more = 3 if len(head) == 2 and head[1] == 0x90 else 6
        self.codec.check_response(head + self.port.read(more))

    def close(self) -> None:
        self.port.close()


class PygameLed:
    """An LED board drawn as red dots on a pygame surface; ``show`` sets its text (one or two lines).

    Text is rasterised without anti-aliasing at the board's line height, as a board's own bitmap font
    would be; a line wider than the board scrolls (``speed`` dots a second), as boards do."""

    def __init__(self, font_path: str, font_index: int = 0, dots: tuple[int, int] = (128, 32), speed: int = 24):
        import pygame.freetype

        pygame.freetype.init()
        self.font = pygame.freetype.Font(font_path, 16, font_index=font_index)
        self.font.antialiased = False
        self.dots = dots
        self.speed = speed
        self.text = ""
        self._lock = threading.Lock()

    def show(self, text: str) -> None:
        with self._lock:
            self.text = text

    def close(self) -> None:
        pass

    def _lines(self) -> list[Any]:
        with self._lock:
            text = self.text
        lines = [ln for ln in text.split("\n") if ln][:2] or [""]
        lh = self.dots[1] // len(lines)
        return [self.font.render(line, (255, 255, 255), size=lh)[0] for line in lines]

    @property
    def scrolling(self) -> bool:
        return any(img.get_width() > self.dots[0] for img in self._lines())

    def bitmap(self, now: float = 0.0) -> Any:
        """The board's dots at time ``now``: a ``dots``-sized surface, lit where the text is."""
        import pygame

        w, h = self.dots
        surf = pygame.Surface((w, h))
        surf.fill((0, 0, 0))
        imgs = self._lines()
        lh = h // len(imgs)
        for i, img in enumerate(imgs):
            y = i * lh + (lh - img.get_height()) // 2
            if img.get_width() <= w:
                surf.blit(img, ((w - img.get_width()) // 2, y))
                continue
            span = img.get_width() + w // 2
            x = w - int(now * self.speed) % span
            while x > 0:
                x -= span
            while x < w:
                surf.blit(img, (x, y))
                x += span
        return surf

    def draw(self, surface: Any, now: float = 0.0) -> None:
        import pygame

        bmp = self.bitmap(now)
        w, h = self.dots
        W, H = surface.get_size()
        pitch = min(W // w, H // h) or 1
        ox, oy = (W - pitch * w) // 2, (H - pitch * h) // 2
        surface.fill((12, 12, 12))
        r = max(1, pitch * 2 // 5)
        for y in range(h):
            for x in range(w):
                lit = bmp.get_at((x, y))[0] > 96
                pygame.draw.circle(surface, (255, 40, 30) if lit else (45, 12, 12),
                                   (ox + x * pitch + pitch // 2, oy + y * pitch + pitch // 2), r)


class LedWorker:
    """Sends the latest text to a board on a thread of its own (a 9600-baud write takes ~100 ms); a text
    that did not change is not sent again, and a failing board is logged, never fatal."""

    def __init__(self, board: LedBoard):
        self.board = board
        self.errors = 0
        self.last_error: str | None = None
        self.sent: list[str] = []
        self._cond = threading.Condition()
        self._want: str | None = None
        self._shown: str | None = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="led", daemon=True)
        self._thread.start()

    def show(self, text: str) -> None:
        with self._cond:
            if text != self._want:
                self._want = text
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._stop and self._want == self._shown:
                    self._cond.wait()
                if self._stop:
                    return
                text = self._want
            try:
                self.board.show(text or "")
                self.sent.append(text or "")
                del self.sent[:-50]
                self.last_error = None
            except (LedError, serial.SerialException, OSError) as exc:
                self.errors += 1
                self.last_error = str(exc)
                log.warning("LED board: %s", exc)
            with self._cond:
                self._shown = text

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(2)
        self.board.close()


# -- what the boards say -------------------------------------------------------------------------------
def window_board_text(view: Any) -> str:
    """Two lines for the board above a window (a :class:`~hallq.call_display.core.WindowView`)."""
    if view.status == "serving" and view.ticket:
        return f"{view.ticket} 请到{view.no}号窗口\n正在办理"
    if view.status == "paused":
        return f"{view.no}号窗口\n暂停服务"
    if view.status == "closed":
        return f"{view.no}号窗口\n未开放"
    return f"{view.no}号窗口\n请稍候"


def hall_strip_text(view: Any) -> str:
    """One line for the hall's strip (a :class:`~hallq.call_display.core.HallView`)."""
    if view.newest is None:
        return view.title or ""
    c = view.newest
    return f"请 {c.ticket} 号到 {c.window} 号窗口办理"
