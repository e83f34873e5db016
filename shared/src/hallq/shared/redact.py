"""Masking a citizen's phone and ID numbers in free text that people type (follow-up notes, what was done).

A manager writing up a call-back may type the number they called or the citizen's ID number. Such text is
kept in the hall's files and shipped to the city's centre, and a citizen's ID or phone number must never be
kept or travel in clear (the brief's privacy rule): :func:`redact` masks them where they are typed, before the
text is written anywhere. Masked like everywhere else in hallq: a mobile number as ``138****8000``
(:func:`hallq.shared.phone.mask`), an ID number as its first 3 and last 4 characters (``110***********1234``).
"""

from __future__ import annotations

import re

from .phone import mask

# digits not glued to other digits: an 18-character ID number (the last may be X), an old 15-digit one, a
# mainland mobile number (with +86 / 0086 / 86 in front, and spaces or dashes between the groups)
_ID = re.compile(r"(?<![0-9A-Za-z])([0-9]{17}[0-9Xx]|[0-9]{15})(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9])((?:\+?86|0086)[\s-]?)?(1[3-9][0-9])[\s-]?([0-9]{4})[\s-]?([0-9]{4})(?![0-9])")


def _id(m: re.Match[str]) -> str:
    s = m.group(1)
    return s[:3] + "*" * (len(s) - 7) + s[-4:]


def _mobile(m: re.Match[str]) -> str:
    return (m.group(1) or "") + mask(m.group(2) + m.group(3) + m.group(4))


def redact(text: str) -> str:
    """``text`` with every ID number and mainland mobile number in it masked."""
    return _MOBILE.sub(_mobile, _ID.sub(_id, text))
