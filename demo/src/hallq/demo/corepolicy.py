"""The controller's own pure core as a :class:`~hallq.demo.simulate.Dispatcher`.

Every simulated action goes through :func:`hallq.controller.core.handle` as the contract's request
(``take``, ``window`` with ``open``/``next``/``noshow``/``transfer``/``done``), at the simulated time, and the
answers are read back from the reply bytes: the simulation sees exactly what a kiosk or a clerk would.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Hashable
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from hallq.controller import core
from hallq.controller.config import HallFile
from hallq.shared.schemas import (
    ErrorReply,
    PayloadError,
    Staff,
    TakeReply,
    TakeRequest,
    TransferTo,
    WindowReply,
    WindowRequest,
    decode,
)

from .model import Visit


class CorePolicy:
    """Drives ``hallq.controller.core`` with contract requests in virtual time."""

    name = "controller"

    def __init__(self, cfg: HallFile, day: date, after: core.HallState | None = None):
        """``after``: the core as an earlier day left it (it rolls over at ``day``'s first request, as the
        controller does at midnight, and keeps what it learnt: the measured services); None: a new hall."""
        self.tz = ZoneInfo(cfg.hall.timezone)
        self.midnight = datetime.combine(day, time(0), self.tz)
        if after is not None and after.day >= day:
            raise ValueError(f"the earlier day {after.day} is not before {day}")
        self.state = after if after is not None else core.new_state(cfg, self.midnight)
        self._req = itertools.count(1)
        self.refusals: dict[str, int] = {}
        self.ranges: dict[Hashable, tuple[int, int]] = {}  # ticket -> the range its take reply showed

    def _next_req(self) -> str:
        """A request id of its own (the day in it: the core answers a repeated id from its kept answers)."""
        return f"{self.midnight:%Y%m%d}-r{next(self._req)}"

    def at(self, s: float) -> datetime:
        return self.midnight + timedelta(seconds=s)

    def _send(self, client: str, payload: TakeRequest | WindowRequest, now: float) -> bytes:
        _, fx = core.handle(self.state, core.Request(client, payload), self.at(now))
        assert fx.reply is not None and fx.reply[0] == client
        return fx.reply[1]

    @staticmethod
    def _refused(raw: bytes) -> str | None:
        """The error code of a refusal, None for an ``ok`` answer."""
        try:
            return decode(raw, ErrorReply).error.code
        except PayloadError:
            return None

    def _window(self, window: int, now: float, op: str, **kw: object) -> bytes:
        req = WindowRequest(req=self._next_req(), window=window, op=op, **kw)  # type: ignore[arg-type]
        return self._send(f"window-{window}", req, now)

    def book(self, visits: list[Visit], now: float = 0.0) -> None:
        """Import the day's bookings at once, as a booking platform's file dropped before the hall opens
        (without it, each booking is imported just before its citizen comes and the controller cannot
        expect the appointments still to come)."""
        day = self.midnight.date()
        bs = tuple(core.Booking(code=v.appointment, category=v.category, day=day, start=self.at(v.slot[0]).time(),
                                end=self.at(v.slot[1]).time())
                   for v in visits if v.appointment is not None and v.slot is not None)
        if bs:
            core.handle(self.state, core.BookingsIn("bookings.csv", bs), self.at(now))

    def start(self, windows: list[int], now: float) -> None:
        for w in windows:
            raw = self._window(w, now, "open", staff=Staff(id=f"s{w:02d}", name=f"clerk {w}"))
            if self._refused(raw):
                raise RuntimeError(f"window {w} would not open: {raw!r}")

    def issue(self, visit: Visit, now: float) -> tuple[Hashable, float | None] | None:
        if visit.appointment is not None and visit.slot is not None and visit.appointment not in self.state.bookings:
            # the booking platform's file, read by the controller before the citizen comes
            day = self.midnight.date()
            b = core.Booking(code=visit.appointment, category=visit.category, day=day,
                             start=self.at(visit.slot[0]).time(), end=self.at(visit.slot[1]).time())
            core.handle(self.state, core.BookingsIn("bookings.csv", (b,)), self.at(now))
        person = None
        if visit.channel == "idcard":
            person = hashlib.sha256(f"bench-person-{visit.id}".encode()).hexdigest()
        req = TakeRequest(req=self._next_req(), category=visit.category,
                          channel=visit.channel, priority=visit.priority,  # type: ignore[arg-type]
                          person=person, appointment=visit.appointment)
        raw = self._send("kiosk-1", req, now)
        code = self._refused(raw)
        if code is not None:
            self.refusals[code] = self.refusals.get(code, 0) + 1
            return None
        t = decode(raw, TakeReply).ticket
        if t.est_wait_range is not None:
            self.ranges[t.number] = t.est_wait_range
        return t.number, float(t.est_wait_min)

    def call_next(self, window: int, now: float) -> Hashable | None:
        raw = self._window(window, now, "next")
        if self._refused(raw):
            return None
        t = decode(raw, WindowReply).ticket
        assert t is not None
        return t.number

    def done(self, window: int, now: float) -> None:
        self._refused(self._window(window, now, "done"))

    def noshow(self, window: int, now: float) -> None:
        self._refused(self._window(window, now, "noshow"))

    def transfer(self, window: int, category: str, now: float) -> None:
        self._refused(self._window(window, now, "transfer", to=TransferTo(category=category)))
