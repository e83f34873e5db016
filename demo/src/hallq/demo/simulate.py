"""A hall day in virtual time: the model's visits played against a dispatch policy, no MQTT, no clock.

:func:`run_day` is a discrete-event simulation. Citizens arrive and take a number (``issue``); every
window has a clerk who calls the next ticket as soon as the window is free (``call_next``); the citizen
comes (or comes after a recall, or never: a no-show after two minutes of calling), is served, and is
finished (``done``) or sent on to another category (``transfer``), where another window calls them again.
The policy under test only decides which ticket a window gets, so different policies can be compared on
exactly the same day and staffing.

Plain policies are here for comparison: :class:`FifoPerCategory` (one first-come-first-served queue per
category; a window that serves several categories takes from them in the order its configuration lists
them, as simple queue systems do), :class:`FifoPerCategoryRoundRobin` (the same queues, a shared window
taking its categories in turn) and :class:`GlobalFifo` (the window takes the ticket that has waited
longest among all the categories it serves; priority ignored).
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Protocol

from hallq.shared.figures import percentile

from .model import MIN, HallShape, Visit

#: Clerk behaviour, seconds: the citizen's walk to the window, the wait before a recall, the wait
#: after the recall before the ticket is voided as a no-show.
WALK_S = 30.0
RECALL_AFTER_S = 60.0
NOSHOW_AFTER_S = 60.0


class Dispatcher(Protocol):
    """What a dispatch policy must answer. ``now`` is seconds since the day's midnight."""

    name: str

    def start(self, windows: list[int], now: float) -> None:
        """The clerks sign in at these windows."""

    def issue(self, visit: Visit, now: float) -> tuple[Hashable, float | None] | None:
        """Give the visit a ticket: (ticket id, estimated wait in minutes or None), or None if refused."""

    def call_next(self, window: int, now: float) -> Hashable | None:
        """The ticket this window calls now, or None when nothing it serves waits."""

    def done(self, window: int, now: float) -> None: ...

    def noshow(self, window: int, now: float) -> None: ...

    def transfer(self, window: int, category: str, now: float) -> None: ...


@dataclass
class TicketRecord:
    """What happened to one visit's ticket."""

    visit: Visit
    ticket: Hashable
    issued_s: float
    est_wait_min: float | None
    first_call_s: float | None = None
    calls: list[tuple[float, int]] = field(default_factory=list)  # (time, window) of each call
    finished_s: float | None = None
    outcome: str = "waiting"  # waiting, done, noshow

    @property
    def wait_s(self) -> float | None:
        return None if self.first_call_s is None else self.first_call_s - self.issued_s


@dataclass
class DayResult:
    policy: str
    tickets: list[TicketRecord]
    refused: int
    end_s: float


# -- the two plain policies ---------------------------------------------------------------------------------
class _Queues:
    def __init__(self, shape: HallShape):
        self.shape = shape
        self.waiting: dict[str, list[tuple[float, int]]] = {c.code: [] for c in shape.categories}
        self.category_of: dict[int, str] = {}
        self.issued_at: dict[int, float] = {}
        self.serving: dict[int, int] = {}
        self._n = 0

    def start(self, windows: list[int], now: float) -> None:
        pass

    def issue(self, visit: Visit, now: float) -> tuple[Hashable, float | None]:
        self._n += 1
        self.waiting[visit.category].append((now, self._n))
        self.category_of[self._n] = visit.category
        self.issued_at[self._n] = now
        return self._n, None

    def _take(self, window: int, category: str) -> int:
        _, t = self.waiting[category].pop(0)
        self.serving[window] = t
        return t

    def done(self, window: int, now: float) -> None:
        self.serving.pop(window, None)

    noshow = done

    def transfer(self, window: int, category: str, now: float) -> None:
        t = self.serving.pop(window)
        self.category_of[t] = category
        # back into the target queue in the order of its original issue time
        q = self.waiting[category]
        q.append((self.issued_at[t], t))
        q.sort()


class FifoPerCategory(_Queues):
    """One FIFO queue per category; a window takes from its categories in its configured order."""

    name = "fifo_per_category"

    def call_next(self, window: int, now: float) -> Hashable | None:
        for code in self.shape.windows[window]:
            if self.waiting[code]:
                return self._take(window, code)
        return None


class FifoPerCategoryRoundRobin(_Queues):
    """One FIFO queue per category; a window takes its categories in turn (the one after the category it
    served last, skipping empty ones). A fairer reading of "FIFO per category" for shared windows."""

    name = "fifo_per_category_round_robin"

    def __init__(self, shape: HallShape):
        super().__init__(shape)
        self._last: dict[int, int] = {}

    def call_next(self, window: int, now: float) -> Hashable | None:
        cats = self.shape.windows[window]
        start = self._last.get(window, -1) + 1
        for k in range(len(cats)):
            i = (start + k) % len(cats)
            if self.waiting[cats[i]]:
                self._last[window] = i
                return self._take(window, cats[i])
        return None


class GlobalFifo(_Queues):
    """The longest-waiting ticket among all the categories the window serves; no priority."""

    name = "global_fifo"

    def call_next(self, window: int, now: float) -> Hashable | None:
        best = None
        for code in self.shape.windows[window]:
            q = self.waiting[code]
            if q and (best is None or q[0] < self.waiting[best][0]):
                best = code
        return None if best is None else self._take(window, best)


# -- the simulation -----------------------------------------------------------------------------------------
_ARRIVE, _FREE, _RECALL, _NOSHOW, _TRANSFER, _DONE, _SLOT = range(7)


def run_day(shape: HallShape, visits: list[Visit], policy: Dispatcher, *,
            windows: list[int] | None = None) -> DayResult:
    """Play ``visits`` against ``policy`` with a clerk at each of ``windows`` (default: all)."""
    windows = sorted(windows if windows is not None else shape.windows)
    events: list[tuple[float, int, int, object]] = []
    seq = 0

    def push(t: float, kind: int, data: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    policy.start(windows, min([shape.hours[0][0]] + [v.arrival_s for v in visits[:1]]))
    for v in visits:
        push(v.arrival_s, _ARRIVE, v)
    # an idle clerk's caller shows the appointment that becomes due at its slot's start (and a window that
    # kept itself free for it calls it then)
    for start in sorted({v.slot[0] for v in visits if v.slot is not None}):
        push(start, _SLOT, None)
    records: dict[Hashable, TicketRecord] = {}
    idle: set[int] = set(windows)
    transferred: set[Hashable] = set()
    refused = 0
    now = 0.0

    def call(window: int, t: float) -> None:
        ticket = policy.call_next(window, t)
        if ticket is None:
            idle.add(window)
            return
        idle.discard(window)
        rec = records[ticket]
        rec.calls.append((t, window))
        if rec.first_call_s is None:
            rec.first_call_s = t
        v = rec.visit
        second = ticket in transferred
        if v.answers_after is None and not second:
            push(t + RECALL_AFTER_S, _RECALL, (window, ticket))
            push(t + RECALL_AFTER_S + NOSHOW_AFTER_S, _NOSHOW, (window, ticket))
            return
        start = t + WALK_S + (RECALL_AFTER_S if (v.answers_after == 1 and not second) else 0.0)
        if v.transfer is not None and not second:
            push(start + v.transfer.after_s, _TRANSFER, (window, ticket))
        else:
            push(start + (v.transfer.service_s if second and v.transfer else v.service_s), _DONE, (window, ticket))

    def wake(t: float) -> None:
        for w in sorted(idle):
            call(w, t)

    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == _ARRIVE:
            v: Visit = data  # type: ignore[assignment]
            got = policy.issue(v, now)
            if got is None:
                refused += 1
                continue
            ticket, est = got
            records[ticket] = TicketRecord(v, ticket, now, est)
            wake(now)
        elif kind == _RECALL:
            continue
        elif kind == _SLOT:
            wake(now)
        elif kind == _NOSHOW:
            window, ticket = data  # type: ignore[misc]
            policy.noshow(window, now)
            records[ticket].outcome, records[ticket].finished_s = "noshow", now
            call(window, now)
        elif kind == _TRANSFER:
            window, ticket = data  # type: ignore[misc]
            v = records[ticket].visit
            assert v.transfer is not None
            policy.transfer(window, v.transfer.category, now)
            transferred.add(ticket)
            call(window, now)
            wake(now)
        elif kind == _DONE:
            window, ticket = data  # type: ignore[misc]
            policy.done(window, now)
            records[ticket].outcome, records[ticket].finished_s = "done", now
            call(window, now)
    return DayResult(policy.name, list(records.values()), refused, now)


# -- figures ------------------------------------------------------------------------------------------------
def wait_figures(result: DayResult) -> dict[str, float | int | None]:
    """Mean and p90 wait (minutes) of everyone and of priority tickets, and the longest normal wait."""
    called = [r for r in result.tickets if r.wait_s is not None]
    every = [r.wait_s / MIN for r in called]  # type: ignore[operator]
    prio = [r.wait_s / MIN for r in called if r.visit.is_priority]  # type: ignore[operator]
    normal = [r.wait_s / MIN for r in called if not r.visit.is_priority]  # type: ignore[operator]

    def r2(x: float | None) -> float | None:
        return None if x is None else round(x, 2)

    return {
        "tickets": len(result.tickets),
        "called": len(called),
        "priority_tickets": len(prio),
        "wait_mean_min": r2(sum(every) / len(every)) if every else None,
        "wait_p90_min": r2(percentile(every, 90)) if every else None,
        "priority_wait_mean_min": r2(sum(prio) / len(prio)) if prio else None,
        "priority_wait_p90_min": r2(percentile(prio, 90)) if prio else None,
        "normal_wait_max_min": r2(max(normal)) if normal else None,
        "day_ends": round(result.end_s / 3600, 2),
    }


def estimate_error(result: DayResult) -> dict[str, float | int | None]:
    """Mean absolute error (minutes) of the estimated wait given at issue against the realised wait."""
    pairs = [(r.est_wait_min, r.wait_s / MIN) for r in result.tickets
             if r.est_wait_min is not None and r.wait_s is not None]
    if not pairs:
        return {"est_pairs": 0, "est_mae_min": None}
    errors = [abs(e - w) for e, w in pairs]
    bias = sum(e - w for e, w in pairs) / len(pairs)
    return {
        "est_pairs": len(pairs),
        "est_mae_min": round(sum(errors) / len(errors), 2),
        "est_bias_min": round(bias, 2),
        "est_p90_abs_error_min": round(percentile(errors, 90), 2),
    }
