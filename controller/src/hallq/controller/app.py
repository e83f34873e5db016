"""The controller process: MQTT in, the pure core, SQLite, MQTT out.

Threads:

- paho's network thread drops requests far beyond their client's rate (:class:`~.core.limits.Gate`; a listed
  device that floods is unsubscribed for a cool-off, so the broker drops its flood instead of queueing it in
  front of everyone else's requests) and hands the other raw request messages to the worker's queue itself
  (nothing there blocks; the :class:`~hallq.shared.mqtt.HallClient` dispatcher runs the other handlers:
  instance, devices);
- one worker thread owns the core's state and the database. It takes every message that is queued (up
  to :data:`MAX_BATCH`), decodes and handles them one by one, writes all their records in ONE transaction,
  and only after the commit publishes the answers, the ``calls`` messages and the retained topics that
  changed (each once per batch). A burst of requests thus costs one fsync, not one per request.

On every (re)connection the worker publishes all retained state (config, queue, every window, board,
stats) and only then ``online`` on ``controller/status``. Once a minute it publishes ``stats`` (when
anything changed) and at local midnight it rolls the day over. It also writes the devices' events
(:mod:`.devices`, handed over by the MQTT side) and, for every day that is over, the day's figures
(``daily_figures``, one day per turn), so the record has one writer.

Memory is never ahead of the database: a payload that does not fit the contract is answered
``bad_request`` (or dropped when no ``req`` can be read) and the rest of its batch goes on. Anything else
that fails in the core or the batch loop is a bug whose effect on the state in memory is unknown: the
worker commits and answers what the batch applied before it, then ends the process with
:data:`EXIT_BUG` (systemd restarts it, and the restart loads the last commit). A failed commit ends it
with :data:`EXIT_STORAGE` without answering.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from hallq.shared import hallkey
from hallq.shared.clock import Clock, system_synchronized
from hallq.shared.config import BrokerURL
from hallq.shared.mqtt import HallClient, Message
from hallq.shared.schemas import (
    ONLINE,
    REQUEST_TYPES,
    STOPPED,
    ControllerInstance,
    PayloadError,
    decode,
    encode,
    peek_req,
    shorten,
)
from hallq.shared.topics import HallTopics, TopicError

from . import claim, core, devices, followups, stats
from .bookings import Feed
from .config import HallFile
from .core import workdays
from .haocp.uploader import Uploader
from .shipper import Shipper
from .storage import Storage

log = logging.getLogger(__name__)

#: At most this many requests share one transaction.
MAX_BATCH = 1000
#: The ``stats`` topic is published at most this often (seconds of hall time).
STATS_EVERY = 60.0

#: The write-ahead log is copied into the database when no request waits, this often (seconds) ...
CHECKPOINT_IDLE_S = 5.0
#: ... and at least this often under a load that never pauses.
CHECKPOINT_MAX_S = 60.0
#: Cached answers beyond ``[limits] replies`` (or older than the storage keeps) leave the record this often (s).
PRUNE_EVERY_S = 60.0
#: Exit status when the database cannot be written (``EX_TEMPFAIL``).
EXIT_STORAGE = 75
#: Exit status after an unexpected exception in the core or the batch loop (``EX_SOFTWARE``).
EXIT_BUG = 70

_CONNECTED = object()
_STOP = object()


class Controller:
    """One hall's controller: ``start()``, then ``stop()`` (publishes ``stopped``)."""

    def __init__(self, cfg: HallFile, broker: BrokerURL | str, db: str, clock: Clock, *, client_id: str | None = None):
        self.cfg = cfg
        self.clock = clock
        self.storage = Storage(db, cfg)
        # a scaled (demo) clock is not the system's: only the record can vouch for it
        self.storage.clock_synced = not clock.scaled and system_synchronized()
        self._behind_logged = 0.0
        self.topics = HallTopics(cfg.hall.id)
        self.client = HallClient(
            broker,
            cfg.hall.id,
            client_id or f"controller-{cfg.hall.id}"[:64],
            status_topic=self.topics.controller_status,  # Last Will ``offline``
            auto_online=False,  # ``online`` only after the retained state is out
            # A clean session: a request sent while the controller is down is not kept for later. Every client
            # resends its request (same `req`) until its own time-out, so a restart within that time loses
            # nothing, and a repeat is answered once; what a kiosk has already told the citizen failed must
            # not come back as a number nobody holds (a ghost ticket clerks would call and mark no-show).
            persistent_session=False,
        )
        self.client.on_connected = lambda: self._inbox.put(_CONNECTED)
        #: the first check of every request, on the MQTT dispatcher thread (see core.limits.Gate)
        self._speed = 1.0 / clock.real_seconds(1.0)  # hall seconds per real second (the demo's clock runs faster)
        self.gate = core.limits.Gate(cfg, self._speed)
        #: each sender's clock, against ours: how long a request took to get here (see core.limits.SenderClocks)
        self.sender_clocks = core.limits.SenderClocks()
        self.gated = 0
        self.client.prefilter = self._admit
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._turned_at = time.monotonic()  # the worker's last turn (it wakes at least every second)
        self._config_payload = encode(cfg.public())
        #: when the ``queue`` topic goes out (at most every core.PUBLISH_EVERY) and its estimates are worked
        #: out (at most every core.ESTIMATE_EVERY): the per-batch cost of a flood of takes
        self.queue_view = core.QueueView()
        #: counters, for logs and tests
        self.malformed = 0
        self.handled = 0
        self.batches = 0
        self._stats_dirty = True
        self._stats_at = 0.0
        # a minute of hall time (on the demo's faster clock too), but never more than once a second
        self._stats_every = max(clock.real_seconds(STATS_EVERY), 1.0)
        self._checkpoint_at = time.monotonic()
        self._pruned_at = time.monotonic()
        now = clock.now()
        self.state = self.storage.load(now)
        if cfg.follow is not None:
            self.state.follow_key = hallkey.load(cfg.follow.key_file)
        # a restart on a later day closes the old day at once (waiting tickets expire)
        self.state, fx = core.handle(self.state, core.Tick(), now)
        self.storage.write(fx.records)
        self.storage.prune(now)
        self.storage.forget_persons(self.state.day)
        log.info("hall %s, %s: %d tickets waiting, %d windows open", cfg.hall.id, self.state.day,
                 self.state.waiting_total, sum(1 for w in self.state.windows.values() if w.staff is not None))
        if not workdays.known(now.date()):
            log.warning("the working-day calendar (chinesecalendar) knows China's public holidays up to %d only: "
                        "follow-up deadlines count Monday to Friday; update it, or list this year's holidays and "
                        "调休 days under [haocp] holidays / workdays", workdays.LAST_KNOWN_YEAR)
        #: the open follow-ups of bad reviews, retained on ``followups``; the 好差评 upload (if configured)
        self.followups = followups.Publisher(self.storage.conn, self.client, clock)
        #: this process, on ``controller/instance`` (a second controller of the hall names it and stops)
        self.instance = claim.new_record(db, datetime.now().astimezone())
        #: set when another controller of the hall, started earlier, is seen alive: this one must stop
        #: (:meth:`stop` with ``displaced``); ``displaced_by`` says which
        self.displaced = threading.Event()
        self.displaced_by: str = ""
        self._watch = claim.Watch(self.instance)
        self._beat_at = 0.0
        #: the retained ``devices`` registry: every listed device, its status, health and version
        self.devices = devices.Publisher(self.client, self.topics, cfg.devices, clock,
                                         recorded=self.storage.last_device_events(), on_events=self._inbox.put)
        #: closed days whose figures are not in the record yet (one is worked out per turn of the worker)
        self._figures_due = self.storage.days_without_figures(self.state.day)
        self.uploader = Uploader(db, cfg.haocp, clock) if cfg.haocp is not None and cfg.haocp.url else None
        #: the record to the city's centre (``[central]``): its own thread and connection, never the worker's
        try:
            self.shipper = Shipper(db, cfg.hall.id, cfg.central) if cfg.central is not None else None
            if self.shipper is not None and self.uploader is not None and cfg.central is not None:
                self.uploader.fallback = timedelta(minutes=cfg.central.haocp_fallback_minutes)
        except BaseException:
            self.storage.close()
            raise
        #: bookings from ``[appointments] folder`` / ``url``, handed to the worker as core events
        ap = cfg.appointments
        self.bookings = Feed(ap, [c.code for c in cfg.categories], self._inbox.put) if ap.folder or ap.url else None
        if self.bookings is not None and ap.folder:
            self.bookings.scan()  # the folder's bookings are in before `online` (handled first by the worker)

    # -- lifecycle ----------------------------------------------------------------------------------------
    def start(self, *, look: bool = True) -> Controller:
        """Serve. First, unless ``look`` is False, make sure no other controller serves the hall on this broker
        (:class:`~hallq.controller.claim.OtherController` says which one does; nothing was published)."""
        if look:
            earlier = claim.look(self.client.broker, self.cfg.hall.id, self.client.client_id, self.instance)
            if earlier is not None:
                log.info("the last controller of hall %s (pid %d on %s) is gone: this one takes over",
                         self.cfg.hall.id, earlier.pid, earlier.host)
        self._worker = threading.Thread(target=self._work, name="controller", daemon=True)
        self._worker.start()
        # on paho's network thread: the handler only queues the request for the worker (no dispatcher hop).
        # A hall that lists its devices reads each one's requests on a subscription of its own, so that the
        # broker can be told to stop sending a flooding device's (see core.limits.Gate); other clients' requests
        # are not read at all (the broker's ACL keeps them off; on an open broker they would only hear
        # not_allowed). A hall without [[devices]] reads every client's on one wildcard.
        self.client.subscribe(self.topics.all_requests, self._on_request, inline=True, broker_filters=None
                              if self.cfg.devices is None else [self.topics.requests_of(d.id) for d in self.cfg.devices])
        self.client.subscribe(self.topics.controller_instance, self._on_instance)
        self.devices.start()
        self.client.start()
        if self.uploader is not None:
            self.uploader.start()
        if self.shipper is not None:
            self.shipper.start()
        if self.bookings is not None:
            self.bookings.start()
        return self

    def _on_instance(self, msg: Message) -> None:
        """``controller/instance``: another controller of this hall, started before this one, is alive."""
        if not msg.payload or self.displaced.is_set():
            return
        try:
            record = decode(msg.payload, ControllerInstance)
        except PayloadError:
            return
        other = self._watch.seen(record, msg.retain)
        if other is not None:
            self.displaced_by = (f"{claim.describe(other, self.cfg.hall.id, self.client.broker)}, and started "
                                 "before this one: this one stops, that one goes on serving")
            log.error("%s", self.displaced_by)
            self.displaced.set()

    def stop(self, *, displaced: bool = False) -> None:
        """Finish what is queued, publish ``stopped``, disconnect, close the database. ``displaced``: another
        controller serves the hall, so leave its ``controller/instance`` and the hall's status alone (a clean
        disconnect, no ``stopped``: the hall is not stopped)."""
        self._inbox.put(_STOP)
        if self._worker is not None:
            self._worker.join(10)
        if self.uploader is not None:
            self.uploader.stop()
        if self.shipper is not None:
            self.shipper.stop()
        if self.client.connected and not displaced:  # a clean stop: no record left to make the next one wait
            self.client.publish(self.topics.controller_instance, b"", retain=True)
        if self.bookings is not None:
            self.bookings.stop()
        self.devices.stop()
        self.client.stop(status=None if displaced else STOPPED)
        self.storage.close()

    # -- MQTT side (dispatcher thread, and paho's network thread for requests: never block) ---------------
    def _on_request(self, msg: Message) -> None:
        self._inbox.put(msg)

    def _admit(self, topic: str) -> bool:
        """The gate, on paho's network thread (``HallClient.prefilter``): a request far beyond its client's rate
        is dropped there, unanswered, before anything else is done with it."""
        parts = topic.split("/")  # hallq/{hall}/req/{client}/{action}: the client, cheaply
        if len(parts) != 5 or parts[2] != "req":
            return True  # not a request (device status and health): the handlers see it
        now = time.monotonic()
        if self.gate.admit(parts[3], now):
            return True
        self.gated += 1
        cool = self.gate.silence(parts[3], now)
        if cool is not None:
            self._silence(parts[3], cool)
        if self.gated in (1, 100, 10_000) or self.gated % 1_000_000 == 0:
            log.warning("requests dropped unanswered, far beyond their client's rate ([limits]): %d so far, %s",
                        self.gated, ", ".join(f"{shorten(c, 64)} {n}" for c, n in
                                              sorted(self.gate.dropped.items(), key=lambda x: -x[1])[:5]))
        return False

    def _silence(self, client: str, cool: float) -> None:
        """Stop reading a flooding device's requests for ``cool`` seconds: the broker drops them meanwhile, so
        they no longer queue in front of every other device's (on paho's network thread: never blocks)."""
        self.client.pause(self.topics.requests_of(client))
        # (a warning like this one is logged at most once a minute: hallq.shared.cli.BoundedLog)
        log.warning("device %s floods the controller with requests (far beyond its [limits] rate): not "
                    "reading them for %g s (the broker drops them meanwhile)", client, cool)
        self.devices.flooding(client, True)

    def _hear_again(self) -> None:
        """Read the silenced devices whose cool-off is over again (the worker's housekeeping)."""
        for client in self.gate.due(time.monotonic()):
            self.client.resume(self.topics.requests_of(client))
            self.devices.flooding(client, False)

    # -- worker -------------------------------------------------------------------------------------------
    def healthy(self) -> bool:
        """The worker is alive and turning: what the service's watchdog pings depend on."""
        w = self._worker
        return w is not None and w.is_alive() and time.monotonic() - self._turned_at < 15

    def _work(self) -> None:
        try:
            self._work_loop()
        except BaseException as exc:  # a bug: memory may be ahead of the database; only a restart is safe
            code = EXIT_STORAGE if isinstance(exc, sqlite3.Error) else EXIT_BUG
            log.critical("controller worker failed; exiting with %d so that the restart reloads the record",
                         code, exc_info=True)
            self._fatal(code)

    def _fatal(self, code: int) -> None:
        """End the process at once (no ``stopped``: the broker publishes the Last Will ``offline``)."""
        logging.shutdown()
        os._exit(code)

    def _work_loop(self) -> None:
        while True:
            self._turned_at = time.monotonic()
            try:
                item = self._inbox.get(timeout=self._wait_s())
            except queue.Empty:
                item = None
            batch: list[Any] = []
            if item is not None:
                batch.append(item)
                while len(batch) < MAX_BATCH:
                    try:
                        batch.append(self._inbox.get_nowait())
                    except queue.Empty:
                        break
            stop = False
            requests: list[Message] = []
            events: list[devices.DeviceEvent] = []
            for it in batch:
                if it is _STOP:
                    stop = True
                elif isinstance(it, devices.Events):
                    events += it.events
                elif it is _CONNECTED:
                    if requests:
                        self._process(requests)
                        requests = []
                    self._publish_all()
                else:
                    requests.append(it)
            if requests:
                self._process(requests)
            if events:
                self._write_device_events(events)
            self._housekeeping()
            if stop:
                return

    def _check_clock(self, now: datetime) -> None:
        """Say (at most once a minute) that the clock is behind the record; the core ignores it for numbering."""
        behind = core.clock_behind(self.state, now)
        if behind is None or behind < timedelta(seconds=1) or time.monotonic() - self._behind_logged < 60:
            return
        self._behind_logged = time.monotonic()
        log.warning("the clock (%s) is %s behind the record (%s): times in the record go on from the record's; %s",
                    now.isoformat(timespec="seconds"), behind, self.state.latest.isoformat(timespec="seconds"),
                    "takes are answered clock_unsynced until it catches up" if not self.state.clock_trusted
                    else "nothing expires and no number is issued again")

    def _process(self, msgs: list[Message]) -> None:
        now = self.clock.now()
        self._check_clock(now)
        replies: list[tuple[str, bytes]] = []
        calls: list[Any] = []
        changed: set[str | int] = set()
        records: list[Any] = []
        failure: BaseException | None = None
        for msg in msgs:
            try:
                event = msg if isinstance(msg, core.BookingsIn) else self._event(msg, now)
                if event is None:
                    continue
                self.state, fx = core.handle(self.state, event, now)
            except Exception as exc:  # a bug: stop applying, keep what was applied
                failure = exc
                log.critical("request on %s failed in the core", shorten(msg.topic, 160), exc_info=True)
                break
            self.handled += 1
            if fx.reply is not None:
                replies.append(fx.reply)
            calls += fx.calls
            changed |= fx.changed
            records += fx.records
        # durable first: every answer below is about something already committed
        self._write(records)
        self.batches += 1
        if records:
            self._stats_dirty = True
        for client, payload in replies:
            self.client.publish(self.topics.reply(client), payload)
        for call in calls:
            self.client.publish(self.topics.calls, call)
        if failure is not None:
            # what the batch applied is committed and answered; the state in memory may hold a half-made
            # change of the failed request: it must not serve another request
            log.critical("exiting with %d: the restart reloads the record (%d earlier requests of the batch "
                         "committed and answered)", EXIT_BUG, len(replies))
            self._fatal(EXIT_BUG)
        self._publish_retained(changed, now)

    def _write(self, records: list[Any]) -> None:
        """Commit, or end the process: answering what is not on disk would break every promise.

        The state in memory is ahead of the database after a failed write; the only safe way on is a
        restart that loads the last commit (the broker publishes ``offline`` for us: the Last Will).
        """
        self._commit(self.storage.write, records, then="stopping without answering")

    def _commit(self, write: Callable[[Any], None], rows: Any, then: str = "stopping") -> None:
        """``write(rows)`` to the record, or end the process (exit 75) when the database refuses it."""
        try:
            write(rows)
        except sqlite3.Error as exc:
            log.critical("cannot commit to %s (%s): %s", self.storage.path, exc, then)
            self._fatal(EXIT_STORAGE)

    def _write_device_events(self, events: list[devices.DeviceEvent]) -> None:
        self._commit(self.storage.write_device_events, events)

    def _figures_of_a_closed_day(self) -> None:
        """Record the figures of one day that is over (the oldest first)."""
        day = self._figures_due.pop(0)
        now = self.clock.now()
        end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=now.tzinfo)
        try:
            figures = stats.compute(self.storage.conn, day, end)
        except Exception:
            log.exception("the figures of %s failed", day)
            return
        self._commit(self.storage.write_daily_figures, figures)

    def _event(self, msg: Message, now: datetime) -> core.Event | None:
        try:
            r = self.topics.parse_request(msg.topic)
        except TopicError as exc:
            self.malformed += 1
            self.client.bad_payload(msg.topic, exc)  # counted; logged once per topic
            return None
        if r.client in self.gate.silenced:
            # a flood's requests still queued here when the gate silenced their device: dropped unanswered
            # like the rest of the flood (each would cost a take, and the tickets would be nobody's)
            self.gated += 1
            return None
        try:
            payload = decode(msg.payload, REQUEST_TYPES[r.action])
        except PayloadError as exc:
            self.malformed += 1
            req = peek_req(msg.payload)
            self.client.bad_payload(msg.topic, exc)  # counted; logged once per topic
            if req is None:
                return None
            return core.Malformed(r.client, req, shorten(f"{r.action}: {exc}", 200))
        ttl = getattr(payload, "ttl_ms", None)
        if ttl is None:
            return core.Request(r.client, payload)  # type: ignore[arg-type]
        # the deadline on the batch's clock, counted from when the copy was sent as far as the sender's clock
        # tells (else from when it reached this process): the time it waited in the broker, in our socket, in
        # the queues here and in this batch all count against it
        received = msg.received or time.monotonic()
        sent = getattr(payload, "sent", None)
        if sent is not None:
            received -= self.sender_clocks.delay(r.client, sent.clock, sent.ms, received)
        left = ttl / 1000.0 - (time.monotonic() - received)
        return core.Request(r.client, payload, now + timedelta(seconds=left * self._speed))  # type: ignore[arg-type]

    def _publish_retained(self, changed: set[str | int], now: datetime) -> None:
        for key in sorted(changed, key=str):
            if key == "queue":
                q = self.queue_view.changed(self.state, now)  # None: it goes out a little later (_housekeeping)
                if q is not None:
                    self.client.publish(self.topics.queue, q, retain=True)
            elif key == "board":
                self.client.publish(self.topics.board, core.board(self.state), retain=True)
            elif isinstance(key, int):
                self.client.publish(self.topics.window_state(key), core.window_state(self.state, key), retain=True)

    def _publish_all(self) -> None:
        """Everything retained, then ``online`` (after every (re)connection)."""
        now = self.clock.now()
        self.client.publish(self.topics.config, self._config_payload, retain=True)
        self.client.publish(self.topics.queue, self.queue_view.payload(self.state, now), retain=True)
        self._publish_retained({"board", *self.state.windows}, now)
        self._publish_stats(now)
        self.followups.publish()
        self._beat()
        self.devices.publish_soon()
        self.client.publish(self.topics.controller_status, ONLINE, retain=True)
        log.info("hall %s online: retained state published", self.cfg.hall.id)

    def _beat(self) -> None:
        """Republish ``controller/instance`` (retained), counting up: this controller still serves."""
        self.instance.beat += 1
        self.client.publish(self.topics.controller_instance, self.instance, retain=True)
        self._beat_at = time.monotonic()

    def _publish_stats(self, now: datetime) -> None:
        try:
            s = stats.compute(self.storage.conn, self.state.day, now)
        except Exception:
            log.exception("statistics failed")
            return
        # per-clerk figures are not for every screen and kiosk that reads ``stats``: the dashboard and the
        # report read them from the record (issue 9 §5)
        self.client.publish(self.topics.stats, msgspec.structs.replace(s, staff={}), retain=True)
        self._stats_at = time.monotonic()
        self._stats_dirty = False

    def _wait_s(self) -> float:
        """How long the worker may wait for a request: a second, or less when the ``queue`` topic is due
        (see :class:`~.core.views.QueueView`)."""
        due = self.queue_view.due()
        if due is None:
            return 1.0
        left = self.clock.real_seconds((due - self.clock.now()).total_seconds())
        return min(max(left, 0.0), 1.0)

    def _housekeeping(self) -> None:
        if self.gate.silenced:
            self._hear_again()
        now = self.clock.now()
        self._check_clock(now)
        due = self.queue_view.due()
        if due is not None and now >= due:  # the changes held back, or the estimates catching up
            self.client.publish(self.topics.queue, self.queue_view.payload(self.state, now), retain=True)
        if now.date() > self.state.day and core.clock_behind(self.state, now) is None:
            self.state, fx = core.handle(self.state, core.Tick(), now)
            self._write(fx.records)
            self.storage.prune(now)
            self.storage.forget_persons(self.state.day)
            self._publish_retained(fx.changed, now)
            self._stats_dirty = True
            self._figures_due = self.storage.days_without_figures(self.state.day)
            log.info("a new day: %s", self.state.day)
        if self._stats_dirty and self.client.connected and time.monotonic() - self._stats_at >= self._stats_every:
            self._publish_stats(now)
        if time.monotonic() - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = time.monotonic()
            try:
                self.storage.prune(now)
            except sqlite3.Error as exc:
                log.critical("cannot commit to %s (%s): stopping", self.storage.path, exc)
                self._fatal(EXIT_STORAGE)
        since = time.monotonic() - self._checkpoint_at
        if since >= CHECKPOINT_MAX_S or (since >= CHECKPOINT_IDLE_S and self._inbox.empty()):
            self.storage.checkpoint()
            self._checkpoint_at = time.monotonic()
        self.followups.poll()
        if self._figures_due and self._inbox.empty():
            self._figures_of_a_closed_day()
        if self.client.connected and time.monotonic() - self._beat_at >= claim.BEAT_S:
            self._beat()
