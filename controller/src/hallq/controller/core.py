"""The hall's pure core: numbers, dispatch, window operations and ratings as a state machine.

No IO here: no MQTT, no SQLite, no clock. Time is passed in (an aware ``datetime`` in the hall's time zone).

API
---
``state = new_state(cfg, now)``
    An empty hall for the day of ``now`` (``cfg`` is a checked :class:`~hallq.controller.config.HallFile`).
    After a restart, :mod:`hallq.controller.storage` rebuilds the state with :func:`restore`.

``state, fx = handle(state, event, now)``
    Apply one event. ``state`` is the same object, changed in place. A refused request changes nothing,
    with one exception: ``next`` at a window that is serving finishes that ticket even when nothing else
    waits (the answer is then ``empty``). Every answer is kept, so the same ``req`` from the same client
    gets the same answer again and changes nothing. ``event`` is one of

    - :class:`Request` ``(client, payload)``: a decoded ``TakeRequest``, ``WindowRequest`` or ``RateRequest``;
      the client's role and window come from the config's ``[[devices]]``;
    - :class:`Malformed` ``(client, req, message)``: a payload that did not decode but whose ``req`` could
      be read (answered ``bad_request``, or with the first answer if that ``req`` was answered before);
    - :class:`Tick` ``()``: time passes; at local midnight yesterday's waiting tickets end as ``expired``,
      numbering restarts, clerks are signed out. Every other event also rolls the day over first.

    ``fx`` is an :class:`Effects`: ``reply`` (client and encoded reply bytes, or None), ``calls``
    (:class:`~hallq.shared.schemas.Call` messages to publish, not retained), ``changed`` (which retained
    topics to publish again: ``"queue"``, ``"board"``, or a window number; build them with
    :func:`queue_state`, :func:`board`, :func:`window_state`), and ``records`` (the objects to persist:
    :class:`Ticket`, :class:`Visit`, :class:`WindowRec`, :class:`Rating`, :class:`StaffSession`,
    :class:`Sequence`, :class:`CachedReply`; the storage writes their state as it is at commit).

Dispatch policy (a pure function, also for simulations)
-------------------------------------------------------
:func:`dispatch_key` orders waiting tickets; :func:`pick_next` picks a window's next ticket from any
iterable of waiting tickets (anything with ``seq``, ``issued_at``, ``priority``, ``queue``, ``to_window``
and ``transferred_at`` attributes, as :class:`Waiting` says; :class:`SimTicket` is a plain one). The rules:

1. a transferred ticket aimed at this window, or at one of its categories, goes first (oldest transfer first);
2. otherwise the ticket with the longest *effective* wait: a priority ticket counts ``lead`` more than it
   has waited. Effective wait ``now - issued_at + lead`` is largest for the smallest ``issued_at - lead``,
   so the key does not depend on ``now``: it is fixed when the ticket is issued. Hence tickets of one class
   keep their order, and no ticket waits without bound: a ticket issued at ``t`` can only be passed by
   priority tickets issued before ``t + lead`` and transfers (which are tickets already served once).

The core keeps waiting tickets in FIFO lanes (per category: normal and priority; plus one list of
transfers) so a ``next`` looks only at lane heads; :func:`pick_next` over all waiting tickets gives the same
answer (a property test checks this).

Waiting-time estimate
---------------------
See :func:`estimate_wait`: the dispatch policy played forward over the waiting tickets and the open
windows (shared windows split between their categories as dispatch will split them), with each category's
exponentially weighted mean service time (prior 6 minutes), plus the priority tickets expected to arrive
and go ahead.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Protocol

from hallq.shared.schemas import (
    Board,
    Call,
    CalledTicket,
    CategoryQueue,
    Error,
    ErrorReply,
    LastService,
    QueueState,
    RateReply,
    RateRequest,
    RatingRef,
    Staff,
    TakeReply,
    TakeRequest,
    WindowReply,
    WindowRequest,
    WindowState,
    WindowTicket,
    encode,
)
from hallq.shared.schemas import Ticket as TicketOut

from .config import HallFile

#: Prior of the mean service time (minutes) before a category has any measured service.
SERVICE_PRIOR_MIN = 6.0
#: Weight of the newest service time in the exponentially weighted mean.
SERVICE_ALPHA = 0.1
#: Measured service times are clipped to this range (minutes) before they enter the mean.
SERVICE_CLIP_MIN = (0.25, 90.0)
#: How many calls the ``board`` keeps.
BOARD_SIZE = 10
#: Max ticket number per category per day (three digits).
MAX_NUMBER = 999


# == the dispatch policy ================================================================================
class Waiting(Protocol):
    seq: int  # issue order in the hall today (breaks ties)
    issued_at: datetime
    priority: str | None
    queue: str  # the category whose queue it is in (its own, or where it was transferred)
    to_window: int | None  # transferred to this window
    transferred_at: datetime | None


def dispatch_key(t: Waiting, lead: timedelta) -> tuple[int, datetime, int]:
    """Sort key of a waiting ticket: the smallest key is called first (see the module docstring)."""
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


@dataclass(slots=True)
class SimTicket:
    """A plain waiting ticket for simulations that call :func:`pick_next` directly."""

    seq: int
    issued_at: datetime
    queue: str
    priority: str | None = None
    to_window: int | None = None
    transferred_at: datetime | None = None


# == state ================================================================================================
@dataclass(slots=True, eq=False)
class Ticket:
    """One ticket of today."""

    day: date
    number: str
    category: str  # the category it was taken for
    seq: int
    issued_at: datetime
    priority: str | None = None
    channel: str | None = None
    person: str | None = None
    appointment: str | None = None
    client: str = ""
    est_wait_min: int = 0
    ahead: int = 0
    status: str = "waiting"  # waiting | called | done | noshow | transferred (waiting again) | expired
    queue: str = ""  # the category whose queue it waits in
    to_window: int | None = None
    transferred_at: datetime | None = None
    window: int | None = None  # the window calling or serving it now, else the last one
    called_at: datetime | None = None  # first call at that window
    recalls: int = 0
    first_called_at: datetime | None = None
    finished_at: datetime | None = None
    rated: bool = False
    visits: list[Visit] = field(default_factory=list)  # its calls to windows, in order

    @property
    def visit(self) -> Visit | None:
        """The current (or last) visit at a window."""
        return self.visits[-1] if self.visits else None

    def __post_init__(self) -> None:
        if not self.queue:
            self.queue = self.category

    @property
    def waiting(self) -> bool:
        return self.status in ("waiting", "transferred")


@dataclass(slots=True, eq=False)
class Visit:
    """One call of a ticket to a window, until it ends (done, noshow, transferred, expired)."""

    id: int
    day: date
    number: str
    category: str  # the ticket's category
    queue: str  # the category it was served as
    window: int
    staff_id: str | None
    staff_name: str | None
    called_at: datetime
    wait_s: float  # since issue (first visit) or since the transfer
    first: bool  # the ticket's first call
    priority: str | None = None
    recalls: int = 0
    ended_at: datetime | None = None
    outcome: str = "called"  # called | done | noshow | transferred | expired
    case_id: str | None = None
    item_code: str | None = None
    item_name: str | None = None
    case_kind: str | None = None


@dataclass(slots=True, eq=False)
class WindowRec:
    no: int
    name: str
    categories: tuple[str, ...]
    staff: Staff | None = None
    paused: bool = False
    current: str | None = None  # number being called or served
    session: StaffSession | None = None
    last: Visit | None = None  # the last visit that ended here (for ``WindowState.last``)

    @property
    def status(self) -> str:
        if self.staff is None:
            return "closed"
        if self.paused:
            return "paused"
        return "serving" if self.current else "idle"


@dataclass(slots=True, eq=False)
class StaffSession:
    id: int
    window: int
    staff_id: str
    staff_name: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(slots=True, eq=False)
class Rating:
    id: int
    day: date
    number: str
    window: int
    level: str
    at: datetime  # when it was pressed
    received_at: datetime
    client: str
    staff_id: str | None
    staff_name: str | None
    visit_id: int | None
    case_id: str | None
    item_code: str | None


@dataclass(slots=True, frozen=True)
class Sequence:
    day: date
    category: str
    last: int


@dataclass(slots=True, frozen=True)
class CachedReply:
    client: str
    req: str
    payload: bytes
    at: datetime


@dataclass(slots=True, eq=False)
class HallState:
    cfg: HallFile
    day: date
    lead: timedelta
    windows: dict[int, WindowRec]
    seq: dict[str, int] = field(default_factory=dict)  # category -> last number issued today
    hall_seq: int = 0  # tickets issued today in the hall
    tickets: dict[str, Ticket] = field(default_factory=dict)  # number -> today's ticket
    lanes: dict[tuple[str, bool], deque[Ticket]] = field(default_factory=dict)  # (category, priority)
    transfers: list[Ticket] = field(default_factory=list)  # waiting transferred tickets, in transfer order
    waiting_total: int = 0  # tickets in the lanes and transfers
    waiting_persons: set[tuple[str, str]] = field(default_factory=set)  # (category, person) waiting
    service_min: dict[str, float] = field(default_factory=dict)  # category -> EWMA of service minutes
    priority_issued: dict[str, int] = field(default_factory=dict)  # category -> priority tickets today
    first_issue: datetime | None = None  # today's first ticket
    board: deque[Call] = field(default_factory=lambda: deque(maxlen=BOARD_SIZE))
    replies: dict[tuple[str, str], CachedReply] = field(default_factory=dict)
    next_visit_id: int = 1
    next_rating_id: int = 1
    next_session_id: int = 1
    devices: dict[str, tuple[str, int | None]] | None = None  # client -> (role, window)

    def waiting_count(self, category: str) -> int:
        n = len(self.lanes[(category, False)]) + len(self.lanes[(category, True)])
        if not self.transfers:
            return n
        return n + sum(1 for t in self.transfers if t.to_window is None and t.queue == category)


def new_state(cfg: HallFile, now: datetime) -> HallState:
    """An empty hall for the day of ``now``."""
    st = HallState(
        cfg=cfg,
        day=now.date(),
        lead=timedelta(minutes=cfg.dispatch.priority_lead_min),
        windows={w.no: WindowRec(w.no, w.name, tuple(w.categories)) for w in cfg.windows},
    )
    for c in cfg.categories:
        st.lanes[(c.code, False)] = deque()
        st.lanes[(c.code, True)] = deque()
        st.service_min[c.code] = SERVICE_PRIOR_MIN
    if cfg.devices is not None:
        st.devices = {d.id: (d.role, d.window) for d in cfg.devices}
    return st


def restore(
    cfg: HallFile,
    now: datetime,
    *,
    day: date,
    tickets: Iterable[Ticket],
    visits: Iterable[Visit],
    windows: Iterable[tuple[int, Staff | None, bool, str | None, StaffSession | None]],
    sequences: dict[str, int],
    replies: Iterable[CachedReply],
    rated: Iterable[str],
    next_visit_id: int,
    next_rating_id: int,
    next_session_id: int,
    services: Iterable[tuple[str, timedelta]] = (),
    board: Iterable[Call] = (),
) -> HallState:
    """Rebuild the state from what the storage kept (``day`` is the day of the kept tickets).

    ``tickets`` and ``visits`` are that day's; the waiting ones go back into their lanes in issue order
    (transfers in transfer order). ``services`` (category, service time), oldest first, are recent
    measured services: they feed the service-time means again.
    If ``now`` is already a later day, the next :func:`handle` rolls over as at midnight.
    """
    st = new_state(cfg, datetime.combine(day, time(12), now.tzinfo))
    st.seq.update(sequences)
    st.next_visit_id, st.next_rating_id, st.next_session_id = next_visit_id, next_rating_id, next_session_id
    ts = sorted(tickets, key=lambda t: t.seq)
    by_number = {}
    for t in ts:
        by_number[t.number] = t
        st.tickets[t.number] = t
        st.hall_seq = max(st.hall_seq, t.seq)
        _count_issue(st, t)
        # (a ticket of a category the config no longer has stays waiting until midnight expires it)
        if t.waiting and (t.transferred_at is not None or (t.queue, t.priority is not None) in st.lanes):
            _enqueue(st, t)
    st.transfers.sort(key=lambda t: (t.transferred_at, t.seq))
    for v in sorted(visits, key=lambda v: v.id):
        t = by_number.get(v.number)
        if t is not None:
            t.visits.append(v)
    for v in sorted((v for t in ts for v in t.visits if v.ended_at is not None), key=lambda v: v.ended_at):
        if v.window in st.windows:
            st.windows[v.window].last = v
    for category, took in services:
        if category in st.service_min:
            _learn(st, category, took)
    for no, staff, paused, current, session in windows:
        w = st.windows.get(no)
        if w is not None:
            w.staff, w.paused, w.current, w.session = staff, paused, current, session
            if current is not None and current not in st.tickets:
                w.current = None
    for r in replies:
        st.replies[(r.client, r.req)] = r
    for number in rated:
        t = st.tickets.get(number)
        if t is not None:
            t.rated = True
    st.board.extend(board)
    return st


# == events and effects ================================================================================
@dataclass(slots=True, frozen=True)
class Request:
    client: str
    payload: TakeRequest | WindowRequest | RateRequest


@dataclass(slots=True, frozen=True)
class Malformed:
    client: str
    req: str
    message: str


@dataclass(slots=True, frozen=True)
class Tick:
    pass


Event = Request | Malformed | Tick


@dataclass(slots=True)
class Effects:
    reply: tuple[str, bytes] | None = None  # (client, reply payload)
    calls: list[Call] = field(default_factory=list)
    changed: set[str | int] = field(default_factory=set)  # "queue", "board", window numbers
    records: list[Any] = field(default_factory=list)


class Refused(Exception):
    """A request that is answered with an error and changes nothing."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def handle(state: HallState, event: Event, now: datetime) -> tuple[HallState, Effects]:
    """Apply ``event`` at ``now``; see the module docstring."""
    fx = Effects()
    if now.date() != state.day:
        _rollover(state, now, fx)
    if isinstance(event, Tick):
        return state, fx
    if isinstance(event, Malformed):
        cached = state.replies.get((event.client, event.req))
        if cached is not None:
            fx.reply = (event.client, cached.payload)
        else:
            fx.reply = (event.client, _error(event.req, "bad_request", event.message))
        return state, fx
    p = event.payload
    key = (event.client, p.req)
    cached = state.replies.get(key)
    if cached is not None:
        fx.reply = (event.client, cached.payload)
        return state, fx
    try:
        if isinstance(p, TakeRequest):
            answer = _take(state, event.client, p, now, fx)
        elif isinstance(p, WindowRequest):
            answer = _window(state, event.client, p, now, fx)
        else:
            answer = _rate(state, event.client, p, now, fx)
    except Refused as r:
        # a refusal changes nothing (the checks come before any change), except as noted for ``next``
        payload = _error(p.req, r.code, r.message)
    else:
        payload = encode(answer)
    c = CachedReply(event.client, p.req, payload, now)
    state.replies[key] = c
    fx.records.append(c)
    fx.reply = (event.client, payload)
    return state, fx


def _error(req: str, code: str, message: str) -> bytes:
    return encode(ErrorReply(req=req, error=Error(code=code, message=message)))


# -- devices ------------------------------------------------------------------------------------------
def _allowed(state: HallState, client: str, role: str, window: int | None) -> None:
    if state.devices is None:
        return
    d = state.devices.get(client)
    if d is None:
        raise Refused("not_allowed", f"{client!r} is not a device of this hall")
    if d[0] != role:
        raise Refused("not_allowed", f"{client!r} is a {d[0]} device and cannot send this request")
    if window is not None and d[1] != window:
        raise Refused("not_allowed", f"{client!r} belongs to window {d[1]}, not window {window}")


# -- take ---------------------------------------------------------------------------------------------
def is_open(state: HallState, now: datetime) -> bool:
    """Whether ``now`` falls within the opening hours (always, when none are configured)."""
    if not state.cfg.hall.hours:
        return True
    t = now.time()
    return any(a <= t and (b is None or t < b) for a, b in state.cfg.open_intervals())


def _take(state: HallState, client: str, p: TakeRequest, now: datetime, fx: Effects) -> TakeReply:
    _allowed(state, client, "kiosk", None)
    cat = state.cfg.category(p.category)
    if cat is None:
        raise Refused("unknown_category", f"there is no category {p.category!r} in this hall")
    if not is_open(state, now):
        hours = ", ".join(f"{a}–{b}" for a, b in state.cfg.hall.hours)
        raise Refused("closed", f"the hall issues numbers during its opening hours ({hours})")
    last = state.seq.get(cat.code, 0)
    quota = min(cat.daily_quota or MAX_NUMBER, MAX_NUMBER)
    if last >= quota:
        raise Refused("quota_full", f"today's {quota} numbers of {cat.name} are all taken")
    if p.person is not None and (cat.code, p.person) in state.waiting_persons:
        raise Refused("duplicate", f"this person already waits for {cat.name}")

    number = f"{cat.ticket_prefix}{last + 1:03d}"
    state.seq[cat.code] = last + 1
    state.hall_seq += 1
    t = Ticket(
        day=state.day,
        number=number,
        category=cat.code,
        seq=state.hall_seq,
        issued_at=now,
        priority=p.priority,
        channel=p.channel,
        person=p.person,
        appointment=p.appointment,
        client=client,
    )
    t.ahead = ahead_of(state, t)
    t.est_wait_min = estimate_wait(state, cat.code, t.ahead, now, t)
    state.tickets[number] = t
    _count_issue(state, t)
    _enqueue(state, t)
    fx.records.append(t)
    fx.records.append(Sequence(state.day, cat.code, last + 1))
    fx.changed.add("queue")
    return TakeReply(
        req=p.req,
        ticket=TicketOut(
            number=number,
            category=cat.code,
            priority=p.priority,
            issued_at=now,
            ahead=t.ahead,
            est_wait_min=t.est_wait_min,
        ),
    )


def _count_issue(state: HallState, t: Ticket) -> None:
    if state.first_issue is None or t.issued_at < state.first_issue:
        state.first_issue = t.issued_at
    if t.priority is not None:
        state.priority_issued[t.category] = state.priority_issued.get(t.category, 0) + 1


def _enqueue(state: HallState, t: Ticket) -> None:
    state.waiting_total += 1
    if t.transferred_at is not None:
        state.transfers.append(t)
    else:
        state.lanes[(t.queue, t.priority is not None)].append(t)
    if t.person is not None:
        state.waiting_persons.add((t.category, t.person))


def _dequeue(state: HallState, t: Ticket) -> None:
    state.waiting_total -= 1
    if t.transferred_at is not None:
        state.transfers.remove(t)
    else:
        lane = state.lanes[(t.queue, t.priority is not None)]
        if lane and lane[0] is t:
            lane.popleft()
        else:
            lane.remove(t)
    if t.person is not None:
        state.waiting_persons.discard((t.category, t.person))


def ahead_of(state: HallState, t: Ticket) -> int:
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

    def __init__(self, lane: deque[Ticket], lead: timedelta):
        self.lane, self.lead = lane, lead

    def __len__(self) -> int:
        return len(self.lane)

    def __getitem__(self, i: int) -> tuple[int, datetime, int]:
        return dispatch_key(self.lane[i], self.lead)


# -- the waiting-time estimate ---------------------------------------------------------------------
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
    import heapq

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


def _learn(state: HallState, category: str, took: timedelta) -> None:
    x = min(max(took.total_seconds() / 60, SERVICE_CLIP_MIN[0]), SERVICE_CLIP_MIN[1])
    s = state.service_min.get(category, SERVICE_PRIOR_MIN)
    state.service_min[category] = s + SERVICE_ALPHA * (x - s)


# -- window operations -------------------------------------------------------------------------------
def _window(state: HallState, client: str, p: WindowRequest, now: datetime, fx: Effects) -> WindowReply:
    if state.devices is not None:
        _allowed(state, client, "window", None)
    w = state.windows.get(p.window)
    if w is None:
        raise Refused("unknown_window", f"there is no window {p.window} in this hall")
    _allowed(state, client, "window", p.window)
    op = p.op
    cur = state.tickets.get(w.current) if w.current else None

    if op == "open":
        assert p.staff is not None
        if w.session is not None:
            w.session.ended_at = now
            fx.records.append(w.session)
        w.staff = p.staff
        w.session = StaffSession(state.next_session_id, w.no, p.staff.id, p.staff.name, now)
        state.next_session_id += 1
        if cur is not None and cur.visit is not None and cur.visit.staff_id is None:
            cur.visit.staff_id, cur.visit.staff_name = p.staff.id, p.staff.name
            fx.records.append(cur.visit)
        fx.records += [w, w.session]
        _window_changed(w, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "close":
        if cur is not None:
            _finish(state, w, cur, "done", now, fx)
        if w.session is not None:
            w.session.ended_at = now
            fx.records.append(w.session)
        w.staff, w.session, w.paused = None, None, False
        fx.records.append(w)
        _window_changed(w, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op in ("next", "pause", "resume") and w.staff is None:
        raise Refused("not_allowed", f"window {w.no} is closed: a clerk signs in with `open` first")

    if op == "pause":
        w.paused = True
        fx.records.append(w)
        _window_changed(w, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "resume":
        w.paused = False
        fx.records.append(w)
        _window_changed(w, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "next":
        if w.paused:
            raise Refused("paused", f"window {w.no} is paused: `resume` before calling the next ticket")
        nxt = _next_for(state, w)
        if cur is not None:
            _finish(state, w, cur, "done", now, fx)  # kept also when nothing waits (see below)
        if nxt is None:
            if cur is not None:
                # the current ticket has been finished; the clerk learns that nobody else waits
                raise_empty = Refused("empty", f"{cur.number} is done; no ticket waits for window {w.no}")
            else:
                raise_empty = Refused("empty", f"no ticket waits for window {w.no}")
            raise raise_empty
        _call(state, w, nxt, now, fx)
        return WindowReply(req=p.req, ticket=_wt(nxt))

    # recall, noshow, transfer, done need the current ticket
    if cur is None:
        raise Refused("no_ticket", f"window {w.no} has no ticket called")

    if op == "recall":
        cur.recalls += 1
        if cur.visit is not None:
            cur.visit.recalls += 1
            fx.records.append(cur.visit)
        fx.records.append(cur)
        _announce(state, w, cur, now, fx)
        _window_changed(w, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "noshow":
        _finish(state, w, cur, "noshow", now, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "done":
        if p.case is not None and cur.visit is not None:
            v = cur.visit
            v.case_id, v.item_code, v.item_name, v.case_kind = (
                p.case.id, p.case.item_code, p.case.item_name, p.case.kind)
        _finish(state, w, cur, "done", now, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    # transfer
    assert p.to is not None
    if p.to.category is not None:
        if state.cfg.category(p.to.category) is None:
            raise Refused("unknown_category", f"there is no category {p.to.category!r} to transfer to")
        to_window, queue = None, p.to.category
    else:
        if p.to.window not in state.windows:
            raise Refused("unknown_window", f"there is no window {p.to.window} to transfer to")
        if p.to.window == w.no:
            raise Refused("bad_request", f"{cur.number} is already at window {w.no}")
        to_window, queue = p.to.window, cur.queue
    _finish(state, w, cur, "transferred", now, fx)
    cur.status = "transferred"
    cur.queue, cur.to_window, cur.transferred_at = queue, to_window, now
    cur.finished_at = None
    _enqueue(state, cur)
    fx.changed.add("queue")
    return WindowReply(req=p.req, ticket=_wt(cur))


def _next_for(state: HallState, w: WindowRec) -> Ticket | None:
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


def _call(state: HallState, w: WindowRec, t: Ticket, now: datetime, fx: Effects) -> None:
    since = t.transferred_at if t.transferred_at is not None else t.issued_at
    first = t.first_called_at is None
    _dequeue(state, t)
    v = Visit(
        id=state.next_visit_id,
        day=state.day,
        number=t.number,
        category=t.category,
        queue=t.queue,
        window=w.no,
        staff_id=w.staff.id if w.staff else None,
        staff_name=w.staff.name if w.staff else None,
        called_at=now,
        wait_s=max((now - since).total_seconds(), 0.0),
        first=first,
        priority=t.priority,
    )
    state.next_visit_id += 1
    t.status, t.window, t.called_at, t.recalls = "called", w.no, now, 0
    t.visits.append(v)
    t.to_window, t.transferred_at = None, None
    if first:
        t.first_called_at = now
    w.current = t.number
    fx.records += [t, v, w]
    fx.changed.add("queue")
    _announce(state, w, t, now, fx)
    _window_changed(w, fx)


def _announce(state: HallState, w: WindowRec, t: Ticket, now: datetime, fx: Effects) -> None:
    call = Call(ticket=t.number, category=t.category, window=w.no, window_name=w.name, recall=t.recalls, at=now)
    fx.calls.append(call)
    state.board.appendleft(call)
    fx.changed.add("board")


def _finish(state: HallState, w: WindowRec, t: Ticket, outcome: str, now: datetime, fx: Effects) -> None:
    t.status = outcome
    t.finished_at = now
    v = t.visit
    if v is not None:
        v.outcome, v.ended_at = outcome, now
        _learn(state, v.queue, now - v.called_at)
        fx.records.append(v)
        w.last = v
    w.current = None
    fx.records += [t, w]
    _window_changed(w, fx)


def _window_changed(w: WindowRec, fx: Effects) -> None:
    fx.changed.add(w.no)


def _wt(t: Ticket | None) -> WindowTicket | None:
    if t is None:
        return None
    return WindowTicket(
        number=t.number,
        category=t.category,
        priority=t.priority,
        issued_at=t.issued_at,
        status=t.status,
        called_at=t.called_at if t.status != "transferred" else None,
        recalls=t.recalls,
    )


# -- ratings ----------------------------------------------------------------------------------------------
def _rate(state: HallState, client: str, p: RateRequest, now: datetime, fx: Effects) -> RateReply:
    if state.devices is not None:
        _allowed(state, client, "pad", None)
    _allowed(state, client, "pad", p.window)
    t = state.tickets.get(p.ticket)
    if t is None:
        raise Refused("not_ratable", f"{p.ticket} is not a ticket of today")
    if t.rated:
        raise Refused("already_rated", f"{p.ticket} has already been rated")
    # its last visit at this window (a transferred ticket may have been served at several)
    v = next((x for x in reversed(t.visits) if x.window == p.window), None)
    if v is None:
        raise Refused("not_ratable", f"{p.ticket} was not served at window {p.window}")
    if v.outcome in ("noshow", "expired"):
        raise Refused("not_ratable", f"{p.ticket} did not come to window {p.window} (过号): nothing to rate")
    if p.at is None:
        at = now
    elif p.at.tzinfo is None:  # a pad's local time without an offset: the hall's
        at = p.at.replace(tzinfo=now.tzinfo)
    else:
        at = p.at.astimezone(now.tzinfo)
    r = Rating(
        id=state.next_rating_id,
        day=state.day,
        number=t.number,
        window=p.window,
        level=p.level,
        at=at,
        received_at=now,
        client=client,
        staff_id=v.staff_id,
        staff_name=v.staff_name,
        visit_id=v.id,
        case_id=v.case_id,
        item_code=v.item_code,
    )
    state.next_rating_id += 1
    t.rated = True
    fx.records += [r, t]
    return RateReply(req=p.req, rating=RatingRef(id=r.id))


# -- midnight -------------------------------------------------------------------------------------------
def _rollover(state: HallState, now: datetime, fx: Effects) -> None:
    """Close yesterday: waiting tickets expire, served ones finish, clerks sign out, numbering restarts."""
    for w in state.windows.values():
        cur = state.tickets.get(w.current) if w.current else None
        if cur is not None:
            _finish(state, w, cur, "done", now, fx)
        if w.session is not None:
            w.session.ended_at = now
            fx.records.append(w.session)
        w.staff, w.session, w.paused, w.current = None, None, False, None
        fx.records.append(w)
        fx.changed.add(w.no)
    for t in state.tickets.values():
        if t.waiting:
            t.status, t.finished_at = "expired", now
            fx.records.append(t)
    state.day = now.date()
    state.seq.clear()
    state.hall_seq = 0
    state.priority_issued.clear()
    state.first_issue = None
    state.tickets.clear()
    for lane in state.lanes.values():
        lane.clear()
    state.transfers.clear()
    state.waiting_total = 0
    state.waiting_persons.clear()
    state.board.clear()
    horizon = now - timedelta(days=1)
    for key in [k for k, r in state.replies.items() if r.at < horizon]:
        del state.replies[key]
    fx.changed.update(("queue", "board"))


# == retained payloads ===================================================================================
def queue_state(state: HallState, now: datetime) -> QueueState:
    """The ``queue`` payload: per category, how many wait and the estimate for a new normal ticket."""
    cats = {}
    for c in state.cfg.categories:
        n = state.waiting_count(c.code)
        cats[c.code] = CategoryQueue(waiting=n, est_wait_min=estimate_wait(state, c.code, n, now))
    return QueueState(at=now, categories=cats)


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
