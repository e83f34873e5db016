"""Helpers of the rating pad tests: a small hall run by the real controller on real Mosquitto, a hall
clerk and kiosk that serve tickets, and a TCP proxy between the pad and the broker that can cut the line
or swallow what the broker sends (a pad whose network fails, with the broker itself untouched).

Imported as ``padkit`` (tests/rating_pad/conftest.py puts this folder on the path)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from harness import ControllerInProcess, free_port


def wait_until(fn, timeout: float = 10.0, what: str = "condition"):
    """Poll ``fn`` until it returns something true (and return that), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


HALL_TOML = """
[hall]
id = "padtest"
name = "评价测试大厅"

[[categories]]
code = "A"
name = "社保医保"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A"]

[[windows]]
no = 2
name = "2号窗口"
categories = ["A"]
"""

PAD_TOML = """
[pad]
hall = "padtest"
window = {window}
journal = "{journal}"
invite_seconds = 30
thanks_seconds = 1
debounce_ms = 5
resend_seconds = 0.5

[gpio]
pin_factory = "mock"
"""


def pad_toml(tmp_path: Path, window: int = 1, name: str = "pad.toml") -> Path:
    p = tmp_path / name
    p.write_text(PAD_TOML.format(window=window, journal=tmp_path / f"ratings-{window}.jsonl"))
    return p


class ControllerRunner(ControllerInProcess):
    """The real controller (in this process) of the pad tests' hall, restartable on the same database."""

    def __init__(self, broker_url: str, db: Path, toml: str = HALL_TOML):
        super().__init__(broker_url, db, toml)


class Clerk:
    """A kiosk and a window caller of the test hall, talking to the controller like the devices do."""

    def __init__(self, broker_url: str, window: int = 1):
        from hallq.shared.mqtt import HallClient

        self.window = window
        self.kiosk = HallClient(broker_url, "padtest", "kiosk-1").start()
        self.caller = HallClient(broker_url, "padtest", f"window-{window}").start()
        assert self.kiosk.wait_connected(10) and self.caller.wait_connected(10)
        self._opened = False

    def op(self, op: str, **kw):
        from hallq.shared.schemas import WindowRequest

        c = self.caller
        return c.request("window", WindowRequest(req=c.new_req(), window=self.window, op=op, **kw), timeout=10)

    def serve(self, case_id: str, item_code: str = "000101001000", item_name: str = "城乡居民养老保险参保登记") -> str:
        """Take a ticket, call it to the window and finish it with a case; returns the ticket number."""
        from hallq.shared.schemas import Case, Staff, TakeRequest

        if not self._opened:
            self.op("open", staff=Staff(id="s07", name="李娜"))
            self._opened = True
        k = self.kiosk
        k.request("take", TakeRequest(req=k.new_req(), category="A"), timeout=10)
        called = self.op("next")
        self.op("done", case=Case(id=case_id, item_code=item_code, item_name=item_name, kind="instant"))
        return called.ticket.number

    def close(self) -> None:
        self.kiosk.stop()
        self.caller.stop()


class TcpProxy:
    """Forwards 127.0.0.1:port to the broker. ``mute_downstream`` swallows what the broker sends (the
    pad's requests still arrive, its answers never do); ``cut()`` closes every connection and refuses
    new ones until ``mend()``."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.port = free_port()
        self.mute_downstream = False
        self._open = True
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._srv = socket.create_server(("127.0.0.1", self.port))
        self._srv.settimeout(0.2)
        self._stop = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop:
            try:
                down, _ = self._srv.accept()
            except (TimeoutError, OSError):
                continue
            if not self._open:
                down.close()
                continue
            try:
                up = socket.create_connection(("127.0.0.1", self.upstream))
            except OSError:
                down.close()
                continue
            with self._lock:
                self._conns += [down, up]
            threading.Thread(target=self._pump, args=(down, up, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(up, down, True), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if downstream and self.mute_downstream:
                    continue
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self._open = False
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def mend(self) -> None:
        self._open = True

    def close(self) -> None:
        self._stop = True
        self.cut()
        self._srv.close()
