"""The waiting-time model: how long a new ticket will wait, and the range the ticket shows.

:func:`wait_estimate` gives the minutes (:func:`estimate_wait` alone) and a range such as 15–25 minutes;
:func:`observe` feeds each realised wait back, :func:`learn` each measured service time.

The point estimate plays the dispatch policy (:mod:`.dispatch`) forward; the range is the estimate's own
recent error, measured on today's calls (see :func:`estimate` for both).
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .dispatch import Waiting, callable_now, eligible, rank
from .state import APPOINTMENT, NORMAL, HallState, TicketRec, WindowRec, due_at, lane_class

#: Prior of the mean service time (minutes) before a category has any measured service.
SERVICE_PRIOR_MIN = 6.0
#: Weight of the newest service time in the exponentially weighted mean.
SERVICE_ALPHA = 0.1
#: Measured service times are clipped to this range (minutes) before they enter the mean.
SERVICE_CLIP_MIN = (0.25, 90.0)
#: Above this many waiting tickets the estimate uses the closed formula instead of playing dispatch forward.
SIMULATE_MAX_WAITING = 400

#: The range: the 10th and 90th percentile of the recent relative errors (so 80 % of waits fall inside).
RANGE_QUANTILES = (0.10, 0.90)
#: Relative error of a realised wait ``w`` against the estimate ``e``: ``(w - e) / (e + RANGE_SCALE_MIN)``
#: (a short estimate is off by minutes, a long one by a share of itself).
RANGE_SCALE_MIN = 5.0
#: How many of the latest calls the range learns from, and how many it needs before it trusts them.
RANGE_WINDOW = 150
RANGE_MIN_SAMPLES = 20
#: Relative errors assumed before that (10th, 90th percentile): measured on simulated days that the
#: benchmark does not report (seeds 101–110 at loads 0.75, 0.85, 0.95: -0.245 and 0.489).
RANGE_PRIOR = (-0.25, 0.49)
#: The range is shown in whole steps of this many minutes ("约 15–25 分钟").
RANGE_STEP_MIN = 5


@dataclass(frozen=True, slots=True)
class Estimate:
    """A new ticket's expected wait: ``minutes`` (what ``est_wait_min`` says), the range ``low``–``high``
    shown on the ticket, and the model's unrounded figure ``raw`` (the range learns from it)."""

    minutes: int
    low: int
    high: int
    raw: float


@dataclass(slots=True)
class _NewTicket:
    """The ticket being estimated, as the dispatch policy sees it (not yet in a lane)."""

    seq: int
    issued_at: datetime
    priority: str | None
    queue: str
    to_window: int | None = None
    transferred_at: datetime | None = None
    slot_start: datetime | None = None


def wait_estimate(state: HallState, category: str, ahead: int, now: datetime, ticket: Waiting | None = None) -> Estimate:
    """How long a new ticket of ``category`` will wait before it is called, in wall-clock minutes.

    ``ticket`` is the new ticket (not yet queued); None means a normal ticket issued ``now`` (what the
    ``queue`` topic shows). ``ahead`` is how many tickets of its queue go before it.

    The point estimate plays the dispatch policy forward with expected service times:

    - Service time ``s(c)`` of a category: an exponentially weighted mean of the time windows spent on its
      calls (call to finish, also for no-shows and transfers; weight 0.1 for the newest, clipped to
      0.25–90 min), from a 6-minute prior; kept across midnight and rebuilt from the record on restart.
    - Servers: the open windows (a clerk signed in, not paused). A window serving a ticket is free at
      ``called_at + s(c)`` (or a quarter service from now, if that has passed); an idle one now. If no
      window serving the category is open (before the clerks sign in), every window serving it counts,
      free now.
    - Then, like the real ``next``: the window that is free first takes the first ticket in dispatch order
      (:func:`~.dispatch.rank`) it may serve and that is due by then, and is busy for that ticket's
      ``s(c)``. Tickets of other categories compete for shared windows exactly as they will. The estimate
      is the moment the new ticket is taken.
    - A normal ticket can still be passed by precedence tickets (priority, appointments) that become due
      within the guard after it: their expected service (each category's rate of such tickets today times
      the horizon, at the windows it shares with this category) is added, spread over the windows serving
      the category (:func:`_precedence_arrivals`).
    - With more than :data:`SIMULATE_MAX_WAITING` tickets waiting, a closed formula stands in:
      ``(ahead + 0.5) * s / k``, where ``k`` sums, over the open windows serving the category, the share
      of the window the category gets ((waiting in it + 1) / Σ over the window's categories (waiting + 1)).
    - Clerks serve every number taken before a break or closing time, so the estimate does not add the
      lunch break. ``minutes`` is the figure rounded up.

    The range is the model's recent error (a split-conformal interval): for the last
    :data:`RANGE_WINDOW` tickets called today, the relative error ``(wait - raw) / (raw + 5)``;
    its 10th and 90th percentiles, applied to this ``raw``, give the range, widened to whole
    :data:`RANGE_STEP_MIN`-minute steps and to include ``minutes``. Before :data:`RANGE_MIN_SAMPLES` calls
    it uses :data:`RANGE_PRIOR`. So when the model runs short (a morning rush), the range moves up with
    what the hall really did.
    """
    raw = _raw(state, category, ahead, now, ticket)
    minutes = max(0, math.ceil(raw - 1e-9))
    errors = [(w - e) / (e + RANGE_SCALE_MIN) for e, w in state.wait_errors]
    if len(errors) >= RANGE_MIN_SAMPLES:
        errors.sort()
        zlo, zhi = (_quantile(errors, q) for q in RANGE_QUANTILES)
    else:
        zlo, zhi = RANGE_PRIOR
    scale = raw + RANGE_SCALE_MIN
    step = RANGE_STEP_MIN
    low = max(0, math.floor(min(raw + zlo * scale, minutes) / step) * step)
    high = max(math.ceil(max(raw + zhi * scale, minutes) / step) * step, low + step)
    return Estimate(minutes, low, high, raw)


def estimate_wait(state: HallState, category: str, ahead: int, now: datetime, ticket: Waiting | None = None) -> int:
    """The minutes of :func:`wait_estimate` alone."""
    return wait_estimate(state, category, ahead, now, ticket).minutes


def observe(state: HallState, t: TicketRec, now: datetime) -> None:
    """A ticket's first call: its realised wait against its estimate feeds the range."""
    e = t.est_raw if t.est_raw is not None else float(t.est_wait_min)
    state.wait_errors.append((e, max((now - t.issued_at).total_seconds() / 60, 0.0)))


def learn(state: HallState, category: str, took: timedelta) -> None:
    """Feed one measured service (call to finish) of ``category`` into its mean."""
    x = min(max(took.total_seconds() / 60, SERVICE_CLIP_MIN[0]), SERVICE_CLIP_MIN[1])
    s = state.service_min.get(category, SERVICE_PRIOR_MIN)
    state.service_min[category] = s + SERVICE_ALPHA * (x - s)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank ``q``-quantile (0 < q <= 1) of sorted values."""
    return sorted_values[max(math.ceil(q * len(sorted_values)) - 1, 0)]


def _raw(state: HallState, category: str, ahead: int, now: datetime, ticket: Waiting | None) -> float:
    w_serving = [w for w in state.windows.values() if category in w.categories]
    if not w_serving:
        return 0.0
    servers = [w for w in state.windows.values() if w.staff is not None and not w.paused]
    fresh = not any(category in w.categories for w in servers)
    if fresh:
        servers = w_serving
    new = ticket if ticket is not None else _NewTicket(state.hall_seq + 1, now, None, category)
    due_in = max((due_at(new) - now).total_seconds() / 60, 0.0) if lane_class(new) == APPOINTMENT else 0.0
    if (not fresh and ahead == 0 and due_in == 0
            and any(w.current is None for w in servers if category in w.categories)):
        return 0.0
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
        minutes = max((ahead + 0.5) * state.service_min.get(category, SERVICE_PRIOR_MIN) / k, due_in)
    if lane_class(new) == NORMAL and state.lead:
        horizon = min(minutes, state.lead.total_seconds() / 60, _open_for(state, now))
        minutes += _precedence_arrivals(state, category, servers, horizon, now)
    return minutes


def _open_for(state: HallState, now: datetime) -> float:
    """Minutes until the hall stops issuing numbers (the end of the opening span ``now`` is in): nobody
    takes a ticket after that, so no later ticket can go ahead. Unbounded without opening hours."""
    if not state.cfg.hall.hours:
        return math.inf
    t = now.time()
    for a, b in state.cfg.open_intervals():
        if a <= t and (b is None or t < b):
            if b is None:
                return (24 * 60) - (t.hour * 60 + t.minute + t.second / 60)
            return (b.hour * 60 + b.minute) - (t.hour * 60 + t.minute + t.second / 60)
    return 0.0


def _precedence_arrivals(state: HallState, category: str, servers: list[WindowRec], horizon: float,
                         now: datetime) -> float:
    """Expected minutes that precedence tickets arriving within ``horizon`` minutes add to a normal ticket's wait.

    A precedence ticket due within the guard after a normal one goes before it. Each category's rate of
    them is today's priority and appointment tickets over the time since the first ticket (at least
    30 min); the service such arrivals need at the windows shared with ``category`` is spread over the
    open windows serving ``category``.
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
    """Minutes from ``now`` until ``new`` is called, dispatching with expected service times."""
    s = state.service_min
    guard = state.lead
    cands: list[Any] = [t for lane in state.lanes.values() for t in lane]
    cands += state.transfers
    cands.append(new)
    cands.sort(key=lambda t: rank(t, guard))
    # appointments not due yet: skipped until the simulated time reaches their slot
    later = {id(t): (due_at(t) - now).total_seconds() / 60 for t in cands if not callable_now(t, now)}
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
        pos[no] = i  # everything before i is taken or not for this window, for good
        j = i
        while j < n and (taken[j] or not eligible(cands[j], no, w.categories) or later.get(id(cands[j]), 0.0) > free):
            j += 1
        if j == n:
            if i < n:  # only appointments that are not due yet: look again when the next one is
                nxt = min(later[id(cands[k])] for k in range(i, n)
                          if not taken[k] and id(cands[k]) in later and eligible(cands[k], no, w.categories))
                heapq.heappush(heap, (nxt, no))
            continue
        t = cands[j]
        if t is new:
            return free
        taken[j] = True
        heapq.heappush(heap, (free + s.get(t.queue, SERVICE_PRIOR_MIN), no))
    return 0.0
