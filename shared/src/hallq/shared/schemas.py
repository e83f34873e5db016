"""Payload schemas of the hall contract v1.

Every payload on every topic has a schema here, as a strict ``msgspec.Struct``: unknown, missing and
mistyped fields are refused with a message that names the field (``decode`` raises :class:`PayloadError`).
Times are ISO 8601 with the hall's UTC offset. ``docs/protocol.md`` is generated from these types
(``python -m hallq.shared.protocol_doc``).

The availability topics (controller and device ``status``) carry the plain strings ``online``,
``stopped`` and ``offline`` rather than JSON, as Home Assistant, zigbee2mqtt and Frigate do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta

# -- availability --------------------------------------------------------------------------------
ONLINE = "online"
STOPPED = "stopped"
OFFLINE = "offline"
AVAILABILITY = (ONLINE, STOPPED, OFFLINE)

# -- scalar types ----------------------------------------------------------------------------------
ReqId = Annotated[str, Meta(min_length=1, max_length=64, description="unique per client")]
CategoryCode = Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{1,16}$", description="a category code")]
TicketNumber = Annotated[
    str, Meta(pattern=r"^[A-Z0-9]{1,3}[0-9]{3}$", description="the category prefix and three digits")
]
WindowNo = Annotated[int, Meta(ge=1, le=999, description="a window number")]
Count = Annotated[int, Meta(ge=0)]
Minutes = Annotated[int, Meta(ge=0, description="whole minutes")]
MinutesRange = Annotated[
    tuple[Minutes, Minutes],
    Meta(description="[low, high] whole minutes: the wait holds within it for about 8 tickets in 10"),
]
PersonKey = Annotated[
    str,
    Meta(
        pattern=r"^[0-9a-f]{32,128}$",
        description="an opaque key of the person (hex HMAC of the ID number under the hall key); never the number",
    ),
]
ShortText = Annotated[str, Meta(min_length=1, max_length=200)]
HHMM = Annotated[str, Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$", description="local time HH:MM")]
DateStr = Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$", description="local date YYYY-MM-DD")]
#: A request's deadline, relative (clocks of devices and controller are not in step; a Pi has no RTC).
TtlMs = Annotated[
    int,
    Meta(
        ge=1,
        le=600_000,
        description="milliseconds: the controller refuses the request `expired` (changing nothing) unless it "
        "applies it within this time of its sending (estimated from `sent`; without it, of its receipt); the "
        "sender waits as long again for the answer (twice ttl_ms from its first copy: REPLY_WAIT), so a sender "
        "that gave up was refused or never served. A resend carries what is left",
    ),
]

Channel = Literal["touch", "idcard", "appointment", "sms", "qr", "staff"]  # qr: scan-to-take on a phone
Priority = Literal["elderly", "disabled", "pregnant", "military", "appointment"]
WindowOp = Literal["next", "recall", "noshow", "transfer", "done", "pause", "resume", "open", "close"]
CaseKind = Literal["instant", "promised", "joint", "reported", "refused"]
Level = Literal["very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied"]
WindowStatus = Literal["idle", "serving", "paused", "closed"]
TicketStatus = Literal["waiting", "called", "done", "noshow", "transferred", "expired", "cancelled"]
ErrorCode = Literal[
    "bad_request",
    "not_allowed",
    "unknown_category",
    "closed",
    "quota_full",
    "duplicate",
    "unknown_window",
    "no_ticket",
    "empty",
    "paused",
    "not_ratable",
    "already_rated",
    "clock_unsynced",
    "expired",  # not applied within the request's `ttl_ms`: nothing was done (its sender has given up by now)
    "busy",  # the client sent more requests than its role may (per second): send the same req again shortly
    "too_many",  # the client holds as many waiting tickets as its role may
    # appointments (预约签到)
    "unknown_appointment",  # no such booking code, or no booking for this ID card
    "not_today",  # the booking is for another day
    "already_checked_in",  # the booking was checked in before (its ticket is in the message)
    "too_late",  # past the slot and the hall's grace, where the hall refuses late check-ins
]
Arrival = Literal["early", "on_time", "late"]

#: The five levels, best first (非常满意 … 非常不满意).
LEVELS: tuple[str, ...] = ("very_satisfied", "satisfied", "basic", "dissatisfied", "very_dissatisfied")
LEVEL_NAMES_ZH = {
    "very_satisfied": "非常满意",
    "satisfied": "满意",
    "basic": "基本满意",
    "dissatisfied": "不满意",
    "very_dissatisfied": "非常不满意",
}
CASE_KIND_NAMES_ZH = {
    "instant": "即办件",
    "promised": "承诺件",
    "joint": "联办件",
    "reported": "上报件",
    "refused": "退回件",
}


class Schema(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True, kw_only=True):
    """Base of every payload: strict on input, optional fields left out on output."""


# -- requests --------------------------------------------------------------------------------------
class Sent(Schema, kw_only=True):
    """When a copy of a request was sent, on the sender's monotonic clock (``clock`` names that clock: a new
    one each time the sender starts). The controller learns each sender's offset (the least receipt minus
    ``ms`` it has seen lately) and counts ``ttl_ms`` from the send time so estimated: the time a copy waited in
    the broker or in a stalled controller's socket counts against its deadline too."""

    clock: Annotated[str, Meta(pattern=r"^[0-9a-f]{1,16}$")]
    ms: Annotated[int, Meta(ge=0, le=2**53)]


class TakeRequest(Schema, kw_only=True):
    """``take``: a kiosk asks for a number."""

    req: ReqId
    ttl_ms: TtlMs | None = None  # the request's deadline, relative (see ``TtlMs``)
    sent: Sent | None = None  # when this copy was sent, on the sender's clock (see ``Sent``)
    category: CategoryCode
    channel: Channel | None = None
    priority: Priority | None = None
    person: PersonKey | None = None
    appointment: Annotated[str, Meta(pattern=r"^[A-Za-z0-9-]{4,32}$")] | None = None


class Staff(Schema, kw_only=True):
    """A clerk signed in at a window."""

    id: Annotated[str, Meta(min_length=1, max_length=64)]
    name: Annotated[str, Meta(min_length=1, max_length=64)]


class TransferTo(Schema, kw_only=True):
    """Where a transferred ticket goes: exactly one of a category or a window."""

    category: CategoryCode | None = None
    window: WindowNo | None = None

    def __post_init__(self) -> None:
        if (self.category is None) == (self.window is None):
            raise ValueError("`to` needs exactly one of `category` or `window`")


class Case(Schema, kw_only=True):
    """The case (办件) a service produced, linked to the call (叫号信息关联办件信息)."""

    id: Annotated[str, Meta(min_length=1, max_length=64, description="case number (办件编号)")]
    item_code: Annotated[str, Meta(min_length=1, max_length=64, description="service item code")]
    item_name: Annotated[str, Meta(min_length=1, max_length=200)] | None = None
    kind: CaseKind | None = None


class WindowRequest(Schema, kw_only=True):
    """``window``: a window's caller operates its window."""

    req: ReqId
    ttl_ms: TtlMs | None = None  # the request's deadline, relative (see ``TtlMs``)
    sent: Sent | None = None  # when this copy was sent, on the sender's clock (see ``Sent``)
    window: WindowNo
    op: WindowOp
    staff: Staff | None = None
    to: TransferTo | None = None
    case: Case | None = None

    def __post_init__(self) -> None:
        if self.op == "open" and self.staff is None:
            raise ValueError("`open` needs `staff` = {id, name}")
        if self.op != "open" and self.staff is not None:
            raise ValueError("`staff` is only for `open`")
        if self.op == "transfer" and self.to is None:
            raise ValueError("`transfer` needs `to` = {category} or {window}")
        if self.op != "transfer" and self.to is not None:
            raise ValueError("`to` is only for `transfer`")
        if self.op != "done" and self.case is not None:
            raise ValueError("`case` is only for `done`")


class RateRequest(Schema, kw_only=True):
    """``rate``: a rating pad sends the citizen's rating of a service."""

    req: ReqId
    ttl_ms: TtlMs | None = None  # the request's deadline, relative (see ``TtlMs``)
    sent: Sent | None = None  # when this copy was sent, on the sender's clock (see ``Sent``)
    window: WindowNo
    ticket: TicketNumber
    level: Level
    at: datetime | None = None  # when it was pressed, for ratings kept while offline
    #: The service rated: ``ticket.called_at`` of the window state the pad saw. The controller refuses a
    #: rating whose service is not the ticket's latest at that window (yesterday's A001 is not today's).
    called_at: datetime | None = None


class DemoPress(Schema, kw_only=True):
    """``demo/pad/{n}/press`` (``hallq demo`` only): the simulated citizen served ``ticket`` will press
    ``level`` on the real pad at window ``n`` when it invites the rating (the pad drives its mock GPIO pin)."""

    ticket: TicketNumber
    level: Level


class CancelRequest(Schema, kw_only=True):
    """``cancel``: the holder of a waiting ticket gives it up (取消排号), e.g. by texting ``取消``.

    ``person`` must be the person key the ticket was taken with: only its holder can cancel it."""

    req: ReqId
    ttl_ms: TtlMs | None = None  # the request's deadline, relative (see ``TtlMs``)
    sent: Sent | None = None  # when this copy was sent, on the sender's clock (see ``Sent``)
    ticket: TicketNumber
    person: PersonKey


#: A sender waits this many times the ``ttl_ms`` it sent for the answer: the second half is for the rest of the
#: controller's batch, its commit and the answer's way back, even on a machine loaded many times over (with a
#: fixed 1.5 s, a soak at load 36 saw answers served in time reach their kiosk after it gave up). Within it, "no
#: answer" means "not served" (the controller refused it ``expired`` or never saw it).
REPLY_WAIT = 2.0

REQUEST_TYPES: dict[str, type[Schema]] = {
    "take": TakeRequest, "window": WindowRequest, "rate": RateRequest, "cancel": CancelRequest,
}


# -- replies ---------------------------------------------------------------------------------------
class AppointmentCheckin(Schema, kw_only=True):
    """A booking checked in with this ticket: its slot, and how the citizen came.

    ``early``: the ticket is called from the slot's start; ``on_time``: called promptly; ``late``: past the
    slot and the hall's grace, so the ticket is a normal one (tell the citizen so)."""

    code: Annotated[str, Meta(pattern=r"^[A-Za-z0-9-]{4,32}$")]
    slot_start: datetime
    slot_end: datetime
    arrival: Arrival


class Ticket(Schema, kw_only=True):
    """A ticket as the kiosk gets it."""

    number: TicketNumber
    category: CategoryCode
    priority: Priority | None = None
    issued_at: datetime
    ahead: Count
    est_wait_min: Minutes
    est_wait_range: MinutesRange | None = None  # shown as "约 15–25 分钟"; low <= est_wait_min <= high
    appointment: AppointmentCheckin | None = None  # a check-in (预约签到)
    follow: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{16}$")] | None = None  # the follow page's token

    def __post_init__(self) -> None:
        _check_range(self.est_wait_min, self.est_wait_range)


def _check_range(minutes: int, rng: tuple[int, int] | None) -> None:
    if rng is not None and not rng[0] <= minutes <= rng[1]:
        raise ValueError(f"`est_wait_range` {list(rng)} must hold `est_wait_min` {minutes}")


class WindowTicket(Schema, kw_only=True):
    """The ticket a window operation involved."""

    number: TicketNumber
    category: CategoryCode
    priority: Priority | None = None
    issued_at: datetime
    status: TicketStatus
    called_at: datetime | None = None
    recalls: Count = 0


class RatingRef(Schema, kw_only=True):
    id: Annotated[int, Meta(ge=1)]


class Error(Schema, kw_only=True):
    code: ErrorCode
    message: str


class TakeReply(Schema, kw_only=True, omit_defaults=False):
    req: ReqId
    ok: Literal[True] = True
    ticket: Ticket


class WindowReply(Schema, kw_only=True, omit_defaults=False):
    req: ReqId
    ok: Literal[True] = True
    ticket: WindowTicket | None = None


class RateReply(Schema, kw_only=True, omit_defaults=False):
    req: ReqId
    ok: Literal[True] = True
    rating: RatingRef


class CancelReply(Schema, kw_only=True, omit_defaults=False):
    req: ReqId
    ok: Literal[True] = True
    ticket: WindowTicket


class ErrorReply(Schema, kw_only=True, omit_defaults=False):
    req: ReqId
    ok: Literal[False] = False
    error: Error


# The four answer types above write every field (`omit_defaults=False`): `ok` has a default so that code
# need not say it, yet it must always be on the wire.
REPLY_TYPES: dict[str, type[Schema]] = {
    "take": TakeReply, "window": WindowReply, "rate": RateReply, "cancel": CancelReply,
}


# -- published by the controller -----------------------------------------------------------------------
class CategoryInfo(Schema, kw_only=True):
    code: CategoryCode
    name: ShortText
    prefix: Annotated[str, Meta(pattern=r"^[A-Z0-9]{1,3}$")]
    name_en: ShortText | None = None


class WindowInfo(Schema, kw_only=True):
    no: WindowNo
    name: ShortText
    categories: list[CategoryCode]
    name_en: ShortText | None = None


class HallConfig(Schema, kw_only=True):
    """``config``: the hall's public configuration."""

    hall: str
    name: ShortText
    timezone: str
    hours: list[tuple[HHMM, HHMM]] = []
    categories: list[CategoryInfo]
    windows: list[WindowInfo]
    name_en: ShortText | None = None
    notices: list[ShortText] = []
    #: Where a ticket's follow page is: an http(s) URL with ``{token}`` (``Ticket.follow``) in it.
    follow_url: Annotated[str, Meta(pattern=r"^https?://[^\s]*\{token\}[^\s]*$", max_length=200)] | None = None


class CategoryQueue(Schema, kw_only=True):
    waiting: Count
    est_wait_min: Minutes  # for a normal ticket taken now
    est_wait_range: MinutesRange | None = None  # the range such a ticket would show
    #: The numbers waiting in this queue, in the order they will be called as things stand (a ticket's
    #: index is how many are ahead of it); tickets transferred to one window are not in any queue's order.
    order: list[TicketNumber] = []
    oldest_at: datetime | None = None  # when the longest-waiting ticket of this queue was issued (or transferred)
    #: False while no window that serves this category is open (signed in and not paused): nobody is called
    #: until one opens, so a screen says so (暂无窗口) instead of a wait.
    serving: bool = True

    def __post_init__(self) -> None:
        _check_range(self.est_wait_min, self.est_wait_range)


class QueueState(Schema, kw_only=True):
    """``queue``: what waits, per category."""

    at: datetime
    categories: dict[str, CategoryQueue]


class CalledTicket(Schema, kw_only=True):
    number: TicketNumber
    category: CategoryCode
    called_at: datetime
    recalls: Count = 0


class LastService(Schema, kw_only=True):
    """How the window's last service ended: a rating pad invites a rating only after ``done``."""

    number: TicketNumber
    outcome: Literal["done", "noshow", "transferred", "expired"]
    ended_at: datetime


class WindowState(Schema, kw_only=True):
    """``window/{n}/state``: what a window is doing."""

    window: WindowNo
    status: WindowStatus
    ticket: CalledTicket | None = None
    staff: Staff | None = None
    last: LastService | None = None


class Call(Schema, kw_only=True):
    """``calls`` (not retained): one message per call and per recall; ``id`` names that announcement, so a
    display announces a message the broker delivers twice only once."""

    id: Annotated[str, Meta(pattern=r"^[0-9]{1,12}\.[0-9]{1,4}$", description="call record . recall")] | None = None
    ticket: TicketNumber
    category: CategoryCode
    window: WindowNo
    window_name: ShortText
    recall: Count = 0  # 0 for the first call, then 1, 2, ... for each recall
    at: datetime


class Board(Schema, kw_only=True):
    """``board``: the last 10 calls, newest first."""

    calls: list[Call]


LevelCounts = dict[Level, Count]


class Figures(Schema, kw_only=True):
    """The figures of one slice of a day (the hall, a window, a clerk or a half hour)."""

    issued: Count = 0
    called: Count = 0
    served: Count = 0
    noshow: Count = 0
    transferred: Count = 0
    wait_mean_min: float | None = None
    wait_p90_min: float | None = None
    service_mean_min: float | None = None
    ratings: LevelCounts = {}
    satisfaction: float | None = None  # (very satisfied + satisfied) / rated
    #: windows and clerks: minutes open (signed in), not paused and serving no one while a ticket it could
    #: call was waiting; None for the hall and half hours
    idle_waiting_min: float | None = None


class AppointmentFigures(Schema, kw_only=True):
    """The day's appointments: booked, checked in (in time / late), no-shows, and the wait after the slot.

    ``booked``: the day's bookings not cancelled; ``noshow``: not checked in by the slot's end;
    ``cancelled``: cancelled by the citizen before checking in; ``wait_*``: minutes from the slot's start or
    the check-in, whichever is later, to the first call, of the appointment tickets called so far."""

    booked: Count = 0
    checked_in: Count = 0
    late: Count = 0
    noshow: Count = 0
    cancelled: Count = 0
    wait_mean_min: float | None = None
    wait_p90_min: float | None = None


class Stats(Schema, kw_only=True):
    """``stats``: today's figures, per window, per clerk, per half hour (keys ``HH:MM``) and per category.

    On the retained ``stats`` topic ``staff`` is empty: every screen and kiosk reads that topic, and per-clerk
    figures are for the hall's managers (the dashboard and ``hallq controller report`` read them from the
    record)."""

    date: DateStr
    at: datetime
    hall: Figures
    windows: dict[str, Figures] = {}
    staff: dict[str, Figures] = {}
    half_hours: dict[str, Figures] = {}
    categories: dict[str, Figures] = {}  # by the category's code
    quiet_half_hours: list[HHMM] = []
    appointments: AppointmentFigures | None = None  # when the hall had bookings that day


class FollowUp(Schema, kw_only=True):
    """A bad review (不满意, 非常不满意) to call back and settle by ``due`` (a local date)."""

    id: Annotated[int, Meta(ge=1)]
    ticket: TicketNumber
    window: WindowNo
    level: Level
    rated_at: datetime
    due: DateStr
    overdue: bool
    staff: Staff | None = None
    case_id: Annotated[str, Meta(min_length=1, max_length=64)] | None = None
    item_code: Annotated[str, Meta(min_length=1, max_length=64)] | None = None


class FollowUps(Schema, kw_only=True):
    """``followups``: the open follow-ups of bad reviews, oldest first."""

    at: datetime
    open: list[FollowUp]


# -- published by devices --------------------------------------------------------------------------------
class PrinterHealth(Schema, kw_only=True):
    online: bool | None = None  # None: unknown
    paper: Literal["ok", "near_end", "out", "unknown"] = "unknown"


class ReaderHealth(Schema, kw_only=True):
    name: ShortText
    online: bool
    detail: str | None = None


class ModemHealth(Schema, kw_only=True):
    """A GSM/4G modem (the SMS gateway): can it reach the network, and how much waits to be sent."""

    online: bool  # the modem answers AT commands
    sim: Literal["ready", "pin", "puk", "absent", "unknown"] = "unknown"
    registration: Literal["home", "roaming", "searching", "denied", "not_registered", "unknown"] = "unknown"
    signal_dbm: Annotated[int, Meta(ge=-120, le=0)] | None = None  # None: unknown (AT+CSQ 99)
    outbox: Count = 0  # messages waiting to be sent
    failed_today: Count = 0  # messages given up today
    detail: str | None = None


class ControllerInstance(Schema, kw_only=True):
    """``controller/instance``: the controller process that serves the hall, republished every few seconds
    while it runs (``beat`` counts up) and cleared on a clean stop. A controller starting for the same hall
    sees it beat and refuses to start, naming this one."""

    instance: Annotated[str, Meta(max_length=64)]
    host: ShortText
    pid: Annotated[int, Meta(ge=1)]
    db: Annotated[str, Meta(max_length=1000)]
    since: datetime
    beat: Count = 0


class DeviceHealth(Schema, kw_only=True):
    """``device/{client}/health``: what a device knows about its own hardware."""

    at: datetime
    role: Literal["kiosk", "display", "window", "pad", "controller", "sms"]
    printer: PrinterHealth | None = None
    modem: ModemHealth | None = None
    readers: list[ReaderHealth] = []
    errors: list[str] = []
    #: The device's hallq software version (its role's package), for the devices registry.
    version: Annotated[str, Meta(max_length=64)] | None = None


DeviceStatus = Literal["online", "offline", "stopped", "never_seen"]


class DeviceState(Schema, kw_only=True):
    """One device in the ``devices`` registry."""

    id: Annotated[str, Meta(pattern=r"^[a-z0-9_-]{1,64}$", description="a client id")]
    role: Annotated[str, Meta(max_length=32)]
    window: WindowNo | None = None
    #: ``never_seen``: listed in hall.toml, but no status or health from it yet.
    status: DeviceStatus
    #: Its last health message (printer, readers, errors).
    health: DeviceHealth | None = None
    version: Annotated[str, Meta(max_length=64)] | None = None
    #: When a status or health message of it last arrived (the controller's time).
    last_seen: datetime | None = None
    #: Listed in hall.toml ``[[devices]]`` (false: seen on the broker but not listed).
    listed: bool = True


class DeviceRegistry(Schema, kw_only=True):
    """``devices`` (retained, by the controller): every listed device and how it is."""

    at: datetime
    devices: list[DeviceState]


# -- encoding and decoding -------------------------------------------------------------------------------
T = TypeVar("T")

_encoder = msgspec.json.Encoder()
_decoders: dict[Any, msgspec.json.Decoder[Any]] = {}


class PayloadError(ValueError):
    """A payload that does not fit its schema; the message names the field."""


def encode(obj: Any) -> bytes:
    """JSON (UTF-8) bytes of a payload."""
    return _encoder.encode(obj)


def decode(payload: bytes | str, type_: type[T]) -> T:
    """Decode and validate a payload, raising :class:`PayloadError` that names the offending field."""
    decoder = _decoders.get(type_)
    if decoder is None:
        decoder = _decoders[type_] = msgspec.json.Decoder(type_)
    try:
        return decoder.decode(payload)
    except msgspec.ValidationError as exc:
        raise PayloadError(shorten(str(exc), 200)) from None
    except msgspec.DecodeError as exc:
        raise PayloadError(f"not valid JSON: {shorten(str(exc))}") from None
    except UnicodeDecodeError:  # a JSON string holding bytes that are not UTF-8
        raise PayloadError("not valid JSON: a string is not UTF-8") from None
    except RecursionError:  # nesting deeper than the decoder's stack
        raise PayloadError("not valid JSON: nested too deeply") from None
    except (ValueError, TypeError, OverflowError, MemoryError) as exc:  # any other way a payload can be wrong
        raise PayloadError(f"not valid JSON: {type(exc).__name__}") from None


#: The longest piece of outside input copied into an error message or a log line.
MAX_ECHO = 120


def shorten(text: object, limit: int = MAX_ECHO) -> str:
    """``text`` cut to ``limit`` characters (with how much was cut), so no input is echoed unbounded."""
    s = text if isinstance(text, str) else repr(text)
    if len(s) <= limit:
        return s
    return f"{s[:limit]}…(+{len(s) - limit})"


def to_builtins(obj: Any) -> Any:
    """A payload as plain dicts and lists (for logs, reports and tests)."""
    return msgspec.to_builtins(obj)


def peek_req(payload: bytes) -> str | None:
    """The ``req`` of a payload that may be otherwise broken, or None when none can be read."""
    try:
        obj = msgspec.json.decode(payload)
    except UnicodeDecodeError:  # bytes that are not UTF-8 in some string: the req may still be readable
        try:
            text = payload.decode("utf-8", "replace") if isinstance(payload, bytes | bytearray) else str(payload)
            obj = msgspec.json.decode(text)
        except Exception:
            return None
    except Exception:  # undecodable in any other way (nested too deeply, not JSON): no req
        return None
    if isinstance(obj, dict):
        req = obj.get("req")
        if isinstance(req, str) and 1 <= len(req) <= 64 and "\ufffd" not in req:
            return req
    return None
