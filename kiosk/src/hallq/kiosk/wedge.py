"""Keyboard-wedge card readers (magnetic and IC) through evdev.

Such a reader types the card's number as key presses and ends with Enter. The device is grabbed so the
digits never reach the UI (or anything else). :class:`WedgeDecoder` is the pure part: feed it
``evdev.InputEvent``s, it returns the completed entries (digits and ``X``); a pause longer than
``gap`` seconds between keys starts afresh, so a stray key press cannot glue onto a later card.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .idcard import IdNumber, InvalidIdNumber

log = logging.getLogger(__name__)

EV_KEY = 1
KEY_DOWN = 1
# evdev key codes (linux/input-event-codes.h)
_DIGITS = {11: "0", 2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9"}
_KEYPAD = {82: "0", 79: "1", 80: "2", 81: "3", 75: "4", 76: "5", 77: "6", 71: "7", 72: "8", 73: "9"}
KEY_X = 45
ENTERS = (28, 96)  # KEY_ENTER, KEY_KPENTER
MODIFIERS = {29, 42, 54, 56, 58, 97, 100, 125, 126}  # ctrl, shifts, alt, caps lock, altgr, meta: they add nothing
MAX_ENTRY = 64


@dataclass
class WedgeDecoder:
    gap: float = 0.5
    buf: list[str] = field(default_factory=list)
    last: float | None = None

    def feed(self, event: Any) -> str | None:
        """One event; returns the entry when Enter ends it (an empty entry is ignored)."""
        if event.type != EV_KEY or event.value != KEY_DOWN:
            return None
        t = event.sec + event.usec / 1e6
        if self.last is not None and t - self.last > self.gap:
            self.buf.clear()
        self.last = t
        code = event.code
        if code in MODIFIERS:  # the shift before an X
            return None
        if code in ENTERS:
            entry = "".join(self.buf)
            self.buf.clear()
            return entry or None
        ch = _DIGITS.get(code) or _KEYPAD.get(code) or ("X" if code == KEY_X else None)
        if ch is None:
            # a character that has no place in an ID number (e.g. the track sentinels): the entry is spoilt
            self.buf.append("?")
        elif len(self.buf) < MAX_ENTRY:
            self.buf.append(ch)
        return None


CardCallback = Callable[[IdNumber | None, str | None], None]


def entry_to_number(entry: str) -> tuple[IdNumber | None, str | None]:
    try:
        return IdNumber(entry), None
    except InvalidIdNumber as exc:
        return None, str(exc)


class WedgeReader:
    """Reads a grabbed evdev device on its own thread; ``on_card(number, None)`` or ``(None, why)``."""

    def __init__(self, path: str, on_card: CardCallback, on_status: Callable[[bool, str | None], None]):
        self.path = path
        self.name = f"wedge {path}"
        self.on_card = on_card
        self.on_status = on_status
        #: Called with each completed entry; by default it becomes a validated number for ``on_card``.
        self.on_entry: Callable[[str], None] = self._entry
        self.decoder = WedgeDecoder()
        self.retry = 2.0
        self._device: Any = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> WedgeReader:
        import evdev

        try:
            dev = evdev.InputDevice(self.path)
        except OSError as exc:
            raise OSError(f"cannot open the card reader {self.path}: {exc.strerror}") from None
        try:
            dev.grab()
        except OSError as exc:
            dev.close()
            raise OSError(f"cannot grab the card reader {self.path}: {exc.strerror}") from None
        self._device = dev
        return self

    def process(self, event: Any) -> None:
        """Handle one event (the thread calls this; tests feed synthetic ``InputEvent``s)."""
        entry = self.decoder.feed(event)
        if entry is not None:
            self.on_entry(entry)

    def _entry(self, entry: str) -> None:
        number, why = entry_to_number(entry)
        self.on_card(number, why)

    def start(self) -> WedgeReader:
        """Read on a thread; a device that is missing or goes away is reported offline and opened again."""
        self._thread = threading.Thread(target=self._run, name="wedge", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        online: bool | None = None
        while not self._stop.is_set():
            if self._device is None:
                try:
                    self.open()
                except OSError as exc:
                    if online is not False:
                        log.warning("%s", exc)
                        self.on_status(False, str(exc))
                        online = False
                    self._stop.wait(self.retry)
                    continue
                self.on_status(True, None)
                online = True
            try:
                self.wait_entry(0.2, deliver=True)
            except OSError as exc:
                log.warning("card reader %s went away: %s", self.path, exc.strerror)
                self.on_status(False, f"went away: {exc.strerror}")
                online = False
                self._close()

    def wait_entry(self, timeout: float, *, deliver: bool = False) -> str | None:
        """Read events for up to ``timeout`` seconds; the first completed entry (delivered to
        :attr:`on_entry` too when ``deliver``), or None."""
        import select
        import time

        dev = self._device
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([dev.fd], [], [], left)
            if not r:
                return None
            for event in dev.read():
                entry = self.decoder.feed(event)
                if entry is not None:
                    if deliver:
                        self.on_entry(entry)
                    return entry

    def _close(self) -> None:
        if self._device is not None:
            try:
                self._device.ungrab()
            except OSError:
                pass
            try:
                self._device.close()
            except OSError:
                pass
            self._device = None

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(1)
        self._close()
