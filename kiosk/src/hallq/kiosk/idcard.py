"""Resident ID numbers (GB 11643-1999): validation, masking, age, and the person key.

The raw 18-character number never leaves the kiosk process. It is held in an :class:`IdNumber`, whose
``str()`` and ``repr()`` show only the masked form (first 3 and last 4 characters), so a stray log call or
exception message cannot leak it. What leaves the process is :meth:`IdNumber.person_key` (an HMAC-SHA256 of
the number under the hall's secret key, as hex) and :meth:`IdNumber.masked`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


class InvalidIdNumber(ValueError):
    """An ID number that is not a valid GB 11643 number; the message never contains the number."""


def check_digit(first17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) of the first 17 digits."""
    if len(first17) != 17 or not first17.isdigit():
        raise InvalidIdNumber("the first 17 characters must be digits")
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def mask(number: str) -> str:
    """First 3 and last 4 characters, the rest as ``*``."""
    if len(number) <= 7:
        return "*" * len(number)
    return number[:3] + "*" * (len(number) - 7) + number[-4:]


def age_on(birth: date, today: date) -> int:
    """Whole years of age on ``today``."""
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


class IdNumber:
    """A validated 18-character ID number that does not show itself.

    Raises :class:`InvalidIdNumber` for a wrong shape, a birth date that does not exist (or lies in the
    future of ``today`` when given) or a wrong check character.
    """

    __slots__ = ("_value", "birth_date")

    def __init__(self, value: str, today: date | None = None):
        text = value.strip().upper() if isinstance(value, str) else ""
        if not _SHAPE.fullmatch(text):
            raise InvalidIdNumber("an ID number has 17 digits and a final digit or X")
        try:
            birth = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
        except ValueError:
            raise InvalidIdNumber("the birth date in the ID number does not exist") from None
        if birth.year < 1850 or (today is not None and birth > today):
            raise InvalidIdNumber("the birth date in the ID number is not possible")
        if check_digit(text[:17]) != text[17]:
            raise InvalidIdNumber("the check digit of the ID number is wrong")
        self._value = text
        self.birth_date = birth

    def masked(self) -> str:
        return mask(self._value)

    def person_key(self, secret: bytes) -> str:
        """HMAC-SHA256 of the number under the hall's key, 64 hex characters."""
        if len(secret) < 16:
            raise ValueError("the hall's secret key must be at least 16 bytes")
        return hmac.new(secret, self._value.encode("ascii"), hashlib.sha256).hexdigest()

    def age_on(self, today: date) -> int:
        return age_on(self.birth_date, today)

    def reveal(self) -> str:
        """The raw number, for the checks of this module's tests only; never log or send it."""
        return self._value

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"IdNumber({self.masked()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdNumber) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("IdNumber", self._value))

    def __reduce__(self):  # no pickling into files or other processes
        raise TypeError("an IdNumber cannot be pickled")


@dataclass(frozen=True, slots=True)
class CardIdentity:
    """What the kiosk keeps of a card after reading it: no raw number, no name."""

    person: str  # HMAC hex
    masked: str
    birth_date: date
    source: str  # "ga467" or "wedge"


def identity(number: IdNumber, secret: bytes, source: str) -> CardIdentity:
    return CardIdentity(number.person_key(secret), number.masked(), number.birth_date, source)


def load_secret(path: str | Path) -> bytes:
    """The hall's secret key from a file: hex text (as ``hallq demo`` and the provisioning write it, e.g.
    ``openssl rand -hex 32``) is decoded, anything else is taken as raw bytes; at least 16 bytes."""
    p = Path(path)
    try:
        data = p.read_bytes().strip()
    except OSError as exc:
        raise ValueError(f"secret key file {p}: cannot read: {exc.strerror}") from None
    if data and len(data) % 2 == 0 and re.fullmatch(rb"[0-9a-fA-F]+", data):
        data = bytes.fromhex(data.decode("ascii"))
    if len(data) < 16:
        raise ValueError(f"secret key file {p}: the key must be at least 16 bytes")
    return data


@dataclass(frozen=True, slots=True)
class Inspection:
    """What a technician may see of a number: masked, the birth date, whether the check digit is right."""

    masked: str
    shape_ok: bool
    birth_date: date | None
    check_ok: bool
    problem: str | None  # None: a valid number


def inspect_number(raw: str, today: date | None = None) -> Inspection:
    text = raw.strip().upper()
    shape_ok = bool(_SHAPE.fullmatch(text))
    birth: date | None = None
    check_ok = False
    if shape_ok:
        try:
            birth = date(int(text[6:10]), int(text[10:12]), int(text[12:14]))
        except ValueError:
            birth = None
        check_ok = check_digit(text[:17]) == text[17]
    try:
        IdNumber(text, today)
        problem = None
    except InvalidIdNumber as exc:
        problem = str(exc)
    return Inspection(mask(text), shape_ok, birth, check_ok, problem)
