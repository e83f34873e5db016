"""The waiting-time model: how long a new ticket will wait (see :func:`estimate_wait`).

Service times are learnt here too (:func:`learn`: an exponentially weighted mean per category).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .dispatch import Waiting, dispatch_key, eligible
from .state import HallState, WindowRec

#: Prior of the mean service time (minutes) before a category has any measured service.
SERVICE_PRIOR_MIN = 6.0
#: Weight of the newest service time in the exponentially weighted mean.
SERVICE_ALPHA = 0.1
#: Measured service times are clipped to this range (minutes) before they enter the mean.
SERVICE_CLIP_MIN = (0.25, 90.0)
#: Above this many waiting tickets the estimate uses the closed formula instead of playing dispatch forward.
SIMULATE_MAX_WAITING = 400


@dataclass(slots=True)
class _NewTicket:
    """The ticket being estimated, as the dispatch policy sees it (not yet in a lane)."""

    seq: int
    issued_at: datetime
    priority: str | None
    queue: str
    to_window: int | None = None
    transferred_at: datetime | None = None


def estimate_wait(state: HallState, category: str, ahead: int, now: datetime,
                  ticket: Waiting | None = None) -> int:
    """Minutes until a new ticket of ``category`` is called (an estimate), counted in wall-clock minutes.

    ``ticket`` is the new ticket (not yet queued); None means a normal ticket issued ``now`` (what the
    ``queue`` topic shows). ``ahead`` is how many tickets of its queue go before it.

    Method: play the dispatch policy forward, with expected service times.

    - Service time ``s(c)`` of a category: an exponentially weighted mean of the time windows spent on its
      calls (call to finish, also for no-shows and transfers; weight 0.1 for the newest, clipped to
      0.25–90 min), from a 6-minute prior; kept across midnight and rebuilt from the record on restart.
    - Servers: the open windows (a clerk signed in, not paused). A window serving a ticket is free at
      ``called_at + s(c)`` (or a quarter service from now, if that has passed); an idle one now. If no
      window serving the category is open (before the clerks sign in), every window serving it counts,
      free now.
    - Then, like the real ``next``: the window that is free first takes the first ticket in dispatch order
      (:func:`dispatch_key`) it may serve, and is busy for that ticket's ``s(c)``. Tickets of other
      categories compete for shared windows exactly as they will. The estimate is the moment the new
      ticket is taken.
    - A normal ticket can still be passed by priority tickets taken within ``lead`` minutes after it:
      their expected service (each category's priority rate today times the horizon, at the windows it
      shares with this category) is added, spread over the windows serving the category
      (:func:`_priority_arrivals`).
    - With more than :data:`SIMULATE_MAX_WAITING` tickets waiting, a closed formula stands in:
      ``(ahead + 0.5) * s / k``, where ``k`` sums, over the open windows serving the category, the share
      of the window the category gets ((waiting in it + 1) / Σ over the window's categories (waiting + 1)).
    - Clerks serve every number taken before a break or closing time, so the estimate does not add the
      lunch break.

    On the demo's simulated day (``bench/bench_controller_dispatch.py``) this gives a mean absolute error
    of about 3 minutes; the closed formula alone gave about 7.
    """
    w_serving = [w for w in state.windows.values() if category in w.categories]
    if not w_serving:
        return 0
    servers = [w for w in state.windows.values() if w.staff is not None and not w.paused]
    fresh = not any(category in w.categories for w in servers)
    if fresh:
        servers = w_serving
    elif ahead == 0 and any(w.current is None for w in servers if category in w.categories):
        return 0
    new = ticket if ticket is not None else _NewTicket(state.hall_seq + 1, now, None, category)
    if state.waiting_total <= SIMULATE_MAX_WAITING:
        minutes = _play_forward(state, servers, new, now, fresh)
    else:
        k = 0.0
        counts: dict[str, int] = {}
        for w in servers:
            if category in w.categories:
                for c in w.categories:
                    if c not in counts:
                        counts[c] = state.waiting_count(c)
                k += (counts[category] + 1) / sum(counts[c] + 1 for c in w.categories)
        minutes = (ahead + 0.5) * state.service_min.get(category, SERVICE_PRIOR_MIN) / k
    if new.priority is None and state.lead:
        minutes += _priority_arrivals(state, category, servers, min(minutes, state.lead.total_seconds() / 60), now)
    return max(0, math.ceil(minutes - 1e-9))


def _priority_arrivals(state: HallState, category: str, servers: list[WindowRec], horizon: float,
                       now: datetime) -> float:
    """Expected minutes that priority tickets arriving within ``horizon`` minutes add to a normal ticket's wait.

    A priority ticket taken within ``lead`` minutes after a normal one goes before it. Each category's
    priority rate is today's priority tickets over the time since the first ticket (at least 30 min); the
    service such arrivals need at the windows shared with ``category`` is spread over the open windows
    serving ``category``.
    """
    if state.first_issue is None or not state.priority_issued:
        return 0.0
    elapsed = max((now - state.first_issue).total_seconds() / 60, 30.0)
    mine = [w for w in servers if category in w.categories]
    if not mine:
        return 0.0
    extra = 0.0
    for c, n in state.priority_issued.items():
        serving_c = [w for w in servers if c in w.categories]
        if not serving_c:
            continue
        shared = sum(1 for w in serving_c if category in w.categories) / len(serving_c)
        extra += n / elapsed * horizon * state.service_min.get(c, SERVICE_PRIOR_MIN) * shared
    return extra / len(mine)


def _play_forward(state: HallState, servers: list[WindowRec], new: Waiting, now: datetime, fresh: bool) -> float:
    """Open minutes from ``now`` until ``new`` is called, dispatching with expected service times."""
    s = state.service_min
    lead = state.lead
    cands: list[Any] = [t for lane in state.lanes.values() for t in lane]
    cands += state.transfers
    cands.append(new)
    cands.sort(key=lambda t: dispatch_key(t, lead))
    heap: list[tuple[float, int]] = []
    for w in servers:
        free = 0.0
        cur = state.tickets.get(w.current) if (w.current and not fresh) else None
        if cur is not None and cur.called_at is not None:
            mean = s.get(cur.queue, SERVICE_PRIOR_MIN)
            elapsed = (now - cur.called_at).total_seconds() / 60
            free = mean - elapsed if elapsed < mean else 0.25 * mean
        heap.append((free, w.no))
    heapq.heapify(heap)
    taken = [False] * len(cands)
    pos = {w.no: 0 for w in servers}
    n = len(cands)
    while heap:
        free, no = heapq.heappop(heap)
        w = state.windows[no]
        i = pos[no]
        while i < n and (taken[i] or not eligible(cands[i], no, w.categories)):
            i += 1
        pos[no] = i
        if i == n:
            continue  # nothing more this window may take
        t = cands[i]
        if t is new:
            return free
        taken[i] = True
        heapq.heappush(heap, (free + s.get(t.queue, SERVICE_PRIOR_MIN), no))
    return 0.0


def learn(state: HallState, category: str, took: timedelta) -> None:
    """Feed one measured service (call to finish) of ``category`` into its mean."""
    x = min(max(took.total_seconds() / 60, SERVICE_CLIP_MIN[0]), SERVICE_CLIP_MIN[1])
    s = state.service_min.get(category, SERVICE_PRIOR_MIN)
    state.service_min[category] = s + SERVICE_ALPHA * (x - s)

