"""The Raspberry Pi rating pad: padcore wired to MQTT, gpiozero, the journal and an optional screen.

Threads: the MQTT client's dispatcher turns ``window/{n}/state`` messages into pad events; gpiozero's
callbacks turn button edges into pad events; the pad loop (the caller of :meth:`PadApp.run`, the main
thread where there is a screen) feeds them, and a tick every 20 ms, to ``padcore.handle`` and carries out
the effects; the sender thread sends the journal's pending ratings, oldest first, each with its own
``req`` until the controller answers it.

What it promises: a rating is in the fsynced journal before the thank-you shows; it is sent, with the
time it was pressed (``at``), whenever the broker is reachable, again with the same ``req`` until
answered, also after a restart; an answer, an acceptance or a refusal, ends it (the controller answers a
repeated ``req`` with its first answer, so a rating is counted once).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from concurrent.futures import CancelledError
from datetime import datetime
from typing import Any

from hallq.shared import software_version
from hallq.shared.clock import Clock, from_env
from hallq.shared.config import BrokerURL
from hallq.shared.mqtt import HallClient, LinkDown, Message, RequestError, RequestTimeout
from hallq.shared.paths import ensure_parent
from hallq.shared.schemas import (
    DemoPress,
    DeviceHealth,
    PayloadError,
    RateRequest,
    WindowState,
    decode,
    to_builtins,
)

from . import padcore, padjournal
from .config import PadConfig
from .hardware import GpioPad

log = logging.getLogger(__name__)

TICK_S = 0.02
#: ``hallq demo``'s finger: how long its citizen reads the invitation before pressing, and holds the button
#: (past the debounce time). Real seconds; the press is made only while the pad invites that citizen's case.
#: Short: at --speed 900 the next service can end 0.2 s after the invitation (the invitation still shows
#: for a frame or two, 20 fps).
DEMO_READ_S = 0.1
DEMO_HOLD_S = 0.15


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


class PadApp:
    def __init__(self, cfg: PadConfig, *, broker: BrokerURL | str | None = None, clock: Clock | None = None,
                 pin_factory: Any = None, demo_presses: bool = False):
        self.cfg = cfg
        self.clock = clock or from_env(cfg.pad.timezone)
        self.events: queue.Queue[list[Any]] = queue.Queue()
        self.state = padcore.new_state(cfg.pad.window, cfg.core_settings)
        self.gpio = GpioPad(cfg.gpio, self._on_edge, pin_factory)
        ensure_parent(cfg.pad.journal, "the pad's ratings journal")
        self.journal = padjournal.Journal(cfg.pad.journal)
        self._journal_lock = threading.Lock()
        self.client = HallClient(broker or cfg.pad.broker, cfg.pad.hall, cfg.client_id)
        self.topics = self.client.topics
        self.client.subscribe(self.topics.window_state(cfg.pad.window), self._on_window_state)
        #: ``hallq demo`` only: the simulated citizens' choices by ticket, pressed on the mock pins when asked
        self._presses: dict[str, str] = {}
        self._invited_at = 0.0  # monotonic time the current invitation showed (demo finger)
        self._finger_on: str | None = None  # the ticket the pad invites a rating for, as the demo finger saw it
        self._invited: deque[str] = deque(maxlen=50)  # tickets the pad invited (demo finger)
        self._release: tuple[Any, float] | None = None  # the demo finger's button to let go, and when
        self._direct: int | None = None  # the thread of the demo finger driving a mock pin: its edge is stepped
        if demo_presses:
            from gpiozero.pins.mock import MockFactory

            if not isinstance(self.gpio.factory, MockFactory):
                raise ValueError('--demo-presses drives mock pins: it needs [gpio] pin_factory = "mock"')
            self.client.subscribe(self.topics.demo_press(cfg.pad.window), self._on_demo_press)
        self.demo_presses = demo_presses
        self.client.on_connected = self._publish_health
        self.screen: Any = None
        self.accepted = 0  # ratings the controller accepted since start
        self.refused = 0  # ratings the controller answered with a refusal
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._sender = threading.Thread(target=self._send_loop, name="pad-sender", daemon=True)

    # -- inputs (other threads) -------------------------------------------------------------------------
    def _on_window_state(self, msg: Message) -> None:
        try:
            ws = decode(msg.payload, WindowState)
        except PayloadError as exc:  # counted; logged once per topic
            self.client.bad_payload(msg.topic, exc)
            return
        self.events.put(["sync" if msg.retain else "state", to_builtins(ws)])

    def _on_demo_press(self, msg: Message) -> None:
        try:
            p = decode(msg.payload, DemoPress)
        except PayloadError as exc:
            log.warning("ignored a demo press that does not fit the contract: %s", exc)
            return
        log.info("demo: the citizen of %s will press %s", p.ticket, p.level)
        if p.ticket in self._invited and p.ticket != self._finger_on:
            log.warning("demo: the citizen of %s was told to press %s after the pad's invitation for it ended",
                        p.ticket, p.level)
            return
        with self._journal_lock:
            self._presses[p.ticket] = p.level
            while len(self._presses) > 50:
                gone = next(iter(self._presses))
                log.warning("demo: the citizen of %s never got to press %s: the pad did not invite it",
                            gone, self._presses.pop(gone))

    def _demo_finger(self) -> None:
        """``hallq demo``'s finger (pad loop only): press the button a simulated citizen chose, on the mock pins,
        only while the pad invites that citizen's case, and let go after :data:`DEMO_HOLD_S`. The state is
        read and the press stepped on this thread, so a window state that arrives meanwhile cannot slip in
        between and have the press charged to the next case."""
        now = time.monotonic()
        if self._release is not None:
            up, at = self._release
            if now >= at:
                self._release = None
                self._drive(up)
            return
        showing = self.state["invite"]["ticket"] if self.state["mode"] == "invite" else None
        if showing is None or now - self._invited_at < DEMO_READ_S:
            return
        with self._journal_lock:
            level = self._presses.pop(showing, None)
        if level is None:
            return
        i = padcore.LEVELS.index(level)
        log.info("demo: the citizen of %s presses %s (button %d)", showing, padcore.LEVEL_NAMES_ZH[i], i)
        pin = self.gpio.factory.pin(self.cfg.gpio.buttons[i])
        down, up = (pin.drive_low, pin.drive_high) if self.cfg.gpio.pull_up else (pin.drive_high, pin.drive_low)
        self._drive(down)
        self._release = (up, now + DEMO_HOLD_S)

    def _shows(self, showing: str | None) -> None:
        """The pad shows the invitation of ``showing`` (or no invitation): a citizen whose invitation ended
        before the demo finger pressed is said in the log (the next service ended first, or it timed out)."""
        gone = self._finger_on
        self._finger_on = showing
        if showing is not None:
            self._invited.append(showing)
        if gone is None or gone == showing:
            return
        with self._journal_lock:
            level = self._presses.pop(gone, None)
        if level is not None:
            log.warning("demo: the citizen of %s did not press %s in time: the pad %s", gone, level,
                        f"invites {showing} now" if showing else "no longer invites it")

    def _drive(self, level: Any) -> None:
        self._direct = threading.get_ident()
        try:
            level()  # gpiozero's mock pin calls the button's callback, so _on_edge, on this thread
        finally:
            self._direct = None

    def _on_edge(self, index: int, down: bool) -> None:
        event = ["down" if down else "up", index]
        if self._direct == threading.get_ident():  # the demo finger, on the pad loop: stepped in the state it saw
            self.step(event)
        else:
            self.events.put(event)

    # -- the pad loop --------------------------------------------------------------------------------------
    def step(self, event: list[Any]) -> list[list[Any]]:
        """Feed one event to the state machine and carry out its effects (pad loop only)."""
        self.state, effects = padcore.handle(self.state, event, monotonic_ms())
        for effect in effects:
            self._apply(effect)
        return effects

    def _apply(self, effect: list[Any]) -> None:
        kind = effect[0]
        if kind == "rate":
            now = self.clock.now()
            with self._journal_lock:
                rec = self.journal.add(effect[1], now.isoformat(timespec="seconds"), now.strftime("%Y%m%dT%H%M%S"))
            log.info("rating %s: %s %s at window %s", rec["req"], rec["ticket"], rec["level"], rec["window"])
            self._wake.set()
        elif kind == "leds":
            self.gpio.apply(effect)
            if self.screen is not None:
                self.screen.apply(effect)
        elif kind == "show":
            log.info("pad shows: %s", " / ".join(padcore.screen_text(effect)))
            if self.screen is not None:
                self.screen.apply(effect)
            if effect[1] == "invite":
                self._invited_at = time.monotonic()
            if self.demo_presses:
                self._shows(effect[2]["ticket"] if effect[1] == "invite" else None)
        elif kind == "ignored":
            log.info("pad ignored %s", effect[1])
        elif kind == "error":
            log.warning("pad ignored an event: %s", effect[1])

    def _publish_health(self) -> None:
        """``device/{client}/health`` (retained): ratings still waiting for the controller are reported."""
        n = len(self.pending)
        errors = [f"{n} rating(s) kept, waiting for the controller"] if n else []
        self.client.publish(self.topics.device_health(self.cfg.client_id),
                            DeviceHealth(at=self.clock.now(), role="pad", errors=errors,
                                         version=software_version("hallq-rating-pad")), retain=True)

    def request_stop(self) -> None:
        """Make :meth:`run` return (safe from a signal handler)."""
        self._stop.set()

    def start(self) -> PadApp:
        """Connect and start sending (the pad loop is :meth:`run`)."""
        self.client.start()
        self._sender.start()
        return self

    def run(self) -> None:
        """The pad loop, until :meth:`stop` (opens the screen, if any, on this thread)."""
        if self.cfg.screen is not None and self.screen is None:
            from .screen import PadScreen

            self.screen = PadScreen(self.cfg.screen, self.cfg.pad.window)
        from hallq.shared.service import Notifier

        notifier = Notifier()  # systemd: READY once the pad runs, watchdog pings while the loop turns
        notifier.ready("serving")
        frame = 1.0 / self.cfg.screen.fps if self.cfg.screen else 1.0
        next_frame = 0.0
        while not self._stop.is_set():
            if self._sender.is_alive():  # healthy: the journal's sender runs
                notifier.alive()
            try:
                event = self.events.get(timeout=TICK_S)
            except queue.Empty:
                event = None
            while event is not None:
                self.step(event)
                try:
                    event = self.events.get_nowait()
                except queue.Empty:
                    event = None
            self.step(["tick"])
            if self.demo_presses:
                self._demo_finger()
            if self.screen is not None:
                for ev in self.screen.poll():
                    if ev[0] == "quit":
                        self._stop.set()
                    else:
                        self.step(ev)
                now = time.monotonic()
                if now >= next_frame:
                    self.screen.draw(now)
                    next_frame = now + frame

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.client.stop()
        if self._sender.is_alive() and self._sender is not threading.current_thread():
            self._sender.join(5)
        self.gpio.close()
        if self.screen is not None:
            self.screen.close()
            self.screen = None

    @property
    def pending(self) -> list[dict[str, Any]]:
        with self._journal_lock:
            return list(self.journal.pending)

    # -- the sender ------------------------------------------------------------------------------------------
    def _send_loop(self) -> None:
        resend = self.cfg.pad.resend_seconds
        while not self._stop.is_set():
            with self._journal_lock:
                rec = self.journal.pending[0] if self.journal.pending else None
            if rec is None or not self.client.connected:
                self._wake.wait(0.5)
                self._wake.clear()
                continue
            payload = RateRequest(
                req=rec["req"], window=rec["window"], ticket=rec["ticket"], level=rec["level"],
                at=datetime.fromisoformat(rec["at"]) if rec["at"] else None,
                called_at=datetime.fromisoformat(rec["called_at"]) if rec.get("called_at") else None,
            )
            try:
                self.client.request("rate", payload, timeout=resend * 5, resend_every=resend)
            except LinkDown:  # the link went down just now: nothing was sent
                self._stop.wait(0.5)
                continue
            except RequestTimeout:
                continue  # not answered yet: the same req again
            except CancelledError:
                return  # the client stopped
            except RequestError as exc:
                if exc.code == "bad_reply":
                    log.error("rating %s: %s; sending it again later", rec["req"], exc)
                    self._stop.wait(resend)
                    continue
                if exc.code in ("expired", "busy"):  # nothing was done: the controller was slow or busy
                    log.info("rating %s: %s; sending it again", rec["req"], exc.code)
                    self._stop.wait(resend)
                    continue
                log.warning("rating %s refused by the controller: %s", rec["req"], exc)
                self.refused += 1
            else:
                self.accepted += 1
                log.info("rating %s accepted", rec["req"])
            with self._journal_lock:
                self.journal.done(rec["req"])
                left = len(self.journal.pending)
            if left == 0:
                self._publish_health()
