"""The hall's state: today's tickets, their calls to windows, the windows, and the lanes they wait in.

Plain records (the storage writes them as they are at commit) and :class:`HallState`, which holds them
with the day's numbering. :func:`new_state` makes an empty hall; :func:`enqueue` / :func:`dequeue` keep the
lanes (see :mod:`.dispatch` for the order they are called in).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from hallq.shared.schemas import Call, Staff

from ..config import HallFile

#: How many calls the ``board`` keeps.
BOARD_SIZE = 10
#: Max ticket number per category per day (three digits).
MAX_NUMBER = 999


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
    call_id: int | None
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
    tickets: dict[str, TicketRec] = field(default_factory=dict)  # number -> today's ticket
    lanes: dict[tuple[str, bool], deque[TicketRec]] = field(default_factory=dict)  # (category, priority)
    transfers: list[TicketRec] = field(default_factory=list)  # waiting transferred tickets, in transfer order
    waiting_total: int = 0  # tickets in the lanes and transfers
    waiting_persons: set[tuple[str, str]] = field(default_factory=set)  # (category, person) waiting
    service_min: dict[str, float] = field(default_factory=dict)  # category -> EWMA of service minutes (see .estimate)
    priority_issued: dict[str, int] = field(default_factory=dict)  # category -> priority tickets today
    first_issue: datetime | None = None  # today's first ticket
    board: deque[Call] = field(default_factory=lambda: deque(maxlen=BOARD_SIZE))
    replies: dict[tuple[str, str], CachedReply] = field(default_factory=dict)
    next_call_id: int = 1
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
    if cfg.devices is not None:
        st.devices = {d.id: (d.role, d.window) for d in cfg.devices}
    return st



def count_issue(state: HallState, t: TicketRec) -> None:
    if state.first_issue is None or t.issued_at < state.first_issue:
        state.first_issue = t.issued_at
    if t.priority is not None:
        state.priority_issued[t.category] = state.priority_issued.get(t.category, 0) + 1


def enqueue(state: HallState, t: TicketRec) -> None:
    state.waiting_total += 1
    if t.transferred_at is not None:
        state.transfers.append(t)
    else:
        state.lanes[(t.queue, t.priority is not None)].append(t)
    if t.person is not None:
        state.waiting_persons.add((t.category, t.person))


def dequeue(state: HallState, t: TicketRec) -> None:
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

