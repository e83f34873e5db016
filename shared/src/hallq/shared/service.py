"""systemd service notification for a role's app (``Type=notify``, ``WatchdogSec=`` in hallq-<role>.service).

The app says READY once it serves, then calls :meth:`Notifier.alive` from its main loop *only while it is
healthy*; systemd kills and restarts an app whose pings stop. Outside systemd (no ``NOTIFY_SOCKET``: a
desk, the demo, the tests) every call does nothing, as ``sd_notify(3)`` does.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping

__all__ = ["Notifier"]


class Notifier:
    """READY, STATUS, STOPPING and watchdog pings through cysystemd (libsystemd's ``sd_notify``)."""

    def __init__(self, env: Mapping[str, str] | None = None, *, clock=time.monotonic):
        env = os.environ if env is None else env
        self.enabled = bool(env.get("NOTIFY_SOCKET"))
        self._clock = clock
        self._last_ping = float("-inf")
        self.ready_sent = False
        self.pings = 0
        usec = env.get("WATCHDOG_USEC")
        pid = env.get("WATCHDOG_PID")
        #: seconds between pings (half of WatchdogSec=), None when no watchdog is set for this process
        self.interval: float | None = None
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.interval = int(usec) / 2e6

    def _send(self, what: str, value: str | None = None) -> None:
        if not self.enabled:
            return
        from cysystemd.daemon import Notification, notify

        n = Notification[what]
        if value is None:
            notify(n)
        else:
            notify(n, value)

    def ready(self, status: str | None = None) -> None:
        """The app serves: systemd's start job ends (``Type=notify``)."""
        if status:
            self._send("STATUS", status)
        self._send("READY")
        self.ready_sent = True
        self._last_ping = self._clock()

    def status(self, text: str) -> None:
        self._send("STATUS", text)

    def stopping(self) -> None:
        self._send("STOPPING")

    def alive(self) -> bool:
        """Call from the main loop while the app is healthy; pings at most every half watchdog period.
        Returns True when a ping was sent."""
        if self.interval is None or not self.ready_sent:
            return False
        now = self._clock()
        if now - self._last_ping < self.interval:
            return False
        self._send("WATCHDOG")
        self._last_ping = now
        self.pings += 1
        return True
