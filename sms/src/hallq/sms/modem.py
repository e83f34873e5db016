"""The modem adapter: AT commands over a serial port (pyserial), one command at a time.

:class:`AtModem` owns the port. :meth:`AtModem.command` writes one command and reads lines until its final
result code, keeping the lines that answer it; lines that arrive on their own (``+CMTI`` and the other
unsolicited result codes) are kept aside for :meth:`AtModem.take_urcs`; anything else (garbage, a half line
after a reset, the echo of the command) is skipped and counted. A command that gets no final result in
time raises :class:`ModemTimeout`; the caller reopens the port (:meth:`AtModem.reopen`) and sets the modem up
again, as after a reset.

The port is any pyserial URL: a device (``/dev/ttyUSB2``), a pty (the tests' modem emulator) or
``rfc2217://host:port``.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import serial

from . import at

log = logging.getLogger(__name__)

CTRL_Z = b"\x1a"
ESC = b"\x1b"
#: Longest line we keep (a PDU line is at most 2 * 176 hex digits); beyond it the line is garbage.
MAX_LINE = 1024


class ModemError(Exception):
    """The modem cannot be used (the port cannot be opened, or it keeps not answering)."""


class ModemTimeout(ModemError, TimeoutError):
    """No final result code in time."""


class ModemRestarted(ModemError):
    """The modem restarted (a boot line came) while a command waited: set it up again."""


class CommandError(ModemError):
    """The modem answered a command with an error (``ERROR``, ``+CMS ERROR: n``, ``+CME ERROR: n``)."""

    def __init__(self, command: str, result: at.Final):
        super().__init__(f"{command}: {result.kind} {result.code}".strip())
        self.command = command
        self.result = result

    @property
    def cms(self) -> int | None:
        if self.result.kind == "CMS" and self.result.code.isdigit():
            return int(self.result.code)
        return None


class AtModem:
    """One modem on one serial port."""

    def __init__(self, url: str, *, baudrate: int = 115200, timeout: float = 10.0):
        self.url = url
        self.baudrate = baudrate
        self.timeout = timeout
        self._port: serial.SerialBase | None = None
        self._buf = bytearray()
        self._lines: deque[str] = deque()
        self._urcs: deque[str] = deque()
        #: Lines skipped as garbage so far (for the health message and the tests).
        self.garbage = 0
        #: Set when a boot line (``RDY``, ``SMS Ready``) shows the modem restarted: set it up again.
        self.rebooted = False

    # -- the port ------------------------------------------------------------------------------------
    def open(self) -> None:
        try:
            self._port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0.05,
                                               write_timeout=self.timeout, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            self._port = None
            raise ModemError(f"cannot open the modem at {self.url}: {exc}") from None
        self._buf.clear()
        self._lines.clear()

    def close(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            except (serial.SerialException, OSError):
                pass
            self._port = None

    def reopen(self) -> None:
        self.close()
        self.open()

    @property
    def is_open(self) -> bool:
        return self._port is not None

    # -- reading -------------------------------------------------------------------------------------
    def _fill(self, wait: float) -> bool:
        """Read what the port has (waiting up to ``wait``); False when nothing came."""
        if self._port is None:
            raise ModemError("the modem port is not open")
        try:
            self._port.timeout = max(0.0, wait)
            chunk = self._port.read(max(1, self._port.in_waiting or 1))
            if chunk and self._port.in_waiting:
                chunk += self._port.read(self._port.in_waiting)
        except (serial.SerialException, OSError) as exc:
            raise ModemError(f"the modem port failed: {exc}") from None
        if not chunk:
            return False
        self._buf += chunk
        while True:
            cut = min((i for i in (self._buf.find(b"\r"), self._buf.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                if len(self._buf) > MAX_LINE:
                    self._buf.clear()
                    self.garbage += 1
                break
            raw = bytes(self._buf[:cut])
            del self._buf[:cut + 1]
            line = raw.decode("ascii", errors="replace").strip()
            if not line:
                continue
            if len(raw) > MAX_LINE or "\ufffd" in line:
                self.garbage += 1
                continue
            self._lines.append(line)
        return True

    def _next_line(self, deadline: float) -> str | None:
        while not self._lines:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(min(left, 0.2))
        return self._lines.popleft()

    def _wait_prompt(self, deadline: float) -> None:
        """Wait for the ``>`` prompt of CMGS / CMGW (it has no line end)."""
        while True:
            # the prompt may come after complete lines (URCs) or at the start of the buffer
            while self._lines:
                line = self._lines.popleft()
                self._keep_aside(line)
                r = at.final(line)
                if r is not None and not r.ok:
                    raise CommandError("prompt", r)
            i = self._buf.find(b">")
            if i >= 0:
                del self._buf[:i + 1]
                if self._buf[:1] == b" ":
                    del self._buf[:1]
                return
            left = deadline - time.monotonic()
            if left <= 0:
                raise ModemTimeout(f"no '>' prompt from the modem at {self.url}")
            self._fill(min(left, 0.2))

    def _keep_aside(self, line: str) -> None:
        if at.is_urc(line):
            if line.startswith(at.BOOT_LINES):
                self.rebooted = True
            self._urcs.append(line)
        else:
            self.garbage += 1
            log.debug("skipped a line from the modem (%d characters)", len(line))

    def poll(self, wait: float) -> None:
        """Read what arrives within ``wait`` seconds, keeping unsolicited lines aside."""
        self._fill(wait)
        while self._lines:
            self._keep_aside(self._lines.popleft())

    def take_urcs(self) -> list[str]:
        out = list(self._urcs)
        self._urcs.clear()
        return out

    # -- commands ------------------------------------------------------------------------------------
    def command(self, cmd: str, *, answer: tuple[str, ...] = (), pdu_lines: bool = False,
                data: str | None = None, timeout: float | None = None) -> list[str]:
        """Send ``cmd`` and return its answer lines (those starting with one of ``answer``, and with
        ``pdu_lines`` the hex line after each of them). With ``data`` (a PDU in hex), wait for the ``>``
        prompt, send it and Ctrl-Z. Raises :class:`CommandError` or :class:`ModemTimeout`."""
        if self._port is None:
            raise ModemError("the modem port is not open")
        deadline = time.monotonic() + (timeout or self.timeout)
        # what came before the command is not its answer
        self.poll(0)
        self._write(cmd.encode("ascii") + b"\r")
        if data is not None:
            try:
                self._wait_prompt(deadline)
            except ModemTimeout:
                self._write(ESC)  # leave the prompt state, if the modem is in it
                raise
            self._write(data.encode("ascii") + CTRL_Z)
        out: list[str] = []
        want_pdu = False
        while True:
            line = self._next_line(deadline)
            if line is None:
                raise ModemTimeout(f"no answer to {cmd} from the modem at {self.url}")
            if want_pdu:
                want_pdu = False
                if at.is_pdu_line(line):
                    out.append(line)
                    continue
            r = at.final(line)
            if r is not None:
                if r.ok:
                    return out
                raise CommandError(cmd, r)
            if answer and line.startswith(answer):
                out.append(line)
                want_pdu = pdu_lines
            elif line == cmd or line == cmd.rstrip("\r"):
                continue  # the echo (echo is on after a reset, until ATE0)
            else:
                self._keep_aside(line)
                if self.rebooted:
                    raise ModemRestarted(f"the modem at {self.url} restarted during {cmd}")

    def _write(self, data: bytes) -> None:
        try:
            self._port.write(data)  # type: ignore[union-attr]
            self._port.flush()  # type: ignore[union-attr]
        except (serial.SerialException, OSError) as exc:
            raise ModemError(f"cannot write to the modem at {self.url}: {exc}") from None
