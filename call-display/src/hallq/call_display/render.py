"""Drawing the hall screen (大厅综合屏) and a window screen (窗口屏) with pygame.

The renderers draw a :class:`~hallq.call_display.core.HallView` or
:class:`~hallq.call_display.core.WindowView` onto a surface of any size; a surface taller than wide
gets the portrait layout (1080×1920), any other the landscape one (1920×1080). Sizes are fractions of
the surface, so a 1280×720 screen shows the same picture smaller. Every piece of text is fitted into its
box (smaller type, then an ellipsis), never drawn across a neighbour; each draw returns the
:class:`Box` es it filled, which the tests check for clipping and overlap.

Readable from 10 m: on a 55" 1080p screen a pixel is about 0.63 mm, so the called number (≥ 200 px,
about 13 cm) and the window it goes to (≥ 80 px) read from the back of a hall; nothing a citizen needs
is smaller than 30 px (about 2 cm).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pygame
import pygame.freetype

from .core import CallLine, HallView, WindowView

Color = tuple[int, int, int]
FontFactory = Callable[[int, bool], Any]  # (pixel size, bold) -> pygame.freetype.Font

BG = (8, 24, 52)
PANEL = (16, 40, 82)
PANEL_DARK = (10, 30, 64)
RULE = (40, 72, 128)
WHITE = (245, 247, 250)
GREY = (170, 185, 210)
AMBER = (255, 196, 40)
GREEN = (90, 230, 140)
RED = (240, 60, 60)
FLASH_BG = (255, 196, 40)
FLASH_FG = (120, 10, 10)

STATUS_COLOR = {"serving": GREEN, "idle": GREY, "paused": RED, "closed": GREY, "unknown": GREY}


@dataclass(frozen=True, slots=True)
class Box:
    """A piece of text that was drawn: what it is and where."""

    label: str
    rect: pygame.Rect
    text: str


class TextCache:
    """Fitted sizes and rendered text surfaces, so an unchanged frame costs blits, not rasterising.

    One font face per weight serves every size (a CJK face is large; one per size would cost megabytes
    each), and the rendered surfaces are kept within a byte budget, least recently used first out."""

    def __init__(self, fonts: FontFactory, budget_bytes: int = 24 * 1024 * 1024):
        self._faces = {False: fonts(32, False), True: fonts(32, True)}
        self.budget = budget_bytes
        self.bytes = 0
        self._surfaces: OrderedDict[tuple, Any] = OrderedDict()
        self._fits: dict[tuple, tuple[str, int]] = {}

    def surface(self, text: str, size: int, bold: bool, color: Color) -> Any:
        key = (text, size, bold, color)
        s = self._surfaces.get(key)
        if s is None:
            s, _ = self._faces[bold].render(text, color, size=size)
            self._surfaces[key] = s
            self.bytes += s.get_width() * s.get_height() * s.get_bytesize()
            while self.bytes > self.budget and len(self._surfaces) > 1:
                _, old = self._surfaces.popitem(last=False)
                self.bytes -= old.get_width() * old.get_height() * old.get_bytesize()
        else:
            self._surfaces.move_to_end(key)
        return s

    def rect(self, text: str, size: int, bold: bool) -> Any:
        return self._faces[bold].get_rect(text, size=size)

    def width(self, text: str, size: int, bold: bool) -> int:
        return self.rect(text, size, bold).width

    def fit(self, text: str, w: int, h: int, size: int, bold: bool, min_size: int) -> tuple[str, int]:
        """The largest size ≤ ``size`` at which ``text`` fits ``w``×``h``; an ellipsis if even ``min_size`` is too big."""
        key = (text, w, h, size, bold, min_size)
        hit = self._fits.get(key)
        if hit is not None:
            return hit
        size = max(1, size)
        min_size = min(min_size, size)
        while size > min_size:
            r = self.rect(text, size, bold)
            if r.width <= w and r.height <= h:
                break
            scale = min(w / max(1, r.width), h / max(1, r.height))
            size = max(min_size, min(size - 1, int(size * scale)))
        out = text
        if self.width(out, size, bold) > w:
            while out and self.width(out + "…", size, bold) > w:
                out = out[:-1]
            out = out + "…" if out else ""
        if len(self._fits) > 4000:
            self._fits.clear()
        self._fits[key] = (out, size)
        return out, size


class Painter:
    """Text into boxes, recording what went where."""

    def __init__(self, surface: Any, cache: TextCache):
        self.surface = surface
        self.cache = cache
        self.boxes: list[Box] = []

    def text(
        self, label: str, text: str, rect: pygame.Rect, size: int, color: Color = WHITE, *, bold: bool = False,
        align: str = "left", valign: str = "center", min_size: int = 18,
    ) -> pygame.Rect | None:
        if not text or rect.width <= 0 or rect.height <= 0:
            return None
        fitted, fsize = self.cache.fit(text, rect.width, rect.height, size, bold, min_size)
        if not fitted:
            return None
        surf = self.cache.surface(fitted, fsize, bold, color)
        r = surf.get_rect()
        if align == "center":
            r.centerx = rect.centerx
        elif align == "right":
            r.right = rect.right
        else:
            r.left = rect.left
        if valign == "top":
            r.top = rect.top
        elif valign == "bottom":
            r.bottom = rect.bottom
        else:
            r.centery = rect.centery
        r = r.clamp(rect) if r.height <= rect.height else r
        self.surface.blit(surf, r)
        self.boxes.append(Box(label, r.copy(), fitted))
        return r

    def common_size(self, texts: list[str], w: int, h: int, size: int, bold: bool = False, min_size: int = 18) -> int:
        """One size at which all ``texts`` fit ``w``×``h`` (rows of a table read better in one size)."""
        return min((self.cache.fit(t, w, h, size, bold, min_size)[1] for t in texts if t), default=size)

    def fill(self, rect: pygame.Rect, color: Color, radius: int = 0) -> None:
        pygame.draw.rect(self.surface, color, rect, border_radius=radius)


def _rows(rect: pygame.Rect, n: int, gap: int = 0) -> list[pygame.Rect]:
    if n <= 0:
        return []
    h = (rect.height - gap * (n - 1)) / n
    return [pygame.Rect(rect.x, round(rect.y + i * (h + gap)), rect.width, int(h)) for i in range(n)]


def _split_h(rect: pygame.Rect, *fractions: float, gap: int = 0) -> list[pygame.Rect]:
    out, x = [], rect.x
    total = rect.width - gap * (len(fractions) - 1)
    for f in fractions:
        w = int(total * f)
        out.append(pygame.Rect(x, rect.y, w, rect.height))
        x += w + gap
    return out


def _split_v(rect: pygame.Rect, *fractions: float, gap: int = 0) -> list[pygame.Rect]:
    out, y = [], rect.y
    total = rect.height - gap * (len(fractions) - 1)
    for f in fractions:
        h = int(total * f)
        out.append(pygame.Rect(rect.x, y, rect.width, h))
        y += h + gap
    return out


def _offline_mark(p: Painter, rect: pygame.Rect, unit: int) -> None:
    """A small red mark (in the header slot ``rect``): the controller or the broker is not reachable, and the
    picture is the last one known."""
    r = pygame.Rect(0, 0, min(rect.width, int(unit * 9)), min(rect.height, int(unit * 1.8)))
    r.center = rect.center
    p.fill(r, (90, 10, 10), radius=r.height // 2)
    pygame.draw.circle(p.surface, RED, (r.left + r.height // 2, r.centery), r.height // 4)
    inner = r.inflate(-r.height, -r.height // 4).move(r.height // 4, 0)
    p.text("offline", "离线 Offline", inner, int(unit * 1.2), WHITE, min_size=10)


def _ticker(p: Painter, rect: pygame.Rect, text: str, now: float, speed: int) -> None:
    p.fill(rect, PANEL_DARK)
    if not text:
        return
    size = int(rect.height * 0.6)
    surf = p.cache.surface(text, size, False, AMBER)
    gap = rect.width // 3
    span = surf.get_width() + gap
    offset = int(now * speed) % span
    old = p.surface.get_clip()
    p.surface.set_clip(rect)
    x = rect.right - offset
    y = rect.centery - surf.get_height() // 2
    while x > rect.left - surf.get_width():
        x -= span
    while x < rect.right:
        p.surface.blit(surf, (x, y))
        x += span
    p.surface.set_clip(old)
    p.boxes.append(Box("ticker", rect.copy(), text))


def _ticker_rect(W: int, H: int) -> pygame.Rect:
    h = int(H * (0.045 if H > W else 0.075))
    return pygame.Rect(0, H - h, W, h)


# -- the hall screen ---------------------------------------------------------------------------------------
class HallRenderer:
    def __init__(self, fonts: FontFactory, *, english: bool = True, ticker_speed: int = 120):
        self.cache = TextCache(fonts)
        self.english = english
        self.ticker_speed = ticker_speed

    def draw(self, surface: Any, view: HallView, now: float) -> list[Box]:
        W, H = surface.get_size()
        portrait = H > W
        unit = max(8, min(W, H) // 54)  # 20 px on a 1080-wide screen
        pad = unit
        p = Painter(surface, self.cache)
        surface.fill(BG)
        header_h = int(H * (0.075 if portrait else 0.1))
        ticker = _ticker_rect(W, H)
        ticker_h = ticker.height
        header = pygame.Rect(0, 0, W, header_h)
        body = pygame.Rect(pad, header_h + pad, W - 2 * pad, H - header_h - ticker_h - 2 * pad)
        self._header(p, header, view, unit)
        if not view.ready:
            p.text("connecting", "正在连接控制器… Connecting to the hall controller…", body, unit * 3, GREY,
                   align="center")
        elif portrait:
            newest, recent, windows, waiting = _split_v(body, 0.28, 0.22, 0.27, 0.23, gap=pad)
            self._newest(p, newest, view, unit, portrait=True)
            self._recent(p, recent, view.recent, unit, cols=2)
            self._windows(p, windows, view, unit)
            self._waiting(p, waiting, view, unit, cols=1 if len(view.waiting) <= 5 else 2)
        else:
            left, right = _split_h(body, 0.57, 0.43, gap=pad)
            newest, recent = _split_v(left, 0.52, 0.48, gap=pad)
            windows, waiting = _split_v(right, 0.58, 0.42, gap=pad)
            self._newest(p, newest, view, unit, portrait=False)
            self._recent(p, recent, view.recent, unit, cols=2)
            self._windows(p, windows, view, unit)
            self._waiting(p, waiting, view, unit, cols=1 if len(view.waiting) <= 4 else 2)
        _ticker(p, ticker, view.ticker, now, self.ticker_speed)
        return p.boxes

    def ticker(self, surface: Any, view: HallView, now: float) -> pygame.Rect:
        """Redraw only the scrolling line (between whole frames); returns the rectangle to update."""
        rect = _ticker_rect(*surface.get_size())
        _ticker(Painter(surface, self.cache), rect, view.ticker, now, self.ticker_speed)
        return rect

    def _header(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int) -> None:
        p.fill(rect, PANEL_DARK)
        inner = rect.inflate(-2 * unit, -unit // 2)
        title, mark, clock = _split_h(inner, 0.6, 0.16, 0.24, gap=unit)
        if view.offline:
            _offline_mark(p, mark, unit)
        if self.english and view.title_en:
            zh, en = _split_v(title, 0.62, 0.38)
            p.text("title", view.title, zh, int(rect.height * 0.5), WHITE, bold=True)
            p.text("title_en", view.title_en, en, int(rect.height * 0.3), GREY)
        else:
            p.text("title", view.title or "hallq", title, int(rect.height * 0.55), WHITE, bold=True)
        t, d = _split_v(clock, 0.62, 0.38)
        p.text("clock", view.clock, t, int(rect.height * 0.55), WHITE, bold=True, align="right")
        p.text("date", view.date, d, int(rect.height * 0.3), GREY, align="right")

    def _newest(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int, portrait: bool) -> None:
        flash = view.flashing and view.flash_on
        p.fill(rect, FLASH_BG if flash else PANEL, radius=unit)
        fg = FLASH_FG if flash else AMBER
        sub = FLASH_FG if flash else WHITE
        inner = rect.inflate(-2 * unit, -unit)
        label, number, where, english = _split_v(inner, 0.10, 0.58, 0.19, 0.13)
        c = view.newest
        again = c is not None and c.recall > 0
        if self.english:
            text = "再次呼叫 · Calling again" if again else "请 · Now calling"
        else:
            text = "再次呼叫" if again else "请"
        p.text("newest_label", text, label, int(label.height * 0.85), sub if flash else GREY)
        if c is None:
            p.text("newest_none", "暂无呼叫 · No calls yet" if self.english else "暂无呼叫", number,
                   int(number.height * 0.4), GREY, align="center")
            return
        p.text("newest_ticket", c.ticket, number, int(number.height * 1.3), fg, bold=True, align="center")
        p.text("newest_window", f"请到 {c.window}号窗口 办理", where, int(where.height * 0.95), sub, bold=True,
               align="center")
        if self.english:
            en = f"Number {c.ticket}, please go to window {c.window}"
            p.text("newest_en", en, english, int(english.height * 0.9), sub, align="center")

    def _recent(self, p: Painter, rect: pygame.Rect, lines: tuple[CallLine, ...], unit: int, cols: int) -> None:
        p.fill(rect, PANEL, radius=unit)
        inner = rect.inflate(-2 * unit, -unit)
        title_h = max(unit * 2, int(inner.height * 0.14))
        title = pygame.Rect(inner.x, inner.y, inner.width, title_h)
        p.text("recent_title", "最近呼叫 · Recent calls" if self.english else "最近呼叫", title,
               int(title_h * 0.8), GREY)
        grid = pygame.Rect(inner.x, inner.y + title_h, inner.width, inner.height - title_h)
        per_col = max(1, -(-len(lines) // cols)) if lines else 1
        per_col = max(per_col, 4)
        columns = _split_h(grid, *([1 / cols] * cols), gap=unit * 2)
        for i, line in enumerate(lines[: per_col * cols]):
            row = _rows(columns[i // per_col], per_col, gap=unit // 2)[i % per_col]
            t, w = _split_h(row, 0.48, 0.52, gap=unit)
            p.text(f"recent_ticket_{i}", line.ticket, t, int(row.height * 1.2), AMBER, bold=True)
            p.text(f"recent_window_{i}", f"→ {line.window}号窗口", w, int(row.height * 0.7), WHITE, min_size=16)

    def _windows(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int) -> None:
        p.fill(rect, PANEL, radius=unit)
        inner = rect.inflate(-2 * unit, -unit)
        title_h = max(unit * 2, int(inner.height * 0.11))
        p.text("windows_title", "窗口 · Windows" if self.english else "窗口",
               pygame.Rect(inner.x, inner.y, inner.width, title_h), int(title_h * 0.8), GREY)
        area = pygame.Rect(inner.x, inner.y + title_h, inner.width, inner.height - title_h)
        n = len(view.windows)
        if n == 0:
            return
        cols = 1 if n <= 7 else 2
        per_col = -(-n // cols)
        columns = _split_h(area, *([1 / cols] * cols), gap=unit * 2)
        rows = _rows(columns[0], per_col, gap=max(1, unit // 4))
        name0, _ = _split_h(rows[0], 0.66, 0.34, gap=unit)
        size = p.common_size([w.name for w in view.windows], name0.width, name0.height,
                             min(int(rows[0].height * 0.62), unit * 3), min_size=14)
        for i, w in enumerate(view.windows):
            row = _rows(columns[i // per_col], per_col, gap=max(1, unit // 4))[i % per_col]
            if i % per_col:
                pygame.draw.line(p.surface, RULE, (row.left, row.top - 1), (row.right, row.top - 1))
            name, now_serving = _split_h(row, 0.66, 0.34, gap=unit)
            p.text(f"window_name_{w.no}", w.name, name, size, WHITE, min_size=14)
            if w.status == "serving" and w.ticket:
                p.text(f"window_ticket_{w.no}", w.ticket, now_serving, int(row.height * 0.8), AMBER, bold=True,
                       align="right")
            else:
                zh = {"paused": "暂停服务", "idle": "空闲", "closed": "未开放"}.get(w.status, w.status)
                p.text(f"window_status_{w.no}", zh, now_serving, size, STATUS_COLOR.get(w.status, GREY),
                       align="right", min_size=14)

    def _waiting(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int, cols: int) -> None:
        p.fill(rect, PANEL, radius=unit)
        inner = rect.inflate(-2 * unit, -unit)
        title_h = max(unit * 2, int(inner.height * 0.16))
        p.text("waiting_title", "等候人数 · Waiting" if self.english else "等候人数",
               pygame.Rect(inner.x, inner.y, inner.width, title_h), int(title_h * 0.8), GREY)
        area = pygame.Rect(inner.x, inner.y + title_h, inner.width, inner.height - title_h)
        n = len(view.waiting)
        if n == 0:
            return
        per_col = -(-n // cols)
        columns = _split_h(area, *([1 / cols] * cols), gap=unit * 2)
        row0 = _rows(columns[0], per_col, gap=max(1, unit // 4))[0]
        name0 = _split_h(row0, 0.56, 0.2, 0.24, gap=unit // 2)[0]
        zh0 = _split_v(name0, 0.6, 0.4)[0] if self.english else name0
        zh_size = p.common_size([c.name for c in view.waiting], zh0.width, zh0.height,
                                int(zh0.height * 0.95) if self.english else min(int(row0.height * 0.62), unit * 3),
                                min_size=14)
        for i, c in enumerate(view.waiting):
            row = _rows(columns[i // per_col], per_col, gap=max(1, unit // 4))[i % per_col]
            name, count, est = _split_h(row, 0.56, 0.2, 0.24, gap=unit // 2)
            size = min(int(row.height * 0.62), unit * 3)
            if self.english and c.name_en:
                zh, en = _split_v(name, 0.6, 0.4)
                p.text(f"waiting_name_{c.code}", c.name, zh, zh_size, WHITE, min_size=14)
                p.text(f"waiting_name_en_{c.code}", c.name_en, en, int(en.height * 0.9), GREY, min_size=10)
            else:
                p.text(f"waiting_name_{c.code}", c.name, name, zh_size, WHITE, min_size=14)
            p.text(f"waiting_count_{c.code}", f"{c.waiting}人", count, int(row.height * 0.8), AMBER, bold=True,
                   align="right", min_size=14)
            p.text(f"waiting_est_{c.code}", f"约{c.est_wait_min}分钟", est, int(size * 0.85), GREY,
                   align="right", min_size=12)


# -- the window screen --------------------------------------------------------------------------------------
class WindowRenderer:
    def __init__(self, fonts: FontFactory, *, english: bool = True):
        self.cache = TextCache(fonts)
        self.english = english

    def draw(self, surface: Any, view: WindowView, now: float) -> list[Box]:
        W, H = surface.get_size()
        portrait = H > W
        unit = max(8, min(W, H) // 54)
        p = Painter(surface, self.cache)
        flash = view.flashing and view.flash_on
        surface.fill(FLASH_BG if flash else BG)
        fg = FLASH_FG if flash else WHITE
        header_h = int(H * (0.16 if portrait else 0.2))
        footer_h = int(H * (0.12 if portrait else 0.16))
        header = pygame.Rect(0, 0, W, header_h)
        footer = pygame.Rect(0, H - footer_h, W, footer_h)
        middle = pygame.Rect(unit, header_h, W - 2 * unit, H - header_h - footer_h)

        if not flash:
            p.fill(header, PANEL_DARK)
        hin = header.inflate(-2 * unit, -unit)
        name, mark, clock = _split_h(hin, 0.64, 0.16, 0.2, gap=unit)
        if view.offline:
            _offline_mark(p, mark, unit)
        if self.english and view.name_en:
            zh, en = _split_v(name, 0.65, 0.35)
            p.text("window_name", view.name, zh, int(zh.height * 0.95), fg, bold=True)
            p.text("window_name_en", view.name_en, en, int(en.height * 0.85), FLASH_FG if flash else GREY)
        else:
            p.text("window_name", view.name, name, int(name.height * 0.7), fg, bold=True)
        p.text("clock", view.clock, clock, int(clock.height * 0.5), fg, align="right")

        if view.notice is not None:
            middle, band = _split_v(middle, 0.72, 0.28)
        if view.status == "serving" and view.ticket:
            label, number = _split_v(middle, 0.16, 0.84)
            again = view.flashing and view.recalls > 0
            zh_label = "再次呼叫" if again else "正在办理"
            en_label = "Calling again" if again else "Now serving"
            p.text("serving_label", f"{zh_label} · {en_label}" if self.english else zh_label, label,
                   int(label.height * 0.8), FLASH_FG if flash else GREY, align="center")
            p.text("ticket", view.ticket, number, int(number.height * 1.15), FLASH_FG if flash else AMBER, bold=True,
                   align="center")
        else:
            big, small = _split_v(middle, 0.7, 0.3)
            if view.status == "paused":
                zh, en = "暂停服务", "Window paused"
            elif view.status == "idle":
                zh, en = "请稍候", "Waiting for the next number"
            elif view.status == "closed":
                zh, en = "未开放", "Window closed"
            elif view.status == "serving":
                zh, en = "正在办理", "Serving"
            else:
                zh, en = "正在连接…", "Connecting…"
            p.text("status_big", zh, big, int(big.height * 0.6), STATUS_COLOR.get(view.status, GREY), bold=True,
                   align="center")
            if self.english:
                p.text("status_big_en", en, small, min(int(small.height * 0.3), unit * 5), GREY, align="center")

        if view.notice is not None:
            n = view.notice
            p.fill(band, RED if n.error else PANEL, radius=unit)
            bin_ = band.inflate(-2 * unit, -unit // 2)
            if self.english:
                zh_r, en_r = _split_v(bin_, 0.6, 0.4)
                p.text("notice", n.zh, zh_r, int(zh_r.height * 0.85), WHITE, bold=True, align="center")
                p.text("notice_en", n.en, en_r, int(en_r.height * 0.8), WHITE, align="center")
            else:
                p.text("notice", n.zh, bin_, int(bin_.height * 0.7), WHITE, bold=True, align="center")

        if not flash:
            p.fill(footer, PANEL_DARK)
        fin = footer.inflate(-2 * unit, -unit)
        status, staff = _split_h(fin, 0.45, 0.55, gap=unit)
        st = f"{view.status_zh} {view.status_en}" if self.english and view.status_zh else view.status_zh
        if st:
            dot = pygame.Rect(status.x, status.centery - unit, 2 * unit, 2 * unit)
            pygame.draw.circle(surface, STATUS_COLOR.get(view.status, GREY), dot.center, unit)
            p.text("status", st, pygame.Rect(dot.right + unit, status.y, status.width - dot.width - unit,
                                             status.height), int(status.height * 0.6), fg)
        if view.staff:
            who = f"工作人员 {view.staff}"
            p.text("staff", who, staff, int(staff.height * 0.6), fg, align="right")
        return p.boxes
