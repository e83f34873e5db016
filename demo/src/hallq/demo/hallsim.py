"""The simulated hall over MQTT: citizens at virtual kiosks, clerks at virtual windows, virtual rating pads.

Every actor is a :class:`~hallq.shared.mqtt.HallClient` that speaks only the hall contract: the kiosks send
``take``, each clerk ``open``\\s their window with their name and then ``next``, ``recall``, ``noshow``,
``transfer`` and ``done`` (with the case), each pad ``rate``\\s. What the citizens do comes from the seeded
day of :mod:`.model`; when things happen comes from the demo's shared scaled clock, so the controller (a
separate process on the same clock) sees a hall day pass in minutes.

Threads: one for the kiosks (arrivals in order), one per simulated clerk. A clerk with nothing to call waits
until the retained ``queue`` topic shows a ticket of its categories, or a simulated minute has passed.
The day is over when every arrival has taken its number and every ticket the simulation issued has ended
(served or no-show), or ``drain_s`` after the last opening span closes (or the simulated span ends),
whichever comes first.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from hallq.controller.config import HallFile
from hallq.shared.clock import Clock
from hallq.shared.config import BrokerURL
from hallq.shared.mqtt import HallClient, Message, RequestError, RequestTimeout
from hallq.shared.schemas import (
    Case,
    DemoPress,
    PayloadError,
    QueueState,
    RateRequest,
    Staff,
    TakeReply,
    TakeRequest,
    TransferTo,
    WindowReply,
    WindowRequest,
    decode,
)

from .model import MIN, HallShape, Visit, rating_level

log = logging.getLogger(__name__)

#: Clerks of the sample hall (window number -> name); other windows get a generated name.
CLERKS = {1: "王丽", 2: "李娜", 3: "张伟", 4: "刘洋", 5: "陈静", 6: "杨帆", 7: "赵敏", 8: "黄磊"}

WALK_S = 30.0  # the citizen walks to the window
RECALL_AFTER_S = 60.0  # the clerk recalls after a minute
NOSHOW_AFTER_S = 60.0  # and voids the ticket a minute after the recall
IDLE_POLL_S = 60.0  # a clerk with nothing to call looks again after this long


@dataclass
class SimTicket:
    visit: Visit | None  # None: a ticket the simulation did not issue (a real kiosk's)
    number: str
    issued_s: float
    est_wait_min: int | None = None  # what the kiosk was told
    est_wait_range: tuple[int, int] | None = None  # and the range on the ticket
    first_call_s: float | None = None
    transferred: bool = False
    ended: bool = False


@dataclass
class Tally:
    """What the simulated hall did, for the report."""

    visits: int = 0  # visits in the simulated day
    arrived: int = 0  # citizens who went to a kiosk
    taken: int = 0
    refused: Counter = field(default_factory=Counter)  # take refusals by error code
    called: int = 0  # first calls of the simulation's tickets
    recalls: int = 0
    served: int = 0  # done (after any transfer)
    noshow: int = 0
    transferred: int = 0
    foreign_served: int = 0  # tickets the simulation did not issue, served by simulated clerks
    rated: Counter = field(default_factory=Counter)  # accepted ratings by level (virtual pads)
    pad_presses: Counter = field(default_factory=Counter)  # presses asked of the demo's real pad, by level
    pad_asked: dict = field(default_factory=dict)  # ticket -> level: the presses asked of the real pad
    rate_refused: Counter = field(default_factory=Counter)
    timeouts: int = 0
    errors: Counter = field(default_factory=Counter)  # other refusals of window operations
    wait_s: list[float] = field(default_factory=list)  # realised waits (first call - issue)
    est_error_min: list[float] = field(default_factory=list)  # |est_wait_min - realised wait|
    est_in_range: list[bool] = field(default_factory=list)  # the realised wait within the ticket's range

    def as_dict(self) -> dict:
        rated = sum(self.rated.values())
        good = self.rated["very_satisfied"] + self.rated["satisfied"]
        waits = sorted(self.wait_s)
        return {
            "visits": self.visits,
            "arrived": self.arrived,
            "taken": self.taken,
            "refused": dict(self.refused),
            "called": self.called,
            "recalls": self.recalls,
            "served": self.served,
            "noshow": self.noshow,
            "transferred": self.transferred,
            "foreign_served": self.foreign_served,
            "rated": rated,
            "ratings": dict(self.rated),
            "pad_presses": sum(self.pad_presses.values()),
            "pad_asked": dict(self.pad_asked),
            "rate_refused": dict(self.rate_refused),
            "satisfaction": round(good / rated, 4) if rated else None,
            "wait_mean_min": round(sum(waits) / len(waits) / MIN, 2) if waits else None,
            "wait_p90_min": round(waits[min(len(waits) - 1, int(0.9 * len(waits)))] / MIN, 2) if waits else None,
            "est_mae_min": round(sum(self.est_error_min) / len(self.est_error_min), 2) if self.est_error_min else None,
            "est_range_coverage": round(sum(self.est_in_range) / len(self.est_in_range), 4) if self.est_in_range else None,
            "timeouts": self.timeouts,
            "errors": dict(self.errors),
        }


def person_key(secret: bytes, visit_id: int, seed: int) -> str:
    """The opaque person key a kiosk would send for this citizen (HMAC of a made-up ID under the hall key)."""
    fake_id = f"demo-citizen-{seed}-{visit_id}"
    return hmac.new(secret, fake_id.encode(), hashlib.sha256).hexdigest()


class SimHall:
    """The simulated citizens and clerks of one demo day; :meth:`run` blocks until the day is over."""

    def __init__(
        self,
        *,
        broker: str,
        cfg: HallFile,
        shape: HallShape,
        visits: list[Visit],
        clock: Clock,
        midnight: datetime,
        replaces: set[str] = frozenset(),  # type: ignore[assignment]
        secret: bytes = b"",
        seed: int = 1,
        drain_s: float = 3600.0,
        until_s: float | None = None,
        stop: threading.Event | None = None,
        connect_as: Callable[[str], BrokerURL] | None = None,
    ):
        #: the secure demo: each simulated client logs in as itself (its bundle's credentials)
        self.connect_as = connect_as
        self.broker, self.cfg, self.shape, self.visits = broker, cfg, shape, visits
        self.clock, self.midnight, self.secret, self.seed = clock, midnight, secret, seed
        self.replaces = set(replaces)
        self.stop = stop or threading.Event()
        self.hall = cfg.hall.id
        # the last arrival can come until ``until_s`` (the end of the hours, or of a shorter span)
        self.end_s = (max(b for _, b in shape.hours) if until_s is None else until_s) + drain_s
        self.tally = Tally(visits=len(visits))
        self.tickets: dict[str, SimTicket] = {}
        self.kiosks_done = False
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._waiting: dict[str, int] = {}
        self._queue_version = 0  # counts queue messages, so an idle clerk waits for news
        self._taking = 0  # take requests sent and not yet recorded
        self._clients: list[HallClient] = []
        ids = self._device_ids()
        self.kiosk_ids: list[str] = ids["kiosk"]
        self.clerk_ids: dict[int, str] = {
            w: cid for w, cid in ids["window"].items() if f"window:{w}" not in self.replaces
        }
        self.pad_ids: dict[int, str] = {w: cid for w, cid in ids["pad"].items() if f"pad:{w}" not in self.replaces}

    # -- set-up ---------------------------------------------------------------------------------------
    def _device_ids(self) -> dict:
        """Client ids: the hall's listed devices when it lists them (it refuses others), else our own."""
        windows = sorted(self.shape.windows)
        if self.cfg.devices is None:
            return {
                "kiosk": ["sim-kiosk-1", "sim-kiosk-2"],
                "window": {w: f"sim-window-{w}" for w in windows},
                "pad": {w: f"sim-pad-{w}" for w in windows},
            }
        out: dict = {"kiosk": [], "window": {}, "pad": {}}
        for d in self.cfg.devices:
            if d.role == "kiosk":
                out["kiosk"].append(d.id)
            elif d.role in ("window", "pad") and d.window is not None and d.window not in out[d.role]:
                out[d.role][d.window] = d.id
        return out

    def _client(self, client_id: str) -> HallClient:
        c = HallClient(self.connect_as(client_id) if self.connect_as else self.broker, self.hall, client_id)
        with self._lock:
            self._clients.append(c)
        c.start()
        return c

    # -- time -----------------------------------------------------------------------------------------
    def now_s(self) -> float:
        """Simulated seconds since the day's midnight."""
        return (self.clock.now() - self.midnight).total_seconds()

    def pause(self, sim_s: float) -> bool:
        """Let ``sim_s`` simulated seconds pass; False when the demo is being stopped."""
        if sim_s > 0:
            self.stop.wait(self.clock.real_seconds(sim_s))
        return not self.stop.is_set()

    def pause_until(self, t_s: float) -> bool:
        """Wait until the day's clock reads ``t_s``; False when the demo is being stopped. The clock may still
        stand at the day's start (until the demo's go): waiting the gap once would then act too early."""
        while (left := t_s - self.now_s()) > 0:
            if not self.pause(left):
                return False
        return not self.stop.is_set()

    # -- the day --------------------------------------------------------------------------------------
    def over(self) -> bool:
        if self.stop.is_set() or self.now_s() >= self.end_s:
            return True
        with self._lock:
            return self.kiosks_done and all(t.ended for t in self.tickets.values() if t.visit is not None)

    def run(self) -> Tally:
        """Play the day; returns the tally when it is over (or the demo is stopped)."""
        watcher = self._client("sim-observer")
        watcher.subscribe(watcher.topics.queue, self._on_queue)
        threads = [threading.Thread(target=self._guard, args=(self._kiosks,), name="sim-kiosks", daemon=True)]
        for w, cid in sorted(self.clerk_ids.items()):
            threads.append(threading.Thread(target=self._guard, args=(self._clerk, w, cid),
                                            name=f"sim-clerk-{w}", daemon=True))
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.2)
        self.close()
        return self.tally

    def snapshot(self) -> dict:
        """The tally so far (safe while the day runs)."""
        with self._lock:
            return self.tally.as_dict()

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients), []
        for c in clients:
            c.stop()

    def halt(self) -> None:
        """Stop the day now: actors waiting for an answer are released at once."""
        self.stop.set()
        with self._work:
            self._work.notify_all()
        self.close()

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("simulated actor %s failed", threading.current_thread().name)
            if fn == self._kiosks:
                with self._lock:
                    self.kiosks_done = True

    def _on_queue(self, msg: Message) -> None:
        try:
            q = decode(msg.payload, QueueState)
        except PayloadError:
            return
        with self._work:
            self._waiting = {code: c.waiting for code, c in q.categories.items()}
            self._queue_version += 1
            self._work.notify_all()

    # -- citizens at the kiosks ------------------------------------------------------------------------
    def _kiosks(self) -> None:
        kiosks = [self._client(cid) for cid in self.kiosk_ids]
        try:
            if not kiosks:
                log.warning("the hall lists no kiosk device: no simulated citizen can take a number")
                return
            for k in kiosks:
                k.wait_connected(10)
            for i, v in enumerate(self.visits):
                if not self.pause_until(v.arrival_s):
                    return
                self._take(kiosks[i % len(kiosks)], v)
        finally:
            with self._work:
                self.kiosks_done = True
                self._work.notify_all()

    def _take(self, kiosk: HallClient, v: Visit) -> None:
        person = person_key(self.secret, v.id, self.seed) if v.channel == "idcard" and self.secret else None
        req = TakeRequest(req=kiosk.new_req(), category=v.category, channel=v.channel,  # type: ignore[arg-type]
                          priority=v.priority, person=person, appointment=v.appointment)  # type: ignore[arg-type]
        with self._lock:
            self.tally.arrived += 1
            self._taking += 1
        try:
            reply = kiosk.request("take", req, timeout=10, resend_every=1)
        except concurrent.futures.CancelledError:  # halted
            return
        except RequestError as e:
            with self._lock:
                self.tally.refused[e.code] += 1
            return
        except RequestTimeout:
            with self._lock:
                self.tally.timeouts += 1
            return
        else:
            assert isinstance(reply, TakeReply)
            tk = reply.ticket
            with self._lock:
                self.tally.taken += 1
                self.tickets[tk.number] = SimTicket(v, tk.number, self._sim_s(tk.issued_at), tk.est_wait_min,
                                                    tk.est_wait_range)
        finally:
            with self._work:
                self._taking -= 1
                self._work.notify_all()

    def _sim_s(self, at: datetime) -> float:
        """A controller's time stamp as simulated seconds since midnight."""
        return (at - self.midnight).total_seconds()

    # -- clerks at the windows -------------------------------------------------------------------------
    def _op(self, client: HallClient, window: int, op: str, **kw) -> WindowReply | None:
        """A window operation; None when it was refused or not answered (counted)."""
        if self.stop.is_set():
            return None
        req = WindowRequest(req=client.new_req(), window=window, op=op, **kw)  # type: ignore[arg-type]
        try:
            reply = client.request("window", req, timeout=10, resend_every=1)
        except concurrent.futures.CancelledError:  # halted
            return None
        except RequestError as e:
            if e.code != "empty":
                with self._lock:
                    self.tally.errors[f"{op}:{e.code}"] += 1
                log.info("window %d %s refused: %s", window, op, e)
            return None
        except RequestTimeout:
            with self._lock:
                self.tally.timeouts += 1
            return None
        assert isinstance(reply, WindowReply)
        return reply

    def _wait_for_work(self, window: int, seen: int) -> None:
        """Wait until a queue message newer than ``seen`` shows a ticket for ``window``, the day is
        over, or a simulated minute has passed."""
        cats = self.shape.windows[window]

        def news() -> bool:
            if self.stop.is_set() or (self.kiosks_done and self._all_ended()):
                return True
            return self._queue_version != seen and any(self._waiting.get(c, 0) for c in cats)

        with self._work:
            self._work.wait_for(news, self.clock.real_seconds(IDLE_POLL_S))

    def _all_ended(self) -> bool:
        return all(t.ended for t in self.tickets.values() if t.visit is not None)

    def _clerk(self, window: int, client_id: str) -> None:
        client = self._client(client_id)
        pad_id = self.pad_ids.get(window)
        pad = self._client(pad_id) if pad_id else None
        client.wait_connected(10)
        name = CLERKS.get(window, f"窗口{window}工作人员")
        if self._op(client, window, "open", staff=Staff(id=f"staff-{window:02d}", name=name)) is None:
            log.warning("window %d: the clerk could not sign in", window)
            return
        try:
            while not self.over():
                with self._lock:
                    seen = self._queue_version
                reply = self._op(client, window, "next")
                if reply is None or reply.ticket is None:
                    self._wait_for_work(window, seen)
                    continue
                called = reply.ticket.called_at
                self._serve(client, pad, window, reply.ticket.number,
                            self._sim_s(called) if called is not None else self.now_s())
        finally:
            if not self.stop.is_set():
                self._op(client, window, "close")

    def _serve(self, client: HallClient, pad: HallClient | None, window: int, number: str, now: float) -> None:
        with self._work:
            # the kiosk may not have recorded the answer to its take yet: the ticket was called that fast
            self._work.wait_for(lambda: number in self.tickets or not self._taking, 2.0)
            t = self.tickets.get(number)
            if t is None:  # issued by a real kiosk: a citizen the model did not draw
                t = self.tickets[number] = SimTicket(None, number, now)
            second = t.transferred
            if t.first_call_s is None:
                t.first_call_s = now
                if t.visit is not None:
                    self.tally.called += 1
                    self.tally.wait_s.append(now - t.issued_s)
                    if t.est_wait_min is not None:
                        self.tally.est_error_min.append(abs(t.est_wait_min - (now - t.issued_s) / MIN))
                    if t.est_wait_range is not None:
                        low, high = t.est_wait_range
                        self.tally.est_in_range.append(low <= (now - t.issued_s) / MIN <= high)
        v = t.visit
        # Every step is timed from the call (the controller's time stamp), not from the previous answer,
        # so the requests' own latency does not stretch the day at high speeds.
        at = now
        answers = 0 if v is None or second else v.answers_after
        if answers is None:  # never comes: a recall, then void the ticket
            at += RECALL_AFTER_S
            if not self.pause_until(at) or self._op(client, window, "recall") is None:
                return
            with self._lock:
                self.tally.recalls += 1
            at += NOSHOW_AFTER_S
            if not self.pause_until(at):
                return
            if self._op(client, window, "noshow") is not None:
                with self._lock:
                    t.ended = True
                    self.tally.noshow += 1
            return
        if answers >= 1:
            at += RECALL_AFTER_S
            if not self.pause_until(at) or self._op(client, window, "recall") is None:
                return
            with self._lock:
                self.tally.recalls += 1
        at += WALK_S
        if v is not None and v.transfer is not None and not second:
            if not self.pause_until(at + v.transfer.after_s):
                return
            with self._lock:  # before the request: another window may call it as soon as it is sent
                t.transferred = True
            if self._op(client, window, "transfer", to=TransferTo(category=v.transfer.category)) is not None:
                with self._lock:
                    self.tally.transferred += 1
            else:
                with self._lock:
                    t.transferred = False
            return
        # a citizen the model did not draw (the real kiosk's): dice of its own, from the seed and its number,
        # so the same seed gives it the same service and rating whatever order the day's events came in
        own = random.Random(f"{self.seed}:{number}") if v is None else None
        if own is not None:
            service = own.lognormvariate(0, 0.5) * 5 * MIN
        else:
            service = v.transfer.service_s if (second and v.transfer) else v.service_s
        if not self.pause_until(at + service):
            return
        rates = v.rates if v is not None else own.random() < 0.85  # type: ignore[union-attr]
        u = v.rating_u if v is not None else own.random()  # type: ignore[union-attr]
        level = rating_level(u, (t.first_call_s or now) - t.issued_s) if rates else None
        real_pad = f"press:{window}" in self.replaces  # a real pad that takes the citizens' presses
        if level is not None and real_pad:
            # the citizen will press the real pad: it is told before `done`, on this same connection, so it
            # knows the choice when the window state that makes it invite arrives
            client.publish(client.topics.demo_press(window), DemoPress(ticket=number, level=level))  # type: ignore[arg-type]
        case = self._case(window, number, v)
        if self._op(client, window, "done", case=case) is None:
            return
        with self._lock:
            t.ended = True
            if v is None:
                self.tally.foreign_served += 1
            else:
                self.tally.served += 1
            if level is not None and real_pad:
                self.tally.pad_presses[level] += 1
                self.tally.pad_asked[number] = level
        if pad is not None and level is not None:
            self._rate(pad, window, number, level)

    def _case(self, window: int, number: str, v: Visit | None) -> Case:
        day = self.midnight.strftime("%Y%m%d")
        if v is None:
            return Case(id=f"{day}-{window:02d}-{number}", item_code="GEN-0001", item_name="综合咨询", kind="instant")
        return Case(id=f"{day}-{window:02d}-{number}", item_code=v.item.code, item_name=v.item.name,
                    kind=v.case_kind)  # type: ignore[arg-type]

    def _rate(self, pad: HallClient, window: int, number: str, level: str) -> None:
        req = RateRequest(req=pad.new_req(), window=window, ticket=number, level=level)  # type: ignore[arg-type]
        try:
            pad.request("rate", req, timeout=10, resend_every=1)
        except concurrent.futures.CancelledError:  # halted
            return
        except RequestError as e:
            with self._lock:
                self.tally.rate_refused[e.code] += 1
            return
        except RequestTimeout:
            with self._lock:
                self.tally.timeouts += 1
            return
        with self._lock:
            self.tally.rated[level] += 1
