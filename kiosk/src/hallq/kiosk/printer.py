"""The ticket printer: ESC/POS through python-escpos.

Printer URLs: ``usb:VID:PID`` (hex, ``?in_ep=0x82&out_ep=0x01``), ``serial:/dev/ttyUSB0?baudrate=9600``,
``tcp:HOST:9100``, ``file:/path`` (appends the raw bytes; for a printer device node or a desk without one).

Status: before each ticket the kiosk sends DLE EOT 1 (printer status) and DLE EOT 4 (paper sensor) where
the transport can read. An answer byte that is missing or does not have the fixed bits of a status byte
means *unknown* — never "paper OK" (python-escpos 3.1's ``paper_status()`` says OK on an empty read, so it
is not used).

Chinese is printed as a raster image rendered with Pillow (the default: it works on every printer) or as
GB18030 text in the printer's Chinese mode (``FS &``), by config.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal
from urllib.parse import parse_qs

from escpos.escpos import Escpos
from hallq.shared.screen import find_cjk_font

log = logging.getLogger(__name__)

DLE_EOT_PRINTER = b"\x10\x04\x01"
DLE_EOT_PAPER = b"\x10\x04\x04"
FS_CHINESE_ON = b"\x1c\x26"
ESC_INIT = b"\x1b\x40"
Paper = Literal["ok", "near_end", "out", "unknown"]


class PrinterError(Exception):
    """The printer could not be reached or refused the job (the message says what happened)."""


@dataclass(frozen=True, slots=True)
class PrinterStatus:
    online: bool | None  # None: unknown
    paper: Paper


UNKNOWN = PrinterStatus(None, "unknown")


def _valid_status_byte(b: int) -> bool:
    # Every DLE EOT answer has bit 1 and bit 4 set, bits 0 and 7 clear.
    return (b & 0x93) == 0x12


def decode_online(answer: bytes) -> bool | None:
    if len(answer) < 1 or not _valid_status_byte(answer[-1]):
        return None
    return not (answer[-1] & 0x08)


def decode_paper(answer: bytes) -> Paper:
    if len(answer) < 1 or not _valid_status_byte(answer[-1]):
        return "unknown"
    b = answer[-1]
    if b & 0x60:
        return "out"
    if b & 0x0C:
        return "near_end"
    return "ok"


# -- opening ---------------------------------------------------------------------------------------------
def open_printer(url: str) -> Escpos:
    """An escpos printer object for a URL (not yet connected: python-escpos opens on first use)."""
    kind, _, rest = url.partition(":")
    path, _, query = rest.partition("?")
    opts = {k: v[-1] for k, v in parse_qs(query).items()}

    def only(*allowed: str) -> None:
        extra = set(opts) - set(allowed)
        if extra:
            raise PrinterError(f"printer URL {url!r}: unknown option {sorted(extra)[0]!r}")

    try:
        if kind == "usb":
            only("in_ep", "out_ep")
            from escpos.printer import Usb

            vid, _, pid = path.partition(":")
            kw = {k: int(v, 0) for k, v in opts.items()}
            return Usb(int(vid, 16), int(pid, 16), timeout=2000, **kw)
        if kind == "serial":
            only("baudrate")
            from escpos.printer import Serial

            if not path:
                raise PrinterError(f"printer URL {url!r}: no device")
            return Serial(devfile=path, baudrate=int(opts.get("baudrate", 9600)), timeout=0.5)
        if kind == "tcp":
            only()
            from escpos.printer import Network

            host, _, port = path.rpartition(":")
            if not host:
                host, port = path, "9100"
            return Network(host, int(port or 9100), timeout=3)
        if kind == "file":
            only()
            from escpos.printer import File

            if not path:
                raise PrinterError(f"printer URL {url!r}: no path")
            p = File(path)
            try:
                p.device = open(path, "ab")  # noqa: SIM115 - the printer object owns it
            except OSError as exc:
                raise PrinterError(f"cannot open {path}: {exc.strerror}") from None
            return p
    except ValueError:
        raise PrinterError(f"printer URL {url!r}: a number is not valid") from None
    raise PrinterError(f"printer URL {url!r}: expected usb:VID:PID, serial:DEVICE, tcp:HOST:PORT or file:PATH")


def can_read(p: Escpos) -> bool:
    """Whether the transport can answer a status query (``File`` and ``Dummy`` cannot)."""
    return type(p)._read is not Escpos._read


STATUS_WAIT = 0.5  # seconds a printer gets to answer DLE EOT


def _drain(p: Escpos) -> None:
    """Drop bytes a late answer left behind, so they are not taken for the next answer."""
    dev = p.device
    if hasattr(dev, "reset_input_buffer"):  # pyserial
        dev.reset_input_buffer()


def _read_answer(p: Escpos) -> bytes:
    dev = p.device
    if dev is not None and hasattr(dev, "in_waiting") and hasattr(dev, "read"):  # pyserial: one byte
        return dev.read(1)
    if isinstance(dev, socket.socket):  # a short wait for the answer, the printing timeout otherwise
        old = dev.gettimeout()
        dev.settimeout(STATUS_WAIT)
        try:
            return dev.recv(16)
        finally:
            dev.settimeout(old)
    data = p._read()
    return bytes(data) if data is not None else b""


def query_status(p: Escpos) -> PrinterStatus:
    """DLE EOT 1 and 4; anything missing or malformed is unknown; an unreachable printer is offline."""
    if not can_read(p):
        return UNKNOWN
    answers: list[bytes] = []
    for cmd in (DLE_EOT_PRINTER, DLE_EOT_PAPER):
        try:
            _drain(p)
            p._raw(cmd)
        except Exception as exc:  # the transport is gone: that is known
            log.warning("printer status: cannot send: %s", exc)
            return PrinterStatus(False, "unknown")
        try:
            answers.append(_read_answer(p))
        except Exception as exc:  # timeouts and read errors: no answer
            log.info("printer status: no answer (%s)", type(exc).__name__)
            answers.append(b"")
    return PrinterStatus(decode_online(answers[0]), decode_paper(answers[1]))


# -- the ticket ------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TicketText:
    hall_name: str
    number: str
    category_name: str
    ahead: int
    est_wait_min: int
    issued_at: datetime
    qr: str | None
    masked_id: str | None
    footer: str
    lang: Literal["zh", "en"] = "zh"
    priority: str | None = None
    est_range: tuple[int, int] | None = None  # the controller's range (about 8 in 10 waits fall inside)

    def lines(self) -> dict[str, str]:
        zh = self.lang == "zh"
        if self.est_range is not None:
            lo, hi = self.est_range
            if lo == 0:
                wait = f"预计约 {hi} 分钟内叫号" if zh else f"Called within about {hi} min"
            else:
                wait = f"预计等候约 {lo}–{hi} 分钟" if zh else f"Estimated wait {lo}–{hi} min"
        else:
            wait = f"预计等候约 {self.est_wait_min} 分钟" if zh else f"Estimated wait {self.est_wait_min} min"
        prio = {"elderly": ("老年人优先", "Priority (senior)"), "appointment": ("预约优先", "Appointment")}
        return {
            "label": "您的号码" if zh else "Your number",
            "ahead": (f"前面还有 {self.ahead} 人" if zh else f"{self.ahead} ahead of you"),
            "wait": wait,
            "time": ("取号时间 " if zh else "Issued ") + self.issued_at.strftime("%Y-%m-%d %H:%M"),
            "id": (("身份证 " if zh else "ID ") + self.masked_id) if self.masked_id else "",
            "priority": prio[self.priority][0 if zh else 1] if self.priority in prio else "",
        }


@lru_cache(maxsize=16)
def _pil_font(size: int, bold: bool, path: str | None, index: int | None) -> Any:
    from PIL import ImageFont

    p, i = find_cjk_font(path, index, bold=bold)
    return ImageFont.truetype(p, size, index=i)


def render_ticket_image(t: TicketText, width: int = 576, font_path: str | None = None,
                        font_index: int | None = None) -> Any:
    """The whole ticket as a 1-bit Pillow image ``width`` dots wide."""
    from PIL import Image, ImageDraw

    lines = t.lines()
    rows: list[tuple[str, int, bool]] = [(t.hall_name, 34, True), ("", 10, False), (lines["label"], 28, False),
                                         (t.number, 150, True), (t.category_name, 40, True)]
    if lines["priority"]:
        rows.append((lines["priority"], 30, True))
    rows += [("", 8, False), (lines["ahead"], 30, False), (lines["wait"], 30, False), (lines["time"], 24, False)]
    if lines["id"]:
        rows.append((lines["id"], 24, False))
    qr_img = None
    if t.qr:
        import qrcode

        code = qrcode.QRCode(box_size=6, border=2)
        code.add_data(t.qr)
        code.make(fit=True)
        qr_img = code.make_image().get_image().convert("1")
        if qr_img.width > width:
            qr_img = qr_img.resize((width, width))
    footer = [(t.footer, 28, False)] if t.footer else []
    height = 20
    for _text, size, _ in rows + footer:
        height += int(size * 1.35)
    if qr_img is not None:
        height += qr_img.height + 10
    height += 20
    img = Image.new("1", (width, height), 1)
    draw = ImageDraw.Draw(img)
    y = 20

    def put(text: str, size: int, bold: bool) -> None:
        nonlocal y
        if text:
            font = _pil_font(size, bold, font_path, font_index)
            w = draw.textlength(text, font=font)
            while w > width - 16 and size > 12:  # shrink what would not fit
                size -= 2
                font = _pil_font(size, bold, font_path, font_index)
                w = draw.textlength(text, font=font)
            draw.text(((width - w) / 2, y), text, font=font, fill=0)
        y += int(size * 1.35)

    for row in rows:
        put(*row)
    if qr_img is not None:
        y += 5
        img.paste(qr_img, ((width - qr_img.width) // 2, y))
        y += qr_img.height + 5
    for row in footer:
        put(*row)
    return img


def ticket_bytes_text(p: Escpos, t: TicketText) -> None:
    """GB18030 text in the printer's Chinese mode, the number in ASCII at 4x size, a native QR code."""
    lines = t.lines()

    def gb(text: str) -> None:
        p._raw(text.encode("gb18030", errors="replace") + b"\n")

    p._raw(ESC_INIT + FS_CHINESE_ON)
    p.set(align="center", bold=True, double_height=True, double_width=True)
    gb(t.hall_name)
    p.set(align="center", normal_textsize=True)
    gb(lines["label"])
    p.set(align="center", bold=True, custom_size=True, width=5, height=5)
    p.text(t.number + "\n")
    p.set(align="center", bold=True, double_height=True, double_width=True)
    gb(t.category_name)
    p.set(align="center", normal_textsize=True)
    for key in ("priority", "ahead", "wait", "time", "id"):
        if lines[key]:
            gb(lines[key])
    if t.qr:
        p.qr(t.qr, size=6, native=True)
    if t.footer:
        gb(t.footer)


class TicketPrinter:
    """One printer: status queries and tickets; reopens the transport after a failure."""

    def __init__(self, url: str, *, chinese: Literal["raster", "gb18030"] = "raster", width: int = 576,
                 font_path: str | None = None, font_index: int | None = None, printer: Escpos | None = None):
        self.url = url
        self.chinese = chinese
        self.width = width
        self.font_path = font_path
        self.font_index = font_index
        self._p: Escpos | None = printer
        self._given = printer is not None

    @property
    def name(self) -> str:
        return self.url

    def _printer(self) -> Escpos:
        if self._p is None:
            self._p = open_printer(self.url)
        return self._p

    def _drop(self) -> None:
        if self._p is not None and not self._given:
            try:
                self._p.close()
            except Exception:
                pass
            self._p = None

    def status(self) -> PrinterStatus:
        try:
            p = self._printer()
            _ = p.device  # opens the transport
        except Exception as exc:
            log.warning("printer %s: cannot open: %s", self.url, exc)
            self._drop()
            return PrinterStatus(False, "unknown")
        st = query_status(p)
        if st.online is False:
            self._drop()
        return st

    def print_ticket(self, t: TicketText) -> None:
        """Print one ticket; raises :class:`PrinterError` when it could not be sent."""
        try:
            p = self._printer()
            if self.chinese == "gb18030":
                ticket_bytes_text(p, t)
            else:
                img = render_ticket_image(t, self.width, self.font_path, self.font_index)
                media = p.profile.profile_data.setdefault("media", {}).setdefault("width", {})
                media["pixels"] = self.width
                p._raw(ESC_INIT)
                p.image(img, impl="bitImageRaster", fragment_height=960)
            p.cut()
            flush = getattr(p, "flush", None)
            if callable(flush):
                flush()
        except PrinterError:
            self._drop()
            raise
        except Exception as exc:
            self._drop()
            raise PrinterError(f"printing failed: {type(exc).__name__}: {exc}") from None

    def close(self) -> None:
        self._drop()
        if self._given and self._p is not None:
            self._p.close()
