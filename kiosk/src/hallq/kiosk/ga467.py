"""Second-generation ID card readers speaking GA 467 (the SAM module's serial protocol), over pyserial.

A frame is ``AA AA AA 96 69``, a big-endian length of what follows it, then the body and an XOR checksum
of the length and body bytes. The host sends a command (``CMD PARA [data]``); the module answers
``SW1 SW2 SW3 [data]`` where ``SW3`` is the status (``90`` success, ``9F`` card found, ``80`` no card ...).

:class:`FrameDecoder` is pure: feed it whatever bytes arrive (garbage, split frames, several frames at
once) and it returns the frames it can complete, skipping garbage and frames with a bad checksum.
:class:`Ga467Reader` runs reset / find / select / read-base-info over a serial port with timeouts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .idcard import IdNumber, InvalidIdNumber

log = logging.getLogger(__name__)

PREAMBLE = b"\xaa\xaa\xaa\x96\x69"
MAX_LEN = 4096  # the longest answer (base info with fingerprints) is about 2.3 kB

# Commands (CMD, PARA)
RESET = (0x10, 0xFF)
SAM_STATUS = (0x11, 0xFF)
FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_BASE = (0x30, 0x01)

# Status (SW3)
OK = 0x90
FOUND = 0x9F
STATUS_TEXT = {
    0x90: "success",
    0x9F: "card found",
    0x10: "the module got a bad checksum",
    0x11: "the module got a bad length",
    0x21: "the module got an unknown command",
    0x23: "operation not permitted",
    0x24: "unrecognised error",
    0x31: "the card failed to authenticate the module",
    0x32: "the module failed to authenticate the card",
    0x33: "information verification failed",
    0x40: "unknown card type",
    0x41: "reading the card failed",
    0x47: "getting a random number failed",
    0x60: "module self-test failed",
    0x66: "module not authorised",
    0x80: "no card found",
    0x81: "selecting the card failed",
    0x91: "no such information on the card",
}
TEXT_BLOCK = 256
# Field widths of the 256-byte UCS-2LE text block, in bytes.
_FIELDS = (
    ("name", 30),
    ("sex", 2),
    ("ethnicity", 4),
    ("birth", 16),
    ("address", 70),
    ("id_number", 36),
    ("authority", 30),
    ("valid_from", 16),
    ("valid_until", 16),
    ("reserved", 36),
)


class Ga467Error(Exception):
    """The reader or the module failed (never carries card data)."""


class Ga467Timeout(Ga467Error, TimeoutError):
    """No complete answer within the timeout."""


class Ga467StatusError(Ga467Error):
    def __init__(self, command: tuple[int, int], status: int):
        text = STATUS_TEXT.get(status, "unknown status")
        super().__init__(f"command {command[0]:02X} {command[1]:02X}: status {status:02X} ({text})")
        self.status = status


def checksum(data: bytes) -> int:
    x = 0
    for b in data:
        x ^= b
    return x


def encode_frame(body: bytes) -> bytes:
    """A whole frame around ``body``."""
    n = len(body) + 1
    head = n.to_bytes(2, "big")
    return PREAMBLE + head + body + bytes([checksum(head + body)])


def encode_command(cmd: int, para: int, data: bytes = b"") -> bytes:
    return encode_frame(bytes([cmd, para]) + data)


def encode_response(status: int, data: bytes = b"") -> bytes:
    """What a module sends back (used by the simulated module of the tests and the technician tool)."""
    return encode_frame(bytes([0, 0, status]) + data)


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    data: bytes

    @classmethod
    def from_body(cls, body: bytes) -> Response:
        if len(body) < 3:
            raise Ga467Error("an answer needs three status bytes")
        return cls(body[2], body[3:])


@dataclass
class FrameDecoder:
    """Incremental frame decoder with resynchronisation; counts what it threw away."""

    buf: bytearray = field(default_factory=bytearray)
    garbage: int = 0  # bytes skipped outside frames
    bad_frames: int = 0  # frames with a bad checksum or length

    def feed(self, data: bytes) -> list[bytes]:
        """Add bytes; return the bodies of the frames completed by them."""
        self.buf += data
        out: list[bytes] = []
        while True:
            i = self.buf.find(PREAMBLE)
            if i < 0:
                # keep a tail that may be the start of a preamble
                keep = 0
                for k in range(min(len(PREAMBLE) - 1, len(self.buf)), 0, -1):
                    if self.buf.endswith(PREAMBLE[:k]):
                        keep = k
                        break
                self.garbage += len(self.buf) - keep
                del self.buf[: len(self.buf) - keep]
                return out
            if i:
                self.garbage += i
                del self.buf[:i]
            if len(self.buf) < 7:
                return out
            n = int.from_bytes(self.buf[5:7], "big")
            if n < 2 or n > MAX_LEN:
                self.bad_frames += 1
                del self.buf[:1]
                continue
            if len(self.buf) < 7 + n:
                return out
            body = bytes(self.buf[7 : 7 + n - 1])
            chk = self.buf[7 + n - 1]
            if checksum(self.buf[5:7] + body) != chk:
                self.bad_frames += 1
                del self.buf[:1]
                continue
            del self.buf[: 7 + n]
            out.append(body)


@dataclass(frozen=True, repr=False)
class BaseInfo:
    """The card's text block. ``repr`` shows nothing personal."""

    name: str
    sex: str
    ethnicity: str
    birth: str
    address: str
    id_number: IdNumber
    authority: str
    valid_from: str
    valid_until: str

    def __repr__(self) -> str:
        return f"BaseInfo(id_number={self.id_number!r})"


def text_fields(block: bytes) -> dict[str, str]:
    """The fields of the 256-byte UCS-2LE text block, spaces stripped."""
    if len(block) < TEXT_BLOCK:
        raise Ga467Error(f"the text block has {len(block)} bytes, expected {TEXT_BLOCK}")
    values: dict[str, str] = {}
    pos = 0
    for name, width in _FIELDS:
        raw = block[pos : pos + width]
        pos += width
        try:
            values[name] = raw.decode("utf-16-le").rstrip(" \x00")
        except UnicodeDecodeError:
            raise Ga467Error(f"the {name} field is not UCS-2") from None
    return values


def parse_text_block(block: bytes, today: date | None = None) -> BaseInfo:
    """Decode the text block; :class:`InvalidIdNumber` for a number that is not valid."""
    values = text_fields(block)
    return BaseInfo(
        name=values["name"],
        sex=values["sex"],
        ethnicity=values["ethnicity"],
        birth=values["birth"],
        address=values["address"],
        id_number=IdNumber(values["id_number"], today),
        authority=values["authority"],
        valid_from=values["valid_from"],
        valid_until=values["valid_until"],
    )


def _text_of(data: bytes) -> bytes:
    if len(data) < 4:
        raise Ga467Error("the base info answer is too short")
    text_len = int.from_bytes(data[0:2], "big")
    photo_len = int.from_bytes(data[2:4], "big")
    if text_len < TEXT_BLOCK or len(data) < 4 + text_len + photo_len:
        raise Ga467Error(f"the base info answer is cut short ({len(data)} bytes)")
    return data[4 : 4 + text_len]


def parse_base_info(data: bytes, today: date | None = None) -> BaseInfo:
    """The data of a read-base-info answer: text length, photo length (big-endian), text, photo."""
    return parse_text_block(_text_of(data), today)


def parse_raw_fields(data: bytes) -> dict[str, str]:
    """The text fields of a read-base-info answer, unvalidated (for the technician's tool only)."""
    return text_fields(_text_of(data))


def build_text_block(fields: dict[str, str]) -> bytes:
    """The inverse of :func:`parse_text_block` (for the simulated module and tests)."""
    out = b""
    for name, width in _FIELDS:
        raw = fields.get(name, "").encode("utf-16-le")[:width]
        out += raw + " ".encode("utf-16-le") * ((width - len(raw)) // 2)
    return out


def build_base_info(fields: dict[str, str], photo: bytes = bytes(1024)) -> bytes:
    text = build_text_block(fields)
    return len(text).to_bytes(2, "big") + len(photo).to_bytes(2, "big") + text + photo


# -- the reader --------------------------------------------------------------------------------------
def open_serial(url: str, timeout: float = 0.05) -> Any:
    """``serial:/dev/ttyUSB0?baudrate=115200``, or any pyserial URL (``loop://``)."""
    from urllib.parse import parse_qs

    import serial

    rest = url.removeprefix("serial:")
    port, _, query = rest.partition("?")
    opts = {k: v[-1] for k, v in parse_qs(query).items()}
    unknown = set(opts) - {"baudrate"}
    if unknown:
        raise ValueError(f"reader URL {url!r}: unknown option {sorted(unknown)[0]!r}")
    try:
        baud = int(opts.get("baudrate", 115200))
    except ValueError:
        raise ValueError(f"reader URL {url!r}: baudrate must be a number") from None
    try:
        return serial.serial_for_url(port, baudrate=baud, timeout=timeout)
    except (serial.SerialException, ValueError) as exc:
        raise Ga467Error(f"cannot open {port}: {exc}") from None


class Ga467Reader:
    """Talks to one module through a pyserial port (anything with ``read``, ``write``, ``reset_input_buffer``)."""

    def __init__(self, port: Any, *, timeout: float = 1.0, name: str | None = None):
        self.port = port
        self.timeout = timeout
        self.name = name or f"GA 467 {getattr(port, 'port', None) or getattr(port, 'name', 'serial')}"
        self.decoder = FrameDecoder()
        self._lock = threading.Lock()

    @classmethod
    def open(cls, url: str, *, timeout: float = 1.0) -> Ga467Reader:
        port = open_serial(url)
        return cls(port, timeout=timeout, name=f"GA 467 {url.removeprefix('serial:').partition('?')[0]}")

    def close(self) -> None:
        try:
            self.port.close()
        except Exception:
            pass

    def transact(self, command: tuple[int, int], data: bytes = b"") -> Response:
        """Send one command and wait for its answer (garbage and bad frames are skipped)."""
        with self._lock:
            try:
                self.port.reset_input_buffer()
            except Exception:
                pass
            self.decoder.buf.clear()
            try:
                self.port.write(encode_command(*command, data))
            except Exception as exc:
                raise Ga467Error(f"cannot write to the reader: {exc}") from None
            deadline = time.monotonic() + self.timeout
            while time.monotonic() < deadline:
                try:
                    chunk = self.port.read(max(1, getattr(self.port, "in_waiting", 0) or 1))
                except Exception as exc:
                    raise Ga467Error(f"cannot read from the reader: {exc}") from None
                if not chunk:
                    continue
                for body in self.decoder.feed(chunk):
                    try:
                        return Response.from_body(body)
                    except Ga467Error:
                        continue
            raise Ga467Timeout(f"no answer to command {command[0]:02X} {command[1]:02X} within {self.timeout:g} s")

    def reset(self) -> None:
        r = self.transact(RESET)
        if r.status != OK:
            raise Ga467StatusError(RESET, r.status)

    def find_card(self) -> bool:
        r = self.transact(FIND_CARD)
        if r.status == FOUND:
            return True
        if r.status == 0x80:
            return False
        raise Ga467StatusError(FIND_CARD, r.status)

    def select_card(self) -> bool:
        r = self.transact(SELECT_CARD)
        if r.status == OK:
            return True
        if r.status == 0x81:
            return False
        raise Ga467StatusError(SELECT_CARD, r.status)

    def read_base(self, today: date | None = None) -> BaseInfo:
        r = self.transact(READ_BASE)
        if r.status != OK:
            raise Ga467StatusError(READ_BASE, r.status)
        return parse_base_info(r.data, today)

    def read_card(self, today: date | None = None) -> BaseInfo | None:
        """One attempt: find, select and read; None when no card is there."""
        if not self.find_card():
            return None
        if not self.select_card():
            return None
        return self.read_base(today)


CardCallback = Callable[[IdNumber | None, str | None], None]
StatusCallback = Callable[[bool, str | None], None]


class Ga467Poller:
    """Polls a reader on its own thread; calls ``on_card(number, None)`` once per card put on it, or
    ``on_card(None, message)`` for a card that cannot be used; ``on_status(online, detail)`` on changes.

    Given a URL it opens the port itself, and opens it again after repeated failures (a reader unplugged
    and plugged back), reporting the reader offline meanwhile; given a :class:`Ga467Reader` it uses that.
    """

    def __init__(self, reader: Ga467Reader | str, on_card: CardCallback, on_status: StatusCallback,
                 interval: float = 0.25, retry: float = 2.0, timeout: float = 1.0):
        self.timeout = timeout
        self._url = reader if isinstance(reader, str) else None
        self.reader: Ga467Reader | None = None if isinstance(reader, str) else reader
        self.name = self.reader.name if self.reader else f"GA 467 {self._url.removeprefix('serial:').partition('?')[0]}"
        self.on_card = on_card
        self.on_status = on_status
        self.interval = interval
        self.retry = retry
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.online: bool | None = None

    def start(self) -> Ga467Poller:
        self._thread = threading.Thread(target=self._run, name="ga467", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        if self.reader is not None:
            self.reader.close()

    def _status(self, online: bool, detail: str | None) -> None:
        if online != self.online:
            self.online = online
            if not online:
                log.warning("ID card reader %s: %s", self.name, detail)
            self.on_status(online, detail)

    def _connect(self) -> bool:
        try:
            if self.reader is None:
                self.reader = Ga467Reader.open(self._url or "", timeout=self.timeout)
            self.reader.reset()
        except (Ga467Error, ValueError) as exc:
            self._status(False, str(exc))
            if self._url and self.reader is not None:
                self.reader.close()
                self.reader = None
            return False
        self._status(True, None)
        return True

    def _run(self) -> None:
        card_present = False
        fails = 0
        connected = False
        while not self._stop.is_set():
            if not connected:
                connected = self._connect()
                if not connected:
                    self._stop.wait(self.retry)
                    continue
            reader = self.reader
            assert reader is not None
            try:
                if card_present:
                    card_present = reader.find_card()
                else:
                    info = reader.read_card(date.today())
                    if info is not None:
                        card_present = True
                        self.on_card(info.id_number, None)
                fails = 0
                self._status(True, None)
            except InvalidIdNumber as exc:
                card_present = True
                self.on_card(None, str(exc))
            except Ga467StatusError as exc:
                # a card that could not be read: report it once, wait for it to go
                if exc.status in (0x31, 0x32, 0x33, 0x40, 0x41):
                    card_present = True
                    self.on_card(None, str(exc))
                else:
                    log.warning("ID card reader %s: %s", self.name, exc)
                self._status(True, None)
            except Ga467Error as exc:
                fails += 1
                self._status(False, str(exc))
                if fails >= 3 and self._url:  # unplugged? open it again
                    reader.close()
                    self.reader = None
                    connected = False
                self._stop.wait(1.0)
            self._stop.wait(self.interval)
