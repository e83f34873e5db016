"""The hall's state: today's tickets, their calls to windows, the windows, and the lanes they wait in.

Plain records (the storage writes them as they are at commit) and :class:`HallState`, which holds them
with the day's numbering. :func:`new_state` makes an empty hall; :func:`enqueue` / :func:`dequeue` keep the
lanes (see :mod:`.dispatch` for the order they are called in).
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from hallq.shared.schemas import Call, Staff

from ..config import HallFile
from .workdays import Calendar

#: How many calls the ``board`` keeps.
BOARD_SIZE = 10
#: Max ticket number per category per day (three digits).
MAX_NUMBER = 999
#: How many (estimate, realised wait) pairs of today's calls the estimate's range learns from.
WAIT_ERRORS_KEPT = 150
#: How many of the latest takes the estimate's arrival rates look at (an hour of a busy hall).
ISSUES_KEPT = 600

#: The lanes a category's waiting tickets are kept in (see :mod:`.dispatch` for the order they are called
#: in): normal tickets and priority tickets in issue order, appointment tickets in the order they are due.
NORMAL, PRIORITY, APPOINTMENT = "normal", "priority", "appointment"
LANE_CLASSES = (NORMAL, PRIORITY, APPOINTMENT)


def lane_class(t: Any) -> str:
    """The lane of a waiting ticket (anything with ``priority`` and, optionally, ``slot_start``)."""
    if t.priority == "appointment" or getattr(t, "slot_start", None) is not None:
        return APPOINTMENT
    return NORMAL if t.priority is None else PRIORITY


def due_at(t: Any) -> datetime:
    """When a ticket may be called: an appointment ticket at its slot's start or its check-in, whichever
    is later; any other ticket from its issue."""
    slot = getattr(t, "slot_start", None)
    return t.issued_at if slot is None or slot <= t.issued_at else slot


class Refused(Exception):
    """A request that is answered with an error and changes nothing."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True, eq=False)
class TicketRec:
    """One ticket of today."""

    day: date
    number: str
    category: str  # the category it was taken for
    seq: int
    issued_at: datetime
    priority: str | None = None
    channel: str | None = None
    person: str | None = None
    vouched: str | None = None  # the channel that vouched for the priority: idcard | staff | appointment
    appointment: str | None = None
    client: str = ""
    est_wait_min: int = 0
    ahead: int = 0
    slot_start: datetime | None = None  # an appointment ticket: its booked slot's start (see .dispatch)
    slot_end: datetime | None = None  # ... and end (see .appointments)
    est_range: tuple[int, int] | None = None  # the range the ticket showed (not kept across a restart)
    est_raw: float | None = None  # the model's unrounded estimate (not kept across a restart)
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
    calls: list[CallRec] = field(default_factory=list)  # its calls to windows, in order

    @property
    def call(self) -> CallRec | None:
        """The current (or last) call to a window."""
        return self.calls[-1] if self.calls else None

    def __post_init__(self) -> None:
        if not self.queue:
            self.queue = self.category

    @property
    def waiting(self) -> bool:
        return self.status in ("waiting", "transferred")


@dataclass(slots=True, eq=False)
class CallRec:
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
    wait_s: float  # since issue (first call) or since the transfer
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
    last: CallRec | None = None  # the last call that ended here (for ``WindowState.last``)
    pause: PauseRec | None = None  # the pause under way (while ``paused``)

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
class PauseRec:
    """A window's pause (暂停), from ``pause`` to ``resume`` (or the window's close, or midnight): the
    statistics tell a paused window from an idle one by these."""

    window: int
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
    call_id: int | None
    case_id: str | None
    item_code: str | None


@dataclass(slots=True, frozen=True)
class Booking:
    """A booking as its source gives it (the slot in the hall's local time); see :mod:`hallq.controller.bookings`."""

    code: str
    category: str
    day: date
    start: time
    end: time
    person: str | None = None  # the person key the kiosk sends for this citizen on ``day``
    name: str | None = None  # masked (张*)
    cancelled: bool = False  # the source says the citizen cancelled it (status ``cancelled``)


@dataclass(slots=True, eq=False)
class BookingRec:
    """A booking the hall keeps, with its check-in once the citizen came (预约取号)."""

    code: str
    category: str
    day: date
    slot_start: datetime
    slot_end: datetime
    person: str | None
    name: str | None
    source: str
    imported_at: datetime
    checked_in_at: datetime | None = None
    ticket: str | None = None  # the number issued at check-in
    arrival: str | None = None  # early | on_time | late (then the ticket is a normal one)
    cancelled_at: datetime | None = None  # when the hall learnt it was cancelled (no check-in then)


@dataclass(slots=True, frozen=True)
class UploadRec:
    """A 好差评 record to upload, decided with its rating (a ``haocp_outbox`` row)."""

    rating_id: int
    key: str  # the idempotency key
    record: str  # the JSON body, as the province receives it
    created_at: datetime


@dataclass(slots=True, frozen=True)
class FollowUpRec:
    """A bad review to call back and settle by ``due`` (差评回访), opened with its rating."""

    rating_id: int
    day: date
    ticket: str
    window: int
    level: str
    rated_at: datetime
    opened_at: datetime
    due: date
    staff_id: str | None
    staff_name: str | None
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
    #: The latest time the hall has acted at (restored from the record): the core's time never goes back
    #: behind it, so a clock stepped back expires nothing, signs nobody out and re-issues no number.
    latest: datetime | None = None
    #: False while the clock is behind the record at start-up (a Pi without RTC boots in the past): takes
    #: are refused ``clock_unsynced`` until the clock reaches the record or the system says it is synced.
    clock_trusted: bool = True
    hall_seq: int = 0  # tickets issued today in the hall
    tickets: dict[str, TicketRec] = field(default_factory=dict)  # number -> today's ticket
    lanes: dict[tuple[str, str], deque[TicketRec]] = field(default_factory=dict)  # (category, lane class)
    transfers: list[TicketRec] = field(default_factory=list)  # waiting transferred tickets, in transfer order
    #: per lane, how often a ticket left it or joined it elsewhere than at its tail (:func:`cut`): while this
    #: stays the same a lane only grew at its tail, so the ``queue`` topic's order extends what it built before
    lane_cuts: dict[tuple[str, str], int] = field(default_factory=dict)
    waiting_total: int = 0  # tickets in the lanes and transfers
    #: per category, the tickets waiting in its queue: its lanes and the transfers to it (:meth:`waiting_count`)
    waiting_in: dict[str, int] = field(default_factory=dict)
    waiting_persons: set[tuple[str, str]] = field(default_factory=set)  # (category, person) waiting
    service_min: dict[str, float] = field(default_factory=dict)  # category -> EWMA of service minutes (see .estimate)
    priority_issued: dict[str, int] = field(default_factory=dict)  # category -> priority/appointment tickets today
    #: category -> its latest measured services (minutes), the spread the estimate samples from (see .estimate)
    service_recent: dict[str, deque[float]] = field(default_factory=dict)
    #: category -> for each of ``service_recent``, the category the service sent its ticket on to (a transfer) or None
    service_to: dict[str, deque[str | None]] = field(default_factory=dict)
    #: today's latest takes (issued at, category, a priority ticket): recent arrival rates (see .estimate)
    issues_recent: deque[tuple[datetime, str, bool]] = field(default_factory=lambda: deque(maxlen=ISSUES_KEPT))
    #: the priority takes among ``issues_recent``, in the same order (what the arrival rates read at every take)
    priority_recent: deque[tuple[datetime, str, bool]] = field(default_factory=deque)
    # (estimate, realised wait) in minutes of today's latest first calls, for the estimate's range
    wait_errors: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=WAIT_ERRORS_KEPT))
    first_issue: datetime | None = None  # today's first ticket
    board: deque[Call] = field(default_factory=lambda: deque(maxlen=BOARD_SIZE))
    #: answers kept for repeated ``req``s, oldest first (bounded: see .limits)
    replies: dict[tuple[str, str], CachedReply] = field(default_factory=dict)
    #: refusals that changed nothing, oldest first: memory only, bounded in number and age (see .limits)
    refusals: dict[tuple[str, str], CachedReply] = field(default_factory=dict)
    buckets: dict[str, Any] = field(default_factory=dict)  # client -> its rate bucket (.limits.Bucket)
    open_by_client: dict[str, int] = field(default_factory=dict)  # client -> its waiting tickets
    staff_priorities: dict[str, frozenset[str]] = field(default_factory=dict)  # kiosk -> priorities staff confirm
    next_call_id: int = 1
    next_rating_id: int = 1
    next_session_id: int = 1
    devices: dict[str, tuple[str, int | None]] | None = None  # client -> (role, window)
    bookings: dict[str, BookingRec] = field(default_factory=dict)  # code -> booking (recent and coming days)
    follow_key: bytes | None = None  # the key of the tickets' follow tokens (``[follow]``), set by the app
    calendar: Calendar = field(default_factory=Calendar)  # working days, for follow-up deadlines
    followup_days: int = 5  # working days to settle a bad review

    def waiting_count(self, category: str) -> int:
        """The tickets waiting in ``category``'s queue: in its lanes, and transferred to it (not to a window).
        Counted as they go in and out (:func:`enqueue`, :func:`dequeue`): the estimates ask for every category
        at every take."""
        return self.waiting_in.get(category, 0)



def new_state(cfg: HallFile, now: datetime) -> HallState:
    """An empty hall for the day of ``now``."""
    st = HallState(
        cfg=cfg,
        day=now.date(),
        lead=timedelta(minutes=cfg.dispatch.priority_lead_min),
        windows={w.no: WindowRec(w.no, w.name, tuple(w.categories)) for w in cfg.windows},
    )
    for c in cfg.categories:
        for cls in LANE_CLASSES:
            st.lanes[(c.code, cls)] = deque()
    if cfg.devices is not None:
        st.devices = {d.id: (d.role, d.window) for d in cfg.devices}
        st.staff_priorities = {d.id: frozenset(d.staff_priorities) for d in cfg.devices if d.staff_priorities}
    if cfg.haocp is not None:
        st.calendar = Calendar.of(cfg.haocp.holidays, cfg.haocp.workdays)
        st.followup_days = cfg.haocp.followup_days
    return st



def count_issue(state: HallState, t: TicketRec) -> None:
    if state.first_issue is None or t.issued_at < state.first_issue:
        state.first_issue = t.issued_at
    if t.priority is not None:
        state.priority_issued[t.category] = state.priority_issued.get(t.category, 0) + 1
    note_issue(state, (t.issued_at, t.category, t.priority is not None and t.priority != "appointment"))


def note_issue(state: HallState, entry: tuple[datetime, str, bool]) -> None:
    """Add a take (issued at, category, a priority ticket) to ``issues_recent``, and to ``priority_recent``
    when it is a priority one; the oldest leaves both."""
    recent = state.issues_recent
    if len(recent) == recent.maxlen and recent[0][2]:
        state.priority_recent.popleft()
    recent.append(entry)
    if entry[2]:
        state.priority_recent.append(entry)


def forget_issues(state: HallState) -> None:
    """Empty ``issues_recent`` (and so ``priority_recent``)."""
    state.issues_recent.clear()
    state.priority_recent.clear()


def enqueue(state: HallState, t: TicketRec) -> None:
    state.waiting_total += 1
    if t.transferred_at is None or t.to_window is None:
        state.waiting_in[t.queue] = state.waiting_in.get(t.queue, 0) + 1
    if t.transferred_at is not None:
        state.transfers.append(t)
    else:
        cls = lane_class(t)
        lane = state.lanes[(t.queue, cls)]
        if cls == APPOINTMENT and lane and (due_at(lane[-1]), lane[-1].seq) > (due_at(t), t.seq):
            lane.insert(bisect_right(lane, (due_at(t), t.seq), key=lambda x: (due_at(x), x.seq)), t)
            cut(state, (t.queue, cls))
        else:
            lane.append(t)
    if t.person is not None:
        state.waiting_persons.add((t.category, t.person))
    state.open_by_client[t.client] = state.open_by_client.get(t.client, 0) + 1


def dequeue(state: HallState, t: TicketRec) -> None:
    state.waiting_total -= 1
    if t.transferred_at is None or t.to_window is None:
        state.waiting_in[t.queue] -= 1
    if t.transferred_at is not None:
        state.transfers.remove(t)
    else:
        key = (t.queue, lane_class(t))
        lane = state.lanes[key]
        if lane and lane[0] is t:
            lane.popleft()
        else:
            lane.remove(t)
        cut(state, key)
    if t.person is not None:
        state.waiting_persons.discard((t.category, t.person))
    n = state.open_by_client.get(t.client, 0) - 1
    if n > 0:
        state.open_by_client[t.client] = n
    else:
        state.open_by_client.pop(t.client, None)


def cut(state: HallState, key: tuple[str, str]) -> None:
    """Count a change of lane ``key`` other than a ticket joining at its tail (see ``HallState.lane_cuts``)."""
    state.lane_cuts[key] = state.lane_cuts.get(key, 0) + 1
