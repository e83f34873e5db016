"""The SMS gateway process: the modem link, MQTT, the pure core and the store, wired.

Threads:

- the modem link (:mod:`.link`) owns the modem; a received text is committed to the inbox (with the
  sender's number, encrypted) before the modem's copy is deleted, then queued for the worker;
- paho's thread and the MQTT dispatcher only queue what arrives (the controller's retained ``config``,
  ``queue`` and ``window/{n}/state``, and the answers to our requests);
- one worker owns the core's state: it applies each event, commits the effects in one transaction (the
  outbox rows, what was handled, the tracked tickets, the counts), and only then publishes the requests
  it decided and wakes the modem link.

A take is published with ``req`` derived from the text's inbox id, resent every ``resend_every_s`` until
answered (the controller answers a repeat with its first answer), and after ``take_timeout_s`` the
citizen is told to try again. After a restart, unhandled texts and unanswered requests are picked up again.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from hallq.shared import hallkey, software_version
from hallq.shared.clock import Clock
from hallq.shared.mqtt import HallClient, Message
from hallq.shared.phone import InvalidPhoneNumber, PhoneNumber
from hallq.shared.schemas import (
    REPLY_TYPES,
    DeviceHealth,
    ErrorReply,
    HallConfig,
    ModemHealth,
    PayloadError,
    QueueState,
    TakeRequest,
    WindowState,
    decode,
)

from . import core
from .config import SmsConfig, read_pin
from .link import ModemLink, Received
from .modem import AtModem
from .store import Store

log = logging.getLogger(__name__)

_STOP = object()
#: At most this many inputs share one transaction.
MAX_BATCH = 500


@dataclass(slots=True)
class _Batch:
    """The effects of a run of events, committed together."""

    sends: list[tuple[str, str, str]] = field(default_factory=list)
    handled: list[str] = field(default_factory=list)
    asks: list[tuple[str, str, str, str]] = field(default_factory=list)
    answered: list[tuple[str, str]] = field(default_factory=list)
    tracked: list[core.Tracked] = field(default_factory=list)
    counts: list[tuple[str, int]] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.sends or self.handled or self.asks or self.answered or self.tracked or self.counts)

    def clear(self) -> None:
        for f in (self.sends, self.handled, self.asks, self.answered, self.tracked, self.counts):
            f.clear()


@dataclass(slots=True)
class _Pending:
    msg: str
    subject: str
    action: str
    person: str
    req: str
    payload: Any
    first: float
    last: float


def req_id(msg: str, subject: str) -> str:
    """The request id of an ask: the same text asks with the same id, also after a restart."""
    return f"sms-{msg}-{subject}"[:64]


class SmsGateway:
    """``start()``, then ``stop()``."""

    def __init__(self, cfg: SmsConfig, clock: Clock, *, broker: str | None = None, port: str | None = None):
        self.cfg = cfg
        self.clock = clock
        self.secret = hallkey.load(cfg.sms.secret_key_file)
        self.pin = read_pin(cfg.modem.pin_file)
        s = cfg.sms
        self.settings = core.Settings(notify_ahead=s.notify_ahead, max_texts_per_day=s.max_texts_per_day,
                                      english=s.english)
        self.store = Store(s.db, self.secret)
        self._link_store = Store(s.db, self.secret)
        today = clock.now().date()
        lost = self.store.new_day(today.isoformat())
        if lost:
            log.warning("%d texts of an earlier day were never sent and are given up", lost)
        counts, tracked = self.store.restore(today.isoformat())
        self.state = core.new_state(today, self.settings, counts=counts, tracked=tracked)
        self.client = HallClient(broker or s.broker, s.hall, s.id)
        self.topics = self.client.topics
        self.modem = AtModem(port or cfg.modem.port, baudrate=cfg.modem.baudrate, timeout=cfg.modem.command_timeout_s)
        self.link = ModemLink(self.modem, self._link_store, self.today, on_text=self._on_text,
                              on_health=self._on_health, pin=self.pin, health_every=cfg.modem.health_every_s,
                              max_attempts=cfg.modem.max_attempts)
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._held: list[core.Event] = []
        self._worker: threading.Thread | None = None
        self._health = ModemHealth(online=False)
        #: counters and timings, for logs, tests and the benchmark
        self.answers_queued = 0
        self.queued_at: dict[str, float] = {}  # inbox id -> when its answer was committed (monotonic)

    def today(self) -> date:
        return self.clock.now().date()

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> SmsGateway:
        self.client.on_connected = self._publish_health
        self.client.subscribe(self.topics.config, self._on_mqtt)
        self.client.subscribe(self.topics.queue, self._on_mqtt)
        self.client.subscribe(self.topics.all_window_states, self._on_mqtt)
        day = self.today().isoformat()
        for msg, person, text in self.store.unhandled(day):
            self._inbox.put(core.Text(msg, person, text))
        for a in self.store.pending_asks(day):
            self._inbox.put(("ask", a.msg, a.subject, a.action, a.person))
        self._worker = threading.Thread(target=self._work, name="sms-worker", daemon=True)
        self._worker.start()
        self.client.start()
        self.link.start()
        return self

    def stop(self) -> None:
        self.link.stop()
        self._inbox.put(_STOP)
        if self._worker is not None:
            self._worker.join(10)
        self.client.stop()
        self.store.close()
        self._link_store.close()

    # -- inputs (other threads: only queue) -------------------------------------------------------------
    def _on_text(self, received: list[Received]) -> None:
        """On the modem link's thread: commit the texts (one transaction), then queue them."""
        today = self.today()
        day = today.isoformat()
        singles: list[tuple[str, str, str, str, str]] = []
        masked: dict[str, str] = {}
        events: list[core.Text] = []
        for r in received:
            d = r.deliver
            if d.alphanumeric:
                log.info("a text from a named sender (not a phone) is ignored")
                continue
            try:
                phone = PhoneNumber(d.sender)
            except InvalidPhoneNumber:
                log.info("a text from a number that is not a mainland mobile is ignored")
                continue
            person = phone.person_key(self.secret, today)
            masked[r.id] = phone.masked()
            if d.concat is not None and d.concat.total > 1:
                got = self._link_store.receive_part(day, person, phone.reveal(), d.concat.ref, d.concat.total,
                                                    d.concat.seq, d.text, r.id)
                if got is not None:
                    masked[got[0]] = phone.masked()
                    events.append(core.Text(got[0], person, got[1]))
            else:
                singles.append((r.id, day, person, phone.reveal(), d.text))
        new = set(self._link_store.receive(singles)) if singles else set()
        events += [core.Text(msg, person, text) for msg, _, person, _, text in singles if msg in new]
        for ev in events:
            log.info("text %s from %s", ev.msg, masked.get(ev.msg, "?"))
            self._inbox.put(ev)

    def _on_health(self, h: ModemHealth) -> None:
        self._health = h
        self._publish_health()

    def _publish_health(self) -> None:
        if self.client.connected:
            self.client.publish(self.topics.device_health(self.cfg.sms.id),
                                DeviceHealth(at=self.clock.now(), role="sms", modem=self._health,
                                             version=software_version("hallq-sms")), retain=True)

    def _on_mqtt(self, msg: Message) -> None:
        self._inbox.put(msg)

    # -- the worker ------------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            try:
                items = [self._inbox.get(timeout=0.5)]
            except queue.Empty:
                items = []
            while items and len(items) < MAX_BATCH:  # a burst is handled and committed together
                try:
                    items.append(self._inbox.get_nowait())
                except queue.Empty:
                    break
            stop = _STOP in items
            batch = _Batch()
            for item in items:
                if item is _STOP:
                    continue
                try:
                    self._item(item, batch)
                except Exception:  # the worker must outlive any single bad input
                    log.exception("the SMS worker failed on %r", type(item).__name__)
            try:
                self._flush(batch)
                self._housekeeping()
            except Exception:
                log.exception("the SMS worker failed on a batch")
            if stop:
                return

    def _item(self, item: Any, batch: _Batch) -> None:
        if isinstance(item, Message):
            ev = self._retained(item)
            if ev is not None:
                self._step(ev, batch)
        elif isinstance(item, tuple) and item[0] == "ask":
            _, msg, subject, action, person = item
            batch.asks.append((msg, subject, action, person))  # asked before a restart: asked again
        elif isinstance(item, tuple) and item[0] == "reply":
            _, key, raw = item
            p = self._pending.pop(key, None)
            if p is not None:
                self._step(core.Answer(p.msg, p.person, p.action, p.subject, self._decode_reply(p.action, raw)),
                           batch)
        else:
            self._step(item, batch)

    def _retained(self, m: Message) -> core.Event | None:
        try:
            if m.topic == self.topics.config:
                return core.HallChanged(decode(m.payload, HallConfig))
            if m.topic == self.topics.queue:
                return core.QueueChanged(decode(m.payload, QueueState))
            self.topics.parse_window_state(m.topic)
            return core.WindowChanged(decode(m.payload, WindowState))
        except (PayloadError, ValueError) as exc:
            log.warning("ignored a message on %s: %s", m.topic, exc)
            return None

    def _decode_reply(self, action: str, raw: bytes) -> object | None:
        try:
            return decode(raw, ErrorReply)
        except PayloadError:
            pass
        try:
            return decode(raw, REPLY_TYPES[action])
        except (PayloadError, KeyError) as exc:
            log.error("the controller's %s answer does not fit the contract: %s", action, exc)
            return ErrorReply(req="?", error={"code": "bad_request", "message": str(exc)})  # type: ignore[arg-type]

    def _step(self, ev: core.Event, batch: _Batch) -> None:
        """Apply one event to the core; its effects wait in ``batch`` for :meth:`_flush`."""
        now = self.clock.now()
        try:
            self.state, fx = core.handle(self.state, ev, now)
        except core.NotReady:
            self._held.append(ev)
            return
        for e in fx:
            if isinstance(e, core.Send):
                batch.sends.append((e.key, e.person, e.text))
                if e.msg is not None:
                    batch.handled.append(e.msg)
            elif isinstance(e, core.Ask):
                batch.asks.append((e.msg, e.category, "take", e.person))
            elif isinstance(e, core.AskCancel):
                batch.asks.append((e.msg, e.number, "cancel", e.person))
            elif isinstance(e, core.Track):
                batch.tracked.append(e.ticket)
            elif isinstance(e, core.Counted):
                batch.counts.append((e.person, e.count))
            elif isinstance(e, core.Handled):
                batch.handled.append(e.msg)
                log.info("text %s not answered: %s", e.msg, e.why)
            elif isinstance(e, core.NewDay):
                self._flush(batch)  # yesterday's effects under yesterday's date, then forget it
                batch.clear()
                lost = self.store.new_day(e.new.isoformat())
                self._pending.clear()
                log.info("a new day (%s): yesterday's numbers deleted; %d unsent texts given up", e.new, lost)
        if isinstance(ev, core.Answer):
            batch.answered.append((ev.msg, ev.subject))
        if isinstance(ev, core.HallChanged) and self._held:
            held, self._held = self._held, []
            for h in held:
                self._step(h, batch)

    def _flush(self, batch: _Batch) -> None:
        """Commit a batch's effects in one transaction; only then ask the controller and wake the modem."""
        if batch.empty():
            return
        new = self.store.apply(self.state.day.isoformat(), sends=batch.sends, handled=batch.handled,
                               asks=batch.asks, answered=batch.answered, tracked=batch.tracked,
                               counts=batch.counts)
        if batch.sends:
            stamp = time.monotonic()
            for m in batch.handled:
                self.queued_at[m] = stamp
            self.answers_queued += new
            self.link.kick.set()
        for msg, subject, action, person in batch.asks:
            self._ask(msg, subject, action, person)

    def _ask(self, msg: str, subject: str, action: str, person: str) -> None:
        req = req_id(msg, subject)
        if action == "take":
            payload: Any = TakeRequest(req=req, category=subject, channel="sms", person=person)
        else:
            from hallq.shared.schemas import CancelRequest  # the contract's cancel (controller v2)

            payload = CancelRequest(req=req, ticket=subject, person=person)
        key = (msg, subject)
        now = time.monotonic()
        self._pending[key] = _Pending(msg, subject, action, person, req, payload, now, now)
        fut = self.client.request_async(action, payload)
        fut.add_done_callback(lambda f, key=key: self._inbox.put(("reply", key, f.result()))
                              if not f.cancelled() else None)

    def _housekeeping(self) -> None:
        now = time.monotonic()
        for key, p in list(self._pending.items()):
            if now - p.first > self.cfg.sms.take_timeout_s:
                self._pending.pop(key, None)
                log.warning("no answer to %s %s in %.0f s; the citizen is told to try again", p.action, p.req,
                            now - p.first)
                b = _Batch()
                self._step(core.Answer(p.msg, p.person, p.action, p.subject, None), b)
                self._flush(b)
            elif now - p.last >= self.cfg.sms.resend_every_s and self.client.connected:
                p.last = now
                self.client.publish(self.topics.request(self.cfg.sms.id, p.action), p.payload)
        if self.clock.now().date() != self.state.day:
            b = _Batch()
            self._step(core.Tick(), b)
            self._flush(b)
