"""Working days (工作日), for the deadlines of follow-ups: China's public holidays and make-up working days
(调休) from the ``chinesecalendar`` library, with the hall's own overrides on top.

The library knows the years the State Council has published (each November for the next year; see its
:data:`LAST_KNOWN_YEAR`). For a day past that, Monday to Friday count as working days and weekends do not,
unless the hall's ``[haocp] holidays`` / ``workdays`` say otherwise: update the library once a year (the
README says how), or list the new year's days in the config until then.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date, timedelta

import chinese_calendar

#: The last year the installed ``chinesecalendar`` knows.
LAST_KNOWN_YEAR: int = max(chinese_calendar.holidays).year
FIRST_KNOWN_YEAR: int = min(chinese_calendar.holidays).year


@dataclass(frozen=True)
class Calendar:
    """The hall's working days: the national calendar, then the hall's ``holidays`` and ``workdays``."""

    holidays: frozenset[date] = field(default_factory=frozenset)
    workdays: frozenset[date] = field(default_factory=frozenset)

    @classmethod
    def of(cls, holidays: Collection[str | date] = (), workdays: Collection[str | date] = ()) -> Calendar:
        def d(x: str | date) -> date:
            return x if isinstance(x, date) else date.fromisoformat(x)

        return cls(frozenset(map(d, holidays)), frozenset(map(d, workdays)))

    def is_working_day(self, d: date) -> bool:
        if d in self.workdays:
            return True
        if d in self.holidays:
            return False
        if FIRST_KNOWN_YEAR <= d.year <= LAST_KNOWN_YEAR:
            return bool(chinese_calendar.is_workday(d))
        return d.weekday() < 5

    def due_date(self, start: date, days: int) -> date:
        """The day ``days`` working days after ``start`` (``start`` itself does not count)."""
        if days < 1:
            raise ValueError("a follow-up needs at least one working day")
        d, left = start, days
        while left:
            d += timedelta(days=1)
            if self.is_working_day(d):
                left -= 1
        return d


def known(d: date) -> bool:
    """Whether the installed calendar knows the public holidays of ``d``'s year."""
    return FIRST_KNOWN_YEAR <= d.year <= LAST_KNOWN_YEAR
