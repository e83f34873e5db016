"""The kiosk app: wires the MQTT client, the screen, the printer and the card readers to the pure core.

Everything that happens (a touch, a card, an answer, a retained topic, a printer result) becomes an event
on one queue; the main loop feeds the events to :func:`hallq.kiosk.core.handle`, carries out the
effects on worker threads (printer, requests) and redraws the screen when the state changed. pygame
stays on the main loop's thread.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from escpos.escpos import Escpos
from hallq.shared import software_version
from hallq.shared.clock import from_env
from hallq.shared.config import BrokerURL
from hallq.shared.follow import url
from hallq.shared.mqtt import HallClient, Message, RequestError, RequestTimeout
from hallq.shared.personkey import day_key
from hallq.shared.schemas import DeviceHealth, HallConfig, PayloadError, QueueState, Stats, decode

from . import core
from .config import KioskConfig
from .core import (
    CardRead,
    CheckPrinter,
    CheckStaffPin,
    ConfigChanged,
    ControllerStatus,
    Link,
    PrinterChecked,
    PrintTicket,
    PublishHealth,
    QueueChanged,
    QuietChanged,
    ReaderStatus,
    SendTake,
    Settings,
    StaffChecked,
    TakeAnswered,
    TakeRefused,
    TakeUnanswered,
    Tick,
    TicketPrinted,
)
from .idcard import IdNumber, identity, load_secret
from .printer import TicketPrinter, TicketText
from .staff import StaffPins

log = logging.getLogger(__name__)

TICK = 0.2  # seconds between timeout checks
PRINTER_CHECK_EVERY = 60.0  # seconds between idle status checks, for the health topic
MAX_SCREENSHOTS = 2000


class KioskApp:
    """One kiosk. ``printer`` and ``readers`` may be given (tests pass fakes); otherwise they come from
    the config. Drive it with :meth:`run`, or :meth:`start` then :meth:`step` (tests)."""

    def __init__(self, cfg: KioskConfig, *, mode: str | None = None, screenshot_dir: str | os.PathLike | None = None,
                 broker: BrokerURL | str | None = None, printer: Any = None, open_readers: bool = True,
                 auto_tap: float | None = None):
        self.cfg = cfg
        k = cfg.kiosk
        self.secret = load_secret(k.secret_key_file)
        self.clock = from_env()
        self.mode = mode or cfg.screen.mode
        self.screenshot_dir = Path(screenshot_dir) if screenshot_dir else None
        self.events: queue.Queue[Any] = queue.Queue()
        settings = Settings(
            device=k.id,
            # req ids are unique per client: this process and start time, then a counter (≤ 64 characters)
            req_prefix=f"{os.getpid():x}-{int(time.time() * 1000) % 10**10:x}",
            language=k.language,
            elderly_age=k.elderly_age,
            idle_timeout=_td(k.idle_timeout_s),
            attract_after=_td(k.attract_after_s),
            ticket_time=_td(k.ticket_seconds),
            ticket_time_failed=_td(max(30.0, 3 * k.ticket_seconds)),
            error_time=_td(k.error_seconds),
            answer_timeout=_td(k.request_timeout_s + 3),
            staff_priorities=tuple(dict.fromkeys(cfg.staff.priorities)) if cfg.staff else (),
            staff_lock_after=cfg.staff.lock_after if cfg.staff else 5,
            staff_lock=_td(60 * cfg.staff.lock_minutes) if cfg.staff else timedelta(minutes=5),
            hall=k.hall,
        )
        #: the floor guides' PINs (a secret file); None: this kiosk confirms no priorities
        self.staff_pins = StaffPins.load(cfg.staff.pins_file) if cfg.staff else None
        self.state = core.initial(settings, self.now())
        self._no_hall: tuple[str, str] | None = None  # what core.no_hall said last
        self.client = HallClient(broker or k.broker, k.hall, k.id)
        self.topics = self.client.topics
        if printer is None or isinstance(printer, Escpos):  # a python-escpos object (tests: Dummy) is wrapped
            printer = TicketPrinter(cfg.printer.url if printer is None else f"escpos:{type(printer).__name__}",
                                    chinese=cfg.printer.chinese, width=cfg.printer.width_px, font_path=cfg.screen.font,
                                    font_index=cfg.screen.font_index, printer=printer)
        self.printer = printer
        self._printer_pool = ThreadPoolExecutor(1, "printer")
        self._net_pool = ThreadPoolExecutor(4, "take")
        self._open_readers = open_readers
        self.readers: list[Any] = []
        self.ui: Any = None
        self._dirty = True
        self._last_tick = 0.0
        self._last_printer_check = 0.0
        self._clock_text = ""
        self._shot_key: Any = None
        self._shots = 0
        self.auto_tap = auto_tap  # the headless demo: touch a category every so many seconds on the home screen
        self._last_auto = time.monotonic()
        self._auto_n = 0
        self.stopping = threading.Event()
        self.frame_ms: list[float] = []
        #: called after each frame with the state drawn (tests and benchmarks watch it)
        self.on_frame: Any = None

    # -- time --------------------------------------------------------------------------------------------
    def now(self) -> datetime:
        """Real time for the screens' timers (also in the demo, whose hall clock runs faster)."""
        return datetime.now(self.clock.tz)

    # -- lifecycle ---------------------------------------------------------------------------------------
    def start(self) -> KioskApp:
        from hallq.shared.screen import open_screen

        from .ui import KioskUI

        size = (self.cfg.screen.width, self.cfg.screen.height)
        screen = open_screen(size, self.mode, title="hallq kiosk", font_path=self.cfg.screen.font,  # type: ignore[arg-type]
                             font_index=self.cfg.screen.font_index)
        self.ui = KioskUI(screen)
        t = self.topics
        self.client.subscribe(t.config, self._on_config)
        self.client.subscribe(t.queue, self._on_queue)
        self.client.subscribe(t.stats, self._on_stats)
        self.client.subscribe(t.controller_status, self._on_controller_status)
        self.client.on_connected = self._on_connected
        self.client.on_disconnected = lambda: self.events.put(Link(False))
        self.client.start()
        if self._open_readers:
            self._start_readers()
        self._check_printer_async()
        return self

    def stop(self) -> None:
        self.stopping.set()
        for r in self.readers:
            try:
                r.stop()
            except Exception as exc:
                log.warning("stopping reader %s: %s", getattr(r, "name", r), exc)
        self._net_pool.shutdown(wait=False, cancel_futures=True)
        self._printer_pool.shutdown(wait=True, cancel_futures=True)
        self.client.stop()
        try:
            self.printer.close()
        except Exception:
            pass
        if self.ui is not None:
            self.ui.screen.close()
            self.ui = None

    def run(self) -> None:
        from hallq.shared.service import Notifier

        self.start()
        notifier = Notifier()  # systemd: READY once the screen is up, watchdog pings while the loop turns
        notifier.ready("serving")
        try:
            while not self.stopping.is_set():
                self.step(1 / 30)
                notifier.alive()
        finally:
            notifier.stopping()
            self.stop()

    # -- readers -----------------------------------------------------------------------------------------
    def card_callback(self, source: str):
        """What a reader calls with a validated number, or ``(None, why)`` for a card that cannot be used."""

        def on_card(number: IdNumber | None, problem: str | None) -> None:
            if number is None:
                log.info("card on %s cannot be used: %s", source, problem)
                self.events.put(CardRead(None, problem))
                return
            # the person key of today only: two days' records of one person cannot be joined
            ident = identity(number, day_key(self.secret, self.clock.now().date()), source)
            del number
            log.info("card read on %s", source)
            self.events.put(CardRead(ident))

        return on_card

    def status_callback(self, name: str):
        def on_status(online: bool, detail: str | None) -> None:
            self.events.put(ReaderStatus(name, online, detail))

        return on_status

    def _start_readers(self) -> None:
        for spec in self.cfg.readers:
            kind, _, rest = spec.url.partition(":")
            name = f"{'GA 467' if kind == 'serial' else 'wedge'} {rest.partition('?')[0]}"[:200]
            try:
                if kind == "serial":
                    from .ga467 import Ga467Poller

                    reader: Any = Ga467Poller(spec.url, self.card_callback("ga467"), self.status_callback(name))
                else:
                    from .wedge import WedgeReader

                    reader = WedgeReader(rest, self.card_callback("wedge"), self.status_callback(name))
                    reader.name = name
                reader.start()
                self.readers.append(reader)
            except Exception as exc:
                log.warning("card reader %s cannot be used: %s", name, exc)
                self.events.put(ReaderStatus(name, False, str(exc)[:200]))

    # -- MQTT handlers (dispatcher thread) -----------------------------------------------------------
    def _on_config(self, msg: Message) -> None:
        try:
            self.events.put(ConfigChanged(decode(msg.payload, HallConfig)))
        except PayloadError as exc:  # counted; logged once per topic
            self.client.bad_payload(msg.topic, exc)

    def _on_queue(self, msg: Message) -> None:
        try:
            self.events.put(QueueChanged(decode(msg.payload, QueueState)))
        except PayloadError as exc:  # counted; logged once per topic
            self.client.bad_payload(msg.topic, exc)

    def _on_stats(self, msg: Message) -> None:
        try:
            self.events.put(QuietChanged(tuple(decode(msg.payload, Stats).quiet_half_hours)))
        except PayloadError as exc:  # counted; logged once per topic
            self.client.bad_payload(msg.topic, exc)

    def _on_controller_status(self, msg: Message) -> None:
        text = msg.payload.decode("utf-8", "replace").strip()
        if text in ("online", "offline", "stopped"):
            self.events.put(ControllerStatus(text))
        else:
            log.warning("ignoring a controller status that is not online, offline or stopped")

    def _on_connected(self) -> None:
        self.events.put(Link(True))
        s = self.state
        self._publish_health(PublishHealth(s.printer, s.readers))

    # -- effects ---------------------------------------------------------------------------------------
    def _do(self, effect: Any) -> None:
        if isinstance(effect, CheckPrinter):
            self._check_printer_async()
        elif isinstance(effect, SendTake):
            self._net_pool.submit(self._send_take, effect)
        elif isinstance(effect, PrintTicket):
            self._printer_pool.submit(self._print, effect)
        elif isinstance(effect, PublishHealth):
            self._publish_health(effect)
        elif isinstance(effect, CheckStaffPin):
            self._net_pool.submit(self._check_staff_pin, effect.pin)

    def _check_staff_pin(self, pin: str) -> None:
        staff = self.staff_pins.check(pin) if self.staff_pins is not None else None
        if staff is None:
            log.warning("staff confirmation: a wrong PIN")
        else:
            log.info("staff confirmation by %s", staff)  # the PIN itself is never logged
        self.events.put(StaffChecked(staff))

    def _check_printer_async(self) -> None:
        self._last_printer_check = time.monotonic()
        self._printer_pool.submit(self._check_printer)

    def _check_printer(self) -> None:
        try:
            st = self.printer.status()
        except Exception as exc:  # a fake or a driver that fails in an unexpected way: that is offline
            log.warning("printer status failed: %s", exc)
            self.events.put(PrinterChecked(False, "unknown"))
            return
        self.events.put(PrinterChecked(st.online, st.paper))

    def _send_take(self, eff: SendTake) -> None:
        r = eff.request
        log.info("take %s: category %s, channel %s, priority %s%s", r.req, r.category, r.channel, r.priority,
                 f" (confirmed by staff {self.state.staff_by})" if r.channel == "staff" and self.state.staff_by else "")
        try:
            reply = self.client.request("take", r, timeout=self.cfg.kiosk.request_timeout_s, resend_every=1.0)
        except RequestError as exc:
            log.info("take %s refused: %s", r.req, exc.code)
            self.events.put(TakeRefused(r.req, exc.code, exc.message))
        except RequestTimeout:
            log.warning("take %s: no answer from the controller", r.req)
            self.events.put(TakeUnanswered(r.req))
        except Exception as exc:
            log.warning("take %s failed: %s", r.req, type(exc).__name__)
            self.events.put(TakeUnanswered(r.req))
        else:
            ticket = reply.ticket  # type: ignore[attr-defined]
            log.info("take %s: number %s", r.req, ticket.number)
            self.events.put(TakeAnswered(r.req, ticket))

    def _qr(self, eff: PrintTicket) -> str | None:
        """The ticket's QR code: ``kiosk.qr_url`` when set, else its follow page when the hall has them."""
        tpl = self.cfg.kiosk.qr_url
        tk = eff.ticket
        hall = self.state.hall
        follow_page = url(hall.follow_url, tk.follow) if hall is not None and hall.follow_url and tk.follow else None
        if not tpl:
            return follow_page
        if "{follow}" in tpl:
            return follow_page
        return tpl.format(number=tk.number, category=tk.category, hall=self.cfg.kiosk.hall,
                          date=tk.issued_at.date().isoformat())

    def _print(self, eff: PrintTicket) -> None:
        tk = eff.ticket
        text = TicketText(
            hall_name=eff.hall_name, number=tk.number, category_name=eff.category_name, ahead=tk.ahead,
            est_wait_min=tk.est_wait_min, issued_at=tk.issued_at, qr=self._qr(eff), masked_id=eff.masked_id,
            footer=self.cfg.kiosk.footer, lang=eff.lang, priority=tk.priority, est_range=tk.est_wait_range,
        )
        try:
            self.printer.print_ticket(text)
        except Exception as exc:
            log.warning("ticket %s could not be printed: %s", tk.number, exc)
            self.events.put(TicketPrinted(tk.number, False, str(exc)[:200]))
        else:
            self.events.put(TicketPrinted(tk.number, True))
        self._check_printer()

    def _publish_health(self, eff: PublishHealth) -> None:
        errors = []
        if eff.printer.paper == "out":
            errors.append("printer: out of paper")
        if eff.printer.online is False:
            errors.append("printer: offline")
        health = DeviceHealth(at=self.clock.now(), role="kiosk", printer=eff.printer, readers=list(eff.readers),
                              errors=errors, version=software_version("hallq-kiosk"))
        self.client.publish(self.topics.device_health(self.cfg.kiosk.id), health, retain=True)

    # -- the loop --------------------------------------------------------------------------------------
    def feed(self, event: Any) -> None:
        new, effects = core.handle(self.state, event, self.now())
        if new is not self.state:
            self._dirty = True
        self.state = new
        for e in effects:
            self._do(e)

    def _check_hall(self) -> None:
        """Log, once per change, that the hall this kiosk was set up for is not on its broker (the home
        screen says so too: :func:`.core.no_hall`)."""
        found = core.no_hall(self.state, self.now())
        if found == self._no_hall:
            return
        self._no_hall, self._dirty = found, True
        if found is not None:
            log.error("%s", found[1])
        else:
            log.info("hall %s is heard of now", self.state.settings.hall)

    def tap(self, pos: tuple[int, int]) -> None:
        """A touch at ``pos``, as the touch screen would send it (for tests, benchmarks and the demo)."""
        import pygame

        pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=pos, button=1))

    def _pump_input(self) -> None:
        import pygame

        for ev in pygame.event.get():
            if ev.type == pygame.QUIT:
                self.stopping.set()
            elif ev.type == pygame.MOUSEBUTTONDOWN and getattr(ev, "button", 1) == 1:
                # SDL turns touches into these too (its FINGERDOWN events are not used: a touch would count twice)
                self._touch(ev.pos)
            elif ev.type == pygame.KEYDOWN and ev.key == pygame.K_ESCAPE and self.mode == "window":
                self.stopping.set()

    def _touch(self, pos: tuple[int, int]) -> None:
        press = self.ui.hit(pos) if self.ui else None
        if press is not None:
            self.feed(press)

    def step(self, timeout: float = 1 / 30) -> None:
        """One turn of the loop: input, events (waiting up to ``timeout`` for one), timeouts, drawing."""
        self._pump_input()
        try:
            ev = self.events.get(timeout=timeout)
        except queue.Empty:
            ev = None
        while ev is not None:
            self.feed(ev)
            try:
                ev = self.events.get_nowait()
            except queue.Empty:
                ev = None
        self._pump_input()
        mono = time.monotonic()
        if mono - self._last_tick >= TICK:
            self._last_tick = mono
            self.feed(Tick(self.clock.now()))
            self._check_hall()
        if mono - self._last_printer_check >= PRINTER_CHECK_EVERY and self.state.screen in ("home", "attract"):
            self._check_printer_async()
        if self.auto_tap and self.ui is not None:
            self._auto_touch(mono)
        clock_text = self.clock.now().strftime("%H:%M")
        if clock_text != self._clock_text:
            self._clock_text = clock_text
            self._dirty = True
        if self._dirty and self.ui is not None:
            self.render()

    def _auto_touch(self, mono: float) -> None:
        if self._dirty:
            return  # the frame on screen is not this state's yet: touch what a citizen would see, next turn
        s = self.state
        if s.screen == "attract" or (s.screen == "error" and mono - self._last_auto >= 10):
            self.tap(self.ui.find("wake" if s.screen == "attract" else "home"))
            return
        if s.screen != "home" or s.hall is None or not s.hall.categories or mono - self._last_auto < self.auto_tap:
            return
        self._last_auto = mono
        code = s.hall.categories[self._auto_n % len(s.hall.categories)].code
        self._auto_n += 1
        self.tap(self.ui.find("category", code))

    def render(self) -> None:
        t0 = time.perf_counter()
        self.ui.draw(self.state, self.now(), self._clock_text)
        self.ui.screen.flip()
        self.frame_ms.append((time.perf_counter() - t0) * 1000)
        del self.frame_ms[:-200]
        self._dirty = False
        self._screenshot()
        if self.on_frame is not None:
            self.on_frame(self.state)

    def _screenshot(self) -> None:
        if self.screenshot_dir is None or self._shots >= MAX_SCREENSHOTS:
            return
        s = self.state
        key = (s.screen, s.lang, s.hall is not None, bool(s.queue), s.controller == "online", s.link,
               s.shown.ticket.number if s.shown else None, s.shown.printed if s.shown else None,
               s.failure.kind if s.failure else None, s.card is not None, s.appointment_mode, s.typing)
        if key == self._shot_key:
            return
        self._shot_key = key
        self._shots += 1
        self.ui.screen.screenshot(self.screenshot_dir / f"{self._shots:04d}-{s.screen}.png")

    def run_until(self, predicate: Any, timeout: float = 5.0) -> bool:
        """Step until ``predicate(state)`` holds (tests and benchmarks)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self.state):
                return True
            self.step(0.01)
        return predicate(self.state)


def _td(seconds: float) -> timedelta:
    return timedelta(seconds=seconds)
