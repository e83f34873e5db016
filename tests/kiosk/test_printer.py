from __future__ import annotations

import socket
import threading
import time
from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from escpos.printer import Dummy
from hallq.kiosk.printer import (
    PrinterError,
    PrinterStatus,
    TicketPrinter,
    TicketText,
    decode_online,
    decode_paper,
    open_printer,
    query_status,
    render_ticket_image,
)
from kiosk_kit import StatusDummy

RAW = "11010519491231002X"
TICKET = TicketText(
    hall_name="示范县政务服务中心", number="A012", category_name="社保医保", ahead=3, est_wait_min=12,
    issued_at=datetime(2026, 11, 23, 9, 41, tzinfo=ZoneInfo("Asia/Shanghai")), qr="https://hall.example/q?n=A012",
    masked_id="110***********002X", footer="过号请重新取号", priority="elderly",
)


@pytest.mark.parametrize(("answer", "online"), [(b"\x12", True), (b"\x1a", False), (b"", None), (b"\xff", None),
                                                 (b"\x00", None)])
def test_decode_online(answer, online):
    assert decode_online(answer) is online


@pytest.mark.parametrize(("answer", "paper"), [(b"\x12", "ok"), (b"\x1e", "near_end"), (b"\x72", "out"),
                                               (b"\x7e", "out"), (b"", "unknown"), (b"\x80", "unknown")])
def test_decode_paper(answer, paper):
    assert decode_paper(answer) == paper


def test_no_answer_is_unknown_never_paper_ok():
    silent = StatusDummy(online_byte=None, paper_byte=None)
    assert silent.paper_status() == 2  # python-escpos 3.1 claims "paper adequate" on an empty read ...
    assert query_status(silent) == PrinterStatus(None, "unknown")  # ... we do not


@pytest.mark.parametrize(("online_byte", "paper_byte", "expected"), [
    (0x12, 0x12, PrinterStatus(True, "ok")),
    (0x12, 0x1E, PrinterStatus(True, "near_end")),
    (0x12, 0x72, PrinterStatus(True, "out")),
    (0x1A, 0x72, PrinterStatus(False, "out")),
])
def test_status_asked_with_dle_eot(online_byte, paper_byte, expected):
    assert TicketPrinter("dummy", printer=StatusDummy(online_byte, paper_byte)).status() == expected


def test_a_transport_that_cannot_read_is_unknown():
    d = Dummy()
    assert query_status(d) == PrinterStatus(None, "unknown")
    assert d.output == b""  # nothing asked


def test_the_ticket_shows_the_wait_as_a_range_when_the_controller_gives_one():
    assert TICKET.lines()["wait"] == "预计等候约 12 分钟"
    ranged = replace(TICKET, est_range=(10, 20))
    assert ranged.lines()["wait"] == "预计等候约 10–20 分钟"
    assert replace(ranged, lang="en").lines()["wait"] == "Estimated wait 10–20 min"
    assert replace(TICKET, est_range=(0, 5)).lines()["wait"] == "预计约 5 分钟内叫号"


def test_raster_ticket_bytes():
    d = Dummy()
    TicketPrinter("dummy", printer=d, width=576).print_ticket(TICKET)
    out = d.output
    assert out.startswith(b"\x1b@")
    i = out.index(b"\x1dv0")  # GS v 0: raster bit image
    assert out[i + 4 : i + 6] == (576 // 8).to_bytes(2, "little")
    assert out.rstrip(b"\n").endswith(b"\x1dV\x00") or b"\x1dV" in out[-8:]  # the cut
    assert RAW.encode() not in out and "社保".encode("gb18030") not in out  # Chinese as pixels, not text


def test_raster_image_has_ink_where_the_number_is():
    img = render_ticket_image(TICKET, 384)
    assert img.width == 384 and img.mode == "1"
    dark = img.convert("L").histogram()[0]
    assert 0.05 < dark / (img.width * img.height) < 0.5


def test_gb18030_ticket_bytes():
    d = Dummy()
    TicketPrinter("dummy", printer=d, chinese="gb18030").print_ticket(TICKET)
    out = d.output
    assert out.startswith(b"\x1b@\x1c&")  # initialise, Chinese mode
    for text in ("示范县政务服务中心", "社保医保", "前面还有 3 人", "过号请重新取号", "身份证 110***********002X", "老年人优先"):
        assert text.encode("gb18030") in out
    assert b"A012" in out and b"\x1dV" in out
    assert b"\x1d(k" in out and b"https://hall.example/q?n=A012" in out  # native QR
    assert RAW.encode() not in out


def test_a_failing_transport_raises_printer_error():
    d = StatusDummy()
    d.fail = True
    with pytest.raises(PrinterError, match="printing failed"):
        TicketPrinter("dummy", printer=d).print_ticket(TICKET)
    assert TicketPrinter("dummy", printer=d).status() == PrinterStatus(False, "unknown")


def test_file_printer_appends(tmp_path):
    path = tmp_path / "printer.bin"
    path.write_bytes(b"before")
    p = TicketPrinter(f"file:{path}")
    assert p.status() == PrinterStatus(None, "unknown")
    p.print_ticket(TICKET)
    p.close()
    data = path.read_bytes()
    assert data.startswith(b"before\x1b@") and b"\x1dv0" in data


@pytest.mark.parametrize("url", ["lpt:1", "usb:zz:01", "serial:/dev/ttyS0?speed=9", "file:", "tcp:host:port",
                                 "usb:0416:5011?foo=1"])
def test_bad_urls(url):
    with pytest.raises(PrinterError):
        open_printer(url)


def test_a_missing_usb_or_serial_printer_is_offline():
    assert TicketPrinter("serial:/dev/does-not-exist").status() == PrinterStatus(False, "unknown")
    with pytest.raises(PrinterError):
        TicketPrinter("serial:/dev/does-not-exist").print_ticket(TICKET)


def test_tcp_printer_answers_status_and_takes_the_ticket():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    got = bytearray()

    def serve():
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(3)
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                got.extend(data)
                if data.endswith(b"\x10\x04\x01"):
                    conn.sendall(b"\x12")
                elif data.endswith(b"\x10\x04\x04"):
                    conn.sendall(b"\x1e")

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    p = TicketPrinter(f"tcp:127.0.0.1:{srv.getsockname()[1]}")
    try:
        assert p.status() == PrinterStatus(True, "near_end")
        p.print_ticket(TICKET)
    finally:
        p.close()
        th.join(3)
        srv.close()
    assert b"\x1dv0" in got


class PtyPrinter:
    """A serial printer on a pty: answers DLE EOT with the given bytes (or not at all) and keeps the rest."""

    def __init__(self, online: bytes, paper: bytes):
        import os
        import tty

        self.master, self._slave = os.openpty()
        tty.setraw(self.master)
        self.path = os.ttyname(self._slave)
        self.online, self.paper = online, paper
        self.got = bytearray()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import os
        import select

        while not self._stop.is_set():
            r, _, _ = select.select([self.master], [], [], 0.05)
            if not r:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:
                return
            self.got.extend(data)
            if self.got.endswith(b"\x10\x04\x01"):
                os.write(self.master, self.online)
            elif self.got.endswith(b"\x10\x04\x04"):
                os.write(self.master, self.paper)

    def close(self) -> None:
        import os

        self._stop.set()
        self._thread.join(1)
        os.close(self.master)
        os.close(self._slave)


@pytest.mark.parametrize(("online", "paper", "expected"), [
    (b"\x12", b"\x1e", PrinterStatus(True, "near_end")),
    (b"\x12", b"\x72", PrinterStatus(True, "out")),
    (b"", b"", PrinterStatus(None, "unknown")),  # a printer that says nothing: unknown, not OK
])
def test_serial_printer_status_and_ticket(online, paper, expected):
    fake = PtyPrinter(online, paper)
    p = TicketPrinter(f"serial:{fake.path}?baudrate=115200")
    try:
        assert p.status() == expected
        p.print_ticket(TICKET)
        deadline = time.monotonic() + 5
        while b"\x1dV" not in fake.got and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"\x1dv0" in fake.got and b"\x1dV" in fake.got
    finally:
        p.close()
        fake.close()


def test_a_tcp_printer_that_does_not_answer_is_unknown_quickly():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    p = TicketPrinter(f"tcp:127.0.0.1:{srv.getsockname()[1]}")
    try:
        t0 = time.monotonic()
        assert p.status() == PrinterStatus(None, "unknown")
        assert time.monotonic() - t0 < 2.5
    finally:
        p.close()
        srv.close()
