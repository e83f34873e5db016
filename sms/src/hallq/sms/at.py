"""The AT command lines a GSM modem speaks (3GPP TS 27.005 / 27.007), parsed. Pure, no IO.

Only what the SMS gateway needs: final result codes, new-message indications (``+CMTI``), reading and
listing stored messages in PDU mode (``+CMGR``, ``+CMGL``), storing and sending (``+CMGW``, ``+CMSS``,
``+CMGS``), and the health queries (``+CSQ``, ``+CREG``, ``+CPIN``). Every parser returns None (or raises
:class:`AtParseError`) for a line that does not fit, so garbage on the line is skipped, never believed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: ``+CMGR`` / ``+CMGL`` message status in PDU mode.
REC_UNREAD, REC_READ, STO_UNSENT, STO_SENT = 0, 1, 2, 3

#: Lines a modem may send at any time, not as part of an answer.
URC_PREFIXES = ("+CMTI:", "+CDSI:", "RING", "RDY", "+CFUN:", "Call Ready", "SMS Ready", "+CPIN:", "+CREG:",
                "+QIND:", "PB DONE", "NO CARRIER", "+CIEV:", "^", "+QUSIM:", "+CGEV:")

#: Lines that say the modem has just (re)started: its settings (PDU mode, no echo) are gone.
BOOT_LINES = ("RDY", "SMS Ready", "Call Ready", "+CFUN: 1", "PB DONE")

_FINAL_ERROR = re.compile(r"^\+(CMS|CME) ERROR: ?(.*)$")
_CMTI = re.compile(r'^\+CMTI: ?"([A-Z]{2})", ?(\d+)$')
_CSQ = re.compile(r"^\+CSQ: ?(\d+), ?(\d+)$")
_CREG = re.compile(r"^\+C[EG]?REG: ?(?:(\d), ?)?(\d)(?:,.*)?$")
_CPIN = re.compile(r"^\+CPIN: ?(.+)$")
_CMGR = re.compile(r"^\+CMGR: ?(\d), ?[^,]*, ?(\d+)$")
_CMGL = re.compile(r"^\+CMGL: ?(\d+), ?(\d), ?[^,]*, ?(\d+)$")
_NUMBER = re.compile(r"^\+(CMGW|CMSS|CMGS): ?(\d+)")
_HEX = re.compile(r"^[0-9A-Fa-f]+$")

REGISTRATION = {0: "not_registered", 1: "home", 2: "searching", 3: "denied", 4: "unknown", 5: "roaming",
                6: "home", 7: "roaming"}


class AtParseError(ValueError):
    """An answer that does not have the shape the command promises."""


@dataclass(frozen=True, slots=True)
class Final:
    """A final result code: ``OK``, or an error (``ERROR``, ``+CMS ERROR: n``, ``+CME ERROR: n``)."""

    ok: bool
    kind: str = ""  # "", "ERROR", "CMS", "CME"
    code: str = ""


def final(line: str) -> Final | None:
    """The final result code this line is, or None."""
    if line == "OK":
        return Final(True)
    if line in ("ERROR", "NO CARRIER", "COMMAND NOT SUPPORT"):
        return Final(False, "ERROR", line)
    m = _FINAL_ERROR.match(line)
    if m:
        return Final(False, m.group(1), m.group(2).strip())
    return None


def is_urc(line: str) -> bool:
    return line.startswith(URC_PREFIXES)


def cmti(line: str) -> tuple[str, int] | None:
    """``+CMTI: "SM",3`` -> ("SM", 3)."""
    m = _CMTI.match(line)
    return (m.group(1), int(m.group(2))) if m else None


def csq_dbm(line: str) -> int | None:
    """``+CSQ: 18,99`` -> -77 (dBm); None for "not known" (99) or a line that is not one."""
    m = _CSQ.match(line)
    if not m:
        raise AtParseError(f"not a +CSQ answer: {line[:40]!r}")
    rssi = int(m.group(1))
    if rssi == 99 or rssi > 31:
        return None
    return -113 + 2 * rssi


def creg(line: str) -> str:
    """``+CREG: 0,1`` -> "home"."""
    m = _CREG.match(line)
    if not m:
        raise AtParseError(f"not a +CREG answer: {line[:40]!r}")
    return REGISTRATION.get(int(m.group(2)), "unknown")


def cpin(line: str) -> str:
    """``+CPIN: READY`` -> "ready"; "pin", "puk" or "unknown"."""
    m = _CPIN.match(line)
    if not m:
        raise AtParseError(f"not a +CPIN answer: {line[:40]!r}")
    v = m.group(1).strip().upper()
    if v == "READY":
        return "ready"
    if v == "SIM PIN":
        return "pin"
    if v == "SIM PUK":
        return "puk"
    if "NOT" in v and "INSERT" in v:
        return "absent"
    return "unknown"


def stored_number(line: str, command: str) -> int:
    """``+CMGW: 5`` -> 5 (the storage index; for ``+CMSS`` / ``+CMGS`` the message reference)."""
    m = _NUMBER.match(line)
    if not m or m.group(1) != command:
        raise AtParseError(f"not a +{command} answer: {line[:40]!r}")
    return int(m.group(2))


@dataclass(frozen=True, slots=True)
class Stored:
    index: int
    stat: int
    pdu: str


def cmgr(lines: list[str], index: int) -> Stored | None:
    """The answer to ``AT+CMGR=index`` (None when the place is empty: some modems answer just ``OK``)."""
    for i, line in enumerate(lines):
        m = _CMGR.match(line)
        if m:
            if i + 1 >= len(lines) or not _HEX.match(lines[i + 1]):
                raise AtParseError("+CMGR without its PDU line")
            return Stored(index, int(m.group(1)), lines[i + 1])
    return None


def cmgl(lines: list[str]) -> list[Stored]:
    """The answer to ``AT+CMGL=4``: every stored message; an entry without its PDU line is skipped."""
    out = []
    for i, line in enumerate(lines):
        m = _CMGL.match(line)
        if m and i + 1 < len(lines) and _HEX.match(lines[i + 1]):
            out.append(Stored(int(m.group(1)), int(m.group(2)), lines[i + 1]))
    return out


def is_pdu_line(line: str) -> bool:
    return bool(_HEX.match(line)) and len(line) % 2 == 0
