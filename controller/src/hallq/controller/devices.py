"""The devices registry: the retained ``devices`` snapshot of every device of the hall and how it is.

:class:`Registry` is pure (status and health messages in, with the time they arrived; a snapshot out);
:class:`Publisher` wires it to the MQTT client: it listens to every ``device/+/status`` and
``device/+/health`` and publishes the snapshot (retained) a moment after anything changed, and after every
(re)connection. A device that is not listed in ``hall.toml`` but speaks up is shown too (``listed`` false;
at most :data:`MAX_UNLISTED` of them, so a flood of made-up ids cannot grow it without bound).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime

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

    def state(self) -> DeviceState:
        return DeviceState(id=self.id, role=self.role, window=self.window, status=self.status,  # type: ignore[arg-type]
                           health=self.health, version=self.health.version if self.health else None,
                           last_seen=self.last_seen, listed=self.listed)


class Registry:
    """What the controller knows of each device (pure: the caller passes the time)."""

    def __init__(self, devices: list[DeviceEntry] | None):
        self.entries: dict[str, _Entry] = {
            d.id: _Entry(d.id, d.role, d.window, True) for d in (devices or [])
        }
        self.ignored = 0

    def _entry(self, client: str, role: str = "unknown") -> _Entry | None:
        e = self.entries.get(client)
        if e is None:
            if sum(1 for x in self.entries.values() if not x.listed) >= MAX_UNLISTED:
                self.ignored += 1
                return None
            e = self.entries[client] = _Entry(client, role, None, False)
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
        if e.status == "never_seen":
            e.status = "online"
        return True

    def snapshot(self, now: datetime) -> DeviceRegistry:
        ordered = sorted(self.entries.values(), key=lambda e: (not e.listed, e.role, e.window or 0, e.id))
        return DeviceRegistry(at=now, devices=[e.state() for e in ordered])


class Publisher:
    """Keeps the registry up to date from the broker and publishes it (retained)."""

    def __init__(self, client: HallClient, topics: HallTopics, devices: list[DeviceEntry] | None, clock: Clock):
        self.client = client
        self.topics = topics
        self.clock = clock
        self.registry = Registry(devices)
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
        except (TopicError, PayloadError, ValueError) as exc:
            self.bad += 1
            log.warning("ignoring a bad device message on %s: %s", msg.topic, exc)
            return
        if changed:
            self.publish_soon()

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
