"""The pure core of the call displays: what the hall screen and a window screen show.

No MQTT, pygame, serial or clock in here. The adapters turn MQTT messages into events
(:func:`event_from_message`), feed them to :func:`handle` with the current time, and carry out the
effects it returns (:class:`Announce`, :class:`Beep`). The renderers draw the views that
:func:`hall_view` and :func:`window_view` build from the state.

Time comes in two kinds: ``now`` is monotonic seconds (animation: flashing, error notices, the
scrolling line) and ``wall`` is the hall's local time (the clock on the screen).

Everything a screen shows comes from the retained topics (``config``, ``queue``, ``window/+/state``,
``board``, ``stats``, ``controller/status``), so a display that reboots shows the current picture as soon
as the broker hands them over. ``calls`` messages only drive the flashing and the voice. When the
controller is not ``online`` (or the broker link is down) the views carry an offline mark and the last
picture stays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from hallq.shared.schemas import (
    AVAILABILITY,
    Board,
    Call,
    CalledTicket,
    HallConfig,
    PayloadError,
    QueueState,
    Stats,
    WindowState,
    decode,
)
from hallq.shared.topics import HallTopics, TopicError
from hallq.shared.wording import nobody_serves

FLASH_PERIOD = 0.5  # seconds per on/off phase of a flashing call
#: Connected this long without the hall's retained ``config`` and ``controller/status``: the hall is not on
#: this broker (a retained topic arrives with the subscription, within a second even on a Pi).
NO_HALL_AFTER = 5.0


# -- events ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ConfigMsg:
    config: HallConfig


@dataclass(frozen=True, slots=True)
class QueueMsg:
    queue: QueueState


@dataclass(frozen=True, slots=True)
class WindowMsg:
    state: WindowState


@dataclass(frozen=True, slots=True)
class BoardMsg:
    board: Board


@dataclass(frozen=True, slots=True)
class StatsMsg:
    stats: Stats


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    status: str  # online, stopped, offline


@dataclass(frozen=True, slots=True)
class CallMsg:
    call: Call


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """The broker connection came up or went away."""

    up: bool


@dataclass(frozen=True, slots=True)
class CallerNotice:
    """Something the window's caller has to tell the clerk (an error such as ``empty``, or a hint)."""

    zh: str
    en: str
    error: bool = True


Event = (
    ConfigMsg | QueueMsg | WindowMsg | BoardMsg | StatsMsg | ControllerStatus | CallMsg | LinkChanged | CallerNotice
)


# -- effects -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Announce:
    """Say this call aloud (a first call or a recall)."""

    call: Call


@dataclass(frozen=True, slots=True)
class Beep:
    """The clerk's attention: an error happened."""


Effect = Announce | Beep


# -- state -------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Flash:
    call: Call
    since: float  # monotonic seconds


@dataclass(frozen=True, slots=True)
class Notice:
    zh: str
    en: str
    error: bool
    until: float


@dataclass(frozen=True)
class Settings:
    """What a display is: the hall screen, or the screen of one window."""

    mode: str = "hall"  # "hall" or "window"
    window: int | None = None
    hall: str = ""  # the hall's id (display.hall): named when the hall cannot be found
    flash_seconds: float = 8.0
    error_seconds: float = 5.0
    recent_calls: int = 8
    #: Announce calls: the hall screen speaks every call, a window screen its own window's.
    voice: bool = True


@dataclass(frozen=True)
class DisplayState:
    settings: Settings = field(default_factory=Settings)
    hall: HallConfig | None = None
    queue: QueueState | None = None
    windows: dict[int, WindowState] = field(default_factory=dict)
    board: tuple[Call, ...] = ()
    stats: Stats | None = None
    controller: str | None = None  # None: not heard yet
    link_up: bool = False
    link_since: float | None = None  # when the broker link last came up
    flash: Flash | None = None
    notice: Notice | None = None
    #: The ids of the calls announced lately (newest last): a call the broker delivers again is not.
    announced: tuple[str, ...] = ()
    #: Increases on every change a screen must show (lets the app skip redrawing an unchanged frame).
    version: int = 0


#: How many call ids a display remembers (a redelivery comes within seconds; a hall makes a few calls a minute).
ANNOUNCED_KEPT = 256


def initial(settings: Settings) -> DisplayState:
    if settings.mode == "window" and settings.window is None:
        raise ValueError("a window screen needs its window number")
    return DisplayState(settings=settings)


def _same_call(a: Call, b: Call) -> bool:
    return a.ticket == b.ticket and a.window == b.window and a.recall == b.recall and a.at == b.at


def _concerns_me(s: Settings, call: Call) -> bool:
    return s.mode == "hall" or call.window == s.window


def handle(state: DisplayState, event: Event, now: float) -> tuple[DisplayState, list[Effect]]:
    """Apply one event at monotonic time ``now``; return the new state and what to do."""
    s = state.settings
    effects: list[Effect] = []
    match event:
        case ConfigMsg(config):
            state = replace(state, hall=config)
        case QueueMsg(q):
            state = replace(state, queue=q)
        case WindowMsg(ws):
            windows = dict(state.windows)
            windows[ws.window] = ws
            state = replace(state, windows=windows)
        case BoardMsg(board):
            state = replace(state, board=tuple(board.calls))
        case StatsMsg(stats):
            state = replace(state, stats=stats)
        case ControllerStatus(status):
            state = replace(state, controller=status)
        case LinkChanged(up):
            state = replace(state, link_up=up, link_since=now if up and not state.link_up else state.link_since)
        case CallerNotice(zh, en, error):
            state = replace(state, notice=Notice(zh, en, error, now + s.error_seconds))
            if error:
                effects.append(Beep())
        case CallMsg(call):
            # The board and the window state follow from the controller; show the call at once anyway.
            board = state.board
            if not any(_same_call(call, c) for c in board):
                board = (call, *board)[: max(10, len(board))]
            windows = dict(state.windows)
            old = windows.get(call.window)
            windows[call.window] = WindowState(
                window=call.window,
                status="serving",
                ticket=CalledTicket(number=call.ticket, category=call.category, called_at=call.at,
                                    recalls=call.recall),
                staff=old.staff if old is not None else None,
            )
            state = replace(state, board=board, windows=windows)
            again = call.id is not None and call.id in state.announced
            if _concerns_me(s, call) and not again:
                state = replace(state, flash=Flash(call, now))
                if call.id is not None:
                    state = replace(state, announced=(*state.announced, call.id)[-ANNOUNCED_KEPT:])
                if s.voice:
                    effects.append(Announce(call))
        case _:
            raise TypeError(f"not a display event: {event!r}")
    return replace(state, version=state.version + 1), effects


# -- from MQTT messages to events ------------------------------------------------------------------------
def event_from_message(topics: HallTopics, topic: str, payload: bytes) -> Event:
    """Decode one message of the hall; raises :class:`PayloadError` (bad payload) or :class:`TopicError`."""
    if topic == topics.config:
        return ConfigMsg(decode(payload, HallConfig))
    if topic == topics.queue:
        return QueueMsg(decode(payload, QueueState))
    if topic == topics.board:
        return BoardMsg(decode(payload, Board))
    if topic == topics.stats:
        return StatsMsg(decode(payload, Stats))
    if topic == topics.calls:
        return CallMsg(decode(payload, Call))
    if topic == topics.controller_status:
        try:
            text = payload.decode("utf-8").strip()
        except UnicodeDecodeError:
            raise PayloadError("controller status is not UTF-8") from None
        if text not in AVAILABILITY:
            raise PayloadError(f"controller status {text[:40]!r} is not one of {', '.join(AVAILABILITY)}")
        return ControllerStatus(text)
    n = topics.parse_window_state(topic)  # raises TopicError for anything else
    ws = decode(payload, WindowState)
    if ws.window != n:
        raise PayloadError(f"window state on {topic} is for window {ws.window}")
    return WindowMsg(ws)


def subscriptions(topics: HallTopics) -> list[str]:
    """The topic filters a display listens to."""
    return [topics.config, topics.queue, topics.all_window_states, topics.board, topics.stats,
            topics.controller_status, topics.calls]


# -- views -------------------------------------------------------------------------------------------------
STATUS_TEXT = {
    "serving": ("正在办理", "Serving"),
    "idle": ("空闲", "Idle"),
    "paused": ("暂停服务", "Paused"),
    "closed": ("未开放", "Closed"),
}


@dataclass(frozen=True, slots=True)
class CallLine:
    ticket: str
    window: int
    window_name: str
    window_name_en: str | None
    recall: int


@dataclass(frozen=True, slots=True)
class WindowLine:
    no: int
    name: str
    name_en: str | None
    status: str
    ticket: str | None
    staff: str | None


@dataclass(frozen=True, slots=True)
class WaitLine:
    code: str
    name: str
    name_en: str | None
    waiting: int
    est_wait_min: int
    est_wait_range: tuple[int, int] | None = None
    #: Nobody can be served now (outside the hours, or no window of the category open): what the wait
    #: column says instead of an estimate, (zh, en); None while a window serves the category.
    not_serving: tuple[str, str] | None = None


@dataclass(frozen=True, slots=True)
class HallView:
    title: str
    title_en: str | None
    newest: CallLine | None
    flashing: bool  # the newest call is new (it flashes)
    flash_on: bool  # the bright phase of the flash
    recent: tuple[CallLine, ...]
    windows: tuple[WindowLine, ...]
    waiting: tuple[WaitLine, ...]
    ticker: str
    clock: str
    date: str
    offline: bool
    ready: bool  # the hall's config has arrived
    problem: tuple[str, str] | None = None  # what is wrong with this display's configuration (zh, en)


@dataclass(frozen=True, slots=True)
class WindowView:
    no: int
    name: str
    name_en: str | None
    status: str  # serving, idle, paused, closed, unknown
    status_zh: str
    status_en: str
    ticket: str | None
    recalls: int  # how often the current ticket has been recalled
    staff: str | None
    flashing: bool
    flash_on: bool
    notice: Notice | None
    clock: str
    offline: bool
    ready: bool  # the window's state has arrived
    problem: tuple[str, str] | None = None  # what is wrong with this display's configuration (zh, en)


WEEKDAYS_ZH = "一二三四五六日"


def _flash(state: DisplayState, now: float) -> tuple[Flash | None, bool, bool]:
    f = state.flash
    if f is None or now - f.since >= state.settings.flash_seconds or now < f.since:
        return f, False, False
    on = int((now - f.since) / FLASH_PERIOD) % 2 == 0
    return f, True, on


def offline(state: DisplayState) -> bool:
    return not state.link_up or state.controller != "online"


def problem(state: DisplayState, now: float) -> tuple[str, str] | None:
    """What is wrong with what this display was told to show, in Chinese and English, or None.

    - a window screen for a window the hall's ``config`` does not list;
    - a hall whose retained ``config`` and ``controller/status`` have not come within
      :data:`NO_HALL_AFTER` seconds of connecting: no controller ever ran that hall on this broker.
    """
    s = state.settings
    if state.hall is not None:
        if s.mode == "window" and s.window is not None and all(w.no != s.window for w in state.hall.windows):
            nos = ", ".join(str(w.no) for w in state.hall.windows) or "none"
            return (f"大厅 {state.hall.hall} 没有 {s.window} 号窗口（有：{nos}）",
                    f"hall {state.hall.hall} has no window {s.window} (its windows: {nos})")
        return None
    if (state.link_up and state.controller is None and state.link_since is not None
            and now - state.link_since >= NO_HALL_AFTER):
        return (f"找不到大厅 {s.hall}：没有控制器发布过它（控制器是否在运行？hall 是否写对？）",
                f"hall {s.hall} is not on this broker: no controller has published it "
                f"(is its controller running, and is hall = \"{s.hall}\" right?)")
    return None


def _window_names(state: DisplayState) -> dict[int, tuple[str, str | None]]:
    if state.hall is None:
        return {}
    return {w.no: (w.name, w.name_en) for w in state.hall.windows}


def _line(call: Call, names: dict[int, tuple[str, str | None]]) -> CallLine:
    name, name_en = names.get(call.window, (call.window_name, None))
    return CallLine(call.ticket, call.window, name, name_en, call.recall)


def ticker_text(state: DisplayState) -> str:
    """The scrolling line: the hall's notices and the quietest half-hours of today."""
    parts: list[str] = []
    if state.hall is not None:
        parts.extend(state.hall.notices)
        if state.hall.hours:
            hours = "、".join(f"{a}–{b}" for a, b in state.hall.hours)
            parts.append(f"办公时间 {hours} · Opening hours {', '.join(f'{a}–{b}' for a, b in state.hall.hours)}")
    if state.stats is not None and state.stats.quiet_half_hours:
        times = "、".join(state.stats.quiet_half_hours)
        en = ", ".join(state.stats.quiet_half_hours)
        parts.append(f"错峰办事：今天 {times} 前后人较少 · Quieter times today: {en}")
    return "　　◆　　".join(parts)


def hall_view(state: DisplayState, now: float, wall: datetime) -> HallView:
    names = _window_names(state)
    # Newest first, one line per ticket: a recall moves the ticket to the top instead of repeating it.
    seen: set[tuple[str, int]] = set()
    lines: list[CallLine] = []
    for c in state.board:
        key = (c.ticket, c.window)
        if key in seen:
            continue
        seen.add(key)
        lines.append(_line(c, names))
    f, flashing, on = _flash(state, now)
    newest = lines[0] if lines else None
    if flashing and f is not None and newest is not None and (newest.ticket, newest.window) != (
        f.call.ticket, f.call.window
    ):
        flashing = on = False  # a newer board already moved on
    windows: list[WindowLine] = []
    if state.hall is not None:
        for w in state.hall.windows:
            ws = state.windows.get(w.no)
            windows.append(WindowLine(
                w.no, w.name, w.name_en,
                ws.status if ws is not None else "closed",
                ws.ticket.number if ws is not None and ws.ticket is not None and ws.status != "idle" else None,
                ws.staff.name if ws is not None and ws.staff is not None else None,
            ))
    waiting: list[WaitLine] = []
    if state.hall is not None:
        q = state.queue.categories if state.queue is not None else {}
        wins = [(w.no, w.categories) for w in state.hall.windows]
        statuses = {no: ws.status for no, ws in state.windows.items()}
        for c in state.hall.categories:
            cq = q.get(c.code)
            not_serving = nobody_serves(state.hall.hours, wins, statuses, c.code, wall)
            waiting.append(WaitLine(c.code, c.name, c.name_en, cq.waiting if cq else 0, cq.est_wait_min if cq else 0,
                                    tuple(cq.est_wait_range) if cq and cq.est_wait_range else None, not_serving))
    return HallView(
        title=state.hall.name if state.hall else "",
        title_en=state.hall.name_en if state.hall else None,
        newest=newest,
        flashing=flashing,
        flash_on=on,
        recent=tuple(lines[1 : 1 + state.settings.recent_calls]),
        windows=tuple(windows),
        waiting=tuple(waiting),
        ticker=ticker_text(state),
        clock=wall.strftime("%H:%M:%S"),
        date=f"{wall:%Y-%m-%d} 星期{WEEKDAYS_ZH[wall.weekday()]}",
        offline=offline(state),
        ready=state.hall is not None,
        problem=problem(state, now),
    )


def window_view(state: DisplayState, now: float, wall: datetime) -> WindowView:
    n = state.settings.window
    if n is None:
        raise ValueError("not a window screen")
    name, name_en = _window_names(state).get(n, (f"{n}号窗口", f"Window {n}"))
    ws = state.windows.get(n)
    status = ws.status if ws is not None else "unknown"
    zh, en = STATUS_TEXT.get(status, ("", ""))
    ticket = ws.ticket.number if ws is not None and ws.ticket is not None and status != "idle" else None
    f, flashing, on = _flash(state, now)
    if flashing and f is not None and f.call.ticket != ticket:
        flashing = on = False
    notice = state.notice if state.notice is not None and now < state.notice.until else None
    return WindowView(
        no=n,
        name=name,
        name_en=name_en,
        status=status,
        status_zh=zh,
        status_en=en,
        ticket=ticket,
        recalls=ws.ticket.recalls if ticket is not None and ws is not None and ws.ticket is not None else 0,
        staff=ws.staff.name if ws is not None and ws.staff is not None else None,
        flashing=flashing,
        flash_on=on,
        notice=notice,
        clock=wall.strftime("%H:%M"),
        offline=offline(state),
        ready=ws is not None,
        problem=problem(state, now),
    )


def animating(state: DisplayState, now: float) -> bool:
    """Whether the picture changes with time alone right now (a flash or a notice running)."""
    f = state.flash
    if f is not None and 0 <= now - f.since < state.settings.flash_seconds:
        return True
    return state.notice is not None and now < state.notice.until


__all__ = [
    "Announce", "Beep", "BoardMsg", "CallLine", "CallMsg", "CallerNotice", "ConfigMsg", "ControllerStatus",
    "DisplayState", "Event", "HallView", "LinkChanged", "PayloadError", "QueueMsg", "Settings", "StatsMsg",
    "TopicError", "WindowMsg", "WindowView", "event_from_message", "hall_view", "handle", "initial",
    "problem", "subscriptions", "window_view",
]
