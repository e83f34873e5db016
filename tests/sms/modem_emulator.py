"""A GSM modem on a pty, for the SMS gateway's tests: the AT command set of a SIM800 / EC20 in PDU mode.

The gateway opens :attr:`ModemEmulator.port` (the pty's slave) as it would open ``/dev/ttyUSB2``. The
emulator answers AT, ATE0/1, AT+CMEE, AT+CPIN?, AT+CMGF, AT+CSCS, AT+CNMI, AT+CSQ, AT+CREG?, AT+CMGL,
AT+CMGR, AT+CMGD, AT+CMGS and AT+CMGW (with the ``>`` prompt, the PDU and Ctrl-Z) and AT+CMSS, keeps a
SIM storage that survives a reset, and raises ``+CMTI`` for a delivered text.

Faults to drive: :meth:`cms_error` (the next sends fail with ``+CMS ERROR``), :meth:`reset` (the modem
restarts: silent for a while, echo on and text mode again, boot lines; optionally in the middle of the
next send, before or after it went), :meth:`garbage` (noise on the line), :meth:`silence` (it stops
answering).

What was sent is decoded with python-gsmmodem-new's PDU codec (not ours), concatenated parts are joined.
"""

from __future__ import annotations

import os
import threading
import time
import tty
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

with warnings.catch_warnings():  # python-gsmmodem-new 0.13 has `is` comparisons with literals
    warnings.simplefilter("ignore")
    from gsmmodem.pdu import decodeSmsPdu

GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)


def _pack7(text: str, fill_bits: int = 0) -> tuple[bytes, int]:
    septets = [GSM7.index(ch) for ch in text]
    bits = 0
    nbits = fill_bits
    out = bytearray()
    acc = 0
    for s in septets:
        acc |= s << nbits
        nbits += 7
        while nbits >= 8:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if nbits:
        out.append(acc & 0xFF)
    bits = len(septets)
    return bytes(out), bits


def _bcd(number: str) -> bytes:
    d = number.lstrip("+")
    d += "F" if len(d) % 2 else ""
    return bytes.fromhex("".join(d[i + 1] + d[i] for i in range(0, len(d), 2)))


def deliver_pdu(sender: str, text: str, *, at: datetime | None = None,
                concat: tuple[int, int, int] | None = None) -> str:
    """An SMS-DELIVER PDU as a modem lists it (with a service centre address): GSM 7-bit when the text
    fits the default alphabet, UCS-2 otherwise; ``concat`` = (ref, total, seq)."""
    at = at or datetime.now(timezone(timedelta(hours=8)))
    smsc = bytes([0x91]) + _bcd("8613800100500")
    out = bytes([len(smsc)]) + smsc
    first = 0x04 | (0x40 if concat else 0)
    digits = sender.lstrip("+")
    out += bytes([first, len(digits), 0x91 if sender.startswith("+") else 0x81]) + _bcd(sender)
    gsm = all(ch in GSM7 and ch != "\x1b" for ch in text)
    out += bytes([0x00, 0x00 if gsm else 0x08])
    ts = at.strftime("%y%m%d%H%M%S")
    q = int(at.utcoffset().total_seconds() // 900)
    out += _bcd(ts) + bytes.fromhex(f"{q % 10}{q // 10}")
    udh = bytes([5, 0, 3, *concat]) if concat else b""
    if gsm:
        fill = (7 - (len(udh) * 8) % 7) % 7 if udh else 0
        packed, n = _pack7(text, fill)
        udl = n + ((len(udh) * 8 + fill) // 7 if udh else 0)
        out += bytes([udl]) + udh + packed
    else:
        body = udh + text.encode("utf-16-be")
        out += bytes([len(body)]) + body
    return out.hex().upper()


@dataclass
class Sent:
    to: str
    text: str
    parts: int
    at: float


@dataclass
class _Concat:
    total: int
    parts: dict[int, str] = field(default_factory=dict)


class ModemEmulator:
    def __init__(self, *, own_number: str = "+8610690000"):
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        tty.setraw(self.master)
        self.port = os.ttyname(self.slave)
        self.own_number = own_number
        self.lock = threading.RLock()
        self.storage: dict[int, tuple[int, str]] = {}  # index -> (stat, pdu hex); the SIM survives resets
        self.capacity = 30
        self.sent_pdus: list[tuple[str, float]] = []  # every PDU that went out
        self.messages: list[Sent] = []  # joined texts
        self._concat: dict[tuple[str, int], _Concat] = {}
        self.commands: list[str] = []
        self._mr = 0
        self._cms: list[int] = []
        self._reset_on_send: str | None = None
        self._silent_until = 0.0
        self.send_delay = 0.0  # seconds a send takes (the network)
        self.rssi, self.creg = 20, 1
        self._power_on()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="modem-emulator", daemon=True)
        self._thread.start()

    # -- the test's controls -----------------------------------------------------------------------------
    def deliver(self, sender: str, text: str, *, concat: tuple[int, int, int] | None = None) -> int:
        """A text arrives from ``sender``: stored, and ``+CMTI`` raised."""
        with self.lock:
            idx = self._free()
            self.storage[idx] = (0, deliver_pdu(sender, text, concat=concat))
            if self.cnmi and time.monotonic() >= self._silent_until:
                self._out(f'\r\n+CMTI: "SM",{idx}\r\n')
            return idx

    def deliver_long(self, sender: str, text: str, ref: int = 42, size: int = 60) -> None:
        parts = [text[i:i + size] for i in range(0, len(text), size)]
        for i, p in enumerate(parts, 1):
            self.deliver(sender, p, concat=(ref, len(parts), i))

    def cms_error(self, code: int = 500, times: int = 1) -> None:
        with self.lock:
            self._cms += [code] * times

    def reset_on_next_send(self, when: str = "before", down_s: float = 1.0) -> None:
        """The modem restarts during the next AT+CMSS/AT+CMGS: ``before`` it went, or ``after`` it went but
        before the answer."""
        self._reset_on_send = when
        self._reset_down = down_s

    def reset(self, down_s: float = 1.0) -> None:
        with self.lock:
            self._silent_until = time.monotonic() + down_s
            self._power_on()
        threading.Timer(down_s, self._boot_lines).start()

    def silence(self, seconds: float) -> None:
        with self.lock:
            self._silent_until = time.monotonic() + seconds

    def garbage(self, data: bytes = b"\r\n\x00\xff\xfe#$%garbage%$#\r\n+CMTI: nonsense\r\n\x81\x82\r\n") -> None:
        with self.lock:
            os.write(self.master, data)

    def texts_to(self, number: str) -> list[str]:
        with self.lock:
            return [m.text for m in self.messages if m.to == number]

    def wait_texts(self, number: str, count: int, timeout: float = 20.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.texts_to(number)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(f"{number} got {len(self.texts_to(number))} texts, not {count}: {self.texts_to(number)}")

    def close(self) -> None:
        self._stop = True
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    # -- the modem -----------------------------------------------------------------------------------------
    def _power_on(self) -> None:
        self.echo = True
        self.pdu_mode = False
        self.cnmi = False
        self._buf = b""
        self._prompt: tuple[str, int] | None = None

    def _boot_lines(self) -> None:
        with self.lock:
            self._out("\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\nSMS Ready\r\n")

    def _free(self) -> int:
        for i in range(1, self.capacity + 1):
            if i not in self.storage:
                return i
        raise RuntimeError("the emulated SIM storage is full")

    def _out(self, s: str) -> None:
        try:
            os.write(self.master, s.encode("ascii"))
        except OSError:
            pass

    def _run(self) -> None:
        while not self._stop:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                if self._stop:
                    return
                time.sleep(0.01)
                continue
            with self.lock:
                if time.monotonic() < self._silent_until:
                    continue  # a modem that is restarting hears nothing
                self._buf += data
                self._consume()

    def _consume(self) -> None:
        while True:
            if self._prompt is not None:
                for end in (b"\x1a", b"\x1b"):
                    i = self._buf.find(end)
                    if i >= 0:
                        pdu, self._buf = self._buf[:i].decode("ascii", "replace").strip(), self._buf[i + 1:]
                        cmd, length = self._prompt
                        self._prompt = None
                        if end == b"\x1a":
                            self._pdu_done(cmd, pdu, length)
                        else:
                            self._out("\r\nOK\r\n")
                        break
                else:
                    return
                continue
            i = self._buf.find(b"\r")
            if i < 0:
                return
            line, self._buf = self._buf[:i].decode("ascii", "replace").strip(), self._buf[i + 1:]
            if line:
                if self.echo:
                    self._out(line + "\r")
                self.commands.append(line)
                self._command(line)

    def _ok(self, *lines: str) -> None:
        self._out("".join(f"\r\n{x}" for x in lines) + ("\r\n" if lines else "") + "\r\nOK\r\n")

    def _command(self, line: str) -> None:
        u = line.upper()
        if u in ("AT", "AT+CMEE=1", "AT+CMEE=2") or u.startswith(("AT+CSCS=", "AT+CPMS")):
            self._ok()
        elif u == "ATE0":
            self.echo = False
            self._ok()
        elif u == "ATE1":
            self.echo = True
            self._ok()
        elif u == "AT+CPIN?":
            self._ok("+CPIN: READY")
        elif u in ("AT+CMGF=0", "AT+CMGF=1"):
            self.pdu_mode = u.endswith("0")
            self._ok()
        elif u.startswith("AT+CNMI="):
            self.cnmi = True
            self._ok()
        elif u == "AT+CSQ":
            self._ok(f"+CSQ: {self.rssi},99")
        elif u == "AT+CREG?":
            self._ok(f"+CREG: 0,{self.creg}")
        elif not self.pdu_mode and u.startswith(("AT+CMGL", "AT+CMGR", "AT+CMGS", "AT+CMGW", "AT+CMSS")):
            self._out("\r\n+CMS ERROR: 302\r\n")  # text mode: not what the gateway means
        elif u == "AT+CMGL=4":
            lines = []
            for idx in sorted(self.storage):
                stat, pdu = self.storage[idx]
                lines += [f"+CMGL: {idx},{stat},,{len(pdu) // 2 - 1 - int(pdu[:2], 16)}", pdu]
                if stat == 0:
                    self.storage[idx] = (1, pdu)
            self._ok(*lines)
        elif u.startswith("AT+CMGR="):
            idx = int(u.split("=")[1])
            if idx not in self.storage:
                self._out("\r\n+CMS ERROR: 321\r\n")
                return
            stat, pdu = self.storage[idx]
            if stat == 0:
                self.storage[idx] = (1, pdu)
            self._ok(f"+CMGR: {stat},,{len(pdu) // 2 - 1 - int(pdu[:2], 16)}", pdu)
        elif u.startswith("AT+CMGD="):
            idx = int(u.split("=")[1].split(",")[0])
            self.storage.pop(idx, None)
            self._ok()
        elif u.startswith(("AT+CMGS=", "AT+CMGW=")):
            self._prompt = (u[:7], int(u.split("=")[1]))
            self._out("\r\n> ")
        elif u.startswith("AT+CMSS="):
            idx = int(u.split("=")[1])
            if idx not in self.storage or self.storage[idx][0] not in (2, 3):
                self._out("\r\n+CMS ERROR: 321\r\n")
                return
            self._send(self.storage[idx][1], lambda mr: self._ok(f"+CMSS: {mr}"),
                       lambda: self.storage.__setitem__(idx, (3, self.storage[idx][1])))
        else:
            self._out("\r\nERROR\r\n")

    def _pdu_done(self, cmd: str, pdu: str, length: int) -> None:
        if len(pdu) // 2 - 1 - int(pdu[:2], 16) != length:
            self._out("\r\n+CMS ERROR: 304\r\n")
            return
        if cmd == "AT+CMGW":
            idx = self._free()
            self.storage[idx] = (2, pdu)
            self._ok(f"+CMGW: {idx}")
        else:
            self._send(pdu, lambda mr: self._ok(f"+CMGS: {mr}"), lambda: None)

    def _send(self, pdu: str, answer, mark_sent) -> None:
        if self._cms:
            self._out(f"\r\n+CMS ERROR: {self._cms.pop(0)}\r\n")
            return
        when, self._reset_on_send = self._reset_on_send, None
        if when == "before":
            self.reset(self._reset_down)
            return
        if self.send_delay:
            time.sleep(self.send_delay)
        self._record(pdu)
        mark_sent()
        if when == "after":
            self.reset(self._reset_down)
            return
        self._mr = (self._mr + 1) % 256
        answer(self._mr)

    def _record(self, pdu: str) -> None:
        now = time.monotonic()
        self.sent_pdus.append((pdu, now))
        d = decodeSmsPdu(pdu)
        to = d["number"]
        concat = next((u for u in d.get("udh") or [] if hasattr(u, "parts")), None)
        if concat is None:
            self.messages.append(Sent(to, d["text"], 1, now))
            return
        c = self._concat.setdefault((to, concat.reference), _Concat(concat.parts))
        c.parts[concat.number] = d["text"]
        if len(c.parts) == c.total:
            del self._concat[(to, concat.reference)]
            self.messages.append(Sent(to, "".join(c.parts[i] for i in sorted(c.parts)), c.total, now))
