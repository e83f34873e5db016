"""The kiosk's pure core: ``handle(state, event, now) -> (state, effects)``.

No MQTT, pygame, serial or clock in here: the app turns touches, card reads, controller answers, printer
results and retained topics into events, and carries out the effects (check the printer, send a ``take``,
print a ticket, publish health). The screen is drawn from the state alone.

Promises:

- a number is shown and printed only from the controller's answer to this kiosk's own pending request;
- the printer's status is asked before every request, and a printer known to be out of paper or offline
  stops the request before any number is issued;
- a printer failure after the number was issued keeps the number on screen, with a note, for longer;
- the card is kept only as a :class:`~hallq.kiosk.idcard.CardIdentity` (person key, masked number, birth
  date), and is forgotten when its request is answered, cancelled or the kiosk goes idle;
- an event that does not fit the current screen changes nothing;
- outside the hall's opening hours (``config.hours``, on the hall's clock that each :class:`Tick` carries) the
  idle kiosk shows the closed screen with the next opening time, instead of a home screen that looks open;
- a priority that needs a document (``Settings.staff_priorities``: 军人, 残疾人, 孕妇, a senior without a card) is
  asked for only after a staff member confirmed it on the ``staff`` screen with their PIN (checked by the app:
  :class:`CheckStaffPin` -> :class:`StaffChecked`); the take then goes on the ``staff`` channel. The PIN is
  forgotten as soon as it is handed over, the confirmation when its take is sent or the kiosk goes idle;
  ``staff_lock_after`` wrong PINs in a row lock the staff screen for ``staff_lock``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hallq.shared.hours import is_open, next_opening
from hallq.shared.schemas import (
    CategoryQueue,
    HallConfig,
    PrinterHealth,
    QueueState,
    ReaderHealth,
    TakeRequest,
    Ticket,
)

from .idcard import CardIdentity, age_on

ScreenName = Literal["home", "appointment", "staff", "taking", "ticket", "error", "attract", "closed"]
ErrorKind = Literal[
    "closed",
    "quota_full",
    "duplicate",
    "unreachable",
    "printer_out",
    "printer_offline",
    "invalid_card",
    "unknown_category",
    "not_allowed",
    "clock_unsynced",
    "unknown_appointment",
    "not_today",
    "already_checked_in",
    "too_late",
    "expired",
    "busy",
    "too_many",
    "staff_locked",
    "refused",
]
CODE_TO_ERROR: dict[str, ErrorKind] = {
    "closed": "closed",
    "quota_full": "quota_full",
    "duplicate": "duplicate",
    "unknown_category": "unknown_category",
    "not_allowed": "not_allowed",
    "clock_unsynced": "clock_unsynced",
    "unknown_appointment": "unknown_appointment",
    "not_today": "not_today",
    "already_checked_in": "already_checked_in",
    "too_late": "too_late",
    "expired": "expired",
    "busy": "busy",
    "too_many": "too_many",
}
APPOINTMENT_MIN, APPOINTMENT_MAX = 4, 16


# -- settings, state ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Settings:
    device: str
    req_prefix: str  # makes req ids unique across restarts
    language: Literal["zh", "en"] = "zh"
    elderly_age: int = 65
    idle_timeout: timedelta = timedelta(seconds=30)
    attract_after: timedelta = timedelta(seconds=60)
    ticket_time: timedelta = timedelta(seconds=8)
    ticket_time_failed: timedelta = timedelta(seconds=30)
    error_time: timedelta = timedelta(seconds=8)
    answer_timeout: timedelta = timedelta(seconds=8)  # a backstop: the app's request times out first
    printer_timeout: timedelta = timedelta(seconds=6)  # the status check before a request
    #: priorities a staff member confirms at this kiosk ([staff] in kiosk.toml); empty: no staff screen
    staff_priorities: tuple[str, ...] = ()
    staff_lock_after: int = 5  # wrong PINs in a row ...
    staff_lock: timedelta = timedelta(minutes=5)  # ... lock the staff screen this long
    hall: str = ""  # the hall this kiosk was set up for (named when no controller publishes it)


@dataclass(frozen=True, slots=True)
class Pending:
    request: TakeRequest
    stage: Literal["printer", "sent"]
    card_masked: str | None


@dataclass(frozen=True, slots=True)
class Shown:
    """The issued ticket on screen."""

    ticket: Ticket
    category_name: str
    masked_id: str | None
    printed: bool | None = None  # None: still printing
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Failure:
    kind: ErrorKind
    detail: str | None = None  # the controller's message or the card problem (never card data)


@dataclass(frozen=True, slots=True)
class State:
    settings: Settings
    since: datetime  # when the current screen was entered
    last_input: datetime
    screen: ScreenName = "home"
    lang: Literal["zh", "en"] = "zh"
    hall: HallConfig | None = None
    queue: dict[str, CategoryQueue] = field(default_factory=dict)
    quiet: tuple[str, ...] = ()
    controller: str = "unknown"  # online, offline, stopped, unknown
    link: bool | None = None  # this kiosk's own link to the broker: None until the first news of it
    link_since: datetime | None = None  # when that link last came up
    printer: PrinterHealth = field(default_factory=PrinterHealth)
    readers: tuple[ReaderHealth, ...] = ()
    card: CardIdentity | None = None
    appointment: str | None = None  # confirmed code: the next category tap checks it in
    appointment_mode: bool = False  # the next category tap is an appointment check-in
    typing: str = ""  # the keypad's entry
    pending: Pending | None = None
    shown: Shown | None = None
    failure: Failure | None = None
    seq: int = 0
    opens_at: datetime | None = None  # on the closed screen: when the hall opens next (its wall-clock time)
    opens_in_days: int = 0  # 0: today, 1: tomorrow (on the hall's calendar)
    staff_choice: str | None = None  # on the staff screen: the priority picked
    staff_checking: bool = False  # a PIN was handed to the app; its answer is awaited
    staff_wrong: int = 0  # wrong PINs in a row
    staff_locked_until: datetime | None = None
    staff_priority: str | None = None  # confirmed by staff: the next category tap takes it (channel staff)
    staff_by: str | None = None  # who confirmed it (for the kiosk's log; never sent)


#: Connected this long without the hall's retained ``config`` or controller status: no controller ever ran the
#: hall on this broker (the kiosk's ``hall`` is wrong, or the controller is not running).
NO_HALL_AFTER = timedelta(seconds=5)


def no_hall(state: State, now: datetime) -> tuple[str, str] | None:
    """What the home screen and the log say, in Chinese and English, when the hall this kiosk was set up for
    has not been heard of within :data:`NO_HALL_AFTER` of connecting; else None."""
    if (state.hall is None and state.link and state.controller == "unknown" and state.link_since is not None
            and now - state.link_since >= NO_HALL_AFTER):
        h = state.settings.hall
        return (f"找不到大厅 {h}：没有控制器发布过它（控制器是否在运行？hall 是否写对？）",
                f"hall {h} is not on this broker: no controller has published it "
                f"(is its controller running, and is hall = \"{h}\" right?)")
    return None


def initial(settings: Settings, now: datetime) -> State:
    return State(settings=settings, since=now, last_input=now, lang=settings.language)


# -- events ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Press:
    """A touch on a screen element: ``category`` (arg = code), ``language``, ``appointment``, ``key``
    (arg = a digit), ``backspace``, ``confirm``, ``cancel``, ``home``, ``wake``."""

    action: str
    arg: str | None = None


@dataclass(frozen=True, slots=True)
class CardRead:
    card: CardIdentity | None
    problem: str | None = None  # why the card cannot be used (never card data)


@dataclass(frozen=True, slots=True)
class PrinterChecked:
    online: bool | None
    paper: Literal["ok", "near_end", "out", "unknown"]


@dataclass(frozen=True, slots=True)
class TakeAnswered:
    req: str
    ticket: Ticket


@dataclass(frozen=True, slots=True)
class TakeRefused:
    req: str
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class TakeUnanswered:
    req: str


@dataclass(frozen=True, slots=True)
class TicketPrinted:
    number: str
    ok: bool
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passes. ``hall_now`` is the hall's clock (the demo's runs faster than the screens' timers); with
    it the kiosk follows the opening hours."""

    hall_now: datetime | None = None


@dataclass(frozen=True, slots=True)
class ConfigChanged:
    hall: HallConfig


@dataclass(frozen=True, slots=True)
class QueueChanged:
    queue: QueueState


@dataclass(frozen=True, slots=True)
class QuietChanged:
    quiet: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    status: str


@dataclass(frozen=True, slots=True)
class Link:
    """This kiosk's link to the broker came up or went down (no request is sent while it is down)."""

    up: bool


@dataclass(frozen=True, slots=True)
class StaffChecked:
    """The app's answer to :class:`CheckStaffPin`: whose PIN it was, or None (wrong)."""

    staff: str | None


@dataclass(frozen=True, slots=True)
class ReaderStatus:
    name: str
    online: bool
    detail: str | None = None


Event = (
    Press | CardRead | PrinterChecked | TakeAnswered | TakeRefused | TakeUnanswered | TicketPrinted | Tick
    | ConfigChanged | QueueChanged | QuietChanged | ControllerStatus | Link | ReaderStatus | StaffChecked
)


# -- effects --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class CheckPrinter:
    pass


@dataclass(frozen=True, slots=True)
class SendTake:
    request: TakeRequest


@dataclass(frozen=True, slots=True)
class PrintTicket:
    ticket: Ticket
    hall_name: str
    category_name: str
    masked_id: str | None
    lang: Literal["zh", "en"]


@dataclass(frozen=True, slots=True)
class PublishHealth:
    printer: PrinterHealth
    readers: tuple[ReaderHealth, ...]


@dataclass(frozen=True, slots=True)
class CheckStaffPin:
    """Check ``pin`` against the kiosk's staff PINs (the app, off the screen's thread) -> :class:`StaffChecked`."""

    pin: str = field(repr=False)


Effect = CheckPrinter | SendTake | PrintTicket | PublishHealth | CheckStaffPin


# -- helpers --------------------------------------------------------------------------------------------
def category_name(state: State, code: str) -> str:
    if state.hall is not None:
        for c in state.hall.categories:
            if c.code == code:
                return c.name_en if state.lang == "en" and c.name_en else c.name
    return code


def hall_name(state: State) -> str:
    if state.hall is None:
        return ""
    return state.hall.name_en if state.lang == "en" and state.hall.name_en else state.hall.name


def priority_of(state: State, now: datetime) -> str | None:
    if state.appointment_mode:
        return "appointment"
    if state.staff_priority is not None:
        return state.staff_priority
    if state.card is not None and age_on(state.card.birth_date, now.date()) >= state.settings.elderly_age:
        return "elderly"
    return None


def _home(state: State, now: datetime) -> State:
    """Home, forgetting any card, appointment and entry."""
    return replace(state, screen="home", since=now, card=None, appointment=None, appointment_mode=False,
                   typing="", pending=None, failure=None, shown=None, **_NO_STAFF)


#: A staff confirmation forgotten (the lock and the count of wrong PINs stay).
_NO_STAFF = {"staff_choice": None, "staff_checking": False, "staff_priority": None, "staff_by": None}


def _fail(state: State, now: datetime, kind: ErrorKind, detail: str | None = None) -> State:
    return replace(state, screen="error", since=now, failure=Failure(kind, detail), pending=None, card=None,
                   appointment=None, appointment_mode=False, typing="", shown=None, **_NO_STAFF)


def _health(state: State) -> PublishHealth:
    return PublishHealth(state.printer, state.readers)


# -- the transition function ----------------------------------------------------------------------------
def handle(state: State, event: Event, now: datetime) -> tuple[State, list[Effect]]:
    """The next state and the effects to carry out. Never raises for an event that does not fit."""
    if isinstance(event, Press):
        return _press(replace(state, last_input=now), event, now)
    if isinstance(event, CardRead):
        return _card(state, event, now)
    if isinstance(event, PrinterChecked):
        return _printer_checked(state, event, now)
    if isinstance(event, TakeAnswered):
        p = state.pending
        if p is None or p.stage != "sent" or p.request.req != event.req or state.screen != "taking":
            return state, []  # a late or foreign answer: never shown, never printed
        name = category_name(state, event.ticket.category)
        shown = Shown(event.ticket, name, p.card_masked)
        new = replace(state, screen="ticket", since=now, shown=shown, pending=None, card=None,
                      appointment=None, appointment_mode=False, typing="", failure=None)
        return new, [PrintTicket(event.ticket, hall_name(state), name, p.card_masked, state.lang)]
    if isinstance(event, TakeRefused):
        p = state.pending
        if p is None or p.request.req != event.req:
            return state, []
        return _fail(state, now, CODE_TO_ERROR.get(event.code, "refused"), event.message), []
    if isinstance(event, TakeUnanswered):
        p = state.pending
        if p is None or p.request.req != event.req:
            return state, []
        return _fail(state, now, "unreachable"), []
    if isinstance(event, TicketPrinted):
        s = state.shown
        if s is None or s.ticket.number != event.number or s.printed is not None:
            return state, []
        shown = replace(s, printed=event.ok, problem=None if event.ok else (event.problem or "printer"))
        return replace(state, shown=shown), ([] if event.ok else [CheckPrinter()])
    if isinstance(event, Tick):
        # the timers first: a screen that times out into home during the break closes in the same tick
        return _hours(_tick(state, now), event.hall_now, now), []
    if isinstance(event, ConfigChanged):
        return replace(state, hall=event.hall), []
    if isinstance(event, QueueChanged):
        return replace(state, queue=dict(event.queue.categories)), []
    if isinstance(event, QuietChanged):
        return replace(state, quiet=tuple(event.quiet)), []
    if isinstance(event, ControllerStatus):
        return replace(state, controller=event.status), []
    if isinstance(event, Link):
        since = (state.link_since if state.link else now) if event.up else None
        return replace(state, link=event.up, link_since=since), []
    if isinstance(event, StaffChecked):
        return _staff_checked(state, event, now), []
    if isinstance(event, ReaderStatus):
        readers = [r for r in state.readers if r.name != event.name]
        readers.append(ReaderHealth(name=event.name, online=event.online, detail=event.detail))
        new = replace(state, readers=tuple(sorted(readers, key=lambda r: r.name)))
        return new, ([_health(new)] if new.readers != state.readers else [])
    return state, []


def _press(state: State, ev: Press, now: datetime) -> tuple[State, list[Effect]]:
    a = ev.action
    scr = state.screen
    if a == "language" and scr in ("home", "appointment", "staff", "error", "ticket", "attract", "closed"):
        return replace(state, lang="en" if state.lang == "zh" else "zh"), []
    if scr == "closed":
        return state, []  # nothing to take until the hall opens
    if scr == "attract":
        return _home(state, now), []
    if scr in ("error", "ticket"):
        return (_home(state, now), []) if a in ("home", "wake", "cancel") else (state, [])
    if scr == "appointment":
        if a == "key" and ev.arg is not None and len(ev.arg) == 1 and ev.arg.isalnum():
            if len(state.typing) < APPOINTMENT_MAX:
                return replace(state, typing=state.typing + ev.arg.upper()), []
            return state, []
        if a == "backspace":
            return replace(state, typing=state.typing[:-1]), []
        if a == "confirm" and APPOINTMENT_MIN <= len(state.typing) <= APPOINTMENT_MAX:
            return replace(state, screen="home", since=now, appointment=state.typing, appointment_mode=True,
                           typing=""), []
        if a == "cancel":
            return _home(state, now), []
        return state, []
    if scr == "staff":
        return _staff_press(state, ev, now)
    if scr == "home":
        if a == "staff" and state.settings.staff_priorities and state.card is None and not state.appointment_mode:
            if state.staff_locked_until is not None and now < state.staff_locked_until:
                return _fail(state, now, "staff_locked"), []
            return replace(state, screen="staff", since=now, typing="", **_NO_STAFF), []
        if a == "appointment":
            return replace(state, screen="appointment", since=now, typing="", appointment=None,
                           appointment_mode=False), []
        if a == "cancel":
            return _home(state, now), []
        if a == "category" and ev.arg is not None:
            return _take(state, ev.arg, now)
    return state, []


def _take(state: State, code: str, now: datetime) -> tuple[State, list[Effect]]:
    if state.hall is None or all(c.code != code for c in state.hall.categories):
        return state, []
    if state.controller in ("offline", "stopped") or state.link is False:
        return _fail(state, now, "unreachable"), []
    if state.printer.paper == "out":
        return _fail(state, now, "printer_out"), [CheckPrinter()]
    if state.printer.online is False:
        return _fail(state, now, "printer_offline"), [CheckPrinter()]
    card = state.card
    if state.appointment_mode:
        channel = "appointment"
    elif state.staff_priority is not None:
        channel = "staff"  # confirmed by a staff member on this kiosk (the controller checks the kiosk may)
    elif card is not None:
        channel = "idcard"
    else:
        channel = "touch"
    seq = state.seq + 1
    req = TakeRequest(
        req=f"{state.settings.req_prefix}-{seq}",
        category=code,
        channel=channel,
        priority=priority_of(state, now),
        person=card.person if card else None,
        appointment=state.appointment if state.appointment_mode else None,
    )
    pending = Pending(req, "printer", card.masked if card else None)
    return replace(state, screen="taking", since=now, pending=pending, seq=seq, failure=None), [CheckPrinter()]


def _staff_press(state: State, ev: Press, now: datetime) -> tuple[State, list[Effect]]:
    """The staff screen: pick the priority, type the PIN, confirm (or go back)."""
    from .staff import PIN_MAX, PIN_MIN

    a = ev.action
    if a == "cancel":
        return _home(state, now), []
    if state.staff_checking:
        return state, []  # the PIN is being checked
    if a == "priority" and ev.arg in state.settings.staff_priorities:
        return replace(state, staff_choice=ev.arg), []
    if a == "key" and ev.arg is not None and len(ev.arg) == 1 and ev.arg.isdigit():
        return (replace(state, typing=state.typing + ev.arg), []) if len(state.typing) < PIN_MAX else (state, [])
    if a == "backspace":
        return replace(state, typing=state.typing[:-1]), []
    if a == "confirm" and state.staff_choice is not None and PIN_MIN <= len(state.typing) <= PIN_MAX:
        return replace(state, typing="", staff_checking=True), [CheckStaffPin(state.typing)]
    return state, []


def _staff_checked(state: State, ev: StaffChecked, now: datetime) -> State:
    if state.screen != "staff" or not state.staff_checking:
        return state  # the screen was left meanwhile: nothing is confirmed
    if ev.staff is None:
        wrong = state.staff_wrong + 1
        if wrong >= state.settings.staff_lock_after:
            return replace(_fail(state, now, "staff_locked"), staff_wrong=0,
                           staff_locked_until=now + state.settings.staff_lock)
        return replace(state, staff_checking=False, staff_wrong=wrong)  # the screen says so, and how many are left
    return replace(state, screen="home", since=now, last_input=now, staff_checking=False, staff_wrong=0,
                   staff_priority=state.staff_choice, staff_by=ev.staff, staff_choice=None, failure=None)


def _printer_checked(state: State, ev: PrinterChecked, now: datetime) -> tuple[State, list[Effect]]:
    printer = PrinterHealth(online=ev.online, paper=ev.paper)
    new = replace(state, printer=printer)
    effects: list[Effect] = [_health(new)] if printer != state.printer else []
    p = new.pending
    if p is not None and p.stage == "printer" and new.screen == "taking":
        if ev.paper == "out":
            return _fail(new, now, "printer_out"), effects
        if ev.online is False:
            return _fail(new, now, "printer_offline"), effects
        new = replace(new, pending=replace(p, stage="sent"), since=now)
        effects.append(SendTake(p.request))
    return new, effects


def _card(state: State, ev: CardRead, now: datetime) -> tuple[State, list[Effect]]:
    if state.screen in ("taking", "staff"):
        return state, []  # a request is under way, or staff are at the kiosk: the card cannot change it
    state = replace(state, last_input=now)
    if ev.card is None:
        return _fail(state, now, "invalid_card", ev.problem), []
    if state.screen == "appointment":
        return replace(state, screen="home", since=now, card=ev.card, appointment=None, appointment_mode=True,
                       typing="", failure=None, shown=None), []
    keep_appointment = state.screen == "home" and state.appointment_mode
    return replace(state, screen="home", since=now, card=ev.card, failure=None, shown=None,
                   appointment_mode=keep_appointment,
                   appointment=state.appointment if keep_appointment else None), []


def hall_local(state: State, at: datetime) -> datetime:
    """``at`` on the hall's wall clock (its configured time zone)."""
    if state.hall is not None and at.tzinfo is not None:
        try:
            return at.astimezone(ZoneInfo(state.hall.timezone))
        except (KeyError, ValueError):
            pass
    return at


def _hours(state: State, hall_now: datetime | None, now: datetime) -> State:
    """The closed screen while the hall is closed and the kiosk idle; home again when it opens."""
    if hall_now is None or state.hall is None:
        return state
    local = hall_local(state, hall_now)
    if is_open(state.hall.hours, local):
        return _idle_home(state, now) if state.screen == "closed" else state
    idle = state.screen == "attract" or (state.screen == "home" and state.card is None and not state.appointment_mode)
    if state.screen != "closed" and not idle:
        return state  # a citizen is in the middle of something: the controller's answer will say closed
    opens = next_opening(state.hall.hours, local)
    if state.screen == "closed" and state.opens_at == opens:
        return state
    base = state if state.screen == "closed" else replace(_idle_home(state, now), lang=state.lang)
    days = (opens.date() - local.date()).days if opens is not None else 0
    return replace(base, screen="closed", since=now, opens_at=opens, opens_in_days=days)


def _idle_home(state: State, now: datetime) -> State:
    """Home after a timeout: the next citizen also gets the default language back."""
    return replace(_home(state, now), lang=state.settings.language)


def _tick(state: State, now: datetime) -> State:
    s = state.settings
    scr = state.screen
    if scr == "ticket" and state.shown is not None:
        if state.shown.printed is None:
            limit = s.ticket_time_failed  # still printing: do not leave before it ends, within reason
        elif state.shown.printed:
            limit = s.ticket_time
        else:
            limit = s.ticket_time_failed
        return _idle_home(state, now) if now - state.since >= limit else state
    if scr == "error":
        return _idle_home(state, now) if now - state.since >= s.error_time else state
    if scr == "taking" and state.pending is not None:
        if state.pending.stage == "printer" and now - state.since >= s.printer_timeout:
            return _fail(state, now, "printer_offline")  # the printer did not answer: no number is asked for
        if now - state.since >= s.answer_timeout:
            return _fail(state, now, "unreachable")
        return state
    if scr in ("appointment", "staff") or (scr == "home" and (state.card or state.appointment_mode
                                                              or state.staff_priority)):
        return _idle_home(state, now) if now - state.last_input >= s.idle_timeout else state
    if scr == "home" and now - max(state.last_input, state.since) >= s.attract_after:
        return replace(state, screen="attract", since=now, lang=s.language)
    return state
