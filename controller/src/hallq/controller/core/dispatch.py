"""The dispatch policy: which waiting ticket a window calls next (pure; the simulator reuses it).

:func:`pick_next` is the policy, one pure function over any iterable of waiting tickets (anything with the
attributes :class:`Waiting` lists). The rules, in this order:

1. **Transfers first.** A ticket transferred to this window, or to one of its categories, goes before
   everything else, the oldest transfer first: the citizen has already queued once.
2. **Precedence tickets** come next: priority tickets (elderly, disabled, pregnant, military: 老弱病残孕军
   优先) and checked-in appointment tickets whose slot has started. They are one class, ordered by when
   each became *due*: its issue time for a priority ticket; its slot's start or its check-in, whichever is
   later, for an appointment, plus :data:`APPOINTMENT_YIELD` (5 min): a priority ticket goes before an
   appointment that became due less than 5 minutes before it. An appointment ticket is not called before
   its slot starts (an early arrival waits for the slot; the kiosk tells them).
3. **Normal tickets** of all the window's categories, the one taken first goes first (one queue per
   category, and a shared or comprehensive window takes the longest-waiting ticket among its categories).
4. **The guard** between 2 and 3: a precedence ticket goes before a normal ticket only if it became due
   less than ``guard`` (``[dispatch] priority_lead_min``, 90 min by default) after the normal ticket was
   taken (an appointment: its due time plus the yield). So no ticket starves: a normal ticket taken at ``t`` can be passed only by transfers and by
   precedence tickets due before ``t + guard``; a stream of priority tickets cannot hold it back longer.
5. Ties (same time to the second) go to the ticket issued first in the hall today (``seq``).
6. **A window keeps itself free for an appointment** (held capacity, 即到即办): a window that would start
   a normal or priority ticket calls nothing instead when a checked-in appointment ticket it may serve
   becomes due within :data:`HOLD` (4 min) and no other idle window is there for it (each idle window
   covers one such appointment it may serve, the soonest due first). The clerk's ``next`` then finds
   nothing; the appointment is called at its slot's start by the window that kept itself free.

As a sort key (:func:`rank`): transfers ``(0, transferred_at, seq)``; priority ``(1, issued_at - guard,
seq)``; appointments ``(1, due + yield - guard, seq)``; normal ``(1, issued_at, seq)``; the smallest key that the window may serve is called. The key of a ticket
never changes while it waits (only whether an appointment is due yet depends on ``now``), so each
category's tickets keep their order in three lanes (normal, priority, appointments by due time) and the
core only compares lane heads (:func:`next_for`); :func:`pick_next` over all waiting tickets gives the
same answer (a property test checks this). :func:`ahead_of` counts the tickets that go before one.

Why these rules (measured with ``bench/bench_controller_dispatch.py``: the simulated day at loads 0.75,
0.85 and 0.95, ten seeds each):

- A priority ticket can only wait for the first window of its category to free; giving it a short lead
  (the earlier rule: 15 min of credited waiting) let it queue behind every normal ticket that had waited
  longer than that, which at a busy morning is most of them: priority p90 6.3 / 14.7 / 23.8 min at the
  three loads, against 3.4 / 4.5 / 4.8 with these rules. Novo SGA orders by appointment time, then the
  clerk's and the priority's weights, then arrival: a strict order with no bound, so a stream of priority
  tickets holds normal ones back without limit. A service-level rule (the ticket furthest along its
  target, waited / target, as service-level-driven systems such as Qmatic dispatch) with targets of 5 min
  for priority and 60 for the others lets a fresh priority ticket lose to normal tickets near their
  target at a busy morning: 4.6 / 6.5 / 7.0 min (the benchmark's ``service_level`` column). Here
  precedence is strict in practice (normal waits rarely exceed the guard) and bounded in principle (the
  guard); what it costs normal tickets is measured too (their p99 is 1.06–1.14 x the same day's
  without priority tickets).
- The guard is 90 minutes by default (it was 60). At load 0.95 the morning's normal tickets wait past an
  hour, and with 60 each of them went before every priority ticket taken up to an hour after it: on the
  held-out days (seeds 11–30, which the rules were not chosen on), of the priority tickets that waited
  over 5 min although a window of their category freed within 5 min, 19 of 47 lost that window to such a
  normal ticket (older priority tickets 13, transfers 9, appointments 5). With 90 the priority p90 at 0.95
  is 4.67 -> 4.52 (seeds 1–10), 5.83 -> 4.92 (11–30), 5.46 -> 5.23 (31–50: still over 5), appointments'
  p90 falls too (5.44 -> 4.95 on 1–10), and normal tickets' p99 against a day without priority tickets
  stays <= 1.2 (1.12 -> 1.13, 1.07 -> 1.10, 1.12 -> 1.13); 120 gave the same as 90.
- Appointments share the precedence class with priority tickets instead of going strictly before them,
  and yield to them by 5 minutes: appointment slots start on the hour and the half hour, so the holders
  who came early all become due at once, and ordered only by due time that burst held the priority
  tickets behind it (priority p90 5.3 / 5.3 min at 0.85 / 0.95 with the demo's half-hour slots; with the
  5-minute yield 4.5 / 4.8, the appointments' own p90 from their due time 5.3 / 5.5 -> 5.8 / 6.1). The
  appointments' wait is bounded by the first window of their category to free, as the priority
  tickets' is: even strictly first, their p90 stayed above 5 min at 0.85.
- Held capacity (rule 6): an appointment holder who checked in early is due at the slot's start, and
  without it waited for the first window of its category to free after that, like any arrival. Holding
  a window that frees in the last 4 minutes before the slot costs that window at most 4 idle minutes per
  early holder: appointments' p90 from their due time 5.0 / 5.7 / 6.1 -> 3.9 / 4.8 / 5.4 min (the early
  holders alone 5.2 / 6.0 / 6.4 -> 1.7 / 3.2 / 4.4) with the priority p90 still <= 5; 8 minutes pushed the
  priority p90 over 5 at load 0.95 (5.3). Holding only for an appointment that will go before the ticket
  the window would start (by rules 2–5) looks tidier but measured worse (4.8 -> 5.1 at 0.85): while one
  window keeps itself free, another takes that ticket, and the appointment gets the kept window.
- Holders who come within their slot still wait for the first window to free: p90 5.1 / 5.6 / 5.7 min
  from their arrival, so the appointments' 3-minute target is missed (3.9 / 4.7 / 4.9). Of the holders
  within their slot who waited over 3 min (38 of 154, 46 of 176, 62 of 192 on seeds 1–10), 19 / 35 / 39
  found no window of their category free within 3 min; the others lost it to older priority or
  appointment tickets, to priority tickets that came up to 5 min after them (the yield), or to transfers.
  Tried on 2026-12-01, none kept (appointments' p90 at 0.75 / 0.85 / 0.95; seeds 1–10 unless said):
  - No yield for a holder who came within the slot (the yield is there for the burst of early holders
    at the slot's start): 3.93 / 4.73 / 4.95 -> 3.55 / 4.54 / 4.84, but on the held-out seeds 11–30
    4.99 / 4.92 / 5.37 -> 4.63 / 4.54 / 5.39, and the priority p90 at 0.95 4.92 -> 5.17 (over 5).
  - Keeping a window free for a holder likely to come: a window that would start a normal ticket calls
    nothing while a booking of its categories whose slot has started, not checked in, comes within 4 min
    with a probability of at least θ (from today's show rate and today's check-in times against their
    slots; from ten check-ins on) and no other idle window may serve it. θ 0.5: 3.70 / 4.91 / 4.30
    (held-out 4.74 / 4.33 / 5.24, with the priority p90 at 0.95 at 5.18: over 5); θ 0.3: 3.57 / 4.52 /
    4.89 with p90 / FIFO at 0.75 at 0.701 (over 0.7). Nowhere near 3.
  - Even knowing 4 min ahead when each of them comes (the benchmark's what-if ``arrivals known 4 min
    ahead``; rule 6 then holds a window for them as for a holder who came early): 1.97 / 3.55 / 4.02,
    with the priority p90 at 0.85 at 5.19 (over 5) and p90 / FIFO at 0.75 at 0.732 (over 0.7); held-out
    3.36 / 2.97 / 3.50, with the priority p90 at 0.95 at 5.34 and p90 / FIFO at 0.75 at 0.853 (0.822
    without). A rule that keeps a window free as long for holders still to come, without knowing when
    they come, holds in vain or too late where this one holds in time. Even with that foresight the
    3 minutes hold only at 0.75 on seeds 1–10 and at 0.85 on seeds 11–30, never at 0.95, and both sets
    of days then miss the priority or the FIFO target.
- Across categories, the longest-waiting normal ticket: preferring short services or the categories with
  fewer windows gave no gain beyond the seed-to-seed noise on these days, and a key that depends only on
  the ticket keeps the order predictable for the hall and for the estimate (:mod:`.estimate`), which
  plays this same order forward.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from .state import APPOINTMENT, NORMAL, PRIORITY, HallState, TicketRec, WindowRec, due_at, lane_class

__all__ = [
    "APPOINTMENT",
    "APPOINTMENT_YIELD",
    "NORMAL",
    "PRIORITY",
    "Waiting",
    "ahead_of",
    "due_at",
    "eligible",
    "holding_for",
    "lane_class",
    "next_for",
    "pick_next",
    "rank",
]

Key = tuple[int, datetime, int]

#: How much later than its due time an appointment ticket counts among the precedence tickets: a priority
#: ticket goes before an appointment that became due less than this long before it (see the rules).
APPOINTMENT_YIELD = timedelta(minutes=5)
#: How long before a checked-in appointment is due a window that would start another service keeps itself
#: free for it instead (rule 6).
HOLD = timedelta(minutes=4)


class Waiting(Protocol):
    seq: int  # issue order in the hall today (breaks ties)
    issued_at: datetime
    priority: str | None  # elderly | disabled | pregnant | military | appointment | None
    queue: str  # the category whose queue it is in (its own, or where it was transferred)
    to_window: int | None  # transferred to this window
    transferred_at: datetime | None
    slot_start: datetime | None  # an appointment ticket's booked slot (None: not booked, or not known)


def rank(t: Waiting, guard: timedelta) -> Key:
    """Sort key of a waiting ticket (the rules above): the smallest key that is due is called first."""
    if t.transferred_at is not None:
        return (0, t.transferred_at, t.seq)
    cls = lane_class(t)
    if cls == NORMAL:
        return (1, t.issued_at, t.seq)
    if cls == APPOINTMENT:
        return (1, due_at(t) + APPOINTMENT_YIELD - guard, t.seq)
    return (1, t.issued_at - guard, t.seq)


def callable_now(t: Waiting, now: datetime) -> bool:
    """Whether ``t`` may be called at ``now``: everything but an appointment whose slot has not started."""
    return t.transferred_at is not None or lane_class(t) != APPOINTMENT or due_at(t) <= now


def eligible(t: Waiting, window: int, categories: Collection[str]) -> bool:
    """Whether ``window`` (serving ``categories``) may call ``t``."""
    if t.to_window is not None:
        return t.to_window == window
    return t.queue in categories


def pick_next(window: int, categories: Collection[str], waiting: Iterable[Waiting], now: datetime,
              guard: timedelta, idle: Iterable[Collection[str]] = ()) -> Any:
    """The ticket ``window`` (serving ``categories``) calls at ``now`` among ``waiting``; None when none
    may be called. ``guard`` is how long a precedence ticket may be due after a normal ticket was taken
    and still go before it; ``idle``: the categories of each other open window that is idle now (they
    hold for appointments too). The rules in the module docstring."""
    best: Any = None
    best_key: Key | None = None
    soon: list[Any] = []
    for t in waiting:
        if eligible(t, window, categories):
            if callable_now(t, now):
                k = rank(t, guard)
                if best_key is None or k < best_key:
                    best, best_key = t, k
            elif t.transferred_at is None and due_at(t) <= now + HOLD:
                soon.append(t)
    if (best is not None and lane_class(best) != APPOINTMENT and best.transferred_at is None and soon
            and holds(window, soon, idle, now)):
        return None
    return best


def holds(window: int, soon: Iterable[Any], idle: Iterable[Collection[str]], now: datetime) -> bool:
    """Whether ``window`` keeps itself free for an appointment due within :data:`HOLD` (rule 6): ``soon``
    are the appointment tickets it may serve that are due within it; each is covered by one idle window
    that may serve it (the soonest due first), and the window holds if one is left uncovered."""
    free = [set(c) for c in idle]
    for t in sorted(soon, key=lambda t: (due_at(t), t.seq)):
        for i, cats in enumerate(free):
            if t.queue in cats or "*" in cats:
                del free[i]
                break
        else:
            return True
    return False


def idle_windows(state: HallState, w: WindowRec) -> list[tuple[str, ...]]:
    """The categories of each other open window that is idle now (the ``idle`` of :func:`pick_next`)."""
    return [x.categories for x in state.windows.values()
            if x is not w and x.staff is not None and not x.paused and x.current is None]


def next_for(state: HallState, w: WindowRec, now: datetime) -> TicketRec | None:
    """The ticket window ``w`` calls at ``now``, from the heads of the lanes (as :func:`pick_next` would)."""
    best = _best_head(state, w, now)
    if best is None or best.transferred_at is not None or lane_class(best) == APPOINTMENT:
        return best
    return None if holding_for(state, w, now) is not None else best


def holding_for(state: HallState, w: WindowRec, now: datetime) -> TicketRec | None:
    """The appointment ticket due soonest among those window ``w`` keeps itself free for at ``now``
    (rule 6), or None when it holds for none (the clerk's ``next`` is told which)."""
    soon = []
    for c in w.categories:
        for t in state.lanes.get((c, APPOINTMENT)) or ():  # by due time: stop at the first due too late
            if due_at(t) > now + HOLD:
                break
            if not callable_now(t, now):
                soon.append(t)
    if soon and holds(w.no, soon, idle_windows(state, w), now):
        return min(soon, key=lambda t: (due_at(t), t.seq))
    return None


def _best_head(state: HallState, w: WindowRec, now: datetime) -> TicketRec | None:
    guard = state.lead
    best: TicketRec | None = None
    best_key: Key | None = None
    for t in state.transfers:  # few: compare them all (two transfers may share a second)
        if eligible(t, w.no, w.categories):
            k = rank(t, guard)
            if best_key is None or k < best_key:
                best, best_key = t, k
    if best is not None:
        return best
    for c in w.categories:
        for cls in (NORMAL, PRIORITY, APPOINTMENT):
            lane = state.lanes.get((c, cls))
            if lane and callable_now(lane[0], now):  # appointments by due time: if the head is not due, none is
                k = rank(lane[0], guard)
                if best_key is None or k < best_key:
                    best, best_key = lane[0], k
    return best


def ahead_of(state: HallState, t: TicketRec) -> int:
    """How many waiting tickets of ``t``'s queue (a ticket being taken) go before it by the rules, as
    things stand: the transfers to its category, and in its category's lanes every ticket with a smaller
    :func:`rank`."""
    cat = t.queue
    guard = state.lead
    n = sum(1 for x in state.transfers if x.to_window is None and x.queue == cat)
    mine = rank(t, guard)
    for cls in (NORMAL, PRIORITY, APPOINTMENT):
        lane = state.lanes.get((cat, cls))
        if not lane:
            continue
        if lane[-1] is not t and rank(lane[-1], guard) < mine:
            n += len(lane)  # the common case: the whole lane is ahead
        else:
            n += bisect_left(_LaneKeys(lane, guard), mine)  # a lane is ordered by key
    return n


class _LaneKeys(Sequence[Key]):
    """A lane seen as its sorted sequence of keys (for bisection)."""

    __slots__ = ("guard", "lane")

    def __init__(self, lane: Sequence[TicketRec], guard: timedelta):
        self.lane, self.guard = lane, guard

    def __len__(self) -> int:
        return len(self.lane)

    def __getitem__(self, i: int) -> Key:  # type: ignore[override]
        return rank(self.lane[i], self.guard)
