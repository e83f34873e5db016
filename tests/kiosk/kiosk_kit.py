"""Helpers of the kiosk tests: ID numbers, a simulated GA 467 module on a pty, a controllable printer,
the real controller as a subprocess."""

from __future__ import annotations

import os
import sys
import threading
import time
import tty
from datetime import date
from pathlib import Path

from escpos.printer import Dummy
from hallq.kiosk import ga467
from hallq.kiosk.idcard import check_digit
from harness import ControllerProcess

ROOT = Path(__file__).resolve().parents[2]
HALLQ = [sys.executable, "-m", "hallq.shared.cli"]


def make_id(birth: date, area: str = "110101", seq: str = "123") -> str:
    first = f"{area}{birth:%Y%m%d}{seq}"
    return first + check_digit(first)


def card_fields(number: str, name: str = "张三") -> dict[str, str]:
    return {
        "name": name, "sex": "1", "ethnicity": "01", "birth": number[6:14], "address": "北京市东城区示范路1号",
        "id_number": number, "authority": "北京市公安局东城分局", "valid_from": "20200101", "valid_until": "20400101",
    }


class FakeSam:
    """A GA 467 module on the master side of a pty; the kiosk opens ``self.url``.

    ``card`` is the number on the reader (None: no card); ``status_override`` answers every read with that
    status; ``garbage`` is sent before each answer; ``split`` writes answers in small pieces.
    """

    def __init__(self) -> None:
        self.master, slave = os.openpty()
        tty.setraw(self.master)
        self.path = os.ttyname(slave)
        self._slave = slave
        self.url = f"serial:{self.path}?baudrate=115200"
        self.card: str | None = None
        self.card_text: dict[str, str] | None = None
        self.status_override: dict[tuple[int, int], int] = {}
        self.garbage = b""
        self.split = 0
        self.silent = False
        self.commands: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _answer(self, cmd: tuple[int, int]) -> bytes:
        if cmd in self.status_override:
            return ga467.encode_response(self.status_override[cmd])
        if cmd == ga467.RESET or cmd == ga467.SAM_STATUS:
            return ga467.encode_response(0x90)
        if cmd == ga467.FIND_CARD:
            return ga467.encode_response(0x9F, bytes(4)) if self.card else ga467.encode_response(0x80)
        if cmd == ga467.SELECT_CARD:
            return ga467.encode_response(0x90, bytes(8)) if self.card else ga467.encode_response(0x81)
        if cmd == ga467.READ_BASE:
            if not self.card:
                return ga467.encode_response(0x41)
            fields = self.card_text or card_fields(self.card)
            return ga467.encode_response(0x90, ga467.build_base_info(fields))
        return ga467.encode_response(0x21)

    def _run(self) -> None:
        import select

        dec = ga467.FrameDecoder()
        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:
                return
            for body in dec.feed(data):
                cmd = (body[0], body[1])
                self.commands.append(cmd)
                if self.silent:
                    continue
                out = self.garbage + self._answer(cmd)
                if self.split:
                    for i in range(0, len(out), self.split):
                        os.write(self.master, out[i : i + self.split])
                        time.sleep(0.002)
                else:
                    os.write(self.master, out)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(1)
        for fd in (self.master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass


class StatusDummy(Dummy):
    """python-escpos's Dummy printer that also answers DLE EOT like a printer would.

    ``online_byte`` / ``paper_byte`` are the answers (None: the printer says nothing); ``fail`` makes
    printing raise like a transport that went away."""

    def __init__(self, online_byte: int | None = 0x12, paper_byte: int | None = 0x12) -> None:
        super().__init__()
        self.online_byte = online_byte
        self.paper_byte = paper_byte
        self.fail = False  # every byte fails: the transport went away
        self.fail_print = False  # status answers, the ticket fails (e.g. a jam)
        self.queries = 0  # DLE EOT paper queries seen
        self._answers: list[bytes] = []

    def _raw(self, msg: bytes) -> None:
        if self.fail:
            raise OSError("the printer went away")
        if msg == b"\x10\x04\x01":
            self._answers.append(b"" if self.online_byte is None else bytes([self.online_byte]))
            return
        if msg == b"\x10\x04\x04":
            self.queries += 1
            self._answers.append(b"" if self.paper_byte is None else bytes([self.paper_byte]))
            return
        if self.fail_print:
            raise OSError("paper jam")
        super()._raw(msg)

    def _read(self) -> bytes:
        return self._answers.pop(0) if self._answers else b""


HALL_TOML = """
[hall]
id = "{hall}"
name = "示范县政务服务中心"
name_en = "Demo County Government Service Center"
timezone = "Asia/Shanghai"
{hours}
notices = ["请携带本人身份证原件办理业务", "老年人、残疾人、孕妇、军人优先办理"]

[[categories]]
code = "A"
name = "社保医保"
name_en = "Social & Medical Insurance"

[[categories]]
code = "B"
name = "不动产登记"
name_en = "Real Estate Registration"
daily_quota = 1

[[categories]]
code = "C"
name = "户籍办理"
name_en = "Household Registration"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A", "B", "C"]
"""


class Controller(ControllerProcess):
    """The real controller, as ``hallq controller`` runs it."""

    def __init__(self, workdir: Path, broker_url: str, hall: str = "demo", hours: str = ""):
        super().__init__(workdir, broker_url, HALL_TOML.format(hall=hall, hours=hours), hall=hall)
