"""The window caller: the clerk's buttons (gpiozero) or USB keypad (evdev) become ``window`` requests.

Actions: ``next``, ``recall``, ``noshow`` (only when held for ``hold_seconds``, so a slip of the finger
does not send a citizen away), ``transfer`` (to the configured category or window), ``pause`` (pauses, or
resumes a paused window), ``done``, ``open`` (signs in the configured clerk) and ``close``.

:func:`handle` is the pure core: key presses, releases, ticks, the window's status and the controller's
answers in; :class:`Send` and :class:`Tell` effects out. :class:`GpioButtons` and :class:`Keypad` turn
hardware into :class:`Press`/:class:`Release` events; :class:`Requester` sends requests from the window's
device id with :meth:`HallClient.request` on a thread of its own and reports the :class:`Answer`;
:class:`BuzzerBeeper` and :class:`MixerBeeper` beep on errors.
"""

from __future__ import annotations

import logging
import math
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hallq.shared.mqtt import HallClient, RequestError, RequestTimeout
from hallq.shared.schemas import Staff, TransferTo, WindowReply, WindowRequest

log = logging.getLogger(__name__)

ACTIONS = ("next", "recall", "noshow", "transfer", "pause", "done", "open", "close")


# -- events and effects ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Press:
    action: str


@dataclass(frozen=True, slots=True)
class Release:
    action: str


@dataclass(frozen=True, slots=True)
class Tick:
    pass


@dataclass(frozen=True, slots=True)
class WindowStatus:
    status: str  # idle, serving, paused, closed


@dataclass(frozen=True, slots=True)
class Answer:
    op: str
    ok: bool
    code: str | None = None  # the contract's error code, or "timeout"
    message: str = ""
    ticket: str | None = None


@dataclass(frozen=True, slots=True)
class Send:
    op: str
    to: TransferTo | None = None
    staff: Staff | None = None


@dataclass(frozen=True, slots=True)
class Tell:
    """Show this on the window screen (and beep when it is an error)."""

    zh: str
    en: str
    error: bool = True


CallerEvent = Press | Release | Tick | WindowStatus | Answer
CallerEffect = Send | Tell

ERRORS: dict[str, tuple[str, str]] = {
    "empty": ("无人等候", "Nobody is waiting"),
    "paused": ("窗口已暂停，请先恢复服务", "The window is paused: resume first"),
    "no_ticket": ("当前没有号码", "No ticket at this window"),
    "closed": ("窗口未开放，请先登录", "The window is not open: sign in first"),
    "unknown_window": ("控制器不认识本窗口", "The controller does not know this window"),
    "not_allowed": ("此操作不允许", "Not allowed"),
    "unknown_category": ("转移的业务类别不存在", "No such category to transfer to"),
    "bad_request": ("请求有误", "Bad request"),
    "timeout": ("控制器无响应", "The controller does not answer"),
}


# -- the pure core -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CallerSettings:
    window: int
    hold_seconds: float = 1.5
    transfer_to: TransferTo | None = None
    staff: Staff | None = None


@dataclass(frozen=True)
class CallerState:
    settings: CallerSettings
    status: str | None = None
    down: dict[str, float] = field(default_factory=dict)  # action -> pressed since
    fired: frozenset[str] = frozenset()  # held actions already sent during this hold
    pending: str | None = None  # the op of the request in flight


def initial(settings: CallerSettings) -> CallerState:
    return CallerState(settings)


def _send(state: CallerState, action: str) -> tuple[CallerState, list[CallerEffect]]:
    s = state.settings
    if state.pending is not None:
        return state, [Tell("请稍候，上一操作处理中", "Wait: the last request is still on its way", error=False)]
    if action == "pause":
        op = "resume" if state.status == "paused" else "pause"
        return replace(state, pending=op), [Send(op)]
    if action == "transfer":
        if s.transfer_to is None:
            return state, [Tell("未设置转移去向", "No transfer target is configured")]
        return replace(state, pending="transfer"), [Send("transfer", to=s.transfer_to)]
    if action == "open":
        if s.staff is None:
            return state, [Tell("未设置工作人员", "No clerk is configured for sign-in")]
        return replace(state, pending="open"), [Send("open", staff=s.staff)]
    return replace(state, pending=action), [Send(action)]


def handle(state: CallerState, event: CallerEvent, now: float) -> tuple[CallerState, list[CallerEffect]]:
    """One event at monotonic time ``now``."""
    s = state.settings
    match event:
        case Press(action):
            if action not in ACTIONS:
                raise ValueError(f"unknown caller action {action!r}")
            if action in state.down:  # a key repeat or a bounce: already down
                return state, []
            state = replace(state, down={**state.down, action: now}, fired=state.fired - {action})
            if action == "noshow":
                return state, []  # confirmed by holding (see Tick / Release)
            return _send(state, action)
        case Release(action):
            since = state.down.get(action)
            if since is None:
                return state, []
            down = {k: v for k, v in state.down.items() if k != action}
            fired = action in state.fired
            state = replace(state, down=down, fired=state.fired - {action})
            if action == "noshow" and not fired:
                if now - since >= s.hold_seconds:
                    return _send(state, "noshow")
                return state, [Tell("过号需按住确认", f"Hold for {s.hold_seconds:g} s to mark a no-show",
                                    error=False)]
            return state, []
        case Tick():
            since = state.down.get("noshow")
            if since is not None and "noshow" not in state.fired and now - since >= s.hold_seconds:
                state = replace(state, fired=state.fired | {"noshow"})
                return _send(state, "noshow")
            return state, []
        case WindowStatus(status):
            return replace(state, status=status), []
        case Answer(op, ok, code, message):
            state = replace(state, pending=None)
            if ok:
                if op in ("pause", "resume", "close", "open"):
                    state = replace(state, status={"pause": "paused", "close": "closed"}.get(op, "idle"))
                return state, []
            zh, en = ERRORS.get(code or "", (message or "操作失败", message or "The request failed"))
            return state, [Tell(zh, en)]
        case _:
            raise TypeError(f"not a caller event: {event!r}")


# -- sending requests ------------------------------------------------------------------------------------------
class Requester:
    """Sends :class:`Send` effects as ``window`` requests from the window's device id, one thread per request
    (the core allows one in flight), and reports each :class:`Answer` through ``on_answer``."""

    def __init__(self, client: HallClient, window: int, on_answer: Callable[[Answer], None], timeout: float = 5.0):
        self.client = client
        self.window = window
        self.on_answer = on_answer
        self.timeout = timeout

    def send(self, effect: Send) -> threading.Thread:
        t = threading.Thread(target=self._run, args=(effect,), name=f"caller-{effect.op}", daemon=True)
        t.start()
        return t

    def _run(self, effect: Send) -> None:
        req = WindowRequest(req=self.client.new_req(), window=self.window, op=effect.op, staff=effect.staff,
                            to=effect.to)  # type: ignore[arg-type]
        try:
            reply = self.client.request("window", req, timeout=self.timeout, resend_every=1.0)
        except RequestError as exc:
            answer = Answer(effect.op, False, exc.code, exc.message)
        except RequestTimeout:
            answer = Answer(effect.op, False, "timeout", "no answer")
        else:
            ticket = reply.ticket.number if isinstance(reply, WindowReply) and reply.ticket else None
            answer = Answer(effect.op, True, ticket=ticket)
        log.info("window %d %s: %s", self.window, effect.op, "ok" if answer.ok else answer.code)
        self.on_answer(answer)


# -- buttons and keys ----------------------------------------------------------------------------------------------
class GpioButtons:
    """gpiozero buttons, one per action; ``pin_factory`` is gpiozero's (``MockFactory`` in tests)."""

    def __init__(self, buttons: dict[str, str], on_event: Callable[[Press | Release], None], *, pull_up: bool = True,
                 bounce_seconds: float = 0.05, pin_factory: Any = None):
        from gpiozero import Button

        self.buttons: dict[str, Any] = {}
        try:
            for action, pin in buttons.items():
                if action not in ACTIONS:
                    raise ValueError(f"unknown caller action {action!r}")
                b = Button(pin, pull_up=pull_up, bounce_time=bounce_seconds or None, pin_factory=pin_factory)
                b.when_pressed = lambda _d=None, a=action: on_event(Press(a))
                b.when_released = lambda _d=None, a=action: on_event(Release(a))
                self.buttons[action] = b
        except Exception:
            self.close()
            raise

    def close(self) -> None:
        for b in self.buttons.values():
            b.close()


class Keypad:
    """A USB keypad through evdev; ``keys`` maps key names (``KEY_KP1``) to actions."""

    def __init__(self, keys: dict[str, str], on_event: Callable[[Press | Release], None], *,
                 device: Any = None, grab: bool = True):
        """``device``: a path (``/dev/input/...``), an open ``evdev.InputDevice`` (or anything with its
        ``read_loop``, ``grab`` and ``close``), or None to be fed with :meth:`feed` only."""
        from evdev import ecodes

        self.on_event = on_event
        self.codes: dict[int, str] = {}
        for name, action in keys.items():
            code = ecodes.ecodes.get(name)
            if code is None:
                raise ValueError(f"unknown key {name!r} (evdev key names look like KEY_KP1)")
            if action not in ACTIONS:
                raise ValueError(f"unknown caller action {action!r}")
            self.codes[code] = action
        self.device: Any = None
        self._thread: threading.Thread | None = None
        if device is not None:
            if isinstance(device, str):
                from evdev import InputDevice

                device = InputDevice(device)
            self.device = device
            if grab:
                self.device.grab()
            self._thread = threading.Thread(target=self._read, name="keypad", daemon=True)
            self._thread.start()

    def feed(self, event: Any) -> None:
        """One evdev ``InputEvent``: key down → :class:`Press`, key up → :class:`Release`; repeats ignored."""
        from evdev import ecodes

        if event.type != ecodes.EV_KEY:
            return
        action = self.codes.get(event.code)
        if action is None:
            return
        if event.value == 1:
            self.on_event(Press(action))
        elif event.value == 0:
            self.on_event(Release(action))

    def _read(self) -> None:
        try:
            for ev in self.device.read_loop():
                self.feed(ev)
        except OSError as exc:  # unplugged, or closed by close()
            log.warning("keypad: %s", exc)

    def close(self) -> None:
        if self.device is not None:
            try:
                self.device.close()
            except OSError:
                pass


class BuzzerBeeper:
    def __init__(self, pin: str, pin_factory: Any = None):
        from gpiozero import Buzzer

        self.buzzer = Buzzer(pin, pin_factory=pin_factory)

    def beep(self) -> None:
        self.buzzer.beep(on_time=0.12, off_time=0.08, n=2)

    def close(self) -> None:
        self.buzzer.close()


class MixerBeeper:
    """Two short beeps through the speaker (pygame.mixer)."""

    def __init__(self) -> None:
        import pygame.mixer

        from .voice import init_mixer

        init_mixer()
        freq, _size, channels = pygame.mixer.get_init()
        frames = bytearray()
        for part in range(3):
            n = int(freq * (0.12 if part != 1 else 0.08))
            for i in range(n):
                v = 0.5 * math.sin(2 * math.pi * 1200 * i / freq) if part != 1 else 0.0
                frames += struct.pack("<h", int(v * 32767)) * channels
        self.sound = pygame.mixer.Sound(buffer=bytes(frames))

    def beep(self) -> None:
        import pygame.mixer

        ch = pygame.mixer.Channel(1) if pygame.mixer.get_num_channels() > 1 else None
        if ch is not None:
            ch.play(self.sound)
        else:
            self.sound.play()

    def close(self) -> None:
        pass
