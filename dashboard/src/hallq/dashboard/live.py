"""The hall as its retained topics tell it, mirrored for the web pages.

:class:`LiveHall` subscribes (through the shared :class:`~hallq.shared.mqtt.HallClient`) to the hall's
retained topics (``config``, ``queue``, every ``window/{n}/state``, ``board``, ``stats``, ``followups``,
the controller's ``devices`` registry, the controller's and every device's ``status`` and ``health``) and keeps the latest decoded payload of
each. A payload that does not fit its schema is logged and changes nothing. Every accepted change bumps
:attr:`LiveHall.version` and calls the listeners (on the MQTT dispatcher thread; they must not block).

It also notes, by the hall's clock, when each window began its present status (``since``): the retained
state says *that* a window is paused, not since when, so a window already paused when the dashboard
started has no ``since`` until it changes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from hallq.shared.mqtt import HallClient, Message
from hallq.shared.schemas import (
    Board,
    DeviceHealth,
    DeviceRegistry,
    FollowUps,
    HallConfig,
    PayloadError,
    QueueState,
    Stats,
    WindowState,
    decode,
)
from hallq.shared.topics import TopicError

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """What the hall's topics say now (the objects are immutable payloads; the dicts are copies)."""

    version: int = 0
    controller: str | None = None  # online / stopped / offline; None: never heard
    config: HallConfig | None = None
    queue: QueueState | None = None
    windows: dict[int, WindowState] = field(default_factory=dict)
    since: dict[int, datetime] = field(default_factory=dict)
    board: Board | None = None
    stats: Stats | None = None
    followups: FollowUps | None = None
    device_status: dict[str, str] = field(default_factory=dict)
    device_health: dict[str, DeviceHealth] = field(default_factory=dict)
    #: The controller's ``devices`` registry (every listed device, also those never seen); None until it
    #: published one (an older controller does not).
    registry: DeviceRegistry | None = None


class LiveHall:
    def __init__(self, client: HallClient, now: Callable[[], datetime]):
        self.client = client
        self.topics = client.topics
        self._now = now
        self._lock = threading.Lock()
        self._snap = Snapshot()
        self._listeners: list[Callable[[int], None]] = []
        self.rejected = 0  # payloads that did not fit their schema

    def start(self) -> None:
        t = self.topics
        c = self.client
        c.subscribe(t.controller_status, self._on_controller)
        c.subscribe(t.config, lambda m: self._set("config", m, HallConfig))
        c.subscribe(t.queue, lambda m: self._set("queue", m, QueueState))
        c.subscribe(t.board, lambda m: self._set("board", m, Board))
        c.subscribe(t.stats, lambda m: self._set("stats", m, Stats))
        c.subscribe(t.followups, lambda m: self._set("followups", m, FollowUps))
        c.subscribe(t.devices, lambda m: self._set("registry", m, DeviceRegistry))
        c.subscribe(t.all_window_states, self._on_window)
        c.subscribe(t.all_device_status, self._on_device_status)
        c.subscribe(t.all_device_health, self._on_device_health)

    def add_listener(self, fn: Callable[[int], None]) -> None:
        self._listeners.append(fn)

    def snapshot(self) -> Snapshot:
        with self._lock:
            s = self._snap
            return Snapshot(
                version=s.version, controller=s.controller, config=s.config, queue=s.queue,
                windows=dict(s.windows), since=dict(s.since), board=s.board, stats=s.stats,
                followups=s.followups, device_status=dict(s.device_status), device_health=dict(s.device_health),
                registry=s.registry,
            )

    @property
    def version(self) -> int:
        return self._snap.version

    # -- handlers (dispatcher thread) -----------------------------------------------------------------------
    def _changed(self) -> None:
        self._snap.version += 1
        v = self._snap.version
        for fn in self._listeners:
            try:
                fn(v)
            except Exception:
                log.exception("live listener failed")

    def _reject(self, msg: Message, why: str) -> None:
        self.rejected += 1
        log.warning("ignored a payload on %s: %s", msg.topic, why)

    def _set(self, name: str, msg: Message, type_: type) -> None:
        if not msg.payload:  # a cleared retained topic
            value = None
        else:
            try:
                value = decode(msg.payload, type_)
            except PayloadError as exc:
                self._reject(msg, str(exc))
                return
        with self._lock:
            setattr(self._snap, name, value)
            self._changed()

    def _on_controller(self, msg: Message) -> None:
        text = msg.payload.decode("utf-8", "replace")
        if text not in ("online", "stopped", "offline"):
            self._reject(msg, f"unknown availability {text[:20]!r}")
            return
        with self._lock:
            self._snap.controller = text
            self._changed()

    def _on_window(self, msg: Message) -> None:
        try:
            no = self.topics.parse_window_state(msg.topic)
        except TopicError as exc:
            self._reject(msg, str(exc))
            return
        if not msg.payload:
            with self._lock:
                self._snap.windows.pop(no, None)
                self._snap.since.pop(no, None)
                self._changed()
            return
        try:
            st = decode(msg.payload, WindowState)
        except PayloadError as exc:
            self._reject(msg, str(exc))
            return
        if st.window != no:
            self._reject(msg, f"the state of window {st.window} on the topic of window {no}")
            return
        with self._lock:
            old = self._snap.windows.get(no)
            self._snap.windows[no] = st
            if (old is not None and (old.status != st.status or _ticket_no(old) != _ticket_no(st))) or (old is None and not msg.retain):
                self._snap.since[no] = self._now()
            elif old is None and st.status == "idle" and st.last is not None:
                self._snap.since[no] = st.last.ended_at
            self._changed()

    def _device_id(self, msg: Message) -> str | None:
        parts = msg.topic.split("/")
        return parts[3] if len(parts) == 5 else None

    def _on_device_status(self, msg: Message) -> None:
        dev = self._device_id(msg)
        text = msg.payload.decode("utf-8", "replace")
        if dev is None or text not in ("online", "stopped", "offline", ""):
            self._reject(msg, "not a device availability")
            return
        with self._lock:
            if text:
                self._snap.device_status[dev] = text
            else:
                self._snap.device_status.pop(dev, None)
            self._changed()

    def _on_device_health(self, msg: Message) -> None:
        dev = self._device_id(msg)
        if dev is None:
            self._reject(msg, "not a device health topic")
            return
        if not msg.payload:
            with self._lock:
                self._snap.device_health.pop(dev, None)
                self._changed()
            return
        try:
            h = decode(msg.payload, DeviceHealth)
        except PayloadError as exc:
            self._reject(msg, str(exc))
            return
        with self._lock:
            self._snap.device_health[dev] = h
            self._changed()

    def bump(self) -> None:
        """A new version without a message (the clock moved on: minutes serving, alerts)."""
        with self._lock:
            self._changed()


def _ticket_no(st: WindowState) -> Any:
    return st.ticket.number if st.ticket else None
