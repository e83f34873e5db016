"""Drawing the hall screen (大厅综合屏) and a window screen (窗口屏) with pygame.

The renderers draw a :class:`~hallq.call_display.core.HallView` or
:class:`~hallq.call_display.core.WindowView` onto a surface of any size; a surface taller than wide
gets the portrait layout (1080×1920), any other the landscape one (1920×1080). Sizes are fractions of
the surface, so a 1280×720 screen shows the same picture smaller. Every piece of text is fitted into its
box (smaller type, then an ellipsis), never drawn across a neighbour; each draw returns the
:class:`Box` es it filled, which the tests check for clipping and overlap.

Readable from 10 m (:data:`MIN_GLYPH_PX`): on a 55" 1080p screen a pixel is about 0.63 mm and one
minute of arc at 10 m is 2.9 mm, about 4.6 px. A letter a 20/20 eye just resolves is 5′ tall; text meant
to be read, not just resolved, needs more. So, measured as the ink height of a capital (H) or of a
full-height ideograph (国), whichever the text is written in, at 1080 px on the screen's short side:

- the called number ≥ 200 px (13 cm) and the window it goes to ≥ 56 px (3.5 cm): read from anywhere in the hall;
- everything a citizen acts on (numbers in lists, window names and states, category names, waiting counts,
  the hall's name, the clock) ≥ 32 px (2 cm, 7′ at 10 m);
- every other label (the English beside the Chinese, panel titles, estimates, the date, the scrolling
  line) ≥ 26 px (1.6 cm, 5.6′ at 10 m): never smaller than a 20/20 letter at the back of the hall.

A text too long for its box at its floor is cut with an ellipsis rather than shrunk below it. The layout
tests check every box against these floors, and that a role's boxes share one size.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pygame
import pygame.freetype
from hallq.shared.wording import wait_phrase

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

#: Minimum glyph height in pixels per text role at 1080 px on the screen's short side (see the module
#: docstring); a role is a box's label without its window or category suffix.
FAR_TICKET, FAR_WINDOW, PRIMARY, SECONDARY = 200, 56, 32, 26
MIN_GLYPH_PX: dict[str, int] = {
    "newest_ticket": FAR_TICKET, "newest_window": FAR_WINDOW,
    **dict.fromkeys(("title", "clock", "recent_ticket", "recent_window", "window_name", "window_ticket",
                     "window_status", "waiting_name", "waiting_count", "newest_none", "connecting", "problem"),
                    PRIMARY),
    **dict.fromkeys(("title_en", "date", "newest_label", "newest_en", "recent_title", "windows_title",
                     "waiting_title", "waiting_name_en", "waiting_est", "ticker", "offline", "problem_en"),
                    SECONDARY),
}


def role_of(label: str) -> str:
    """A box's text role: its label without the window number, category code or line index after ``:``."""
    return label.partition(":")[0]


STATUS_COLOR = {"serving": GREEN, "idle": GREY, "paused": RED, "closed": GREY, "unknown": GREY}


@dataclass(frozen=True, slots=True)
class Box:
    """A piece of text that was drawn: what it is and where."""

    label: str
    rect: pygame.Rect
    text: str
    size: int = 0  # the font's pixel size it was drawn in
    bold: bool = False


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


def _has_cjk(text: str) -> bool:
    return any("\u2e80" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" or "\uff00" <= ch <= "\uffef"
               for ch in text)


def glyph_height(cache: TextCache, text: str, size: int, bold: bool = False) -> int:
    """How tall ``text`` reads at ``size``: the ink height of a capital (H) when it has Latin letters or digits
    (they are the smaller, "12人" reads by its digits), else of a full-height ideograph (国): the height the eye
    must resolve from afar, whatever letters the text happens to have."""
    latin = any(ch.isascii() and ch.isalnum() for ch in text) or not _has_cjk(text)
    return cache.rect("H" if latin else "国", size, bold).height


class Painter:
    """Text into boxes, recording what went where."""

    def __init__(self, surface: Any, cache: TextCache, floors: dict[str, int] | None = None, scale: float = 1.0):
        self.surface = surface
        self.cache = cache
        self.boxes: list[Box] = []
        self.floors = floors or {}  # role -> minimum glyph height at 1080 px
        self.scale = scale  # the screen's short side / 1080

    def floor_size(self, label: str, text: str, bold: bool = False) -> int:
        """The smallest font size at which ``text`` reaches its role's minimum glyph height (0: no floor)."""
        floor = self.floors.get(role_of(label))
        if not floor:
            return 0
        want = max(1, round(floor * self.scale))
        per_px = glyph_height(self.cache, text, 100, bold) / 100
        size = max(1, int(want / per_px))
        while glyph_height(self.cache, text, size, bold) < want:
            size += 1
        return size

    def text(
        self, label: str, text: str, rect: pygame.Rect, size: int, color: Color = WHITE, *, bold: bool = False,
        align: str = "left", valign: str = "center", min_size: int = 18,
    ) -> pygame.Rect | None:
        if not text or rect.width <= 0 or rect.height <= 0:
            return None
        floor = self.floor_size(label, text, bold)
        if floor:
            min_size, size = max(min_size, floor), max(size, floor)
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
        self.boxes.append(Box(label, r.copy(), fitted, fsize, bold))
        return r

    def common_size(self, texts: list[str], w: int, h: int, size: int, bold: bool = False, min_size: int = 18,
                    label: str = "") -> int:
        """One size at which all ``texts`` fit ``w``×``h`` (rows of a table read better in one size), never below
        the floor of ``label``'s role (a text too long then gets an ellipsis)."""
        floor = max((self.floor_size(label, t, bold) for t in texts if t), default=0) if label else 0
        min_size, size = max(min_size, floor), max(size, floor)
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
    """A red mark (in the header slot ``rect``): the controller or the broker is not reachable, and the
    picture is the last one known. "离线 Offline" where it fits at its legible size, else "离线"."""
    for text in ("离线 Offline", "离线"):
        size = max(p.floor_size("offline", text), int(unit * 1.2))
        h = int(size * 1.5)
        w = p.cache.width(text, size, False) + 2 * h
        if w <= rect.width or text == "离线":
            break
    r = pygame.Rect(0, 0, min(rect.width, w), min(rect.height, h))
    r.center = rect.center
    p.fill(r, (90, 10, 10), radius=r.height // 2)
    pygame.draw.circle(p.surface, RED, (r.left + r.height // 2, r.centery), r.height // 4)
    inner = pygame.Rect(r.left + r.height, r.top, r.width - r.height * 3 // 2, r.height)
    p.text("offline", text, inner, size, WHITE, align="center")


def _problem(p: Painter, rect: pygame.Rect, problem: tuple[str, str], unit: int) -> None:
    """What is wrong with this display's configuration, in red, where the picture would be."""
    box = rect.inflate(-2 * unit, -2 * unit)
    p.fill(box, (90, 10, 10), radius=unit)
    zh, en = _split_v(box.inflate(-2 * unit, -2 * unit), 0.55, 0.45, gap=unit)
    _wrapped(p, "problem", problem[0], zh, unit * 3, WHITE, bold=True)
    _wrapped(p, "problem_en", problem[1], en, int(unit * 2.4), WHITE)


def _wrapped(p: Painter, label: str, text: str, rect: pygame.Rect, size: int, color: Color, *,
             bold: bool = False) -> None:
    """``text`` in lines of ``size`` (words for English, characters for Chinese), centred in ``rect``; one
    fitted line when the lines would not fit its height."""
    lines: list[str] = []
    for w in re.findall(r"[\x21-\x7e]+|\s+|.", text):  # Latin words whole, CJK characters one by one
        if lines and p.cache.width(lines[-1] + w, size, bold) <= rect.width:
            lines[-1] += w
        elif not w.isspace():
            lines.append(w)
    lines = [line.rstrip() for line in lines]
    line_h = int(size * 1.35)
    if len(lines) * line_h > rect.height:
        p.text(label, text, rect, size, color, bold=bold, align="center", min_size=14)
        return
    top = rect.centery - len(lines) * line_h // 2
    for i, line in enumerate(lines):
        row = pygame.Rect(rect.x, top + i * line_h, rect.width, line_h)
        p.text(label if i == 0 else f"{label}:{i}", line, row, size, color, bold=bold, align="center", min_size=14)


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
    p.boxes.append(Box("ticker", rect.copy(), text, size))


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
        p = Painter(surface, self.cache, MIN_GLYPH_PX, min(W, H) / 1080)
        surface.fill(BG)
        header_h = int(H * (0.075 if portrait else 0.11))
        ticker = _ticker_rect(W, H)
        ticker_h = ticker.height
        header = pygame.Rect(0, 0, W, header_h)
        body = pygame.Rect(pad, header_h + pad, W - 2 * pad, H - header_h - ticker_h - 2 * pad)
        self._header(p, header, view, unit)
        if view.problem is not None:
            _problem(p, body, view.problem, unit)
        elif not view.ready:
            p.text("connecting", "正在连接控制器… Connecting to the hall controller…", body, unit * 3, GREY,
                   align="center")
        elif portrait:
            win_rows, wait_rows = self._rows_needed(view, wide=True)
            rest = 1 - 0.27 - 0.2
            share = win_rows / (win_rows + wait_rows)
            newest, recent, windows, waiting = _split_v(body, 0.27, 0.2, rest * share, rest * (1 - share), gap=pad)
            self._newest(p, newest, view, unit, portrait=True)
            self._recent(p, recent, view.recent, unit, cols=2)
            self._windows(p, windows, view, unit)
            self._waiting(p, waiting, view, unit, self._waiting_cols(len(view.waiting), wide=True))
        else:
            left, right = _split_h(body, 0.5, 0.5, gap=pad)
            newest, recent = _split_v(left, 0.52, 0.48, gap=pad)
            win_rows, wait_rows = self._rows_needed(view, wide=False)
            share = min(0.62, max(0.3, win_rows / (win_rows + wait_rows)))
            windows, waiting = _split_v(right, share, 1 - share, gap=pad)
            self._newest(p, newest, view, unit, portrait=False)
            self._recent(p, recent, view.recent, unit, cols=2)
            self._windows(p, windows, view, unit)
            self._waiting(p, waiting, view, unit, self._waiting_cols(len(view.waiting), wide=False))
        _ticker(p, ticker, view.ticker, now, self.ticker_speed)
        return p.boxes

    def _rows_needed(self, view: HallView, wide: bool) -> tuple[float, float]:
        """How much height the windows and the waiting table ask for, in rows of one window's height (a
        category with its English name takes two lines), plus a title each."""
        n = len(view.windows)
        win = -(-n // (1 if n <= 7 else 2)) + 1
        cats = len(view.waiting)
        two_lines = self.english and any(c.name_en for c in view.waiting)
        wait = -(-cats // self._waiting_cols(cats, wide)) * (1.9 if two_lines else 1) + 1
        return float(win), float(wait)

    @staticmethod
    def _waiting_cols(n: int, wide: bool) -> int:
        return 1 if n <= (4 if wide else 6) else 2

    def ticker(self, surface: Any, view: HallView, now: float) -> pygame.Rect:
        """Redraw only the scrolling line (between whole frames); returns the rectangle to update."""
        W, H = surface.get_size()
        rect = _ticker_rect(W, H)
        _ticker(Painter(surface, self.cache, MIN_GLYPH_PX, min(W, H) / 1080), rect, view.ticker, now,
                self.ticker_speed)
        return rect

    def _header(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int) -> None:
        p.fill(rect, PANEL_DARK)
        inner = rect.inflate(-2 * unit, -unit // 2)
        portrait = rect.width < rect.height * 10
        title, mark, clock = _split_h(inner, *((0.52, 0.15, 0.33) if portrait else (0.6, 0.16, 0.24)), gap=unit)
        if view.offline:
            _offline_mark(p, mark, unit)
        if self.english and view.title_en:
            zh, en = _split_v(title, 0.58, 0.42)
            p.text("title", view.title, zh, int(zh.height * 0.9), WHITE, bold=True)
            p.text("title_en", view.title_en, en, int(en.height * 0.85), GREY)
        else:
            p.text("title", view.title or "hallq", title, int(rect.height * 0.55), WHITE, bold=True)
        t, d = _split_v(clock, 0.58, 0.42)
        p.text("clock", view.clock, t, int(t.height * 1.1), WHITE, bold=True, align="right")
        p.text("date", view.date, d, int(d.height * 0.85), GREY, align="right")

    def _newest(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int, portrait: bool) -> None:
        flash = view.flashing and view.flash_on
        p.fill(rect, FLASH_BG if flash else PANEL, radius=unit)
        fg = FLASH_FG if flash else AMBER
        sub = FLASH_FG if flash else WHITE
        inner = rect.inflate(-2 * unit, -unit)
        label, number, where, english = _split_v(inner, 0.1, 0.54, 0.21, 0.15)
        c = view.newest
        again = c is not None and c.recall > 0
        if self.english:
            text = "再次呼叫 · Calling again" if again else "正在呼叫 · Now calling"
        else:
            text = "再次呼叫" if again else "正在呼叫"
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
        row0 = _rows(columns[0], per_col, gap=unit // 2)[0]
        t0, w0 = _split_h(row0, 0.44, 0.56, gap=unit)
        shown = lines[: per_col * cols]
        t_size = p.common_size([x.ticket for x in shown], t0.width, t0.height, int(row0.height * 1.2), bold=True,
                               label="recent_ticket")
        w_size = p.common_size([f"→ {x.window}号窗口" for x in shown], w0.width, w0.height, int(row0.height * 0.7),
                               label="recent_window")
        for i, line in enumerate(shown):
            row = _rows(columns[i // per_col], per_col, gap=unit // 2)[i % per_col]
            t, w = _split_h(row, 0.44, 0.56, gap=unit)
            p.text(f"recent_ticket:{i}", line.ticket, t, t_size, AMBER, bold=True)
            p.text(f"recent_window:{i}", f"→ {line.window}号窗口", w, w_size, WHITE)

    def _windows(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int) -> None:
        p.fill(rect, PANEL, radius=unit)
        inner = rect.inflate(-2 * unit, -unit)
        n = len(view.windows)
        cols = 1 if n <= 7 else 2
        per_col = max(1, -(-n // cols))
        title_h = max(unit * 2, min(int(inner.height / (per_col + 1)), unit * 3))
        p.text("windows_title", "窗口 · Windows" if self.english else "窗口",
               pygame.Rect(inner.x, inner.y, inner.width, title_h), int(title_h * 0.8), GREY)
        area = pygame.Rect(inner.x, inner.y + title_h, inner.width, inner.height - title_h)
        if n == 0:
            return
        columns = _split_h(area, *([1 / cols] * cols), gap=unit * 2)
        rows = _rows(columns[0], per_col, gap=max(1, unit // 4))
        name0, state0 = _split_h(rows[0], 0.64, 0.36, gap=unit)
        size = p.common_size([w.name for w in view.windows], name0.width, name0.height,
                             min(int(rows[0].height * 0.7), unit * 3), label="window_name")
        states = [_WINDOW_STATUS_ZH.get(w.status, w.status) for w in view.windows]
        st_size = p.common_size(states, state0.width, state0.height, size, label="window_status")
        for i, w in enumerate(view.windows):
            row = _rows(columns[i // per_col], per_col, gap=max(1, unit // 4))[i % per_col]
            if i % per_col:
                pygame.draw.line(p.surface, RULE, (row.left, row.top - 1), (row.right, row.top - 1))
            name, now_serving = _split_h(row, 0.64, 0.36, gap=unit)
            p.text(f"window_name:{w.no}", w.name, name, size, WHITE)
            if w.status == "serving" and w.ticket:
                p.text(f"window_ticket:{w.no}", w.ticket, now_serving, int(row.height * 0.8), AMBER, bold=True,
                       align="right")
            else:
                p.text(f"window_status:{w.no}", states[i], now_serving, st_size, STATUS_COLOR.get(w.status, GREY),
                       align="right")

    def _waiting(self, p: Painter, rect: pygame.Rect, view: HallView, unit: int, cols: int) -> None:
        """Per category: its name, how many wait and the estimate on one line, its English name under them."""
        p.fill(rect, PANEL, radius=unit)
        inner = rect.inflate(-2 * unit, -unit)
        n = len(view.waiting)
        per_col = max(1, -(-n // cols))
        two_lines = self.english and any(c.name_en for c in view.waiting)
        title_h = max(unit * 2, min(int(inner.height / (per_col * (1.9 if two_lines else 1) + 1)), unit * 3))
        p.text("waiting_title", "等候人数 · Waiting" if self.english else "等候人数",
               pygame.Rect(inner.x, inner.y, inner.width, title_h), int(title_h * 0.8), GREY)
        area = pygame.Rect(inner.x, inner.y + title_h, inner.width, inner.height - title_h)
        if n == 0:
            return
        columns = _split_h(area, *([1 / cols] * cols), gap=unit * 2)
        rows = [_rows(col, per_col, gap=max(1, unit // 3)) for col in columns]

        def parts(row: pygame.Rect) -> tuple[pygame.Rect, pygame.Rect, pygame.Rect, pygame.Rect | None]:
            top, en = _split_v(row, 0.58, 0.42) if two_lines else (row, None)
            name, count, est = _split_h(top, 0.46, 0.2, 0.34, gap=unit // 2)
            return name, count, est, en

        name0, count0, est0, en0 = parts(rows[0][0])
        counts = [f"{c.waiting}人" for c in view.waiting]
        ests = [c.not_serving[0] if c.not_serving else wait_phrase(c.waiting, c.est_wait_min, c.est_wait_range)[0]
                for c in view.waiting]
        name_size = p.common_size([c.name for c in view.waiting], name0.width, name0.height,
                                  min(int(name0.height * 0.95), unit * 3), label="waiting_name")
        count_size = p.common_size(counts, count0.width, count0.height, int(count0.height * 1.0), bold=True,
                                   label="waiting_count")
        est_size = p.common_size(ests, est0.width, est0.height, int(est0.height * 0.8), label="waiting_est")
        en_size = (p.common_size([c.name_en or "" for c in view.waiting], en0.width, en0.height,
                                 int(en0.height * 0.9), label="waiting_name_en") if en0 is not None else 0)
        for i, c in enumerate(view.waiting):
            name, count, est, en = parts(rows[i // per_col][i % per_col])
            p.text(f"waiting_name:{c.code}", c.name, name, name_size, WHITE)
            p.text(f"waiting_count:{c.code}", counts[i], count, count_size, AMBER, bold=True, align="right")
            p.text(f"waiting_est:{c.code}", ests[i], est, est_size, GREY, align="right", min_size=est_size)
            if en is not None and c.name_en:
                p.text(f"waiting_name_en:{c.code}", c.name_en, en, en_size, GREY)


_WINDOW_STATUS_ZH = {"paused": "暂停服务", "idle": "空闲", "closed": "未开放", "serving": "正在办理"}


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
        if view.problem is not None:
            _problem(p, middle, view.problem, unit)
        elif view.status == "serving" and view.ticket:
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
