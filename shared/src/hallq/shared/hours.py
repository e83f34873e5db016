"""A hall's opening hours (``config.hours``: daily ``HH:MM`` intervals, ``24:00`` for midnight): whether it
is open at a moment and when it opens next. Pure; the kiosk's closed screen and the controller's refusal of
a ``take`` outside hours read the same rule. No hours at all means always open."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta


def _t(hhmm: str) -> time | None:
    """``HH:MM`` as a time; ``24:00`` (midnight at the end of the day) as None."""
    if hhmm == "24:00":
        return None
    h, m = hhmm.split(":")
    return time(int(h), int(m))


def is_open(hours: Sequence[tuple[str, str]], local: datetime | time) -> bool:
    """Whether the hall is open at ``local`` (its wall-clock time)."""
    if not hours:
        return True
    t = local.time() if isinstance(local, datetime) else local
    t = t.replace(tzinfo=None)
    for a, b in hours:
        start, end = _t(a), _t(b)
        if start is not None and start <= t and (end is None or t < end):
            return True
    return False


def next_opening(hours: Sequence[tuple[str, str]], local: datetime) -> datetime | None:
    """The next moment after ``local`` (the hall's wall-clock time, aware or naive) when an opening interval
    starts, today or on a following day; None when there are no hours (always open)."""
    starts = sorted(t for t in (_t(a) for a, _ in hours) if t is not None)
    if not starts:
        return None
    for days in range(0, 2):
        day = (local + timedelta(days=days)).date()
        for s in starts:
            at = datetime.combine(day, s, tzinfo=local.tzinfo)
            if at > local:
                return at
    return None
