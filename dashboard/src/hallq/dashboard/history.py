"""The hall's history, read from the controller's record (SQLite, WAL, opened read-only) through the
controller's own functions: the figures are those of ``hallq controller report`` (``stats.compute``), the
follow-ups those of ``hallq controller followups`` — never a second implementation of a figure.

The one write is closing a follow-up, through the controller's own ``followups.close`` (as the
``followups close`` command does); the controller republishes the open follow-ups when it sees the change.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from hallq.controller import followups, stats
from hallq.controller.db import connect
from hallq.shared.schemas import Stats

from . import staffing

#: The flow chart's comparison line: the same weekday of this many weeks before.
WEEKS_BACK = 4


@dataclass
class Flow:
    """Per half hour of a day: issued, called, served, and the same weekday's average issued."""

    slots: list[str]
    issued: list[int]
    called: list[int]
    served: list[int]
    avg_issued: list[float | None]
    weeks: int  # how many earlier same weekdays had tickets


class History:
    def __init__(self, db: Path, cfg: Any, clock: Any):
        self.db = Path(db)
        self.cfg = cfg
        self.clock = clock

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        conn = connect(self.db, readonly=True)
        try:
            yield conn
        finally:
            conn.close()

    def now(self) -> datetime:
        return self.clock.now()

    def today(self) -> date:
        return self.now().date()

    # -- the day's figures (the controller's report) ------------------------------------------------------
    def day(self, d: date, conn: sqlite3.Connection | None = None) -> Stats:
        if conn is None:
            with self.reading() as c:
                return stats.compute(c, d, self.now())
        return stats.compute(conn, d, self.now())

    def names(self, d: date) -> tuple[dict[str, str], dict[str, str]]:
        """(window no -> name, clerk id -> name) as the record has them."""
        with self.reading() as c:
            return stats.window_names(c), stats.staff_names(c, d)

    def flow(self, d: date) -> Flow:
        with self.reading() as c:
            s = stats.compute(c, d, self.now())
            hours = self.cfg.hall.hours
            slots = stats.opening_slots(hours)
            # the numbers taken per half hour on the same weekdays before (the controller's count per
            # category and half hour, summed: the whole day's figures are not needed for the line)
            earlier: list[Counter] = []
            for k in range(1, WEEKS_BACK + 1):
                per_cat = stats.arrivals(c, d - timedelta(weeks=k))
                total: Counter = sum(per_cat.values(), Counter())
                if total:
                    earlier.append(total)
        if not hours:  # open all day: the half hours in which anything happened
            used = set(s.half_hours) | {k for e in earlier for k in e}
            slots = [x for x in slots if x in used]
        avg: list[float | None] = []
        for slot in slots:
            avg.append(sum(e[slot] for e in earlier) / len(earlier) if earlier else None)
        f = s.half_hours
        return Flow(slots=slots, issued=[f[x].issued if x in f else 0 for x in slots],
                    called=[f[x].called if x in f else 0 for x in slots],
                    served=[f[x].served if x in f else 0 for x in slots], avg_issued=avg, weeks=len(earlier))

    # -- staffing advice -------------------------------------------------------------------------------------
    def staffing(self, d: date, *, from_slot: str | None = None) -> tuple[staffing.Advice, list[str]]:
        """The advice for day ``d`` (from ``from_slot`` on), learnt from the same weekdays before it, and the
        controller's quietest half hours (错时办事)."""
        rules = self.cfg.staffing
        days = []
        service_sum: dict[str, float] = {}
        service_n: dict[str, int] = {}
        with self.reading() as c:
            for k in range(1, rules.weeks + 1):
                prev = d - timedelta(weeks=k)
                days.append(stats.arrivals(c, prev))
                for code, f in stats.compute(c, prev, self.now()).categories.items():
                    n = f.served + f.transferred
                    if n and f.service_mean_min is not None:
                        service_sum[code] = service_sum.get(code, 0.0) + f.service_mean_min * n
                        service_n[code] = service_n.get(code, 0) + n
            quiet = stats.quiet_half_hours(c, d, self.now())
        slots = stats.opening_slots(self.cfg.hall.hours)
        if from_slot is not None:
            slots = [s for s in slots if s >= from_slot]
        service = {code: (service_sum[code] / service_n[code], service_n[code]) for code in service_n}
        advice = staffing.advise(slots, [c.code for c in self.cfg.categories], days, service,
                                 rules.target_p90_min)
        return advice, quiet

    # -- follow-ups ------------------------------------------------------------------------------------------
    def followups(self, include_closed: bool = True) -> list[dict[str, Any]]:
        with self.reading() as c:
            return followups.rows(c, include_closed=include_closed)

    def close_followup(self, fid: int, by: str, action: str) -> dict[str, Any]:
        """Close through the controller's own function (raises ``followups.FollowupError``)."""
        conn = connect(self.db)
        try:
            return followups.close(conn, fid, by, action, self.now())
        finally:
            conn.close()

    # -- one ticket's story ----------------------------------------------------------------------------------
    def ticket(self, d: date, number: str) -> dict[str, Any] | None:
        """Everything the record holds of ticket ``number`` of day ``d``: issue, calls, case, rating, follow-up."""
        with self.reading() as c:
            c.row_factory = sqlite3.Row
            t = c.execute("SELECT day, number, category, issued_at, priority, channel, appointment, client, "
                          "est_wait_min, ahead, status, queue, transferred_at, window, first_called_at, finished_at, "
                          "rated FROM tickets WHERE day = ? AND number = ?", (d.isoformat(), number)).fetchone()
            if t is None:
                return None
            calls = c.execute("SELECT id, queue, window, staff_id, staff_name, called_at, wait_s, first, recalls, "
                              "ended_at, outcome, case_id, item_code, item_name, case_kind FROM calls "
                              "WHERE day = ? AND number = ? ORDER BY id", (d.isoformat(), number)).fetchall()
            rating = c.execute("SELECT id, window, level, at, staff_name, case_id FROM ratings WHERE day = ? AND "
                               "ticket = ?", (d.isoformat(), number)).fetchone()
            fu = None
            if rating is not None:
                with _missing_table_ok():
                    fu = c.execute("SELECT id, due, closed_at, called_back_by, action FROM followups WHERE "
                                   "rating_id = ?", (rating["id"],)).fetchone()
            return {"ticket": dict(t), "calls": [dict(r) for r in calls],
                    "rating": dict(rating) if rating else None, "followup": dict(fu) if fu else None}

    def days_with_tickets(self, start: date, end: date) -> list[date]:
        with self.reading() as c:
            return [date.fromisoformat(r[0]) for r in c.execute(
                "SELECT DISTINCT day FROM tickets WHERE day >= ? AND day <= ? ORDER BY day",
                (start.isoformat(), end.isoformat()))]


@contextmanager
def _missing_table_ok() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError:
        pass
