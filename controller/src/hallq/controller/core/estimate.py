"""The waiting-time model: how long a new ticket will wait, and the range the ticket shows.

:func:`wait_estimate` gives the minutes (:func:`estimate_wait` alone) and a range such as 15–25 minutes;
:func:`observe` feeds each realised wait back, :func:`learn` each measured service time.

The point estimate plays the dispatch policy (:mod:`.dispatch`) forward; the range is the estimate's own
recent error, measured on today's calls (see :func:`estimate` for both).
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import repeat
from typing import Any

from . import dispatch
from .dispatch import Waiting, callable_now, eligible, rank
from .state import APPOINTMENT, NORMAL, BookingRec, HallState, TicketRec, WindowRec, due_at, lane_class

#: Prior of the mean service time (minutes) before a category has any measured service.
SERVICE_PRIOR_MIN = 6.0
#: Weight of the newest service time in the exponentially weighted mean.
SERVICE_ALPHA = 0.1
#: Measured service times are clipped to this range (minutes) before they enter the mean.
SERVICE_CLIP_MIN = (0.25, 90.0)
#: The estimate is the median of this many played days (see :func:`wait_estimate`) ...
SAMPLES = 15
#: ... while at most this many tickets wait (above, one play with mean services: a take stays cheap).
SAMPLE_MAX_WAITING = 150
#: How many of a category's latest measured services the played days draw from, and how many it needs
#: before it draws from them (until then every service takes the mean).
SERVICE_KEPT = 80
SERVICE_MIN_SAMPLES = 12
#: Priority tickets' rate: their takes over the last this many minutes (at least ``ARRIVAL_MIN_SPAN_MIN``).
ARRIVAL_WINDOW_MIN = 60
ARRIVAL_MIN_SPAN_MIN = 30
#: Share of the booked citizens who come, before any of today's slots is over: (came + 9) / (past + 10).
SHOW_PRIOR = (9.0, 10.0)
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


def wait_estimate(state: HallState, category: str, ahead: int, now: datetime, ticket: Waiting | None = None,
                  samples: int = SAMPLES) -> Estimate:
    """How long a new ticket of ``category`` will wait before it is called, in wall-clock minutes.

    ``ticket`` is the new ticket (not yet queued); None means a normal ticket issued ``now`` (what the
    ``queue`` topic shows). ``ahead`` is how many tickets of its queue go before it.

    The point estimate plays the dispatch policy forward, :data:`SAMPLES` times, and takes the median of
    the played waits (the figure that is off by the fewest minutes on average):

    - Servers: the open windows (a clerk signed in, not paused). An idle one is free now; a window serving
      a ticket is free when that service ends. If no window serving the category is open (before the
      clerks sign in), every window serving it counts, free now.
    - Then, like the real ``next``: the window that is free first takes the first ticket in dispatch order
      (:func:`~.dispatch.rank`) it may serve and that is due by then, and is busy for that ticket's
      service. Tickets of other categories compete for shared windows exactly as they will; a window
      keeps itself free for an appointment due within :data:`~.dispatch.HOLD` whose holder has checked in
      by then (dispatch rule 6, each appointment held for once; never for a holder still to come, as the
      hall cannot). The wait is the moment the new ticket is taken.
    - A service may send its ticket on (a transfer): each measured service is kept with the category it
      sent its ticket on to, if any, and a played service drawn from them does the same; the transferred
      ticket then goes first at the windows of that category (dispatch rule 1), served as long as one of
      that category's measured services that ended there.
    - Service times are drawn from the category's latest :data:`SERVICE_KEPT` measured services (call to
      finish, so no-shows, recalls and transfers are in them; kept across midnight and rebuilt from the
      record on restart), a current service from those longer than it has lasted so far. Until a category
      has :data:`SERVICE_MIN_SAMPLES` of them, its services take its mean (``s(c)``: the mean of its first
      ten services and a 6-minute prior, then an exponentially weighted mean, weight 0.1 for the newest;
      services clipped to 0.25–90 min; see :func:`learn`; a current
      service ends at ``called_at + s(c)``, or a quarter service from now if that has passed).
    - The tickets that will pass this one come too: priority tickets at each category's rate of the last
      hour (:func:`priority_rates`, a Poisson stream), and today's booked appointments not yet checked in,
      each at a check-in drawn from how early or late today's holders came against their slot, if at all
      (today's show rate); none after the hall stops issuing numbers, none later than the guard.
    - With nothing random to draw (no measured spread, nobody expected) one play is the estimate; so it is
      with more than :data:`SAMPLE_MAX_WAITING` waiting, and for the ``queue`` topic (``samples=1``).
      Each estimate draws from its own seed (the day, the ticket, the moment): the same state gives the
      same answer.
    - With more than :data:`SIMULATE_MAX_WAITING` tickets waiting, a closed formula stands in:
      ``(ahead + 0.5) * s / k``, where ``k`` sums, over the open windows serving the category, the share
      of the window the category gets ((waiting in it + 1) / Σ over the window's categories (waiting + 1)),
      plus the expected service of the priority tickets still to come, spread over those windows.
    - Clerks serve every number taken before a break or closing time, so the estimate does not add the
      lunch break. ``minutes`` is the figure rounded up.

    Measured on the benchmark's days (``bench/bench_controller_dispatch.py``, loads 0.75 / 0.85 / 0.95),
    the error (2.2 / 3.3 / 4.0 min) is mostly what nobody knows at the take. Its largest single part is
    how much longer the services under way will last: knowing that alone takes the error to 1.5 / 2.5 /
    3.1; knowing the services of the tickets waiting instead, to 1.9 / 2.8 / 3.3; both, 1.0 / 1.8 / 2.2;
    and knowing also the priority tickets and holders still to come and the transfers, 0.6 / 0.9 / 1.1
    (what is left: where the play still differs from the hall, and the rounding up). The model's own
    floor (the mean distance of its plays from their median: what no figure from the same knowledge beats
    if days go as the plays do) is 1.7 / 2.6 / 3.2. Keeping windows free only for holders who have
    checked in, and playing the transfers, made the play match the hall better (with everything else
    known, its unrounded error at 0.85 went from 0.82 to 0.46 min in a trial) but moved the estimate's
    error by 0.05 min at most: the spread of the services dominates (``controller/README.md``).

    The number of plays (:data:`SAMPLES`) is not what holds the error up. Measured on the same days (mean
    of seeds 1–10; 2026-12-01, main 6ca2a2a, load average 2.9–4.9), the error at 15 / 31 / 45 / 61 plays:
    2.24 / 2.18 / 2.17 / 2.16 at 0.75, 3.30 / 3.24 / 3.22 / 3.20 at 0.85, 3.98 / 3.89 / 3.86 / 3.85 at
    0.95; on the held-out seeds 11–30, 15 -> 31 plays: 2.51 -> 2.46, 3.43 -> 3.38, 4.37 -> 4.35. A take's
    estimate costs twice or four times as much (p95 at 0.75 / 0.85 / 0.95: 2.7 / 3.9 / 4.5 ms with 15,
    5.6 / 8.4 / 9.4 with 31, 10.9 / 16.2 / 19.8 with 61; p99 at 0.95 11.8 / 15.4 / 45.1 ms; a Raspberry
    Pi takes several times that, for every take and every take of a burst, out of the kiosk's tap-to-number
    p95 of 150 ms). 0.03–0.1 min less meets no target, so the estimate keeps 15 plays. The plays are
    close to calibrated: where the realised wait falls among a take's 15 plays is near uniform (below
    every play 7.8 % / 7.4 % of the takes at 0.85 / 0.95, above every play 9.1 % / 10.4 %, against
    6.25 %), a little narrow on the long side. Drawing the end of a service under way from a lognormal
    fitted to the category's kept services (beyond the longest kept ones, or always) instead of from the
    kept ones: 3.30 -> 3.28 / 3.27 at 0.85, 3.98 -> 3.95 at 0.95 (seeds 1–10); not kept.

    The range is the model's recent error (a split-conformal interval): for the last
    :data:`RANGE_WINDOW` tickets called today, the relative error ``(wait - raw) / (raw + 5)``;
    its 10th and 90th percentiles, applied to this ``raw``, give the range, widened to whole
    :data:`RANGE_STEP_MIN`-minute steps and to include ``minutes``. Before :data:`RANGE_MIN_SAMPLES` calls
    it uses :data:`RANGE_PRIOR`. So when the model runs short (a morning rush), the range moves up with
    what the hall really did.
    """
    raw = _raw(state, category, ahead, now, ticket, samples)
    minutes = max(0, math.ceil(raw - 1e-9))
    zlo, zhi = _range_quantiles(state)
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


def learn(state: HallState, category: str, took: timedelta, to: str | None = None) -> None:
    """Feed one measured service (call to finish) of ``category`` into its mean (``to``: the category a
    transfer sent the ticket on to, kept beside it for the played days): the plain mean of its
    services so far and the prior (counted as one service) until it has ``1 / SERVICE_ALPHA`` of them, then
    the exponentially weighted mean (an EWMA from the prior alone stays near the prior for the first
    hour: a category whose services take 15 min was estimated at 10 after five of them)."""
    x = min(max(took.total_seconds() / 60, SERVICE_CLIP_MIN[0]), SERVICE_CLIP_MIN[1])
    kept = state.service_recent.get(category)
    if kept is None:
        kept = state.service_recent[category] = deque(maxlen=SERVICE_KEPT)
    kept.append(x)
    dest = state.service_to.get(category)
    if dest is None or not (len(dest) == len(kept) - 1 or len(dest) == len(kept) == SERVICE_KEPT):
        dest = state.service_to[category] = deque([None] * (len(kept) - 1), maxlen=SERVICE_KEPT)
    dest.append(to)
    s = state.service_min.get(category, SERVICE_PRIOR_MIN)
    if len(kept) * SERVICE_ALPHA < 1:
        state.service_min[category] = (SERVICE_PRIOR_MIN + sum(kept)) / (len(kept) + 1)
    else:
        state.service_min[category] = s + SERVICE_ALPHA * (x - s)


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank ``q``-quantile (0 < q <= 1) of sorted values."""
    return sorted_values[max(math.ceil(q * len(sorted_values)) - 1, 0)]


def _raw(state: HallState, category: str, ahead: int, now: datetime, ticket: Waiting | None,
         samples: int) -> float:
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
    if state.waiting_total > SIMULATE_MAX_WAITING:
        k = 0.0
        n = state.waiting_count(category)
        waiting, zeros = state.waiting_in.get, repeat(0)  # (waiting_count, summed in C: the same integers)
        for w in servers:
            if category in w.categories:
                k += (n + 1) / (sum(map(waiting, w.categories, zeros)) + len(w.categories))
        minutes = max((ahead + 0.5) * state.service_min.get(category, SERVICE_PRIOR_MIN) / k, due_in)
        if lane_class(new) == NORMAL and state.lead:
            horizon = min(minutes, state.lead.total_seconds() / 60, _open_for(state, now))
            minutes += _precedence_work(state, category, servers, horizon, now)
        return minutes
    play = _Play(state, servers, new, now, fresh)
    if samples <= 1 or not play.random or state.waiting_total > SAMPLE_MAX_WAITING:
        return play.run(None)
    rng = random.Random(f"{state.day} {new.seq} {category} {now.isoformat()}")
    waits = sorted(play.run(rng) for _ in range(samples))
    return waits[len(waits) // 2]


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


def priority_rates(state: HallState, now: datetime) -> dict[str, float]:
    """Priority tickets (elderly, disabled, pregnant, military) taken per minute, per category: their takes
    in the last :data:`ARRIVAL_WINDOW_MIN` minutes over that span (at least :data:`ARRIVAL_MIN_SPAN_MIN`
    minutes, or since today's first ticket if that is less long ago)."""
    if state.first_issue is None:
        return {}
    since = now - timedelta(minutes=ARRIVAL_WINDOW_MIN)
    open_min = (now - state.first_issue).total_seconds() / 60
    span = min(float(ARRIVAL_WINDOW_MIN), max(open_min, float(ARRIVAL_MIN_SPAN_MIN)))
    counts: dict[str, int] = {}
    for at, c, _ in state.priority_recent:  # the priority takes of ``issues_recent``, in its order
        if since <= at <= now:
            counts[c] = counts.get(c, 0) + 1
    return {c: n / span for c, n in counts.items()}


def _precedence_work(state: HallState, category: str, servers: list[WindowRec], horizon: float,
                     now: datetime) -> float:
    """Expected minutes that priority tickets taken within ``horizon`` minutes add to a normal ticket's
    wait (the closed formula's stand-in for playing them): their service at the windows shared with
    ``category``, spread over the open windows serving it."""
    mine = [w for w in servers if category in w.categories]
    if not mine:
        return 0.0
    extra = 0.0
    for c, rate in priority_rates(state, now).items():
        serving_c = [w for w in servers if c in w.categories]
        if serving_c:
            shared = sum(1 for w in serving_c if category in w.categories) / len(serving_c)
            extra += rate * horizon * state.service_min.get(c, SERVICE_PRIOR_MIN) * shared
    return extra / len(mine)


class _Play:
    """Dispatch played forward from ``now`` until ``new`` is called (see :func:`wait_estimate`).

    :meth:`run` plays one day: with ``rng`` None, every service takes its category's mean and nobody
    else comes; with an ``rng``, services are drawn from the category's measured ones (when there are
    enough), the window's current service from those longer than it has lasted so far, and the tickets
    that will pass ``new`` come: priority tickets at today's recent rate (a Poisson stream) and the day's
    booked appointments not yet checked in, at a check-in time drawn from today's check-ins (how early or
    late against the slot), if at all (today's show rate)."""

    def __init__(self, state: HallState, servers: list[WindowRec], new: Waiting, now: datetime, fresh: bool):
        self.state, self.servers, self.new, self.now, self.fresh = state, servers, new, now, fresh
        self.guard = state.lead
        cands: list[Any] = [t for lane in state.lanes.values() for t in lane]
        cands += state.transfers
        cands.append(new)
        cands.sort(key=lambda t: rank(t, self.guard))
        self.cands = cands
        # appointments not due yet: skipped until the simulated time reaches their slot
        self.later = {id(t): (due_at(t) - now).total_seconds() / 60 for t in cands if not callable_now(t, now)}
        self.spread = {c: xs for c, xs in state.service_recent.items() if len(xs) >= SERVICE_MIN_SAMPLES}
        self.dest = {c: d for c in self.spread if (d := state.service_to.get(c)) is not None
                     and len(d) == len(self.spread[c]) and any(x is not None for x in d)}
        self.finished: dict[str, list[float]] = {}
        due_in = max((due_at(new) - now).total_seconds() / 60, 0.0)
        self.horizon = min(self.guard.total_seconds() / 60 + due_in, _open_for(state, now))
        served = {c for w in servers for c in w.categories}
        self.rates = {c: r for c, r in priority_rates(state, now).items() if c in served} if self.horizon > 0 else {}
        self.coming, self.offsets, self.show = self._bookings(served)
        self.random = bool(self.spread or self.rates or self.coming)

    def _bookings(self, served: set[str]) -> tuple[list[BookingRec], list[float], float]:
        """Today's bookings that may still check in before the horizon; today's check-ins' minutes
        against their slot's start; the share of today's past bookings that came."""
        state, now = self.state, self.now
        grace = timedelta(minutes=state.cfg.appointments.grace_min)
        until = now + timedelta(minutes=self.horizon) if self.horizon < math.inf else None
        coming: list[BookingRec] = []
        offsets: list[float] = []
        past = came = 0
        for b in state.bookings.values():
            if b.day != state.day or (b.cancelled_at is not None and b.checked_in_at is None):
                continue
            if b.checked_in_at is not None:
                offsets.append((b.checked_in_at - b.slot_start).total_seconds() / 60)
            if b.slot_end + grace < now:
                past += 1
                came += b.checked_in_at is not None
            elif b.checked_in_at is None and b.category in served and (until is None or b.slot_start < until):
                coming.append(b)
        return coming, offsets, (came + SHOW_PRIOR[0]) / (past + SHOW_PRIOR[1])

    def served(self, t: Any, rng: random.Random | None) -> tuple[float, str | None, float]:
        """Minutes the window the play gives ``t`` is busy with it; the category the service then sends
        ``t`` on to (a transfer; None: finished there) and how long ``t`` is served there: one of the
        category's measured services, with where it sent its ticket (the benchmark's what-ifs replace this)."""
        c = t.queue
        xs = self.spread.get(c) if rng is not None else None
        if xs is None:
            return self.state.service_min.get(c, SERVICE_PRIOR_MIN), None, 0.0
        i = int(rng.random() * len(xs))  # type: ignore[union-attr]
        dest = self.dest.get(c)
        to = dest[i] if dest is not None and t.transferred_at is None else None
        return xs[i], to, (self.second(to, rng) if to is not None else 0.0)  # type: ignore[arg-type]

    def current(self, cur: TicketRec, rng: random.Random | None) -> tuple[float, str | None, float]:
        """Minutes until the window serving ``cur`` is free, as :meth:`served` for the service under way."""
        mean = self.state.service_min.get(cur.queue, SERVICE_PRIOR_MIN)
        elapsed = (self.now - cur.called_at).total_seconds() / 60  # type: ignore[operator]
        xs = self.spread.get(cur.queue) if rng is not None else None
        if xs is not None:
            dest = self.dest.get(cur.queue)
            longer = [i for i, x in enumerate(xs) if x > elapsed]
            if longer:
                i = longer[int(rng.random() * len(longer))]  # type: ignore[union-attr]
                again = dest is not None and len(cur.calls) <= 1  # a ticket served after a transfer stays
                to = dest[i] if again else None  # type: ignore[index]
                return xs[i] - elapsed, to, (self.second(to, rng) if to is not None else 0.0)  # type: ignore[arg-type]
            return 0.25 * mean, None, 0.0
        return (mean - elapsed if elapsed < mean else 0.25 * mean), None, 0.0

    def second(self, c: str, rng: random.Random) -> float:
        """Minutes a transferred ticket is served at ``c``: one of ``c``'s measured services that ended there."""
        xs = self.finished.get(c)
        if xs is None:
            spread = self.spread.get(c)
            dest = self.dest.get(c)
            if spread is None:
                xs = []
            else:
                xs = [x for k, x in enumerate(spread) if dest is None or dest[k] is None] or list(spread)
            self.finished[c] = xs
        if not xs:
            return self.state.service_min.get(c, SERVICE_PRIOR_MIN)
        return xs[int(rng.random() * len(xs))]

    def _arrivals(self, rng: random.Random) -> tuple[list[Any], dict[int, float]]:
        """One draw of the precedence tickets still to come, and the minutes until each may be called."""
        out: list[Any] = []
        later: dict[int, float] = {}
        seq = self.state.hall_seq + 10_000
        for c, rate in self.rates.items():
            t = rng.expovariate(rate)
            while t < self.horizon:
                seq += 1
                x = _NewTicket(seq, self.now + timedelta(minutes=t), "elderly", c)
                out.append(x)
                later[id(x)] = t
                t += rng.expovariate(rate)
        if self.coming:
            grace = timedelta(minutes=self.state.cfg.appointments.grace_min)
            for b in self.coming:
                if rng.random() >= self.show:
                    continue
                since = (self.now - b.slot_start).total_seconds() / 60
                offs = [o for o in self.offsets if o > since]
                at = b.slot_start + timedelta(minutes=offs[int(rng.random() * len(offs))]) if offs else max(
                    self.now, b.slot_start)
                if at > b.slot_end + grace:
                    continue  # too late: a normal ticket
                seq += 1
                x = _NewTicket(seq, at, "appointment", b.category, slot_start=b.slot_start)
                out.append(x)
                later[id(x)] = (due_at(x) - self.now).total_seconds() / 60
        out.sort(key=lambda t: rank(t, self.guard))
        return out, later

    def run(self, rng: random.Random | None) -> float:
        """Minutes from ``now`` until ``new`` is called in one played day."""
        state, new = self.state, self.new
        cands, later = self.cands, self.later
        hold_min = dispatch.HOLD.total_seconds() / 60  # (read here: the benchmark's no-hold column sets it)
        if rng is not None and (self.rates or self.coming):
            extra, later2 = self._arrivals(rng)
            if extra:
                cands = list(heapq.merge(cands, extra, key=lambda t: rank(t, self.guard)))
                later = later | later2
        # transfers the play makes (a service that sends its ticket on): (ready at, seq, ticket, its service)
        moved: list[tuple[float, int, _NewTicket, float]] = []
        resting: set[int] = set()  # windows with nothing left to call (until a transfer comes)
        heap: list[tuple[float, int]] = []

        made = [0]

        def transfer(at: float, to: str, then: float) -> None:
            made[0] += 1
            x = _NewTicket(made[0], self.now, None, to, transferred_at=self.now)
            moved.append((at, made[0], x, then))
            for no in [no for no in resting if eligible(x, no, state.windows[no].categories)]:
                resting.discard(no)
                heapq.heappush(heap, (at, no))

        for w in self.servers:
            cur = state.tickets.get(w.current) if (w.current and not self.fresh) else None
            free, to, then = (self.current(cur, rng) if cur is not None and cur.called_at is not None
                              else (0.0, None, 0.0))
            heap.append((free, w.no))
            if to is not None:
                transfer(free, to, then)
        heapq.heapify(heap)
        n = len(cands)
        taken = [False] * n
        pos = {w.no: 0 for w in self.servers}
        # appointments not due yet, soonest first, with the minute their holder checks in: a window keeps
        # itself free for one due within HOLD whose holder has checked in by then (never for one still to come)
        booked = sorted((later[id(t)], k, (t.issued_at - self.now).total_seconds() / 60) for k, t in enumerate(cands)
                        if id(t) in later and t.transferred_at is None and lane_class(t) == APPOINTMENT)
        covered: set[int] = set()
        while heap:
            free, no = heapq.heappop(heap)
            w = state.windows[no]
            if moved:  # rule 1: a transfer that has come goes first, the oldest first
                got = min((m for m in moved if m[0] <= free and eligible(m[2], no, w.categories)), default=None)
                if got is not None:
                    moved.remove(got)
                    heapq.heappush(heap, (free + got[3], no))
                    continue
            i = pos[no]
            while i < n and (taken[i] or not eligible(cands[i], no, w.categories)):
                i += 1
            pos[no] = i  # everything before i is taken or not for this window, for good
            j = i
            while j < n and (taken[j] or not eligible(cands[j], no, w.categories)
                             or later.get(id(cands[j]), 0.0) > free):
                j += 1
            if j == n:
                # only tickets that may not be called yet (or none): look again when the next one may
                nxt = min((later[id(cands[k])] for k in range(i, n)
                           if not taken[k] and id(cands[k]) in later and eligible(cands[k], no, w.categories)),
                          default=None)
                came = min((m[0] for m in moved if eligible(m[2], no, w.categories)), default=None)
                if came is not None and (nxt is None or came < nxt):  # whichever may be called first
                    nxt = came
                if nxt is not None:
                    heapq.heappush(heap, (max(nxt, free), no))
                else:
                    resting.add(no)
                continue
            t = cands[j]
            if booked and t.transferred_at is None and lane_class(t) != APPOINTMENT:
                hold = next((k for due, k, came in booked if came <= free < due <= free + hold_min and not taken[k]
                             and k not in covered and eligible(cands[k], no, w.categories)), None)
                if hold is not None:  # dispatch rule 6: free at the appointment's due time
                    covered.add(hold)
                    heapq.heappush(heap, (later[id(cands[hold])], no))
                    continue
            if t is new:
                return free
            taken[j] = True
            took, to, then = self.served(t, rng)
            heapq.heappush(heap, (free + took, no))
            if to is not None:
                transfer(free + took, to, then)
        return 0.0


# -- how often the range's quantiles are worked out (perf: a flood of takes asks at every take) ------------
#: The last quantiles worked out and what from: (the ``wait_errors`` deque, its length, its last pair, result).
_RANGE_MEMO: list[Any] = [None]


def _range_quantiles(state: HallState) -> tuple[float, float]:
    """The :data:`RANGE_QUANTILES` of the recent relative errors ``(wait - raw) / (raw + 5)`` of
    ``state.wait_errors`` (nearest rank), or :data:`RANGE_PRIOR` before :data:`RANGE_MIN_SAMPLES` of them.

    Worked out again only when ``wait_errors`` changed (a first call appends a new pair, midnight clears
    it, a restart makes another deque): the memo keeps the deque and its last pair themselves, so a
    changed deque never looks the same. The same figures as working them out every time."""
    pairs = state.wait_errors
    last = pairs[-1] if pairs else None
    memo = _RANGE_MEMO[0]
    if memo is not None and memo[0] is pairs and memo[1] == len(pairs) and memo[2] is last:
        return memo[3]  # type: ignore[no-any-return]
    errors = [(w - e) / (e + RANGE_SCALE_MIN) for e, w in pairs]
    if len(errors) >= RANGE_MIN_SAMPLES:
        errors.sort()
        z = (_quantile(errors, RANGE_QUANTILES[0]), _quantile(errors, RANGE_QUANTILES[1]))
    else:
        z = RANGE_PRIOR
    _RANGE_MEMO[0] = (pairs, len(pairs), last, z)
    return z
