"""A day's figures from the hall's record: for the hall, each window, each clerk and each half hour.

Used for the retained ``stats`` topic and ``hallq controller report``. What each figure counts:

- ``issued``: numbers taken (hall and half hours, by the time of taking);
- ``called``: calls of a ticket to a window (recalls not counted again); for the hall, tickets called;
- ``served`` / ``noshow`` / ``transferred``: how those calls ended;
- ``wait_mean_min`` / ``wait_p90_min``: minutes from taking the number to the first call (for a window or
  clerk: to their call, counted from the transfer for a transferred ticket); per half hour by the time the
  number was taken; the 90th percentile is the nearest-rank one;
- ``service_mean_min``: minutes from call to finish of served and transferred calls;
- ``ratings`` per level and ``satisfaction`` as halls report it: (very satisfied + satisfied) / rated;
- ``quiet_half_hours``: the three half hours of the opening hours with the fewest numbers taken over the
  seven days before (or, on a hall's first day, the half hours of the day that are over) (错时办事: when
  to tell citizens to come); none until at least :data:`QUIET_MIN_TICKETS` numbers were counted (with one
  ticket in the day, every half hour but one has none: "quiet" would mean nothing).

``issued`` counts numbers taken, which happens at a kiosk, not at a window: a window's or a clerk's
figures have no ``issued`` (the report leaves that column out for them).

- ``idle_waiting_min`` (windows and clerks only): minutes the window was open (a clerk signed in), not
  paused and not serving anyone while a ticket it could call waited (one of its categories, or a ticket
  transferred to it): time a citizen waited that the window could have served (:func:`idle_waiting`).

- ``appointments``: booked, checked in (in time / late), no-shows, and the wait after the slot's start
  (:func:`appointment_figures`).

Half hours are keyed by their start, ``HH:MM``; windows by number; clerks by staff id; categories by code
(a ticket's calls count for the category whose queue it was called from, its issue for the one it was
taken for).

:func:`arrivals` counts the numbers taken per category and half hour (the staffing advice's input).
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hallq.shared.figures import percentile
from hallq.shared.schemas import LEVELS, AppointmentFigures, Figures, Stats

QUIET_COUNT = 3
QUIET_DAYS = 7
#: Fewer numbers than this over the counted days name no quiet half hours.
QUIET_MIN_TICKETS = 30


@dataclass
class _Acc:
    issued: int = 0
    called: int = 0
    served: int = 0
    noshow: int = 0
    transferred: int = 0
    waits: list[float] = field(default_factory=list)
    services: list[float] = field(default_factory=list)
    ratings: Counter = field(default_factory=Counter)
    idle_waiting_s: float | None = None

    def figures(self) -> Figures:
        rated = sum(self.ratings.values())
        good = self.ratings["very_satisfied"] + self.ratings["satisfied"]
        return Figures(
            issued=self.issued,
            called=self.called,
            served=self.served,
            noshow=self.noshow,
            transferred=self.transferred,
            wait_mean_min=_round(sum(self.waits) / len(self.waits) / 60) if self.waits else None,
            wait_p90_min=_round(percentile(self.waits, 90) / 60) if self.waits else None,
            service_mean_min=_round(sum(self.services) / len(self.services) / 60) if self.services else None,
            ratings={lv: self.ratings[lv] for lv in LEVELS if self.ratings[lv]},  # type: ignore[misc]
            satisfaction=round(good / rated, 4) if rated else None,
            idle_waiting_min=None if self.idle_waiting_s is None else _round(self.idle_waiting_s / 60),
        )


def _round(x: float) -> float:
    return round(x, 1)




def half_hour(t: str | datetime) -> str:
    """The half hour an ISO time falls in, ``HH:MM``."""
    if isinstance(t, datetime):
        return f"{t.hour:02d}:{'30' if t.minute >= 30 else '00'}"
    hh, mm = t[11:13], t[14:16]
    return f"{hh}:{'30' if int(mm) >= 30 else '00'}"


def _meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def compute(conn: sqlite3.Connection, day: date, at: datetime) -> Stats:
    """The figures of ``day`` as the database has them (``at``: when they were taken)."""
    d = day.isoformat()
    hall = _Acc()
    windows: dict[str, _Acc] = defaultdict(_Acc)
    staff: dict[str, _Acc] = defaultdict(_Acc)
    halves: dict[str, _Acc] = defaultdict(_Acc)
    cats: dict[str, _Acc] = defaultdict(_Acc)

    issue_slot: dict[str, str] = {}
    for number, category, issued_at in conn.execute(
        "SELECT number, category, issued_at FROM tickets WHERE day = ?", (d,)
    ):
        slot = half_hour(issued_at)
        issue_slot[number] = slot
        hall.issued += 1
        halves[slot].issued += 1
        cats[category].issued += 1

    for number, queue, window, staff_id, called_at, ended_at, wait_s, first, outcome in conn.execute(
        "SELECT number, queue, window, staff_id, called_at, ended_at, wait_s, first, outcome FROM calls"
        " WHERE day = ?",
        (d,),
    ):
        slices = [windows[str(window)], halves[half_hour(called_at)], cats[queue]]
        if staff_id:
            slices.append(staff[staff_id])
        if first:
            hall.called += 1
            hall.waits.append(wait_s)
            slot = issue_slot.get(number)
            if slot is not None:
                halves[slot].waits.append(wait_s)
        windows[str(window)].waits.append(wait_s)
        cats[queue].waits.append(wait_s)
        if staff_id:
            staff[staff_id].waits.append(wait_s)
        service = None
        if ended_at and outcome in ("done", "transferred"):
            service = (datetime.fromisoformat(ended_at) - datetime.fromisoformat(called_at)).total_seconds()
        for acc in slices:
            acc.called += 1
        for acc in [hall, *slices]:
            if outcome == "done":
                acc.served += 1
            elif outcome == "noshow":
                acc.noshow += 1
            elif outcome == "transferred":
                acc.transferred += 1
            if service is not None:
                acc.services.append(service)

    for window, staff_id, level, rated_at, queue in conn.execute(
        "SELECT r.window, r.staff_id, r.level, r.at, c.queue FROM ratings r LEFT JOIN calls c ON c.id = r.call_id"
        " WHERE r.day = ?", (d,)
    ):
        for acc in (hall, windows[str(window)], halves[half_hour(rated_at)]):
            acc.ratings[level] += 1
        if queue:
            cats[queue].ratings[level] += 1
        if staff_id:
            staff[staff_id].ratings[level] += 1

    idle_w, idle_s = idle_waiting(conn, day, at)
    for k, secs in idle_w.items():
        windows[k].idle_waiting_s = secs
    for k, secs in idle_s.items():
        staff[k].idle_waiting_s = secs

    return Stats(
        date=d,
        at=at,
        hall=hall.figures(),
        windows={k: windows[k].figures() for k in sorted(windows, key=int)},
        staff={k: staff[k].figures() for k in sorted(staff)},
        half_hours={k: halves[k].figures() for k in sorted(halves)},
        categories={k: cats[k].figures() for k in sorted(cats)},
        quiet_half_hours=quiet_half_hours(conn, day, at),
        appointments=appointment_figures(conn, day, at),
    )


# -- idle with people waiting ---------------------------------------------------------------------------------
Spans = list[tuple[float, float]]  # sorted, disjoint [start, end) in seconds since the epoch


def _union(spans: Spans) -> Spans:
    out: Spans = []
    for a, b in sorted(x for x in spans if x[1] > x[0]):
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


def _minus(spans: Spans, cut: Spans) -> Spans:
    """``spans`` without ``cut`` (both sorted and disjoint)."""
    out: Spans = []
    j = 0
    for a, b in spans:
        while j < len(cut) and cut[j][1] <= a:
            j += 1
        k, start = j, a
        while k < len(cut) and cut[k][0] < b:
            if cut[k][0] > start:
                out.append((start, cut[k][0]))
            start = max(start, cut[k][1])
            k += 1
        if start < b:
            out.append((start, b))
    return out


def _meet(x: Spans, y: Spans) -> Spans:
    """Where both ``x`` and ``y`` hold (both sorted and disjoint)."""
    out: Spans = []
    i = j = 0
    while i < len(x) and j < len(y):
        a, b = max(x[i][0], y[j][0]), min(x[i][1], y[j][1])
        if a < b:
            out.append((a, b))
        if x[i][1] < y[j][1]:
            i += 1
        else:
            j += 1
    return out


def _total(spans: Spans) -> float:
    return sum(b - a for a, b in spans)


def idle_waiting(conn: sqlite3.Connection, day: date, at: datetime) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds each window (by number) and each clerk (by staff id) spent open, not paused and serving no
    one while a ticket it could call was waiting, on ``day`` up to ``at``.

    Open: a clerk's session at the window (``staff_sessions``); paused: ``pauses``; serving: a call at the
    window from its call to its end. A ticket waits from its issue (an appointment ticket from its slot's
    start: before that no window may call it) or its transfer until it is called, cancelled or expires;
    it waits for the windows that serve the category of its queue (as the hall config lists them when the
    controller last started), or for one window when it was transferred to that window. Windows and
    clerks that were never open that day are not in the result, and none is for a day the record kept
    before it kept pauses (schema migration 4)."""
    d = day.isoformat()
    like = d + "%"
    end_of_day = datetime.combine(day + timedelta(days=1), datetime.min.time(), at.tzinfo)
    stop = min(at, end_of_day).timestamp()

    def ts(x: str | None) -> float:
        return min(datetime.fromisoformat(x).timestamp(), stop) if x else stop

    meta = _meta(conn)
    if d <= meta.get("pauses_from", ""):  # kept before the record had pauses: idle and paused look alike
        return {}, {}
    window_cats = {int(k): set(v) for k, v in json.loads(meta.get("window_categories", "{}")).items()}

    sessions: dict[int, list[tuple[str, float, float]]] = defaultdict(list)
    for window, staff_id, started, ended in conn.execute(
        "SELECT window, staff_id, started_at, ended_at FROM staff_sessions WHERE started_at LIKE ?", (like,)
    ):
        sessions[window].append((staff_id, ts(started), ts(ended)))
    if not sessions:
        return {}, {}
    paused: dict[int, Spans] = defaultdict(list)
    for window, started, ended in conn.execute(
        "SELECT window, started_at, ended_at FROM pauses WHERE started_at LIKE ?", (like,)
    ):
        paused[window].append((ts(started), ts(ended)))
    busy: dict[int, Spans] = defaultdict(list)
    by_queue: dict[str, Spans] = defaultdict(list)
    by_window: dict[int, Spans] = defaultdict(list)
    for queue, window, called_at, ended_at, wait_s, first, slot_start, to_window, t_queue in conn.execute(
        "SELECT c.queue, c.window, c.called_at, c.ended_at, c.wait_s, c.first, t.slot_start,"
        " t.to_window, t.queue FROM calls c LEFT JOIN tickets t ON t.day = c.day AND t.number = c.number"
        " WHERE c.day = ?", (d,)
    ):
        called = ts(called_at)
        busy[window].append((called, ts(ended_at)))
        start = called - wait_s
        if first and slot_start:
            start = max(start, ts(slot_start))
        if not first and to_window == window and t_queue == queue:  # (the last transfer was to this window)
            by_window[window].append((start, called))
        else:
            by_queue[queue].append((start, called))
    for queue, issued_at, transferred_at, slot_start, to_window, finished_at, status in conn.execute(
        "SELECT queue, issued_at, transferred_at, slot_start, to_window, finished_at, status FROM tickets"
        " WHERE day = ? AND (status IN ('waiting', 'transferred') OR (status IN ('cancelled', 'expired')"
        " AND first_called_at IS NULL AND transferred_at IS NULL) OR (status IN ('cancelled', 'expired')"
        " AND transferred_at IS NOT NULL))", (d,)
    ):
        start = ts(transferred_at) if transferred_at else max(ts(issued_at), ts(slot_start) if slot_start else 0.0)
        end = stop if status in ("waiting", "transferred") else ts(finished_at)
        if to_window is not None and transferred_at:
            by_window[to_window].append((start, end))
        else:
            by_queue[queue].append((start, end))

    per_window: dict[str, float] = {}
    per_staff: dict[str, float] = defaultdict(float)
    for window, rows in sessions.items():
        open_ = _union([(a, b) for _, a, b in rows])
        idle = _minus(_minus(open_, _union(paused[window])), _union(busy[window]))
        wanted = _union([*by_window[window], *(s for q in window_cats.get(window, ()) for s in by_queue[q])])
        lost = _meet(idle, wanted)
        per_window[str(window)] = _total(lost)
        for staff_id, a, b in rows:
            if staff_id:
                per_staff[staff_id] += _total(_meet(lost, [(a, b)])) if b > a else 0.0
    return per_window, dict(per_staff)


def appointment_figures(conn: sqlite3.Connection, day: date, at: datetime) -> AppointmentFigures | None:
    """``day``'s bookings: how many (not cancelled), checked in (in time / late), no-shows (not checked in by
    the slot's end, as of ``at``), cancelled, and the wait of appointment tickets from the slot's start or the check-in, whichever is
    later, to their first call. None when the hall had no booking that day."""
    d = day.isoformat()
    rows = conn.execute("SELECT slot_end, checked_in_at, arrival, cancelled_at FROM appointments WHERE day = ?",
                        (d,)).fetchall()
    if not rows:
        return None
    f = AppointmentFigures(booked=sum(1 for r in rows if r[3] is None or r[1] is not None))
    for slot_end, checked_in_at, arrival, cancelled_at in rows:
        if checked_in_at is None and cancelled_at is not None:
            f.cancelled += 1
        elif checked_in_at is None:
            if datetime.fromisoformat(slot_end) < at:
                f.noshow += 1
        elif arrival == "late":
            f.late += 1
        else:
            f.checked_in += 1
    waits = [
        (datetime.fromisoformat(called) - max(datetime.fromisoformat(start), datetime.fromisoformat(issued)))
        .total_seconds() / 60
        for start, issued, called in conn.execute(
            "SELECT slot_start, issued_at, first_called_at FROM tickets WHERE day = ? AND slot_start IS NOT NULL"
            " AND first_called_at IS NOT NULL", (d,))
    ]
    if waits:
        waits = [max(w, 0.0) for w in waits]
        f.wait_mean_min = _round(sum(waits) / len(waits))
        f.wait_p90_min = _round(percentile(waits, 90))
    return f


def opening_slots(hours: list[list[str]] | list[tuple[str, str]]) -> list[str]:
    """The half hours that start within the opening hours (all 48 when there are none)."""
    if not hours:
        return [f"{h:02d}:{m:02d}" for h in range(24) for m in (0, 30)]
    slots = []
    for a, b in hours:
        start = int(a[:2]) * 60 + int(a[3:])
        end = int(b[:2]) * 60 + int(b[3:])
        m = start - start % 30
        while m < end:
            if m >= start - 29:
                slots.append(f"{m // 60:02d}:{m % 60:02d}")
            m += 30
    return slots


def quiet_half_hours(conn: sqlite3.Connection, day: date, at: datetime | None = None) -> list[str]:
    """The quietest half hours of the opening hours (what to tell citizens: 错时办事).

    Counted over the :data:`QUIET_DAYS` days before ``day`` that had tickets; with no such day, over the
    half hours of ``day`` itself that are over at ``at`` (a half hour still to come is not "quiet").
    """
    hours = json.loads(_meta(conn).get("hours", "[]"))
    slots = opening_slots(hours)
    first = (day - timedelta(days=QUIET_DAYS)).isoformat()
    counts: Counter = Counter()
    days: set[str] = set()
    for d, issued_at in conn.execute(
        "SELECT day, issued_at FROM tickets WHERE day >= ? AND day < ?", (first, day.isoformat())
    ):
        days.add(d)
        counts[half_hour(issued_at)] += 1
    if not days:
        for (issued_at,) in conn.execute("SELECT issued_at FROM tickets WHERE day = ?", (day.isoformat(),)):
            days.add(day.isoformat())
            counts[half_hour(issued_at)] += 1
        if not days:
            return []
        if at is not None and at.date() == day:
            over = at.hour * 60 + at.minute - 30
            slots = [s for s in slots if int(s[:2]) * 60 + int(s[3:]) <= over]
    if sum(counts.values()) < QUIET_MIN_TICKETS:
        return []
    if not hours:  # no opening hours: only the half hours in which anything happened
        slots = [s for s in slots if counts[s]]
    quiet = sorted(slots, key=lambda s: (counts[s], s))[:QUIET_COUNT]
    return sorted(quiet)


def staff_names(conn: sqlite3.Connection, day: date) -> dict[str, str]:
    """Clerk id -> name, for the clerks who called a ticket that day."""
    return dict(conn.execute(
        "SELECT staff_id, staff_name FROM calls WHERE day = ? AND staff_id IS NOT NULL", (day.isoformat(),)
    ).fetchall())


def window_names(conn: sqlite3.Connection) -> dict[str, str]:
    return {str(k): v for k, v in json.loads(_meta(conn).get("windows", "{}")).items()}


def arrivals(conn: sqlite3.Connection, day: date) -> dict[str, Counter]:
    """Numbers taken on ``day`` per category and half hour: ``{category: Counter({"HH:MM": n})}``."""
    out: dict[str, Counter] = defaultdict(Counter)
    for category, issued_at in conn.execute("SELECT category, issued_at FROM tickets WHERE day = ?",
                                            (day.isoformat(),)):
        out[category][half_hour(issued_at)] += 1
    return dict(out)
