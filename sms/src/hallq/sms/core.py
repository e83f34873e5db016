"""The SMS gateway's pure core: what a citizen's text means, what to answer, and when to text them.

No IO here: no modem, no MQTT, no SQLite, no clock. ``state, fx = handle(state, event, now)`` applies one
event at ``now`` (an aware datetime in the hall's time zone); ``fx`` is a list of effects for the app to carry
out. A person is only ever a person key (the HMAC of the phone number, :mod:`hallq.shared.phone`): the core
never sees a phone number. An event that cannot be applied raises and changes nothing.

Events
------
- :class:`Text` ``(msg, person, text)``: a citizen's SMS (``msg``: the inbox id, stable across restarts).
  A category's code or name (``A``, ``社保``, ``社保医保``) asks for a number; ``查``/``CX`` asks for the
  position now; ``取消``/``QX`` cancels the person's waiting numbers; anything else gets a short help with
  the categories. At most ``max_texts_per_day`` texts per person and day are answered; later ones are
  dropped (:class:`Handled`).
- :class:`Answer` ``(msg, person, action, reply)``: the controller's answer to a take or cancel we asked
  for (``reply`` None: no answer in time, the citizen is told to try again).
- :class:`HallChanged`, :class:`QueueChanged`, :class:`WindowChanged`: the controller's retained ``config``,
  ``queue`` and ``window/{n}/state``. From them come the two notices: when a tracked ticket has
  ``notify_ahead`` or fewer tickets ahead in its queue (only if it had more when it was issued), and when a
  window calls it (once per window: a ticket transferred to another window is texted again).
- :class:`Tick`: time passes; on a new day every count and tracked ticket of yesterday is forgotten
  (:class:`NewDay`: the app deletes the phone numbers too).

Effects
-------
:class:`Send` (a text to a person, with a key that makes it unique: the outbox never sends one key twice),
:class:`Ask` / :class:`AskCancel` (a request to the controller, whose ``req`` is derived from ``msg`` so a
repeat after a restart gets the first answer), :class:`Track` (persist a tracked ticket), :class:`Counted`
(persist a person's count of answered texts), :class:`Handled` (the text needs nothing more), :class:`NewDay`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from hallq.shared.follow import url
from hallq.shared.schemas import ErrorReply, HallConfig, QueueState, TakeReply, WindowState

from . import texts

STATUS_WORDS = {"查", "查询", "查号", "进度", "CX", "CHA", "STATUS", "?"}
CANCEL_WORDS = ("取消", "QX", "CANCEL")


class NotReady(Exception):
    """The hall's configuration has not arrived yet: keep the text and try again once it has."""


# == state =================================================================================================
@dataclass(frozen=True, slots=True)
class Settings:
    notify_ahead: int = 3
    max_texts_per_day: int = 10
    english: bool = False


@dataclass(frozen=True, slots=True)
class Category:
    code: str
    name: str
    name_en: str | None


@dataclass(frozen=True, slots=True)
class Hall:
    """What the core needs of the retained ``config``."""

    name: str
    categories: tuple[Category, ...]
    windows: dict[int, str]
    hours: tuple[tuple[str, str], ...]
    follow_url: str | None = None

    @classmethod
    def from_config(cls, cfg: HallConfig) -> Hall:
        return cls(
            name=cfg.name,
            categories=tuple(Category(c.code, c.name, c.name_en) for c in cfg.categories),
            windows={w.no: w.name for w in cfg.windows},
            hours=tuple((a, b) for a, b in cfg.hours),
            follow_url=cfg.follow_url,
        )

    def category(self, code: str) -> Category | None:
        return next((c for c in self.categories if c.code == code), None)


@dataclass(frozen=True, slots=True)
class Tracked:
    """A ticket taken by SMS today, followed for its notices."""

    number: str
    category: str
    person: str
    ahead_at_issue: int
    ahead_sent: bool = False
    called: tuple[int, ...] = ()  # windows whose call was texted
    cancelled: bool = False


@dataclass(slots=True)
class State:
    day: date
    settings: Settings = field(default_factory=Settings)
    hall: Hall | None = None
    counts: dict[str, int] = field(default_factory=dict)  # person -> texts answered today
    tracked: dict[str, Tracked] = field(default_factory=dict)  # number -> ticket
    ahead: dict[str, int] = field(default_factory=dict)  # number -> tickets ahead (from the queue order)
    has_order: bool = False  # the controller publishes the queue order
    calling: dict[int, str] = field(default_factory=dict)  # window -> number it calls or serves


def new_state(today: date, settings: Settings, *, counts: dict[str, int] | None = None,
              tracked: list[Tracked] | None = None) -> State:
    """The state for ``today``, with what the store kept of today (after a restart)."""
    return State(day=today, settings=settings, counts=dict(counts or {}),
                 tracked={t.number: t for t in tracked or []})


# == events and effects ===================================================================================
@dataclass(frozen=True, slots=True)
class Text:
    msg: str
    person: str
    text: str


@dataclass(frozen=True, slots=True)
class Answer:
    msg: str
    person: str
    action: str  # "take" | "cancel"
    subject: str  # the category asked for (take) or the number to cancel (cancel)
    reply: object | None  # TakeReply / CancelReply / ErrorReply; None: no answer in time


@dataclass(frozen=True, slots=True)
class HallChanged:
    config: HallConfig


@dataclass(frozen=True, slots=True)
class QueueChanged:
    queue: QueueState


@dataclass(frozen=True, slots=True)
class WindowChanged:
    state: WindowState


@dataclass(frozen=True, slots=True)
class Tick:
    pass


Event = Text | Answer | HallChanged | QueueChanged | WindowChanged | Tick


@dataclass(frozen=True, slots=True)
class Send:
    key: str
    person: str
    text: str
    msg: str | None = None  # the text it answers (then that text is handled)


@dataclass(frozen=True, slots=True)
class Ask:
    msg: str
    person: str
    category: str


@dataclass(frozen=True, slots=True)
class AskCancel:
    msg: str
    person: str
    number: str


@dataclass(frozen=True, slots=True)
class Track:
    ticket: Tracked


@dataclass(frozen=True, slots=True)
class Counted:
    person: str
    count: int


@dataclass(frozen=True, slots=True)
class Handled:
    msg: str
    why: str


@dataclass(frozen=True, slots=True)
class NewDay:
    old: date
    new: date


Effect = Send | Ask | AskCancel | Track | Counted | Handled | NewDay


# == matching =============================================================================================
def normalise(text: str) -> str:
    """Full-width to half-width, upper case, no spaces or punctuation."""
    t = unicodedata.normalize("NFKC", text).upper()
    return "".join(ch for ch in t if not (ch.isspace() or unicodedata.category(ch).startswith(("P", "S"))) or ch == "?")


def match_category(hall: Hall, text: str) -> Category | None:
    """The category a text names: its code, its name or English name, or a unique part of the name."""
    t = normalise(text)
    if not t:
        return None
    for c in hall.categories:
        if t == c.code.upper() or t == normalise(c.name) or (c.name_en and t == normalise(c.name_en)):
            return c
    if len(t) >= 2:
        hits = [c for c in hall.categories if t in normalise(c.name) or normalise(c.name) in t]
        if len(hits) == 1:
            return hits[0]
    return None


# == handle ================================================================================================
def handle(state: State, event: Event, now: datetime) -> tuple[State, list[Effect]]:
    """Apply ``event`` at ``now``; see the module docstring."""
    fx: list[Effect] = []
    if now.date() != state.day:
        fx.append(NewDay(state.day, now.date()))
        state.day = now.date()
        state.counts.clear()
        state.tracked.clear()
    if isinstance(event, Tick):
        pass
    elif isinstance(event, Text):
        _text(state, event, fx)
    elif isinstance(event, Answer):
        _answer(state, event, fx)
    elif isinstance(event, HallChanged):
        state.hall = Hall.from_config(event.config)
    elif isinstance(event, QueueChanged):
        _queue(state, event.queue, fx)
    elif isinstance(event, WindowChanged):
        _window(state, event.state, fx)
    else:
        raise TypeError(f"not an event of the SMS core: {event!r}")
    return state, fx


def _hall(state: State) -> Hall:
    if state.hall is None:
        raise NotReady("the hall's configuration has not arrived")
    return state.hall


def _text(state: State, ev: Text, fx: list[Effect]) -> None:
    hall = _hall(state)
    s = state.settings
    n = state.counts.get(ev.person, 0)
    if n >= s.max_texts_per_day:
        fx.append(Handled(ev.msg, f"over {s.max_texts_per_day} texts today"))
        return
    t = normalise(ev.text)
    reply: str | None = None
    if t in STATUS_WORDS:
        reply = _status(state, hall, ev.person)
    elif t.startswith(CANCEL_WORDS):
        mine = _waiting_of(state, ev.person)
        if not mine:
            reply = texts.no_ticket(hall.name, s.english)
        else:
            fx.extend(AskCancel(ev.msg, ev.person, held.number) for held in mine)
    else:
        cat = match_category(hall, ev.text)
        if cat is None:
            reply = texts.help_text(hall.name, [(c.code, c.name) for c in hall.categories], s.english)
        else:
            fx.append(Ask(ev.msg, ev.person, cat.code))
    state.counts[ev.person] = n + 1
    fx.append(Counted(ev.person, n + 1))
    if reply is not None:
        fx.append(Send(f"re:{ev.msg}", ev.person, reply, msg=ev.msg))


def _waiting_of(state: State, person: str) -> list[Tracked]:
    """The person's tickets that still wait (in a queue's order, or not yet seen called or ended)."""
    out = []
    for t in state.tracked.values():
        if t.person != person or t.cancelled:
            continue
        if state.has_order:
            if t.number in state.ahead:
                out.append(t)
        elif not t.called:
            out.append(t)
    return out


def _status(state: State, hall: Hall, person: str) -> str:
    mine = [t for t in state.tracked.values() if t.person == person and not t.cancelled]
    if not mine:
        return texts.no_ticket(hall.name, state.settings.english)
    calling = {num: w for w, num in state.calling.items()}
    lines = []
    for t in mine:
        if t.number in calling:
            lines.append(texts.status_called(t.number, hall.windows.get(calling[t.number], f"{calling[t.number]}号窗口")))
        elif t.number in state.ahead:
            lines.append(texts.status_waiting(t.number, state.ahead[t.number]))
        elif state.has_order or t.called:
            lines.append(texts.status_unknown(t.number))
        else:
            lines.append(texts.status_waiting(t.number, t.ahead_at_issue))
    return texts.status(hall.name, lines, state.settings.english)


def _answer(state: State, ev: Answer, fx: list[Effect]) -> None:
    hall = _hall(state)
    s = state.settings
    key = f"re:{ev.msg}" if ev.action == "take" else f"re:{ev.msg}:{ev.subject}"
    r = ev.reply
    cat = hall.category(ev.subject)
    cat_name = cat.name if cat else ev.subject
    if r is None:
        text = texts.busy(hall.name, s.english)
    elif isinstance(r, ErrorReply):
        code = r.error.code
        if ev.action == "cancel":
            text = texts.status(hall.name, [texts.status_unknown(ev.subject)], s.english)
            t = state.tracked.get(ev.subject)
            if t is not None and code == "no_ticket":
                _save(state, replace(t, cancelled=True), fx)
        elif code == "closed":
            text = texts.closed(hall.name, hall.hours, s.english)
        elif code == "quota_full":
            text = texts.quota_full(hall.name, cat_name, hall.hours, s.english)
        elif code == "duplicate":
            held = next((t for t in state.tracked.values()
                         if t.person == ev.person and t.category == ev.subject and not t.cancelled), None)
            text = texts.duplicate(hall.name, cat_name, held.number if held else None,
                                   state.ahead.get(held.number) if held else None, s.english)
        elif code == "unknown_category":
            text = texts.help_text(hall.name, [(c.code, c.name) for c in hall.categories], s.english)
        else:
            text = texts.refused(hall.name, r.error.message, s.english)
    elif ev.action == "take" and isinstance(r, TakeReply):
        tk = r.ticket
        cat = hall.category(tk.category)
        follow = url(hall.follow_url, tk.follow) if hall.follow_url and tk.follow else None
        text = texts.ticket(hall.name, tk.number, cat.name if cat else tk.category, tk.ahead, tk.est_wait_min,
                            tk.est_wait_range, s.notify_ahead, follow, s.english)
        t = Tracked(tk.number, tk.category, ev.person, tk.ahead, ahead_sent=tk.ahead <= s.notify_ahead)
        _save(state, t, fx)
    elif ev.action == "cancel":
        text = texts.cancelled(hall.name, [ev.subject], s.english)
        t = state.tracked.get(ev.subject)
        if t is not None:
            _save(state, replace(t, cancelled=True), fx)
    else:
        raise TypeError(f"a {ev.action} answer of type {type(r).__name__}")
    fx.append(Send(key, ev.person, text, msg=ev.msg))


def _save(state: State, t: Tracked, fx: list[Effect]) -> None:
    state.tracked[t.number] = t
    fx.append(Track(t))


def _queue(state: State, q: QueueState, fx: list[Effect]) -> None:
    # a controller that does not publish the order leaves it empty while tickets wait
    has_order = not any(cq.waiting and not cq.order for cq in q.categories.values())
    ahead = {num: i for cq in q.categories.values() for i, num in enumerate(cq.order)}
    state.ahead = ahead if has_order else {}
    state.has_order = has_order
    if not has_order or state.hall is None:
        return
    k = state.settings.notify_ahead
    for t in list(state.tracked.values()):
        if t.ahead_sent or t.called or t.cancelled:
            continue
        a = ahead.get(t.number)
        if a is not None and a <= k:
            fx.append(Send(f"ahead:{state.day}:{t.number}", t.person,
                           texts.ahead_notice(state.hall.name, t.number, a, state.settings.english)))
            _save(state, replace(t, ahead_sent=True), fx)


def _window(state: State, ws: WindowState, fx: list[Effect]) -> None:
    if ws.ticket is None or ws.status == "closed":
        state.calling.pop(ws.window, None)
        return
    num = ws.ticket.number
    state.calling[ws.window] = num
    t = state.tracked.get(num)
    if t is None or t.cancelled or ws.window in t.called or ws.ticket.called_at.date() != state.day:
        return
    hall = _hall(state)
    name = hall.windows.get(ws.window, f"{ws.window}号窗口")
    fx.append(Send(f"called:{state.day}:{num}:{ws.window}", t.person,
                   texts.called_notice(hall.name, num, name, state.settings.english)))
    _save(state, replace(t, called=(*t.called, ws.window), ahead_sent=True), fx)

