"""How device roles join ``make demo`` without the demo knowing them.

Each role that can take part registers a function in the entry point group ``hallq.demo``
(``kiosk = "hallq.kiosk.demo:participants"``). The demo calls it with a :class:`DemoContext` and starts
each returned :class:`DemoProcess` with ``ctx.env`` (which carries the demo's shared scaled clock), and
stops it with SIGTERM at the end. ``replaces`` tells the simulated hall what it must no longer do itself,
e.g. ``("pad:1",)``: a real pad rates at window 1, so the simulated citizens there do not; with ``"press:1"``
the simulated citizens there tell that pad which button they press (``hallq pad --demo-presses``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

GROUP = "hallq.demo"


@dataclass(frozen=True)
class DemoContext:
    hall: str
    broker: str  # URL of the demo's broker
    out_dir: Path  # where participants write screenshots, logs, their generated configs
    headless: bool  # no screen: participants run headless and save screenshots instead
    windows: tuple[int, ...]  # the sample hall's window numbers
    secret_file: Path  # the hall's secret key (for person keys)
    env: dict[str, str] = field(default_factory=dict)  # HALLQ_CLOCK and the like
    sound: bool = False  # a sound device is there: voices may speak
    #: ``make demo SECURE=1``: a folder of bundles, one per device id (``{id}/device.toml``)
    identities: Path | None = None
    #: the hall config the demo's controller runs with (the dashboard reads it)
    config: Path | None = None

    def device_args(self, device: str) -> list[str]:
        """``--device`` of the device's bundle when the demo runs the secure broker (nothing otherwise)."""
        if self.identities is None:
            return []
        return ["--device", str(self.identities / device / "device.toml")]


@dataclass(frozen=True)
class DemoProcess:
    name: str
    argv: list[str]
    replaces: tuple[str, ...] = ()


def participants(ctx: DemoContext) -> list[DemoProcess]:
    """Every installed role's demo processes (a role that fails to load is skipped with its error)."""
    found: list[DemoProcess] = []
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        fn: Callable[[DemoContext], list[DemoProcess]] = ep.load()
        found.extend(fn(ctx))
    return found
