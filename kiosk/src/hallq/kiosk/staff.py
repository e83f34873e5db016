"""Staff PINs of a kiosk where the floor guide (导引员) confirms priorities (``[staff]`` in ``kiosk.toml``).

A citizen asks for priority at the kiosk (军人, 残疾人, 孕妇, or a senior without an ID card); the guide at the
door checks the document, picks the priority on the kiosk's staff screen and types their own PIN. The ticket is
then taken on the ``staff`` channel, which the controller accepts only from a kiosk whose ``[[devices]]`` entry
lists that priority in ``staff_priorities``.

The PIN file is a secret (0600, like the hall key): one line per guide, ``staff-id:salt:scrypt-hash`` (hex), made
by ``hallq kiosk staff-pin --file PATH --staff ID`` (it asks for the PIN twice). PINs never appear on screen (dots),
in a log or in a payload; after :data:`LOCK_AFTER` wrong PINs in a row the staff screen locks for a while (the
kiosk's core counts them).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
from pathlib import Path

PIN_MIN, PIN_MAX = 4, 8
_LINE = re.compile(r"^([A-Za-z0-9_.-]{1,32}):([0-9a-f]{32}):([0-9a-f]{64})$")


def hash_pin(pin: str, salt: bytes) -> bytes:
    """scrypt of the PIN (memory-hard: a stolen file does not give the 4-8 digit PINs away at once)."""
    return hashlib.scrypt(pin.encode(), salt=salt, n=2**13, r=8, p=1, dklen=32)


def line_for(staff: str, pin: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,32}", staff):
        raise ValueError("a staff id is 1-32 letters, digits, '_', '.' or '-'")
    if not (pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        raise ValueError(f"a PIN is {PIN_MIN}-{PIN_MAX} digits")
    salt = os.urandom(16)
    return f"{staff}:{salt.hex()}:{hash_pin(pin, salt).hex()}"


class StaffPins:
    """The guides' PINs of one kiosk, read from its secret file."""

    def __init__(self, entries: dict[str, tuple[bytes, bytes]]):
        self.entries = entries

    @classmethod
    def load(cls, path: str | Path) -> StaffPins:
        p = Path(path)
        try:
            st = p.stat()
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"staff PIN file {p}: cannot read: {exc.strerror}") from None
        if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"staff PIN file {p}: readable by others (mode {stat.S_IMODE(st.st_mode):o}); chmod 600 it")
        entries: dict[str, tuple[bytes, bytes]] = {}
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            m = _LINE.match(line)
            if m is None:
                raise ValueError(f"staff PIN file {p}, line {n}: expected staff-id:salt:hash "
                                 "(made by hallq kiosk staff-pin)")
            entries[m[1]] = (bytes.fromhex(m[2]), bytes.fromhex(m[3]))
        if not entries:
            raise ValueError(f"staff PIN file {p}: no PIN in it (add one with hallq kiosk staff-pin)")
        return cls(entries)

    def check(self, pin: str) -> str | None:
        """The staff id whose PIN this is, or None. Every entry is tried (no early exit on a match)."""
        found = None
        for staff, (salt, digest) in self.entries.items():
            if hmac.compare_digest(hash_pin(pin, salt), digest) and found is None:
                found = staff
        return found
