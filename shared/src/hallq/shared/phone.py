"""Mobile phone numbers of citizens: validation, masking and the person key.

A phone number is personal information, like the ID number (see ``hallq.kiosk.idcard``). It is held in a
:class:`PhoneNumber`, whose ``str()`` and ``repr()`` show only the masked form (``138****8000``), so a stray
log call or exception message cannot leak it. What leaves the process that read it is
:meth:`PhoneNumber.person_key`: the day's person key (:mod:`hallq.shared.personkey`) of ``tel:+86`` and the
number, so a phone's key never equals an ID card's and two days of one phone cannot be joined.

The SMS gateway and the scan-to-take page both derive keys here, so the same phone is the same person to
the controller whichever way it took its number.
"""

from __future__ import annotations

import hmac
import re
from datetime import date

from .personkey import person_key

_MOBILE = re.compile(r"1[3-9][0-9]{9}")


class InvalidPhoneNumber(ValueError):
    """Not a mainland China mobile number; the message never contains the number."""


def normalise(raw: str) -> str:
    """The 11-digit national form of a mainland mobile number (``+86``, ``0086``, ``86``, spaces and dashes
    are taken off); raises :class:`InvalidPhoneNumber`."""
    if not isinstance(raw, str):
        raise InvalidPhoneNumber("a phone number is text")
    text = re.sub(r"[\s\-()]", "", raw.strip())
    for prefix in ("+86", "0086"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    else:
        if len(text) == 13 and text.startswith("86"):
            text = text[2:]
    if not _MOBILE.fullmatch(text):
        raise InvalidPhoneNumber("a mobile number has 11 digits and starts with 13-19")
    return text


def mask(national: str) -> str:
    """The first 3 and the last 4 digits (``138****8000``)."""
    if len(national) <= 7:
        return "*" * len(national)
    return national[:3] + "*" * (len(national) - 7) + national[-4:]


class PhoneNumber:
    """A validated mainland mobile number that does not show itself."""

    __slots__ = ("_value",)

    def __init__(self, raw: str):
        self._value = normalise(raw)

    def masked(self) -> str:
        return mask(self._value)

    def person_key(self, kiosk_key: bytes, day: date) -> str:
        """The person key of ``tel:+86…`` on ``day`` (64 hex characters)."""
        return person_key(kiosk_key, day, "tel:+86" + self._value)

    def international(self) -> str:
        """``+86`` and the number, for the modem only: never log or send it elsewhere."""
        return "+86" + self._value

    def reveal(self) -> str:
        """The 11 digits, for the modem and the encrypted send list only; never log or send it."""
        return self._value

    def __str__(self) -> str:
        return self.masked()

    def __repr__(self) -> str:
        return f"PhoneNumber({self.masked()})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhoneNumber) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(("PhoneNumber", self._value))

    def __reduce__(self):  # no pickling into files or other processes
        raise TypeError("a PhoneNumber cannot be pickled")
