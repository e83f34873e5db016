"""Appointments (预约取号, 精确预约 即到即办): the bookings the hall keeps, and the check-in rules.

Bookings come in as :class:`~.machine.BookingsIn` events (:func:`take_in`): a new code is kept, a known
one updated unless it is already checked in. A booking its source lists as cancelled is kept as
cancelled (``cancelled_at``; listed again as booked, it is booked again); a checked-in one stays as it
was (the citizen has the ticket). The hall keeps them from :data:`KEEP_DAYS` days back on.

Check-in (:func:`check_in`) is a ``take`` with ``channel = "appointment"``: by the booking code
(``appointment``), or by the ID card (``person``: the person key the kiosk sends; the booking holds the
same key for its date). The rules, in the order they are checked (a refusal changes nothing):

1. by code: an unknown code is ``unknown_appointment``, and so is a cancelled one (its message says
   预约已取消); by ID card: no booking of this person at all (cancelled ones do not count) is
   ``unknown_appointment``, bookings on other days only is ``not_today``, today's all checked in is
   ``already_checked_in``; among today's open bookings the one in the category the citizen chose, else
   the one whose slot comes first;
2. a booking for another day is ``not_today`` (with its date and slot);
3. a booking already checked in is ``already_checked_in`` (with its time and number);
4. the arrival: ``early`` before the slot starts, ``on_time`` until ``grace_min`` minutes after the slot's
   end, ``late`` after that. Early and on-time check-ins get an appointment ticket of the booking's
   category (``priority = "appointment"``, carrying the slot: dispatch serves it from the slot's start,
   not before; a daily quota does not stop it, the booking is the promise). A late one gets a normal
   ticket and is told so (``arrival = "late"`` in the answer), or, with ``[appointments] late =
   "refuse"``, the answer ``too_late``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from hallq.shared.schemas import TakeRequest

from .state import Booking, BookingRec, HallState, Refused, TicketRec

#: Bookings older than this many days are dropped from memory (the record keeps them).
KEEP_DAYS = 30


def take_in(state: HallState, source: str, bookings: Iterable[Booking], now: datetime, records: list) -> int:
    """Keep ``bookings``; returns how many were new or changed (and appends them to ``records``)."""
    tz = now.tzinfo
    oldest = state.day - timedelta(days=KEEP_DAYS)
    n = 0
    for b in bookings:
        if b.day < oldest:
            continue
        old = state.bookings.get(b.code)
        if old is not None and old.checked_in_at is not None:
            continue  # checked in: what the citizen was given stands
        start = datetime.combine(b.day, b.start, tz)
        end = datetime.combine(b.day, b.end, tz)
        if old is not None and (old.category, old.day, old.slot_start, old.slot_end, old.person, old.name,
                                old.cancelled_at is not None) == (
                b.category, b.day, start, end, b.person, b.name, b.cancelled):
            continue
        cancelled_at = None
        if b.cancelled:
            cancelled_at = old.cancelled_at if old is not None and old.cancelled_at is not None else now
        rec = BookingRec(code=b.code, category=b.category, day=b.day, slot_start=start, slot_end=end,
                         person=b.person, name=b.name, source=source, imported_at=now, cancelled_at=cancelled_at)
        state.bookings[b.code] = rec
        records.append(rec)
        n += 1
    return n


def forget_old(state: HallState) -> None:
    """Drop bookings older than :data:`KEEP_DAYS` from memory (at midnight)."""
    oldest = state.day - timedelta(days=KEEP_DAYS)
    for code in [c for c, b in state.bookings.items() if b.day < oldest]:
        del state.bookings[code]


def _slot(b: BookingRec) -> str:
    return f"{b.day} {b.slot_start:%H:%M}–{b.slot_end:%H:%M}"


def find(state: HallState, p: TakeRequest) -> BookingRec:
    """The booking a check-in names (rule 1), or :class:`Refused`."""
    if p.appointment is not None:
        b = state.bookings.get(p.appointment)
        if b is None:
            raise Refused("unknown_appointment", f"there is no booking {p.appointment} (预约码不存在)")
        if b.cancelled_at is not None:
            raise Refused("unknown_appointment", f"booking {p.appointment} ({_slot(b)}) was cancelled (预约已取消)")
        return b
    if p.person is None:
        raise Refused("bad_request", "a check-in needs the booking code (`appointment`) or an ID card (`person`)")
    mine = [b for b in state.bookings.values() if b.person == p.person and b.cancelled_at is None]
    if not mine:
        raise Refused("unknown_appointment", "there is no booking for this ID card (未查到预约)")
    today = [b for b in mine if b.day == state.day]
    if not today:
        coming = sorted((b for b in mine if b.day > state.day), key=lambda b: b.slot_start)
        when = f"; the next is {_slot(coming[0])}" if coming else ""
        raise Refused("not_today", f"this ID card has no booking today (预约不是今天){when}")
    open_ = [b for b in today if b.checked_in_at is None]
    if not open_:
        b = today[0]
        raise Refused("already_checked_in", f"today's booking was checked in at {b.checked_in_at:%H:%M} "
                                            f"(ticket {b.ticket}) (已签到)")
    return min(open_, key=lambda b: (b.category != p.category, b.slot_start))


def arrival(state: HallState, b: BookingRec, now: datetime) -> str:
    if now < b.slot_start:
        return "early"
    if now <= b.slot_end + timedelta(minutes=state.cfg.appointments.grace_min):
        return "on_time"
    return "late"


def check_in(state: HallState, p: TakeRequest, now: datetime) -> tuple[BookingRec, str]:
    """The booking and the arrival (``early``, ``on_time``, ``late``) of a check-in, or :class:`Refused`."""
    b = find(state, p)
    if b.day != state.day:
        raise Refused("not_today", f"booking {b.code} is for {_slot(b)}, not today (预约不是今天)")
    if b.checked_in_at is not None:
        raise Refused("already_checked_in", f"booking {b.code} was checked in at {b.checked_in_at:%H:%M} "
                                            f"(ticket {b.ticket}) (已签到)")
    a = arrival(state, b, now)
    if a == "late" and state.cfg.appointments.late == "refuse":
        raise Refused("too_late", f"booking {b.code} was for {b.slot_start:%H:%M}–{b.slot_end:%H:%M}; more than "
                                  f"{state.cfg.appointments.grace_min} min late, please take a normal number "
                                  f"(已过预约时段，请普通取号)")
    return b, a


def checked_in(b: BookingRec, t: TicketRec, arrival: str, now: datetime) -> None:
    b.checked_in_at, b.ticket, b.arrival = now, t.number, arrival
