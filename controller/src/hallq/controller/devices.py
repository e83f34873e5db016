"""The devices registry: the retained ``devices`` snapshot of every device of the hall and how it is.

:class:`Registry` is pure (status and health messages in, with the time they arrived; a snapshot out);
:class:`Publisher` wires it to the MQTT client: it listens to every ``device/+/status`` and
``device/+/health`` and publishes the snapshot (retained) a moment after anything changed, and after every
(re)connection. A device that is not listed in ``hall.toml`` but speaks up is shown too (``listed`` false;
at most :data:`MAX_UNLISTED` of them, so a flood of made-up ids cannot grow it without bound).

**Device events.** Each change of a device's status (online / offline / stopped) or of what is wrong with its
hardware (:func:`problems` of its health) is a :class:`DeviceEvent`; the publisher hands them to the controller's
worker (``on_events``), which writes them into the record's ``device_events`` (migration 9; shipped to the
city's centre like the rest of the record). A health message that says the same as the last one is no event.
The registry starts from the last event recorded of each device, so a controller restart that sees the same
retained status again records nothing; at most :data:`MAX_EVENTS_PER_DAY` events a device a day are recorded
(a device flapping on and off cannot fill the record), and the rest counted in ``events_dropped``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from hallq.shared.clock import Clock
from hallq.shared.inventory import DeviceEntry
from hallq.shared.mqtt import HallClient, Message
from hallq.shared.schemas import (
    AVAILABILITY,
    DeviceHealth,
    DeviceRegistry,
    DeviceState,
    PayloadError,
    decode,
    encode,
)
from hallq.shared.topics import HallTopics, TopicError

log = logging.getLogger(__name__)

MAX_UNLISTED = 100
#: The problem a device has while the controller does not read its requests: it flooded them.
FLOODING = "flooding_requests"
#: At most this many events a device a day go into the record.
MAX_EVENTS_PER_DAY = 200


def problems(h: DeviceHealth | None) -> list[str]:
    """What is wrong with a device's hardware, by its health message (empty: nothing known to be wrong)."""
    if h is None:
        return []
    out: list[str] = []
    p = h.printer
    if p is not None:
        if p.online is False:
            out.append("printer_offline")
        if p.paper in ("out", "near_end"):
            out.append(f"paper_{p.paper}")
    out += [f"reader_offline:{r.name}"[:200] for r in h.readers if not r.online]
    m = h.modem
    if m is not None:
        if not m.online:
            out.append("modem_offline")
        if m.sim in ("pin", "puk", "absent"):
            out.append(f"sim_{m.sim}")
        if m.registration in ("denied", "not_registered"):
            out.append(f"modem_{m.registration}")
    out += [e[:200] for e in h.errors[:20]]
    return out[:50]


@dataclass(frozen=True)
class DeviceEvent:
    """A device's status or hardware problems changed (a row of ``device_events``)."""

    at: datetime
    device: str
    role: str
    window: int | None
    listed: bool
    status: str
    problems: tuple[str, ...]
    change: str  # "status" | "health"


@dataclass(frozen=True)
class Events:
    """Device events for the controller's worker to write (one queue item)."""

    events: list[DeviceEvent] = field(default_factory=list)
#: Changes that come close together (a reconnecting hall) make one snapshot.
DEBOUNCE_S = 0.2


@dataclass
class _Entry:
    id: str
    role: str
    window: int | None
    listed: bool
    status: str = "never_seen"
    health: DeviceHealth | None = None
    last_seen: datetime | None = None
    #: the status and problems of the last event recorded (None: none yet)
    recorded: tuple[str, tuple[str, ...]] | None = None
    #: the controller stopped reading its requests for a while: it flooded them (core.limits.Gate)
    flooding: bool = False

    def state(self) -> DeviceState:
        return DeviceState(id=self.id, role=self.role, window=self.window, status=self.status,  # type: ignore[arg-type]
                           health=self.health, version=self.health.version if self.health else None,
                           last_seen=self.last_seen, listed=self.listed)


class Registry:
    """What the controller knows of each device (pure: the caller passes the time)."""

    def __init__(self, devices: list[DeviceEntry] | None,
                 recorded: dict[str, tuple[str, tuple[str, ...]]] | None = None):
        self.entries: dict[str, _Entry] = {
            d.id: _Entry(d.id, d.role, d.window, True) for d in (devices or [])
        }
        self.ignored = 0
        #: the last event recorded of each device (from the record, at start-up)
        self.recorded = dict(recorded or {})
        for e in self.entries.values():
            e.recorded = self.recorded.get(e.id)
        self.events: list[DeviceEvent] = []  # not yet taken (:meth:`take_events`)
        self.events_dropped = 0
        self._counted: dict[str, int] = {}
        self._count_day: date | None = None

    def _note(self, e: _Entry, now: datetime, *, keep_status: bool = False) -> None:
        """Queue an event when the device's status or problems differ from the last one recorded.

        ``keep_status``: the status is only inferred (a health message before any status): the recorded one
        stands until the device's own status message says otherwise."""
        status = e.recorded[0] if keep_status and e.recorded is not None else e.status
        now_is = (status, tuple(problems(e.health)) + ((FLOODING,) if e.flooding else ()))
        if now_is == e.recorded:
            return
        change = "status" if e.recorded is None or e.recorded[0] != status else "health"
        e.recorded = now_is
        if self._count_day != now.date():
            self._count_day, self._counted = now.date(), {}
        n = self._counted.get(e.id, 0)
        if n >= MAX_EVENTS_PER_DAY:
            self.events_dropped += 1
            return
        self._counted[e.id] = n + 1
        self.events.append(DeviceEvent(now, e.id, e.role, e.window, e.listed, status, now_is[1], change))

    def take_events(self) -> list[DeviceEvent]:
        out, self.events = self.events, []
        return out

    def _entry(self, client: str, role: str = "unknown") -> _Entry | None:
        e = self.entries.get(client)
        if e is None:
            if sum(1 for x in self.entries.values() if not x.listed) >= MAX_UNLISTED:
                self.ignored += 1
                return None
            e = self.entries[client] = _Entry(client, role, None, False, recorded=self.recorded.get(client))
        return e

    def status(self, client: str, payload: bytes, now: datetime) -> bool:
        """A ``device/{client}/status`` message; whether the snapshot changed. Raises ``ValueError`` for a
        payload that is not online, offline or stopped."""
        text = payload.decode("utf-8", "replace").strip()
        if text not in AVAILABILITY:
            raise ValueError(f"status of {client!r} is {text[:20]!r}, not one of {', '.join(AVAILABILITY)}")
        e = self._entry(client)
        if e is None:
            return False
        e.status = text
        e.last_seen = now
        self._note(e, now)
        return True  # its status or at least when it was last seen

    def health(self, client: str, payload: bytes, now: datetime) -> bool:
        """A ``device/{client}/health`` message; raises :class:`PayloadError` for one that does not fit."""
        h = decode(payload, DeviceHealth)
        e = self._entry(client, h.role)
        if e is None:
            return False
        if not e.listed:
            e.role = h.role
        e.health = h
        e.last_seen = now
        inferred = e.status == "never_seen"
        if inferred:
            e.status = "online"
        self._note(e, now, keep_status=inferred)
        return True

    def flooding(self, client: str, on: bool, now: datetime) -> None:
        """The controller stopped (``on``) or started again reading ``client``'s requests: an event (health)."""
        e = self.entries.get(client)
        if e is None or e.flooding == on:
            return
        e.flooding = on
        self._note(e, now, keep_status=e.status == "never_seen")

    def snapshot(self, now: datetime) -> DeviceRegistry:
        ordered = sorted(self.entries.values(), key=lambda e: (not e.listed, e.role, e.window or 0, e.id))
        return DeviceRegistry(at=now, devices=[e.state() for e in ordered])


class Publisher:
    """Keeps the registry up to date from the broker and publishes it (retained)."""

    def __init__(self, client: HallClient, topics: HallTopics, devices: list[DeviceEntry] | None, clock: Clock,
                 *, recorded: dict[str, tuple[str, tuple[str, ...]]] | None = None,
                 on_events: Callable[[Events], None] | None = None):
        self.client = client
        self.topics = topics
        self.clock = clock
        self.registry = Registry(devices, recorded)
        #: where device events go (the controller's worker, which writes them into the record)
        self.on_events = on_events
        self.bad = 0
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def start(self) -> None:
        self.client.subscribe(self.topics.all_device_status, self._on_message)
        self.client.subscribe(self.topics.all_device_health, self._on_message)

    def _on_message(self, msg: Message) -> None:
        try:
            client, kind = self.topics.parse_device_topic(msg.topic)
            with self._lock:
                if kind == "status":
                    changed = self.registry.status(client, msg.payload, self.clock.now())
                else:
                    changed = self.registry.health(client, msg.payload, self.clock.now())
                events = self.registry.take_events()
        except (TopicError, PayloadError, ValueError) as exc:
            self.bad += 1
            log.warning("ignoring a bad device message on %s: %s", msg.topic, exc)
            return
        if events and self.on_events is not None:
            self.on_events(Events(events))
        if changed:
            self.publish_soon()

    def flooding(self, client: str, on: bool) -> None:
        """Record that the controller stopped (or started again) reading ``client``'s requests (any thread)."""
        with self._lock:
            self.registry.flooding(client, on, self.clock.now())
            events = self.registry.take_events()
        if events and self.on_events is not None:
            self.on_events(Events(events))

    def publish_soon(self) -> None:
        with self._lock:
            if self._timer is not None:
                return
            self._timer = threading.Timer(DEBOUNCE_S, self.publish)
            self._timer.daemon = True
            self._timer.start()

    def publish(self) -> None:
        with self._lock:
            self._timer = None
            payload = encode(self.registry.snapshot(self.clock.now()))
        if self.client.connected:
            self.client.publish(self.topics.devices, payload, retain=True)

    def stop(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
