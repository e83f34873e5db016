"""The retained payloads the controller publishes: ``queue``, ``window/{n}/state`` and ``board``.

A :class:`QueueView` decides when the ``queue`` payload goes out (at once after a quiet spell, at most
every :data:`PUBLISH_EVERY` under a flood of takes) and how often its estimates are worked out (one play
of the dispatch order per category, 10-30 ms for a hall of 40 categories with long queues: at most every
:data:`ESTIMATE_EVERY`). Its counts, order and oldest waits are always the state's.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import datetime, timedelta
from itertools import islice

from hallq.shared.schemas import Board, CalledTicket, CategoryQueue, LastService, QueueState, WindowState

from .dispatch import APPOINTMENT, NORMAL, PRIORITY, rank
from .estimate import Estimate, wait_estimate
from .state import LANE_CLASSES, HallState

#: The ``queue`` topic goes out at most this often (hall time): the first change after a quiet spell at
#: once, the changes that follow within this time together, this long after it.
PUBLISH_EVERY = timedelta(seconds=0.1)
#: The ``queue`` topic's estimates are worked out at most this often (hall time): a change after a quiet
#: spell is estimated at once; the payloads that follow within this time reuse those estimates, and one
#: with fresh estimates follows by this time after them.
ESTIMATE_EVERY = timedelta(seconds=1)


#: A lane's numbers as :func:`queue_order` last listed them: lane -> (its cuts then, the lane, the numbers).
Orders = dict[tuple[str, str], tuple[int, object, list[str]]]


def queue_state(state: HallState, now: datetime, estimates: Mapping[str, Estimate] | None = None,
                orders: Orders | None = None) -> QueueState:
    """The ``queue`` payload: per category, how many wait, in which order, and the estimate for a new
    normal ticket (one play with mean services; a take's own estimate samples, see :mod:`.estimate`).

    ``estimates`` (per category, from :func:`queue_estimates`) are used as given; without them they are
    worked out now. ``orders``: see :func:`queue_order`."""
    if estimates is None:
        estimates = queue_estimates(state, now)
    cats = {}
    open_windows = [w.categories for w in state.windows.values() if w.status in ("idle", "serving")]
    for c in state.cfg.categories:
        n = state.waiting_count(c.code)
        e = estimates.get(c.code) or wait_estimate(state, c.code, n, now, samples=1)
        cats[c.code] = CategoryQueue(waiting=n, est_wait_min=e.minutes, est_wait_range=(e.low, e.high),
                                     order=queue_order(state, c.code, orders),
                                     oldest_at=oldest_waiting(state, c.code) if n else None,
                                     serving=any(c.code in cs or "*" in cs for cs in open_windows))
    return QueueState(at=now, categories=cats)


def queue_estimates(state: HallState, now: datetime) -> dict[str, Estimate]:
    """Per category, the estimate for a normal ticket taken ``now`` (one play: see :func:`queue_state`)."""
    return {c.code: wait_estimate(state, c.code, state.waiting_count(c.code), now, samples=1)
            for c in state.cfg.categories}


class QueueView:
    """When the ``queue`` topic goes out, and how often its estimates are worked out. Pure: the caller
    passes the hall's time and publishes what it is given.

    - :meth:`changed` (a batch changed a queue) gives the payload to publish now, or None when the last
      one went out less than ``publish_every`` ago; then :meth:`due` says when to publish it.
    - :meth:`payload` builds it. Counts, order and oldest waits are always the state's. The estimates are
      worked out afresh when the last ones are ``every`` old or more (or were made from another state, or
      at a later time than ``now``: a clock stepped back); otherwise the last ones are reused and the view
      is :attr:`stale`, and :meth:`due` asks for the payload again by ``every`` after them.

    So after any change the topic shows it (counts and order) within ``publish_every``, and estimates
    worked out from that change on within ``every``."""

    def __init__(self, every: timedelta = ESTIMATE_EVERY, publish_every: timedelta = PUBLISH_EVERY):
        self.every = every
        self.publish_every = publish_every
        self.stale = False  # the last payload's estimates were made before the state it shows
        self.pending = False  # a change is not published yet
        self._estimates: dict[str, Estimate] | None = None
        self._at: datetime | None = None
        self._sent: datetime | None = None
        self._of: HallState | None = None  # a restored state is another object: its estimates start afresh
        self._orders: Orders = {}  # each lane's numbers, extended while the lane only grows at its tail

    def changed(self, state: HallState, now: datetime) -> QueueState | None:
        """A queue changed: the payload to publish now, or None (publish :meth:`payload` at :meth:`due`)."""
        sent = self._sent
        if sent is not None and sent <= now < sent + self.publish_every:
            self.pending = True
            return None
        return self.payload(state, now)

    def payload(self, state: HallState, now: datetime) -> QueueState:
        """The payload as of ``now`` (what goes out: it clears :attr:`pending`)."""
        at = self._at
        if (self._estimates is None or self._of is not state or at is None or now < at
                or now - at >= self.every):
            if self._of is not state:
                self._orders = {}
            self._estimates, self._at, self._of = queue_estimates(state, now), now, state
            self.stale = False
        else:
            self.stale = True
        self._sent, self.pending = now, False
        return queue_state(state, now, self._estimates, self._orders)

    @property
    def estimated_at(self) -> datetime | None:
        """When the estimates of the last payload were worked out."""
        return self._at

    def due(self) -> datetime | None:
        """When :meth:`payload` must be published again (None: the topic is up to date)."""
        times = []
        if self.pending and self._sent is not None:
            times.append(self._sent + self.publish_every)
        if self.stale and self._at is not None:
            times.append(self._at + self.every)
        return min(times) if times else None


def queue_order(state: HallState, category: str, orders: Orders | None = None) -> list[str]:
    """The numbers waiting in ``category``'s queue in the order the rules call them as things stand: the
    transfers to the category, then its lanes merged by :func:`~.dispatch.rank`. A ticket's index is its
    :func:`~.dispatch.ahead_of` (the SMS gateway's "three ahead" and the follow pages read it).

    ``orders`` (kept by the caller between calls on the same state, e.g. :class:`QueueView`): a queue held in
    one lane reuses the numbers listed last time, adding only the tickets that joined at its tail since
    (``HallState.lane_cuts`` says when a lane changed otherwise): a flood of takes into thousands waiting
    costs the new tickets, not every waiting one, ten times a second."""
    guard = state.lead
    transfers = sorted((t for t in state.transfers if t.to_window is None and t.queue == category),
                       key=lambda t: rank(t, guard)) if state.transfers else []
    keys = [key for cls in (NORMAL, PRIORITY, APPOINTMENT) if state.lanes.get(key := (category, cls))]
    if not transfers and len(keys) == 1:  # one lane is in its order already (most queues most of the day)
        return _lane_numbers(state, keys[0], orders)
    lanes: list = [state.lanes[key] for key in keys]
    if transfers:
        lanes.insert(0, transfers)
    if len(lanes) == 1:
        return [t.number for t in lanes[0]]
    return [t.number for t in heapq.merge(*lanes, key=lambda t: rank(t, guard))]


def _lane_numbers(state: HallState, key: tuple[str, str], orders: Orders | None) -> list[str]:
    lane = state.lanes[key]
    if orders is None:
        return [t.number for t in lane]
    cuts = state.lane_cuts.get(key, 0)
    kept = orders.get(key)
    if kept is not None and kept[0] == cuts and kept[1] is lane and len(kept[2]) <= len(lane):
        numbers = kept[2]
        grew = len(lane) - len(numbers)
        if not grew:
            return numbers
        # a new list (one handed out before is never changed: a payload already made keeps its order)
        numbers = numbers + [t.number for t in islice(reversed(lane), grew)][::-1]
    else:
        numbers = [t.number for t in lane]
    orders[key] = (cuts, lane, numbers)
    return numbers


def oldest_waiting(state: HallState, category: str) -> datetime | None:
    """When the longest-waiting ticket of ``category``'s queue was taken (the dashboard's long-wait alert)."""
    heads = [lane[0].issued_at for cls in LANE_CLASSES if (lane := state.lanes[(category, cls)])]
    heads += [t.issued_at for t in state.transfers if t.to_window is None and t.queue == category]
    return min(heads) if heads else None


def window_state(state: HallState, no: int) -> WindowState:
    """The ``window/{n}/state`` payload."""
    w = state.windows[no]
    t = state.tickets.get(w.current) if w.current else None
    ticket = None
    if t is not None and t.called_at is not None:
        ticket = CalledTicket(number=t.number, category=t.category, called_at=t.called_at, recalls=t.recalls)
    last = None
    if w.last is not None and w.last.ended_at is not None:
        last = LastService(number=w.last.number, outcome=w.last.outcome, ended_at=w.last.ended_at)  # type: ignore[arg-type]
    return WindowState(window=no, status=w.status, ticket=ticket, staff=w.staff, last=last)  # type: ignore[arg-type]


def board(state: HallState) -> Board:
    """The ``board`` payload: the last calls, newest first."""
    return Board(calls=list(state.board))

