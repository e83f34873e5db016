"""SMS PDUs (3GPP TS 23.040): the SMS-SUBMIT we send and the SMS-DELIVER we receive. Pure, no IO.

- :func:`submit_pdus` encodes a text for sending: UCS-2 (Chinese), one PDU of up to 70 characters, or
  several of up to 67 with the concatenation header (IEI 00: reference, total, sequence); a surrogate
  pair is never split. Each PDU starts with a zero SMSC length (the SIM's service centre), and
  :attr:`SubmitPdu.tpdu_length` is what ``AT+CMGS`` / ``AT+CMGW`` want.
- :func:`decode_deliver` decodes a received PDU (as ``AT+CMGR`` / ``AT+CMGL`` give it in PDU mode): the
  sender, the service centre time stamp, the text (GSM 7-bit default alphabet with its extension table,
  8-bit, or UCS-2/UTF-16) and the concatenation header (8- or 16-bit reference). Anything that does not
  parse raises :class:`PduError`; it never returns half a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

#: Characters in one UCS-2 SMS, and in one part of a concatenated one (6 octets of header).
UCS2_SINGLE = 70
UCS2_PART = 67
#: A concatenated message has at most 255 parts; we stop far earlier.
MAX_PARTS = 8

# GSM 03.38 default alphabet and extension table.
GSM7 = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXT = {0x0A: "\f", 0x14: "^", 0x28: "{", 0x29: "}", 0x2F: "\\", 0x3C: "[", 0x3D: "~", 0x3E: "]", 0x40: "|",
            0x65: "€"}
assert len(GSM7) == 128


class PduError(ValueError):
    """A PDU that cannot be decoded (or a text that cannot be encoded); says what is wrong."""


@dataclass(frozen=True, slots=True)
class SubmitPdu:
    hex: str  # upper-case hex, SMSC part included
    tpdu_length: int  # octets after the SMSC part (the length AT+CMGS / AT+CMGW take)


@dataclass(frozen=True, slots=True)
class Concat:
    ref: int
    total: int
    seq: int


@dataclass(frozen=True, slots=True)
class Deliver:
    """A received SMS. ``sender`` is the originating address as digits (with ``+`` when international) or,
    for alphanumeric senders, their name; treat it as personal data."""

    sender: str
    alphanumeric: bool
    text: str
    sent_at: datetime | None
    concat: Concat | None


# -- encoding --------------------------------------------------------------------------------------------
def _address(number: str) -> bytes:
    digits = number[1:] if number.startswith("+") else number
    if not digits.isdigit() or not 1 <= len(digits) <= 20:
        raise PduError("a destination address is 1-20 digits, with an optional +")
    toa = 0x91 if number.startswith("+") else 0x81
    padded = digits + ("F" if len(digits) % 2 else "")
    swapped = "".join(padded[i + 1] + padded[i] for i in range(0, len(padded), 2))
    return bytes([len(digits), toa]) + bytes.fromhex(swapped)


def split_ucs2(text: str) -> list[str]:
    """The parts of ``text`` as UCS-2 SMS: one part of up to 70 UTF-16 units, else parts of up to 67."""
    units = len(text.encode("utf-16-be")) // 2
    if units <= UCS2_SINGLE:
        return [text]
    parts: list[str] = []
    cur: list[str] = []
    n = 0
    for ch in text:
        w = 2 if ord(ch) > 0xFFFF else 1
        if n + w > UCS2_PART:
            parts.append("".join(cur))
            cur, n = [], 0
        cur.append(ch)
        n += w
    if cur:
        parts.append("".join(cur))
    return parts


def submit_pdus(number: str, text: str, ref: int, *, validity_minutes: int = 24 * 60) -> list[SubmitPdu]:
    """The SMS-SUBMIT PDUs of ``text`` to ``number`` (``ref``: the concatenation reference, 0-255)."""
    if not text:
        raise PduError("an SMS needs some text")
    parts = split_ucs2(text)
    if len(parts) > MAX_PARTS:
        raise PduError(f"a text of {len(parts)} parts is too long (at most {MAX_PARTS})")
    da = _address(number)
    vp = _validity(validity_minutes)
    out = []
    for i, part in enumerate(parts, 1):
        ud = part.encode("utf-16-be")
        first = 0x11  # SMS-SUBMIT, relative validity period
        if len(parts) > 1:
            first |= 0x40  # UDHI
            ud = bytes([5, 0, 3, ref & 0xFF, len(parts), i]) + ud
        tpdu = bytes([first, 0]) + da + bytes([0x00, 0x08, vp, len(ud)]) + ud
        out.append(SubmitPdu(("00" + tpdu.hex()).upper(), len(tpdu)))
    return out


def _validity(minutes: int) -> int:
    """TP-VP relative format (23.040 §9.2.3.12.1)."""
    if minutes <= 12 * 60:
        return max(0, minutes // 5 - 1)
    if minutes <= 24 * 60:
        return 143 + (minutes - 12 * 60) // 30
    days = minutes // (24 * 60)
    return min(196, 166 + days) if days <= 30 else min(255, 192 + days // 7)


# -- decoding --------------------------------------------------------------------------------------------
class _Reader:
    def __init__(self, data: bytes):
        self.data, self.i = data, 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.i + n > len(self.data):
            raise PduError("the PDU ends too early")
        b = self.data[self.i:self.i + n]
        self.i += n
        return b

    def byte(self) -> int:
        return self.take(1)[0]


def _semi_octets(b: bytes, digits: int) -> str:
    s = "".join(f"{x & 0x0F:X}{x >> 4:X}" for x in b)[:digits]
    return s.replace("A", "*").replace("B", "#")


def unpack_septets(data: bytes, count: int, skip_bits: int = 0) -> str:
    """GSM 7-bit packed septets to text (default alphabet and extension table)."""
    out = []
    esc = False
    for k in range(count):
        bit = skip_bits + k * 7
        byte, off = divmod(bit, 8)
        if byte >= len(data):
            raise PduError("the 7-bit text ends too early")
        v = data[byte] >> off
        if off > 1 and byte + 1 < len(data):
            v |= data[byte + 1] << (8 - off)
        v &= 0x7F
        if esc:
            out.append(GSM7_EXT.get(v, " "))
            esc = False
        elif v == 0x1B:
            esc = True
        else:
            out.append(GSM7[v])
    return "".join(out)


def _timestamp(b: bytes) -> datetime | None:
    try:
        d = [int(f"{x & 0x0F}{x >> 4}") for x in b[:6]]
        tz = b[6]
        q = int(f"{tz & 0x07}{tz >> 4}")
        off = timedelta(minutes=15 * q) * (-1 if tz & 0x08 else 1)
        return datetime(2000 + d[0], d[1], d[2], d[3], d[4], d[5], tzinfo=timezone(off))
    except ValueError:
        return None


def decode_deliver(pdu_hex: str) -> Deliver:
    """Decode an SMS-DELIVER PDU given as hex (with its SMSC part, as modems list it)."""
    try:
        data = bytes.fromhex(pdu_hex.strip())
    except ValueError:
        raise PduError("a PDU is hex") from None
    r = _Reader(data)
    r.take(r.byte())  # service centre
    first = r.byte()
    if first & 0x03 != 0x00:
        raise PduError(f"not an SMS-DELIVER (message type {first & 0x03})")
    udhi = bool(first & 0x40)
    digits = r.byte()
    toa = r.byte()
    raw_addr = r.take((digits + 1) // 2)
    if toa & 0x70 == 0x50:  # alphanumeric: GSM 7-bit packed
        sender, alpha = unpack_septets(raw_addr, digits * 4 // 7), True
    else:
        sender = _semi_octets(raw_addr, digits)
        if toa & 0x70 == 0x10:
            sender = "+" + sender
        alpha = False
    r.byte()  # protocol identifier
    dcs = r.byte()
    sent_at = _timestamp(r.take(7))
    udl = r.byte()
    alphabet = _alphabet(dcs)
    rest = data[r.i:]
    concat = None
    header_len = 0
    if udhi:
        if not rest:
            raise PduError("a user data header is announced but missing")
        header_len = rest[0] + 1
        if header_len > len(rest):
            raise PduError("the user data header is longer than the PDU")
        concat = _concat(rest[1:header_len])
    if alphabet == "gsm7":
        skip = (header_len * 8 + 6) // 7 * 7 if udhi else 0
        count = udl - (skip // 7)
        if count < 0 or (udl * 7 + 7) // 8 > len(rest):
            raise PduError("the 7-bit user data length does not fit the PDU")
        text = unpack_septets(rest, count, skip)
    else:
        if udl > len(rest):
            raise PduError("the user data length does not fit the PDU")
        body = rest[header_len:udl]
        if alphabet == "ucs2":
            if len(body) % 2:
                body = body[:-1]
            text = body.decode("utf-16-be", errors="replace")
        else:
            text = body.decode("latin-1")
    return Deliver(sender, alpha, text, sent_at, concat)


def _alphabet(dcs: int) -> str:
    group = dcs & 0xF0
    if dcs & 0xC0 == 0x00:  # general data coding
        return {0: "gsm7", 1: "8bit", 2: "ucs2"}.get((dcs >> 2) & 0x03, "8bit")
    if group == 0xF0:
        return "8bit" if dcs & 0x04 else "gsm7"
    if group in (0xC0, 0xD0):
        return "gsm7"
    if group == 0xE0:
        return "ucs2"
    raise PduError(f"unsupported data coding 0x{dcs:02X}")


def _concat(header: bytes) -> Concat | None:
    i = 0
    while i + 2 <= len(header):
        iei, n = header[i], header[i + 1]
        v = header[i + 2:i + 2 + n]
        if iei == 0x00 and n == 3 and len(v) == 3:
            return Concat(v[0], v[1], v[2])
        if iei == 0x08 and n == 4 and len(v) == 4:
            return Concat(v[0] << 8 | v[1], v[2], v[3])
        i += 2 + n
    return None
