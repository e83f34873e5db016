"""The dispatch policy: which waiting ticket a window calls next (pure; the simulator reuses it).

:func:`dispatch_key` orders waiting tickets; :func:`pick_next` picks a window's next ticket from any
iterable of waiting tickets (anything with ``seq``, ``issued_at``, ``priority``, ``queue``, ``to_window``
and ``transferred_at`` attributes, as :class:`Waiting` says). The rules:

1. a transferred ticket aimed at this window, or at one of its categories, goes first (oldest transfer first);
2. otherwise the ticket with the longest *effective* wait: a priority ticket counts ``lead`` more than it
   has waited. Effective wait ``now - issued_at + lead`` is largest for the smallest ``issued_at - lead``,
   so the key does not depend on ``now``: it is fixed when the ticket is issued. Hence tickets of one class
   keep their order, and no ticket waits without bound: a ticket issued at ``t`` can only be passed by
   priority tickets issued before ``t + lead`` and transfers (which are tickets already served once).

The core keeps waiting tickets in FIFO lanes (per category: normal and priority; plus one list of
transfers, see :class:`~.state.HallState`) so a ``next`` looks only at lane heads (:func:`next_for`);
:func:`pick_next` over all waiting tickets gives the same answer (a property test checks this).
:func:`ahead_of` counts the tickets that go before one, by the same keys.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, Protocol

from .state import HallState, TicketRec, WindowRec


class Waiting(Protocol):
    seq: int  # issue order in the hall today (breaks ties)
    issued_at: datetime
    priority: str | None
    queue: str  # the category whose queue it is in (its own, or where it was transferred)
    to_window: int | None  # transferred to this window
    transferred_at: datetime | None


def dispatch_key(t: Waiting, lead: timedelta) -> tuple[int, datetime, int]:
    """Sort key of a waiting ticket: the smallest key is called first (the rules above)."""
    if t.transferred_at is not None:
        return (0, t.transferred_at, t.seq)
    return (1, t.issued_at - lead if t.priority else t.issued_at, t.seq)


def eligible(t: Waiting, window: int, categories: Collection[str]) -> bool:
    """Whether ``window`` (serving ``categories``) may call ``t``."""
    if t.to_window is not None:
        return t.to_window == window
    return t.queue in categories


def pick_next(window: int, categories: Collection[str], waiting: Iterable[Waiting], lead: timedelta) -> Any:
    """The ticket ``window`` calls next among ``waiting`` (None when none is eligible)."""
    best = None
    best_key = None
    for t in waiting:
        if eligible(t, window, categories):
            k = dispatch_key(t, lead)
            if best_key is None or k < best_key:
                best, best_key = t, k
    return best



def next_for(state: HallState, w: WindowRec) -> TicketRec | None:
    """The ticket window ``w`` calls next, from the heads of the lanes (as :func:`pick_next` would pick)."""
    for t in state.transfers:  # in transfer order: the oldest transfer first
        if eligible(t, w.no, w.categories):
            return t
    best, best_key = None, None
    for c in w.categories:
        for prio in (False, True):
            lane = state.lanes.get((c, prio))
            if lane:
                k = dispatch_key(lane[0], state.lead)
                if best_key is None or k < best_key:
                    best, best_key = lane[0], k
    return best



def ahead_of(state: HallState, t: TicketRec) -> int:
    """How many waiting tickets of ``t``'s queue would be called before it, as things stand.

    Transferred tickets aimed at its category go first; within the category's two lanes the dispatch
    keys decide (a normal ticket is behind every priority ticket that waits; a priority ticket is behind
    the normal tickets that have waited more than the lead).
    """
    cat = t.queue
    n = sum(1 for x in state.transfers if x.to_window is None and x.queue == cat)
    mine = dispatch_key(t, state.lead)
    for prio in (False, True):
        lane = state.lanes[(cat, prio)]
        if not lane:
            continue
        if lane[-1] is not t and dispatch_key(lane[-1], state.lead) < mine:
            n += len(lane)  # the common case: the whole lane is ahead
            continue
        # the lane is ordered by key: count the keys below ``mine`` by bisection
        keys = _LaneKeys(lane, state.lead)
        n += bisect_left(keys, mine)
    return n


class _LaneKeys:
    """A lane seen as a sorted sequence of dispatch keys (for bisection)."""

    __slots__ = ("lane", "lead")

    def __init__(self, lane: deque[TicketRec], lead: timedelta):
        self.lane, self.lead = lane, lead

    def __len__(self) -> int:
        return len(self.lane)

    def __getitem__(self, i: int) -> tuple[int, datetime, int]:
        return dispatch_key(self.lane[i], self.lead)

