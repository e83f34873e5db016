"""Time for the adapters and apps (pure cores never read a clock: they are given ``now``).

Every hallq process takes its time from :func:`from_env`: the real clock in the hall's time zone, or,
for the demo only, a scaled clock that all processes of one demo share through ``HALLQ_CLOCK``
(``START,SPEED,ANCHOR``: simulated start time in ISO 8601, speed factor, and the wall-clock epoch
seconds at which the simulation was at START; or ``@FILE`` for ANCHOR: the clock stands at START until
FILE exists and holds those epoch seconds, so the demo starts its day once every process is up, however
long that took on a busy machine).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
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
    #: the anchor is in this file, once it exists (until then the clock stands at ``start``)
    go_file: str | None = None
    _go: dict[str, float] = field(default_factory=dict, compare=False, repr=False)

    def _anchor(self) -> float | None:
        if self.go_file is None:
            return self.anchor
        if "at" not in self._go:
            try:
                self._go["at"] = float(open(self.go_file, encoding="ascii").read().strip())  # noqa: SIM115
            except (OSError, ValueError):
                return None
        return self._go["at"]

    def now(self) -> datetime:
        if self.start is None:
            return datetime.now(self.tz)
        anchor = self._anchor()
        if anchor is None:
            return self.start.astimezone(self.tz)
        passed = time.time() - anchor
        if self.go_file is not None:
            passed = max(0.0, passed)  # it stood at start until go: it never goes back before it
        return (self.start + timedelta(seconds=passed * self.speed)).astimezone(self.tz)

    def real_seconds(self, simulated: float) -> float:
        """How long ``simulated`` seconds of hall time take in real time."""
        return simulated / self.speed

    @property
    def scaled(self) -> bool:
        return self.start is not None

    def to_env(self) -> str:
        if self.start is None:
            return ""
        return f"{self.start.isoformat()},{self.speed},{'@' + self.go_file if self.go_file else self.anchor}"


def real(tz: str = "Asia/Shanghai") -> Clock:
    return Clock(ZoneInfo(tz))


def scaled(start: datetime, speed: float, tz: str = "Asia/Shanghai", anchor: float | None = None, *,
           go_file: str | None = None) -> Clock:
    if start.tzinfo is None:
        start = start.replace(tzinfo=ZoneInfo(tz))
    return Clock(ZoneInfo(tz), start, float(speed), time.time() if anchor is None else anchor, go_file)


def go(path: str | os.PathLike[str], at: float | None = None) -> None:
    """Start the clocks that wait on ``path`` (``@FILE``): from now, or from epoch seconds ``at``."""
    tmp = f"{path}.new"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{time.time() if at is None else at}\n")
    os.replace(tmp, path)


def from_env(tz: str = "Asia/Shanghai", env: dict[str, str] | None = None) -> Clock:
    """The demo's shared scaled clock when ``HALLQ_CLOCK`` is set, else the real clock."""
    spec = (os.environ if env is None else env).get(ENV, "").strip()
    if not spec:
        return real(tz)
    try:
        start_s, speed_s, anchor_s = spec.split(",")
        if anchor_s.startswith("@"):
            return scaled(datetime.fromisoformat(start_s), float(speed_s), tz, 0.0, go_file=anchor_s[1:])
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
