"""The display app: MQTT in, the pure cores in the middle, pygame, voice, LED board and caller at the edges.

One main thread owns pygame: it takes events from a queue (MQTT messages decoded on the MQTT dispatcher
thread, button presses from gpiozero's and evdev's threads, the caller's answers), runs them through
:mod:`.core` and :mod:`.caller`, carries out the effects and draws a frame whenever the picture changed,
something flashes or scrolls, or the clock moves on. It wakes at once when an event arrives, so a ``calls``
message reaches the screen within one frame's work.
"""

from __future__ import annotations

import json
import logging
import queue
import signal
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hallq.shared import software_version
from hallq.shared.clock import Clock, from_env
from hallq.shared.config import BrokerURL
from hallq.shared.mqtt import HallClient, Message
from hallq.shared.schemas import Call, DeviceHealth, PayloadError, Staff, TransferTo, encode
from hallq.shared.topics import HallTopics, TopicError

from . import caller as callercore
from . import core
from .config import ClipVoice, DisplayConfig, FrameLed, ModbusLed, PygameLed, SerialVoice

log = logging.getLogger(__name__)


@dataclass
class Options:
    """How to run, beyond the config file (mostly from the command line)."""

    screenshot: Path | None = None
    screenshot_every: float | None = None  # keep running and save the screenshot this often
    wait: float = 10.0  # how long a one-shot screenshot waits for the picture
    trace: Path | None = None  # JSON lines: call received, first frame showing it, announcement start
    pin_factory: Any = None  # gpiozero pin factory (MockFactory in tests)
    keypad_device: Any = None  # an open input device instead of [caller.keypad].device
    broker: BrokerURL | None = None  # the identity's broker (credentials, CA) instead of display.broker


class Tracer:
    def __init__(self, path: Path | None):
        self._f = open(path, "a", encoding="utf-8", buffering=1) if path else None  # noqa: SIM115
        self._lock = threading.Lock()

    def __call__(self, ev: str, **kw: Any) -> None:
        if self._f is None:
            return
        with self._lock:
            self._f.write(json.dumps({"ev": ev, "t": time.time(), **kw}, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()


class DisplayApp:
    def __init__(self, cfg: DisplayConfig, options: Options | None = None, *, clock: Clock | None = None):
        self.cfg = cfg
        self.opts = options or Options()
        d = cfg.display
        self.mode = d.mode
        self.topics = HallTopics(d.hall)
        self.clock = clock or from_env()
        self.events: queue.Queue[Any] = queue.Queue()
        self.stop_event = threading.Event()
        self.trace = Tracer(self.opts.trace)
        self.state = core.initial(core.Settings(
            mode=d.mode, window=d.window, hall=d.hall, flash_seconds=d.flash_seconds, error_seconds=d.error_seconds,
            recent_calls=d.recent_calls, voice=cfg.voice is not None,
        ))
        self.caller_state: callercore.CallerState | None = None
        self.bad_messages = 0
        self.voice: Any = None
        self.led: Any = None
        self.pygame_led: Any = None
        self.inputs: Any = None
        self.keypad: callercore.Keypad | None = None
        self.beeper: Any = None
        self.requester: callercore.Requester | None = None
        self.screen: Any = None
        self.client: HallClient | None = None
        self._pending_frames: dict[tuple[str, int, int], float] = {}  # calls not yet on screen
        self._last_key: tuple | None = None  # what the last whole picture showed
        self.start_errors: list[str] = []  # trouble at start-up the display lives with (reported in health)
        self.problem: tuple[str, str] | None = None  # what is wrong with the display's configuration, if anything

    # -- wiring -------------------------------------------------------------------------------------------
    def _open_screen(self) -> None:
        from hallq.shared.screen import open_screen

        from .render import HallRenderer, WindowRenderer

        d = self.cfg.display
        title = f"hallq {'hall screen' if self.mode == 'hall' else f'window {d.window}'}"
        self.screen = open_screen(tuple(d.size), d.screen, title=title, font_path=d.font, font_index=d.font_index)
        if self.mode == "hall":
            self.renderer: Any = HallRenderer(self.screen.font, english=d.english, ticker_speed=d.ticker_speed)
        else:
            self.renderer = WindowRenderer(self.screen.font, english=d.english)

    def _open_voice(self) -> None:
        v = self.cfg.voice
        if v is None:
            return
        if self.opts.screenshot is not None and not self.opts.screenshot_every:
            log.info("a one-shot screenshot: no voice (nothing is said, no voice pack is made)")
            return
        from . import voice

        def started(call: Call, t0: float) -> None:
            self.trace("announce", ticket=call.ticket, window=call.window, recall=call.recall)

        if isinstance(v, ClipVoice):
            pack_dir = Path(v.pack)
            if not pack_dir.exists() and v.make_if_missing:
                log.warning("the voice pack %s (voice.pack) does not exist: making it with espeak-ng "
                            "(voice.make_if_missing)", pack_dir)
                voice.make_pack(pack_dir, languages=v.languages)
            pack = voice.ClipPack(pack_dir, v.languages)
            try:
                self.voice = voice.MixerVoice(pack, languages=v.languages, repeats=v.repeats, volume=v.volume,
                                              on_start=started)
            except voice.PackError:
                raise
            except Exception as exc:  # pygame.error: no sound device. The screen matters more: go on, say so.
                log.error("no voice: the sound device cannot be opened (%s)", exc)
                self.start_errors.append(f"voice: no sound device ({exc})")
        elif isinstance(v, SerialVoice):
            self.voice = voice.Syn6288Voice(v.port, baudrate=v.baudrate, languages=v.languages, repeats=v.repeats,
                                            timeout=v.timeout, on_start=started)

    def _open_led(self) -> None:
        from . import led

        c = self.cfg.led
        if isinstance(c, FrameLed):
            codec = led.FrameCodec(bytes.fromhex(c.header), c.address, c.command, c.checksum,
                                   bytes.fromhex(c.trailer))
            self.led = led.LedWorker(led.SerialFrameLed(c.port, codec, baudrate=c.baudrate))
        elif isinstance(c, ModbusLed):
            codec = led.ModbusTextCodec(c.address, c.register, c.registers)
            self.led = led.LedWorker(led.ModbusLed(c.port, codec, baudrate=c.baudrate, timeout=c.timeout))
        elif isinstance(c, PygameLed):
            self.pygame_led = led.PygameLed(self.screen.font_path, self.screen.font_index, tuple(c.dots))

    def _open_caller(self) -> None:
        c = self.cfg.caller
        if c is None or self.mode != "window":
            return
        n = self.cfg.display.window
        assert n is not None
        to = TransferTo(category=c.transfer_to.category, window=c.transfer_to.window) if c.transfer_to else None
        staff = Staff(id=c.staff.id, name=c.staff.name) if c.staff else None
        self.caller_state = callercore.initial(callercore.CallerSettings(n, c.hold_seconds, to, staff))
        if c.gpio is not None:
            if self.opts.pin_factory is None:
                from hallq.shared.gpio import pin_factory

                self.opts.pin_factory = pin_factory(
                    "native", what="window caller's GPIO",
                    mock_hint="[caller.keypad] instead of [caller.gpio] (or no [caller])")
            self.inputs = callercore.GpioButtons(dict(c.gpio.buttons), self.events.put, pull_up=c.gpio.pull_up,
                                                 bounce_seconds=c.gpio.bounce_seconds,
                                                 pin_factory=self.opts.pin_factory)
            if c.gpio.buzzer:
                self.beeper = callercore.BuzzerBeeper(c.gpio.buzzer, pin_factory=self.opts.pin_factory)
        elif c.keypad is not None:
            self.keypad = callercore.Keypad(dict(c.keypad.keys), self.events.put,
                                            device=self.opts.keypad_device or c.keypad.device, grab=c.keypad.grab)
            self.inputs = self.keypad
        if self.beeper is None:
            try:
                self.beeper = callercore.MixerBeeper()
            except Exception as exc:  # no sound device: the error still shows on the screen
                log.warning("no speaker for beeps: %s", exc)

    def _on_message(self, msg: Message) -> None:
        """MQTT dispatcher thread: decode, and hand the event to the main thread."""
        try:
            ev = core.event_from_message(self.topics, msg.topic, msg.payload)
        except (PayloadError, TopicError) as exc:
            self.bad_messages += 1
            self.client.bad_payload(msg.topic, exc)  # counted; logged once per topic
            return
        if isinstance(ev, core.CallMsg):
            self.trace("call", ticket=ev.call.ticket, window=ev.call.window, recall=ev.call.recall)
        self.events.put(ev)

    def _connect(self) -> None:
        d = self.cfg.display
        self.client = HallClient(self.opts.broker or d.broker, d.hall, self.cfg.client_id)
        for f in core.subscriptions(self.topics):
            self.client.subscribe(f, self._on_message)
        self.client.on_connected = self._connected
        self.client.start()

    def _connected(self) -> None:
        self.trace("connected")
        self.events.put(core.LinkChanged(True))
        self._publish_health()

    def _publish_health(self) -> None:
        if self.client is None or not self.client.connected:
            return
        errors: list[str] = list(self.start_errors)
        if self.problem is not None:
            errors.append(self.problem[1])
        if self.voice is not None and self.voice.errors:
            errors.append(f"voice: {self.voice.errors} announcements failed")
        if self.bad_messages:
            errors.append(f"{self.bad_messages} malformed messages ignored")
        if self.led is not None and self.led.last_error:
            errors.append(f"LED board: {self.led.last_error}")
        role = "window" if self.caller_state is not None else "display"
        health = DeviceHealth(at=self.clock.now(), role=role, errors=errors,
                              version=software_version("hallq-call-display"))  # type: ignore[arg-type]
        self.client.publish(self.topics.device_health(self.cfg.client_id), encode(health), retain=True)

    # -- the loop ------------------------------------------------------------------------------------------
    def _apply(self, ev: Any, now: float) -> None:
        if isinstance(ev, callercore.Press | callercore.Release | callercore.Tick | callercore.WindowStatus
                      | callercore.Answer):
            self._caller(ev, now)
            return
        self.state, effects = core.handle(self.state, ev, now)
        if isinstance(ev, core.CallMsg):
            c = ev.call
            self._pending_frames[(c.ticket, c.window, c.recall)] = now
        if (isinstance(ev, core.WindowMsg) and self.caller_state is not None
                and ev.state.window == self.cfg.display.window):
            self._caller(callercore.WindowStatus(ev.state.status), now)
        for eff in effects:
            if isinstance(eff, core.Announce) and self.voice is not None:
                self.voice.say(eff.call)
            elif isinstance(eff, core.Beep) and self.beeper is not None:
                try:
                    self.beeper.beep()
                except Exception as exc:
                    log.warning("beep failed: %s", exc)

    def _caller(self, ev: Any, now: float) -> None:
        if self.caller_state is None:
            return
        self.caller_state, effects = callercore.handle(self.caller_state, ev, now)
        for eff in effects:
            if isinstance(eff, callercore.Send):
                if self.requester is not None:
                    self.requester.send(eff)
            elif isinstance(eff, callercore.Tell):
                self._apply(core.CallerNotice(eff.zh, eff.en, eff.error), now)

    def _wall(self) -> datetime:
        now = self.clock.now()
        if self.state.hall is not None:
            try:
                return now.astimezone(ZoneInfo(self.state.hall.timezone))
            except (KeyError, ValueError):
                pass
        return now

    def _draw(self, now: float) -> bool:
        """Draw what changed: the whole picture when anything but the scrolling line changed (the state, the
        clock, a flash phase, a notice), else only the scrolling line. True when the whole picture was drawn."""
        import pygame

        wall = self._wall()
        if self.mode == "hall":
            view: Any = core.hall_view(self.state, now, wall)
            key: tuple = (self.state.version, view.clock, view.flashing, view.flash_on, view.problem)
        else:
            view = core.window_view(self.state, now, wall)
            key = (self.state.version, view.clock, view.flashing, view.flash_on, view.notice is None, view.problem)
        if key == self._last_key:
            if self.pygame_led is not None:
                if self.pygame_led.scrolling:
                    self.pygame_led.draw(self.screen.surface, now)
                    self.screen.flip()
            elif self.mode == "hall" and view.ticker:
                pygame.display.update(self.renderer.ticker(self.screen.surface, view, now))
            return False
        self._last_key = key
        if self.pygame_led is not None:
            from .led import hall_strip_text, window_board_text

            self.pygame_led.show(hall_strip_text(view) if self.mode == "hall" else window_board_text(view))
            self.pygame_led.draw(self.screen.surface, now)
        else:
            self.renderer.draw(self.screen.surface, view, now)
        if self.led is not None:
            from .led import hall_strip_text, window_board_text

            self.led.show(hall_strip_text(view) if self.mode == "hall" else window_board_text(view))
        self.screen.flip()
        if self._pending_frames:
            shown = self._shown_call(view)
            for call in list(self._pending_frames):
                if shown is not None and call[:2] == shown:
                    self.trace("frame", ticket=call[0], window=call[1], recall=call[2])
                    del self._pending_frames[call]
                elif now - self._pending_frames[call] > 5:
                    del self._pending_frames[call]
        return True

    def _check_problem(self, now: float) -> None:
        """Log (and report in health) what is wrong with this display's configuration, once per change."""
        found = core.problem(self.state, now)
        if found == self.problem:
            return
        self.problem = found
        if found is not None:
            log.error("%s", found[1])
        else:
            log.info("the display's hall and window are known now")
        self._publish_health()

    def _shown_call(self, view: Any) -> tuple[str, int] | None:
        if isinstance(view, core.HallView):
            return (view.newest.ticket, view.newest.window) if view.newest else None
        return (view.ticket, view.no) if view.ticket else None

    def _complete(self) -> bool:
        s = self.state
        if self.mode == "hall":
            return s.hall is not None and s.queue is not None and s.controller is not None
        return s.hall is not None and self.cfg.display.window in s.windows and s.controller is not None

    def run(self) -> int:
        """Run until SIGTERM/SIGINT, the window is closed, or a one-shot screenshot is saved."""
        import pygame

        self._open_screen()
        self._open_led()
        self._open_voice()
        self._open_caller()
        self._connect()
        assert self.client is not None
        if self.caller_state is not None:
            c = self.cfg.caller
            assert c is not None and self.cfg.display.window is not None
            self.requester = callercore.Requester(self.client, self.cfg.display.window, self.events.put, c.timeout)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.stop_event.set())

        from hallq.shared.service import Notifier

        notifier = Notifier()  # systemd: READY once everything is open, watchdog pings while the loop turns
        notifier.ready("serving")
        d = self.cfg.display
        frame = 1.0 / d.fps
        started = time.monotonic()
        last_health = started
        last_shot = 0.0
        quiet_since = started
        complete = False
        code = 0
        try:
            while not self.stop_event.is_set():
                now = time.monotonic()
                try:
                    ev = self.events.get(timeout=frame)
                except queue.Empty:
                    ev = None
                now = time.monotonic()
                while ev is not None:
                    self._apply(ev, now)
                    quiet_since = now
                    try:
                        ev = self.events.get_nowait()
                    except queue.Empty:
                        ev = None
                if self.client is not None and not self.client.connected and self.state.link_up:
                    self._apply(core.LinkChanged(False), now)
                if self.caller_state is not None and self.caller_state.down:
                    self._caller(callercore.Tick(), now)
                for pe in pygame.event.get():
                    if pe.type == pygame.QUIT or (pe.type == pygame.KEYDOWN and pe.key == pygame.K_ESCAPE
                                                  and d.screen != "fullscreen"):
                        self.stop_event.set()
                self._check_problem(now)
                if self._draw(now) and not complete and self._complete():
                    complete = True
                    self.trace("complete")
                if now - last_health > 60:
                    self._publish_health()
                    last_health = now
                notifier.alive()
                shot = self.opts.screenshot
                if shot is not None:
                    if self.opts.screenshot_every:
                        if now - last_shot >= self.opts.screenshot_every:
                            self.screen.screenshot(shot)
                            last_shot = now
                    elif self.problem is not None and now - quiet_since > 0.3:
                        self.screen.screenshot(shot)
                        log.info("screenshot saved to %s", shot)
                        code = 1
                        break
                    elif self._complete() and now - quiet_since > 0.3:
                        self.screen.screenshot(shot)
                        log.info("screenshot saved to %s", shot)
                        break
                    elif now - started > self.opts.wait:
                        self.screen.screenshot(shot)
                        log.error("no complete picture from the controller within %.0f s; saved what shows", self.opts.wait)
                        code = 1
                        break
        finally:
            notifier.stopping()
            self.close()
        return code

    def close(self) -> None:
        for part in (self.inputs, self.beeper if isinstance(self.beeper, callercore.BuzzerBeeper) else None,
                     self.voice, self.led):
            if part is not None:
                try:
                    part.close()
                except Exception as exc:
                    log.warning("closing %r: %s", part, exc)
        if self.client is not None:
            self.client.stop()
        self.trace.close()
        if self.voice is not None or self.beeper is not None:
            import pygame.mixer

            if pygame.mixer.get_init():
                pygame.mixer.quit()
        if self.screen is not None:
            self.screen.close()
