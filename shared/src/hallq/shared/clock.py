"""Time for the adapters and apps (pure cores never read a clock: they are given ``now``).

Every hallq process takes its time from :func:`from_env`: the real clock in the hall's time zone, or,
for the demo only, a scaled clock that all processes of one demo share through ``HALLQ_CLOCK``
(``START,SPEED,ANCHOR``: simulated start time in ISO 8601, speed factor, and the wall-clock epoch
seconds at which the simulation was at START).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

ENV = "HALLQ_CLOCK"


@dataclass(frozen=True, slots=True)
class Clock:
    """``now()`` gives an aware datetime in ``tz``; ``speed`` simulated seconds pass per real second."""

    tz: ZoneInfo
    start: datetime | None = None  # simulated time at ``anchor``; None for the real clock
    speed: float = 1.0
    anchor: float = 0.0

    def now(self) -> datetime:
        if self.start is None:
            return datetime.now(self.tz)
        return (self.start + timedelta(seconds=(time.time() - self.anchor) * self.speed)).astimezone(self.tz)

    def real_seconds(self, simulated: float) -> float:
        """How long ``simulated`` seconds of hall time take in real time."""
        return simulated / self.speed

    @property
    def scaled(self) -> bool:
        return self.start is not None

    def to_env(self) -> str:
        if self.start is None:
            return ""
        return f"{self.start.isoformat()},{self.speed},{self.anchor}"


def real(tz: str = "Asia/Shanghai") -> Clock:
    return Clock(ZoneInfo(tz))


def scaled(start: datetime, speed: float, tz: str = "Asia/Shanghai", anchor: float | None = None) -> Clock:
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(tz))
    return Clock(ZoneInfo(tz), start, float(speed), time.time() if anchor is None else anchor)


def from_env(tz: str = "Asia/Shanghai", env: dict[str, str] | None = None) -> Clock:
    """The demo's shared scaled clock when ``HALLQ_CLOCK`` is set, else the real clock."""
    spec = (os.environ if env is None else env).get(ENV, "").strip()
    if not spec:
        return real(tz)
    try:
        start_s, speed_s, anchor_s = spec.split(",")
        return scaled(datetime.fromisoformat(start_s), float(speed_s), tz, float(anchor_s))
    except ValueError as exc:
        raise ValueError(f"{ENV}={spec!r}: expected START,SPEED,ANCHOR ({exc})") from None


def system_synchronized() -> bool:
    """The kernel's word (``adjtimex``) that the system clock is synchronised (NTP, chrony, timesyncd).

    A Raspberry Pi has no real-time clock: until it is synchronised it may run days behind."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        buf = ctypes.create_string_buffer(512)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buf)
    except (OSError, AttributeError):
        return False
    return state not in (-1, 5)  # 5: TIME_ERROR, the clock is not synchronised
