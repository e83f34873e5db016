"""Person keys that cannot be joined across days.

A kiosk (or the SMS gateway) never sends an ID or phone number; it sends a person key, so the controller
can refuse a second ticket for the same person and category. The key is an HMAC under a *day key* derived
from the hall's kiosk key and the hall's date: the same person gets the same key all day and a different,
unrelated key the next day, so two days' records of one person cannot be joined (not by the controller,
nor by anyone who copies its database), and the kiosk key itself never leaves the kiosks.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import date

LABEL = b"hallq person key v1 "


def day_key(kiosk_key: bytes, day: date) -> bytes:
    """The key of one day: HMAC-SHA256(kiosk key, label + ISO date)."""
    if len(kiosk_key) < 16:
        raise ValueError("the hall's kiosk key must be at least 16 bytes")
    return hmac.new(kiosk_key, LABEL + day.isoformat().encode("ascii"), hashlib.sha256).digest()


def person_key(kiosk_key: bytes, day: date, value: str) -> str:
    """The person key of ``value`` (an ID number, or ``tel:`` and a phone number) on ``day``, as hex."""
    return hmac.new(day_key(kiosk_key, day), value.encode("utf-8"), hashlib.sha256).hexdigest()
