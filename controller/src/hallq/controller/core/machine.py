"""The state machine: ``handle(state, event, now)`` (numbering, window operations, ratings, midnight).

See the package docstring (:mod:`hallq.controller.core`) for the events, the effects and the promises.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from hallq.shared import follow, hours
from hallq.shared.schemas import (
    AppointmentCheckin,
    Call,
    CancelReply,
    CancelRequest,
    Error,
    ErrorReply,
    RateReply,
    RateRequest,
    RatingRef,
    Staff,
    TakeReply,
    TakeRequest,
    WindowReply,
    WindowRequest,
    WindowTicket,
    encode,
)
from hallq.shared.schemas import Ticket as TicketOut

from ..config import HallFile
from ..haocp import record as haocp_record
from . import appointments, limits
from .dispatch import ahead_of, holding_for, next_for
from .estimate import learn, observe, wait_estimate
from .state import (
    MAX_NUMBER,
    Booking,
    BookingRec,
    CachedReply,
    CallRec,
    FollowUpRec,
    HallState,
    PauseRec,
    Rating,
    Refused,
    Sequence,
    StaffSession,
    TicketRec,
    UploadRec,
    WindowRec,
    count_issue,
    cut,
    dequeue,
    due_at,
    enqueue,
    lane_class,
    new_state,
)


def restore(
    cfg: HallFile,
    now: datetime,
    *,
    day: date,
    tickets: Iterable[TicketRec],
    calls: Iterable[CallRec],
    windows: Iterable[tuple[int, Staff | None, bool, str | None, StaffSession | None]],
    sequences: dict[str, int],
    replies: Iterable[CachedReply],
    rated: Iterable[str],
    next_call_id: int,
    next_rating_id: int,
    next_session_id: int,
    services: Iterable[tuple[str, timedelta] | tuple[str, timedelta, str | None]] = (),
    board: Iterable[Call] = (),
    latest: datetime | None = None,
    clock_synced: bool = False,
    bookings: Iterable[BookingRec] = (),
    pauses: Iterable[PauseRec] = (),
) -> HallState:
    """Rebuild the state from what the storage kept (``day`` is the day of the kept tickets).

    ``tickets`` and ``calls`` are that day's; the waiting ones go back into their lanes in issue order
    (transfers in transfer order). ``services`` (category, service time[, the category a transfer sent the
    ticket on to]), oldest first, are recent measured services: they feed the service-time means again.
    If ``now`` is already a later day, the next :func:`handle` rolls over as at midnight.
    """
    st = new_state(cfg, datetime.combine(day, time(12), now.tzinfo))
    st.seq.update(sequences)
    st.next_call_id, st.next_rating_id, st.next_session_id = next_call_id, next_rating_id, next_session_id
    ts = sorted(tickets, key=lambda t: t.seq)
    by_number = {}
    for t in ts:
        by_number[t.number] = t
        st.tickets[t.number] = t
        st.hall_seq = max(st.hall_seq, t.seq)
        count_issue(st, t)
        # (a ticket of a category the config no longer has stays waiting until midnight expires it)
        if t.waiting and (t.transferred_at is not None or (t.queue, lane_class(t)) in st.lanes):
            enqueue(st, t)
    st.transfers.sort(key=lambda t: (t.transferred_at, t.seq))
    for v in sorted(calls, key=lambda v: v.id):
        t = by_number.get(v.number)
        if t is not None:
            t.calls.append(v)
    for v in sorted((v for t in ts for v in t.calls if v.ended_at is not None), key=lambda v: v.ended_at):
        if v.window in st.windows:
            st.windows[v.window].last = v
    for t in sorted((t for t in ts if t.first_called_at is not None), key=lambda t: t.first_called_at):
        observe(st, t, t.first_called_at)  # the range learns again from today's calls
    for category, took, *to in services:
        if cfg.category(category) is not None:
            learn(st, category, took, to[0] if to and to[0] and cfg.category(to[0]) is not None else None)
    for no, staff, paused, current, session in windows:
        w = st.windows.get(no)
        if w is not None:
            w.staff, w.paused, w.current, w.session = staff, paused, current, session
            if current is not None and current not in st.tickets:
                w.current = None
    for pz in pauses:
        w = st.windows.get(pz.window)
        if w is not None and w.paused and pz.ended_at is None:
            w.pause = pz
    for r in sorted(replies, key=lambda r: r.at)[-cfg.limits.replies:]:  # oldest first, within the bound
        st.replies[(r.client, r.req)] = r
    for number in rated:
        t = st.tickets.get(number)
        if t is not None:
            t.rated = True
    st.board.extend(board)
    st.bookings.update((b.code, b) for b in bookings)
    if latest is not None:
        st.latest = latest
        st.clock_trusted = clock_synced or now >= latest
    return st


# == events and effects ================================================================================
@dataclass(slots=True, frozen=True)
class Request:
    client: str
    payload: TakeRequest | WindowRequest | RateRequest | CancelRequest
    #: The request's ``ttl_ms`` on the clock :func:`handle` is given: the time it reached the controller plus
    #: its ttl (the app works it out). Past it the request is refused ``expired`` and changes nothing.
    deadline: datetime | None = None


@dataclass(slots=True, frozen=True)
class Malformed:
    client: str
    req: str
    message: str


@dataclass(slots=True, frozen=True)
class Tick:
    pass


@dataclass(slots=True, frozen=True)
class BookingsIn:
    """Bookings read from one source (a file of the folder, or the URL): kept, or updated if not checked in."""

    source: str
    bookings: tuple[Booking, ...]


Event = Request | Malformed | Tick | BookingsIn


@dataclass(slots=True)
class Effects:
    reply: tuple[str, bytes] | None = None  # (client, reply payload)
    calls: list[Call] = field(default_factory=list)
    changed: set[str | int] = field(default_factory=set)  # "queue", "board", window numbers
    records: list[Any] = field(default_factory=list)


def handle(state: HallState, event: Event, now: datetime) -> tuple[HallState, Effects]:
    """Apply ``event`` at ``now``; see the module docstring."""
    fx = Effects()
    clock = now  # as given: the rate buckets refill on it (see .limits)
    now = _steady(state, now)
    if now.date() > state.day:  # forward only: a day goes back never
        _rollover(state, now, fx)
    if isinstance(event, Tick):
        return state, fx
    if isinstance(event, BookingsIn):
        appointments.take_in(state, event.source, event.bookings, now, fx.records)
        return state, fx
    if isinstance(event, Malformed):
        cached = limits.cached(state, event.client, event.req)
        if not limits.admit(state, event.client, clock, force=cached is not None):
            fx.reply = (event.client, _busy(state, event.client, event.req))
        elif cached is not None:
            fx.reply = (event.client, cached.payload)
        else:
            fx.reply = (event.client, _error(event.req, "bad_request", event.message))
        return state, fx
    p = event.payload
    cached = limits.cached(state, event.client, p.req)
    if cached is None and event.deadline is not None and clock > event.deadline:
        # its sender has given up (or is about to): applying it now would issue a number nobody is told of.
        # A repeat of a req already applied got its first answer above, whatever its deadline: that number
        # is the citizen's. Not kept (like ``busy``): every copy of one attempt carries what was left of the
        # same deadline, so a later copy is refused too; a new attempt with the same req (a rating pad sends
        # its journal again later) carries a new deadline and is served then.
        late = (clock - event.deadline).total_seconds()
        fx.reply = (event.client, _error(p.req, "expired", f"not served within the request's deadline (late by "
                                         f"{late:.1f} s): nothing was done; send it again / 本次未办理，请重新操作"))
        return state, fx
    if not limits.admit(state, event.client, clock, force=cached is not None):
        fx.reply = (event.client, _busy(state, event.client, p.req))  # not kept: a later repeat is handled then
        return state, fx
    if cached is not None:
        fx.reply = (event.client, cached.payload)
        return state, fx
    try:
        if isinstance(p, TakeRequest):
            answer = _take(state, event.client, p, now, fx)
        elif isinstance(p, WindowRequest):
            answer = _window(state, event.client, p, now, fx)
        elif isinstance(p, CancelRequest):
            answer = _cancel(state, event.client, p, now, fx)
        else:
            answer = _rate(state, event.client, p, now, fx)
    except Refused as r:
        # a refusal changes nothing (the checks come before any change), except as noted for ``next``
        payload = _error(p.req, r.code, r.message)
    else:
        payload = encode(answer)
    c = CachedReply(event.client, p.req, payload, now)
    # an answer that changed something is kept in the record; a refusal that changed nothing in memory only
    durable = bool(fx.records)
    limits.remember(state, c, durable)
    if durable:
        fx.records.append(c)
    fx.reply = (event.client, payload)
    return state, fx


def _busy(state: HallState, client: str, req: str) -> bytes:
    lim = limits.limit_of(state, client)
    return _error(req, "busy", f"too many requests from {client!r} (at most {lim.rate:g}/s, {lim.burst} at once): "
                               "send it again shortly / 请稍后再试")


def _steady(state: HallState, now: datetime) -> datetime:
    """The time the core acts at: ``now``, but never earlier than a time it has already acted at."""
    if state.latest is None or now >= state.latest:
        state.latest = now
        state.clock_trusted = True  # the clock has reached the record
        return now
    return state.latest


def clock_behind(state: HallState, now: datetime) -> timedelta | None:
    """How far ``now`` is behind the latest time the hall acted at (for the app to log), or None."""
    return state.latest - now if state.latest is not None and now < state.latest else None


def _error(req: str, code: str, message: str) -> bytes:
    return encode(ErrorReply(req=req, error=Error(code=code, message=message)))



# -- devices ------------------------------------------------------------------------------------------
def _allowed(state: HallState, client: str, role: str | tuple[str, ...], window: int | None) -> None:
    """The controller's own check of ``[[devices]]``, the second line after the broker's ACL."""
    if state.devices is None:
        return
    d = state.devices.get(client)
    if d is None:
        raise Refused("not_allowed", f"{client!r} is not a device of this hall")
    if d[0] not in ((role,) if isinstance(role, str) else role):
        raise Refused("not_allowed", f"{client!r} is a {d[0]} device and cannot send this request")
    if window is not None and d[1] != window:
        raise Refused("not_allowed", f"{client!r} belongs to window {d[1]}, not window {window}")


# -- take ---------------------------------------------------------------------------------------------
def is_open(state: HallState, now: datetime) -> bool:
    """Whether ``now`` falls within the opening hours (always, when none are configured): the one rule of
    :mod:`hallq.shared.hours`, which the kiosk's closed screen reads too."""
    return hours.is_open(state.cfg.hall.hours, now)


#: The roles that take numbers for citizens (and may cancel them for their holder).
TAKERS = ("kiosk", "sms")


def _take(state: HallState, client: str, p: TakeRequest, now: datetime, fx: Effects) -> TakeReply:
    _allowed(state, client, TAKERS, None)
    limits.check_open(state, client)
    if not state.clock_trusted:
        raise Refused("clock_unsynced", "系统校时中，请稍候 / the controller's clock is being set: please wait "
                                        f"(it is behind the record's {state.latest.isoformat() if state.latest else ''})")
    booking, arrival = None, None
    if p.channel == "appointment" or p.appointment is not None:  # a check-in: see .appointments
        booking, arrival = appointments.check_in(state, p, now)
    booked = booking is not None and arrival != "late"
    wanted = booking.category if booking is not None else p.category
    cat = state.cfg.category(wanted)
    if cat is None:
        raise Refused("unknown_category", f"there is no category {wanted!r} in this hall")
    if not is_open(state, now):
        spans = ", ".join(f"{a}–{b}" for a, b in state.cfg.hall.hours)
        raise Refused("closed", f"the hall issues numbers during its opening hours ({spans})")
    last = state.seq.get(cat.code, 0)
    quota = MAX_NUMBER if booked else min(cat.daily_quota or MAX_NUMBER, MAX_NUMBER)
    if last >= quota:
        raise Refused("quota_full", f"today's {quota} numbers of {cat.name} are all taken")
    if p.person is not None and (cat.code, p.person) in state.waiting_persons:
        raise Refused("duplicate", f"this person already waits for {cat.name}")

    priority = p.priority
    if booking is not None:  # booked: an appointment ticket with its slot; late: a normal one
        priority = "appointment" if booked else (None if p.priority == "appointment" else p.priority)
        vouched = "appointment" if booked else limits.vouch(state, client, p.channel, priority)
    else:
        vouched = limits.vouch(state, client, p.channel, priority)
    number = f"{cat.ticket_prefix}{last + 1:03d}"
    state.seq[cat.code] = last + 1
    state.hall_seq += 1
    t = TicketRec(
        day=state.day,
        number=number,
        category=cat.code,
        seq=state.hall_seq,
        issued_at=now,
        priority=priority,
        channel=p.channel,
        person=p.person,
        vouched=vouched,
        appointment=booking.code if booking is not None else p.appointment,
        client=client,
        slot_start=booking.slot_start if booked else None,
        slot_end=booking.slot_end if booked else None,
    )
    t.ahead = ahead_of(state, t)
    est = wait_estimate(state, cat.code, t.ahead, now, t)
    t.est_wait_min, t.est_range, t.est_raw = est.minutes, (est.low, est.high), est.raw
    state.tickets[number] = t
    count_issue(state, t)
    enqueue(state, t)
    fx.records.append(t)
    fx.records.append(Sequence(state.day, cat.code, last + 1))
    fx.changed.add("queue")
    checkin = None
    if booking is not None:
        appointments.checked_in(booking, t, arrival, now)
        fx.records.append(booking)
        checkin = AppointmentCheckin(code=booking.code, slot_start=booking.slot_start, slot_end=booking.slot_end,
                                     arrival=arrival)  # type: ignore[arg-type]
    return TakeReply(
        req=p.req,
        ticket=TicketOut(
            number=number,
            category=cat.code,
            priority=priority,
            issued_at=now,
            ahead=t.ahead,
            est_wait_min=t.est_wait_min,
            est_wait_range=t.est_range,
            appointment=checkin,
            follow=follow.token(state.follow_key, state.cfg.hall.id, state.day, number) if state.follow_key else None,
        ),
    )



# -- cancel ---------------------------------------------------------------------------------------------
def _cancel(state: HallState, client: str, p: CancelRequest, now: datetime, fx: Effects) -> CancelReply:
    """The holder of a waiting ticket gives it up: only with the person key it was taken with."""
    _allowed(state, client, TAKERS, None)
    t = state.tickets.get(p.ticket)
    if t is None or not t.waiting or t.person is None or not hmac.compare_digest(t.person, p.person):
        raise Refused("no_ticket", f"{p.ticket} is not a waiting ticket of this person")
    dequeue(state, t)
    t.status, t.finished_at = "cancelled", now
    fx.records.append(t)
    fx.changed.add("queue")
    return CancelReply(req=p.req, ticket=_wt(t))


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
        if cur is not None and cur.call is not None and cur.call.staff_id is None:
            cur.call.staff_id, cur.call.staff_name = p.staff.id, p.staff.name
            fx.records.append(cur.call)
        fx.records += [w, w.session]
        _window_changed(w, fx, queue=True)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "close":
        if cur is not None:
            _finish(state, w, cur, "done", now, fx)
        if w.session is not None:
            w.session.ended_at = now
            fx.records.append(w.session)
        _end_pause(w, now, fx)
        w.staff, w.session, w.paused = None, None, False
        fx.records.append(w)
        _window_changed(w, fx, queue=True)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op in ("next", "pause", "resume") and w.staff is None:
        raise Refused("not_allowed", f"window {w.no} is closed: a clerk signs in with `open` first")

    if op == "pause":
        if not w.paused:
            w.pause = PauseRec(w.no, now)
            fx.records.append(w.pause)
        w.paused = True
        fx.records.append(w)
        _window_changed(w, fx, queue=True)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "resume":
        _end_pause(w, now, fx)
        w.paused = False
        fx.records.append(w)
        _window_changed(w, fx, queue=True)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "next":
        if w.paused:
            raise Refused("paused", f"window {w.no} is paused: `resume` before calling the next ticket")
        nxt = next_for(state, w, now)
        if cur is not None:
            _finish(state, w, cur, "done", now, fx)  # kept also when nothing waits (see below)
        if nxt is None:
            held = holding_for(state, w, now)
            why = (f"window {w.no} keeps itself free for appointment {held.number}, due at "
                   f"{due_at(held):%H:%M} (预约号 {held.number} {due_at(held):%H:%M} 到号，请稍候呼叫)"
                   if held is not None else f"no ticket waits for window {w.no}")
            # the current ticket has been finished (kept also when nothing waits); the clerk learns why not
            raise Refused("empty", f"{cur.number} is done; {why}" if cur is not None else why)
        _call(state, w, nxt, now, fx)
        return WindowReply(req=p.req, ticket=_wt(nxt))

    # recall, noshow, transfer, done need the current ticket
    if cur is None:
        raise Refused("no_ticket", f"window {w.no} has no ticket called")

    if op == "recall":
        cur.recalls += 1
        if cur.call is not None:
            cur.call.recalls += 1
            fx.records.append(cur.call)
        fx.records.append(cur)
        _announce(state, w, cur, now, fx)
        _window_changed(w, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "noshow":
        _finish(state, w, cur, "noshow", now, fx)
        return WindowReply(req=p.req, ticket=_wt(cur))

    if op == "done":
        if p.case is not None and cur.call is not None:
            v = cur.call
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
    _finish(state, w, cur, "transferred", now, fx, to=queue)
    cur.status = "transferred"
    cur.queue, cur.to_window, cur.transferred_at = queue, to_window, now
    cur.finished_at = None
    enqueue(state, cur)
    fx.changed.add("queue")
    return WindowReply(req=p.req, ticket=_wt(cur))



def _call(state: HallState, w: WindowRec, t: TicketRec, now: datetime, fx: Effects) -> None:
    since = t.transferred_at if t.transferred_at is not None else t.issued_at
    first = t.first_called_at is None
    dequeue(state, t)
    v = CallRec(
        id=state.next_call_id,
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
    state.next_call_id += 1
    t.status, t.window, t.called_at, t.recalls = "called", w.no, now, 0
    t.calls.append(v)
    t.to_window, t.transferred_at = None, None
    if first:
        t.first_called_at = now
        observe(state, t, now)
    w.current = t.number
    fx.records += [t, v, w]
    fx.changed.add("queue")
    _announce(state, w, t, now, fx)
    _window_changed(w, fx)


def _announce(state: HallState, w: WindowRec, t: TicketRec, now: datetime, fx: Effects) -> None:
    cid = f"{t.call.id}.{t.recalls}" if t.call is not None else None  # one id per announcement
    call = Call(id=cid, ticket=t.number, category=t.category, window=w.no, window_name=w.name, recall=t.recalls,
                at=now)
    fx.calls.append(call)
    state.board.appendleft(call)
    fx.changed.add("board")


def _finish(state: HallState, w: WindowRec, t: TicketRec, outcome: str, now: datetime, fx: Effects,
            to: str | None = None) -> None:
    """``to``: the category a transfer sends the ticket on to."""
    t.status = outcome
    t.finished_at = now
    v = t.call
    if v is not None:
        v.outcome, v.ended_at = outcome, now
        learn(state, v.queue, now - v.called_at, to)
        fx.records.append(v)
        w.last = v
    w.current = None
    fx.records += [t, w]
    _window_changed(w, fx)


def _window_changed(w: WindowRec, fx: Effects, queue: bool = False) -> None:
    """``queue``: the window opened, closed, paused or resumed, which changes whether its categories are
    served (``CategoryQueue.serving``) and their estimates, so the ``queue`` topic goes out again too."""
    fx.changed.add(w.no)
    if queue:
        fx.changed.add("queue")


def _wt(t: TicketRec | None) -> WindowTicket | None:
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
    # its last call at this window (a transferred ticket may have been served at several)
    v = next((x for x in reversed(t.calls) if x.window == p.window), None)
    if v is None:
        raise Refused("not_ratable", f"{p.ticket} was not served at window {p.window}")
    if v.outcome in ("noshow", "expired"):
        raise Refused("not_ratable", f"{p.ticket} did not come to window {p.window} (过号): nothing to rate")
    if p.called_at is not None and p.called_at != v.called_at:
        # the pad rates another service of this number: yesterday's A001, or an earlier call of it here
        raise Refused("not_ratable", f"the service of {p.ticket} called at {p.called_at.isoformat()} is not "
                                     f"its latest at window {p.window}")
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
        call_id=v.id,
        case_id=v.case_id,
        item_code=v.item_code,
    )
    state.next_rating_id += 1
    t.rated = True
    fx.records += [r, t, *_after_rating(state, r, v)]
    return RateReply(req=p.req, rating=RatingRef(id=r.id))


#: Ratings that open a follow-up (差评: 不满意, 非常不满意).
BAD_LEVELS = ("dissatisfied", "very_dissatisfied")


def _after_rating(state: HallState, r: Rating, v: CallRec) -> list[UploadRec | FollowUpRec]:
    """What a rating sets off: its 好差评 upload (when ``[haocp] url`` is set) and, for a bad review, a
    follow-up due ``followup_days`` working days after the day it came in."""
    out: list[UploadRec | FollowUpRec] = []
    h = state.cfg.haocp
    if h is not None and h.url:
        rec = haocp_record.record(hall=state.cfg.hall.id, day=r.day.isoformat(), ticket=r.number, window=r.window,
                                  level=r.level, at=r.at, case_id=r.case_id, item_code=r.item_code,
                                  item_name=v.item_name, cfg=h)
        out.append(UploadRec(r.id, rec["idempotencyKey"], json.dumps(rec, ensure_ascii=False), r.received_at))
    if r.level in BAD_LEVELS:
        out.append(FollowUpRec(
            rating_id=r.id, day=r.day, ticket=r.number, window=r.window, level=r.level, rated_at=r.at,
            opened_at=r.received_at, due=state.calendar.due_date(r.received_at.date(), state.followup_days),
            staff_id=r.staff_id, staff_name=r.staff_name, case_id=r.case_id, item_code=r.item_code))
    return out



def _end_pause(w: WindowRec, now: datetime, fx: Effects) -> None:
    """The window's pause (if one is under way) ends now."""
    if w.pause is not None:
        w.pause.ended_at = now
        fx.records.append(w.pause)
        w.pause = None


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
        _end_pause(w, now, fx)
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
    state.wait_errors.clear()
    state.first_issue = None
    state.tickets.clear()
    for key, lane in state.lanes.items():
        lane.clear()
        cut(state, key)
    state.transfers.clear()
    state.waiting_total = 0
    state.waiting_in.clear()
    state.waiting_persons.clear()
    state.open_by_client.clear()
    state.board.clear()
    appointments.forget_old(state)
    horizon = now - timedelta(days=1)
    for kept in (state.replies, state.refusals):
        for key in [k for k, r in kept.items() if r.at < horizon]:
            del kept[key]
    fx.changed.update(("queue", "board"))

