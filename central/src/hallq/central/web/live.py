"""Every hall's live state, from the hall's own retained topics, for the city's pages.

Each hall's broker bridges its retained state topics (``config``, ``queue``, ``stats``, ``board``,
``window/+/state``, ``controller/status``, ``device/+/status|health``) to the city's broker; records never
travel this way (they come through the central ingest). Losing a snapshot is harmless: the next one replaces
it, and a hall whose snapshots stop is shown as not heard from since then.

One MQTT connection subscribes to those topics of every hall (``hallq/+/...``) and hands each message to
that hall's :class:`~hallq.dashboard.live.LiveHall`: the very mirror the hall's own dashboard keeps, so the
city's page of a hall is the hall's own live page (:func:`hallq.dashboard.views.now_view`), and a payload
that does not fit the contract is refused there, counted, and changes nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import paho.mqtt.client as paho
from hallq.dashboard.live import LiveHall, Snapshot
from hallq.dashboard.views import minutes_since, now_view
from hallq.shared.mqtt import HallClient, Message
from hallq.shared.topics import PREFIX, HallTopics, TopicError, check_hall_id

log = logging.getLogger(__name__)

#: The hall topics the city mirrors (relative to ``hallq/<hall>/``).
MIRRORED = ("config", "queue", "stats", "board", "followups", "controller/status", "window/+/state",
            "device/+/status", "device/+/health")


class _HallPort:
    """What :class:`LiveHall` needs of a client (``topics``, ``subscribe``), fed by the city's connection."""

    def __init__(self, hall: str):
        self.topics = HallTopics(hall)
        self.handlers: list[tuple[str, Callable[[Message], None]]] = []

    def subscribe(self, topic_filter: str, handler: Callable[[Message], None]) -> None:
        self.handlers.append((topic_filter, handler))

    def deliver(self, msg: Message) -> None:
        for f, h in self.handlers:
            if paho.topic_matches_sub(f, msg.topic):
                h(msg)


@dataclass
class HallLive:
    """One hall's mirror and when the city last heard from it."""

    port: _HallPort
    live: LiveHall
    heard: datetime | None = None


@dataclass
class Overview:
    """One hall's line on the city's live page."""

    hall: str
    name: str
    name_en: str
    controller: str  # online | stopped | offline | unknown
    waiting: int | None
    longest_min: int | None
    windows_open: int | None
    windows: int | None
    satisfaction: float | None
    rated: int
    issued: int | None
    devices: int
    devices_offline: int
    heard_min: int | None  # minutes since the last snapshot; None: never heard


class CityLive:
    """All halls' mirrors. ``client`` is the city's own MQTT connection (not started here)."""

    def __init__(self, client: HallClient, now: Callable[[], datetime]):
        self.client = client
        self._now = now
        self._lock = threading.Lock()
        self._halls: dict[str, HallLive] = {}
        self._listeners: list[Callable[..., None]] = []
        self.refused = 0  # messages on a topic that is not a hall's

    def start(self) -> None:
        for rel in MIRRORED:
            self.client.subscribe(f"{PREFIX}/+/{rel}", self._on_message)

    def add_listener(self, fn: Callable[..., None]) -> None:
        self._listeners.append(fn)

    def _hall(self, hall: str) -> HallLive:
        with self._lock:
            h = self._halls.get(hall)
            if h is None:
                port = _HallPort(hall)
                live = LiveHall(port, self._now)  # type: ignore[arg-type]
                live.start()
                for fn in self._listeners:
                    live.add_listener(fn)
                h = self._halls[hall] = HallLive(port, live)
            return h

    def _on_message(self, msg: Message) -> None:
        parts = msg.topic.split("/")
        try:
            hall = check_hall_id(parts[1])
        except (TopicError, IndexError):
            self.refused += 1
            return
        h = self._hall(hall)
        h.heard = self._now()
        h.port.deliver(msg)

    # -- reading --------------------------------------------------------------------------------------
    def halls(self) -> list[str]:
        with self._lock:
            return sorted(self._halls)

    def snapshot(self, hall: str) -> Snapshot | None:
        with self._lock:
            h = self._halls.get(hall)
        return h.live.snapshot() if h is not None else None

    def heard(self, hall: str) -> datetime | None:
        with self._lock:
            h = self._halls.get(hall)
        return h.heard if h is not None else None

    def rejected(self) -> int:
        with self._lock:
            return self.refused + sum(h.live.rejected for h in self._halls.values())

    def overview(self, hall: str, name: str, name_en: str, now: datetime) -> Overview:
        """A hall's line: what its snapshots say now (blanks when the city has never heard from it)."""
        snap = self.snapshot(hall)
        if snap is None:
            return Overview(hall, name, name_en, "unknown", None, None, None, None, None, 0, None, 0, 0, None)
        v = now_view(snap, now)
        longest = [c.longest_min for c in v.categories if c.longest_min is not None]
        stats = snap.stats
        sat = stats.hall.satisfaction if stats is not None and stats.date == now.date().isoformat() else None
        rated = sum(stats.hall.ratings.values()) if stats is not None and sat is not None else 0
        issued = stats.hall.issued if stats is not None and stats.date == now.date().isoformat() else None
        cfg = snap.config
        return Overview(
            hall=hall, name=(cfg.name if cfg and getattr(cfg, "name", None) else name) or hall,
            name_en=name_en or name or hall, controller=v.controller,
            waiting=v.waiting_total if snap.queue is not None else None,
            longest_min=max(longest) if longest else (0 if snap.queue is not None else None),
            windows_open=v.open_windows if snap.windows else None,
            windows=len(v.windows) if v.windows else None,
            satisfaction=sat, rated=rated, issued=issued,
            devices=len(v.devices), devices_offline=sum(1 for d in v.devices if d.status == "offline"),
            heard_min=minutes_since(self.heard(hall), now),
        )
