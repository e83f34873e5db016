"""Drawing the kiosk's screens with pygame, from the core's state alone.

:meth:`KioskUI.draw` paints one frame and remembers where each touch target is; :meth:`KioskUI.hit` turns a
touch position into the core's :class:`~hallq.kiosk.core.Press`. Layouts adapt to landscape (1920×1080)
and portrait (1080×1920); touch targets are at least 120 px high. Rendered text is cached, so a frame
costs little more than the blits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from hallq.shared.wording import wait_line

from .core import Press, State, category_name, hall_name, no_hall, priority_of
from .texts import ERRORS, t

BG = (244, 246, 250)
HEAD = (23, 72, 150)
WHITE = (255, 255, 255)
INK = (28, 33, 43)
MUTED = (96, 106, 122)
ACCENT = (23, 72, 150)
CARD = (255, 255, 255)
CARD_EDGE = (196, 208, 228)
OK = (22, 128, 61)
WARN = (190, 40, 40)
AMBER = (176, 104, 0)
BANNER = (255, 244, 214)


def opening_text(s: State, now: datetime) -> str:
    """When numbers are issued again: today / tomorrow / on a date, at the opening time."""
    at = s.opens_at
    assert at is not None
    hhmm = at.strftime("%H:%M")
    if s.opens_in_days == 0:
        return t("opens_today", s.lang).format(time=hhmm)
    if s.opens_in_days == 1:
        return t("opens_tomorrow", s.lang).format(time=hhmm)
    return t("opens_on", s.lang).format(date=at.strftime("%m-%d"), time=hhmm)


@dataclass(frozen=True, slots=True)
class Hit:
    rect: tuple[int, int, int, int]
    press: Press


class KioskUI:
    def __init__(self, screen: Any):
        import pygame

        self.pg = pygame
        self.screen = screen
        self.surface = screen.surface
        self.w, self.h = screen.size
        self.portrait = self.h > self.w
        self.u = min(self.w, self.h) / 1080  # scale unit: 1.0 at 1080 px on the short side
        self.hits: list[Hit] = []
        self.drawn: list[Any] = []  # the rectangles of this frame's texts (tests check nothing is clipped)
        self._cache: dict[tuple[str, int, bool, tuple[int, int, int]], Any] = {}
        self._fits: dict[tuple[str, int, int], tuple[list[str], int]] = {}

    # -- primitives ------------------------------------------------------------------------------------
    def px(self, v: float) -> int:
        return max(1, int(v * self.u))

    def text_surface(self, text: str, size: int, color: tuple[int, int, int] = INK, bold: bool = False) -> Any:
        key = (text, size, bold, color)
        surf = self._cache.get(key)
        if surf is None:
            if len(self._cache) >= 600:  # least recently used out: the labels that stay are kept
                del self._cache[next(iter(self._cache))]
            surf, _ = self.screen.font(size, bold).render(text, color)
        else:
            del self._cache[key]
        self._cache[key] = surf
        return surf

    def text(self, text: str, size: int, pos: tuple[int, int], color: tuple[int, int, int] = INK,
             bold: bool = False, anchor: str = "topleft", max_w: int | None = None) -> Any:
        if not text:
            return self.pg.Rect(pos, (0, 0))
        surf = self.text_surface(text, size, color, bold)
        while max_w is not None and surf.get_width() > max_w and size > 12:
            size = int(size * 0.9)
            surf = self.text_surface(text, size, color, bold)
        rect = surf.get_rect(**{anchor: pos})
        self.surface.blit(surf, rect)
        self.drawn.append(rect)
        return rect

    def wrap(self, text: str, size: int, max_w: int, bold: bool = False) -> list[str]:
        font = self.screen.font(size, bold)
        words = text.split(" ") if " " in text and text.isascii() else list(text)
        sep = " " if " " in text and text.isascii() else ""
        lines: list[str] = []
        cur = ""
        for w in words:
            cand = f"{cur}{sep}{w}" if cur else w
            if font.get_rect(cand).width <= max_w or not cur:
                cur = cand
            else:
                lines.append(cur)
                cur = w
        if cur:
            lines.append(cur)
        return lines

    def button(self, rect: Any, label: str, press: Press, *, size: int | None = None, fill=ACCENT,
               color=WHITE, sub: str | None = None, edge: tuple[int, int, int] | None = None) -> None:
        pg = self.pg
        r = pg.Rect(rect)
        pg.draw.rect(self.surface, fill, r, border_radius=self.px(18))
        if edge:
            pg.draw.rect(self.surface, edge, r, width=self.px(4), border_radius=self.px(18))
        size = size or self.px(48)
        if sub:
            sub_size = int(size * 0.55)  # the same on every card, however its name had to shrink
            lines, size = self._fit(label, size, r.width - 40)
            gap = self.px(8)

            def block() -> int:
                return len(lines) * int(size * 1.25) + gap + int(sub_size * 1.3)

            room = r.height - 2 * self.px(12)
            if block() > room:  # a small card: everything smaller, still inside it
                scale = room / block()
                size, sub_size = max(12, int(size * scale)), max(12, int(sub_size * scale))
            y = r.centery - block() // 2
            for line in lines:
                self.text(line, size, (r.centerx, y), color, True, "midtop", r.width - 20)
                y += int(size * 1.25)
            self.text(sub, sub_size, (r.centerx, y + gap), MUTED if fill == CARD else color, False, "midtop",
                      r.width - 20)
        else:
            self.text(label, size, r.center, color, True, "center", r.width - 20)
        self.hits.append(Hit((r.x, r.y, r.width, r.height), press))

    def _fit(self, label: str, size: int, width: int) -> tuple[list[str], int]:
        """The lines and size a card's name needs to fit ``width`` (one line, else two or three, smaller)."""
        key = (label, size, width)
        fit = self._fits.get(key)
        if fit is None:
            fit = ([label], size)
            if self.screen.font(size, True).get_rect(label).width > width:
                for scale, most in ((0.75, 2), (0.6, 3)):
                    wrapped = self.wrap(label, int(size * scale), width, bold=True)
                    if len(wrapped) <= most:
                        fit = (wrapped, int(size * scale))
                        break
            if len(self._fits) > 200:
                self._fits.clear()
            self._fits[key] = fit
        return list(fit[0]), fit[1]

    # -- touches ---------------------------------------------------------------------------------------
    def hit(self, pos: tuple[int, int]) -> Press | None:
        for h in reversed(self.hits):
            x, y, w, hh = h.rect
            if x <= pos[0] < x + w and y <= pos[1] < y + hh:
                return h.press
        return None

    def find(self, action: str, arg: str | None = None) -> tuple[int, int]:
        """The centre of the target for ``action`` (tests and the demo touch it like a finger would)."""
        for h in self.hits:
            if h.press.action == action and (arg is None or h.press.arg == arg):
                x, y, w, hh = h.rect
                return x + w // 2, y + hh // 2
        raise LookupError(f"no {action} {arg or ''} on this screen")

    # -- frames ----------------------------------------------------------------------------------------
    def draw(self, state: State, now: datetime, clock_text: str) -> None:
        self.hits = []
        self.drawn = []
        self.surface.fill(BG)
        getattr(self, f"_draw_{state.screen}")(state, now)
        if state.screen != "attract":
            self._header(state, clock_text)

    def _header(self, s: State, clock_text: str) -> None:
        pg, lang = self.pg, s.lang
        hh = self.px(130)
        pg.draw.rect(self.surface, HEAD, (0, 0, self.w, hh))
        name = hall_name(s) or t("hall", lang)
        clock = self.text(clock_text, self.px(46), (self.w - self.px(40), hh // 2), WHITE, True, "midright")
        self.text(name, self.px(54), (self.px(40), hh // 2), WHITE, True, "midleft", clock.left - self.px(80))
        if s.link is False:  # our own link: what the controller said last is not news any more
            self.text(t("link_down_mark", lang), self.px(28), (self.w - self.px(40), hh - self.px(8)),
                      (255, 210, 120), False, "bottomright")
        elif s.controller != "online":
            self.text(t("offline_mark", lang), self.px(28), (self.w - self.px(40), hh - self.px(8)),
                      (255, 210, 120), False, "bottomright")

    def _footer_buttons(self, s: State, *, appointment: bool = True) -> int:
        """Language (and appointment) buttons along the bottom; returns the top of the footer."""
        lang = s.lang
        bh = self.px(140)
        top = self.h - bh - self.px(30)
        m = self.px(40)
        self.button((self.w - m - self.px(300), top, self.px(300), bh), t("lang_toggle", lang), Press("language"),
                    fill=CARD, color=ACCENT, edge=CARD_EDGE, size=self.px(44))
        if appointment:
            self.button((m, top, self.px(460), bh), t("appointment", lang), Press("appointment"),
                        fill=CARD, color=ACCENT, edge=CARD_EDGE, size=self.px(48))
        return top

    def _draw_home(self, s: State, now: datetime) -> None:
        pg, lang, u = self.pg, s.lang, self.px
        top = u(130) + u(30)
        m = u(40)
        if s.card is not None or s.appointment_mode or s.staff_priority is not None:
            bh = u(150)
            pg.draw.rect(self.surface, BANNER, (m, top, self.w - 2 * m, bh), border_radius=u(18))
            parts = []
            if s.appointment_mode:
                parts.append(t("appointment", lang) + (f" {s.appointment}" if s.appointment else ""))
            if s.card is not None:
                parts.append(t("card_read", lang) + " " + s.card.masked)
            prio = priority_of(s, now)
            if s.staff_priority is not None:
                parts.append(t("staff_confirmed", lang) + " " + t(f"staff_{s.staff_priority}", lang))
            elif prio:
                parts.append(t(f"prio_{prio}", lang))
            self.text(" · ".join(parts), u(40), (m + u(30), top + u(22)), INK, True, max_w=self.w - u(420))
            self.text(t("choose_now", lang), u(34), (m + u(30), top + u(84)), MUTED)
            self.button((self.w - m - u(300), top + u(20), u(270), u(110)), t("cancel", lang), Press("cancel"),
                        fill=CARD, color=WARN, edge=CARD_EDGE, size=u(40))
            top += bh + u(24)
        else:
            self.text(t("welcome", lang), u(44), (m, top), INK, True)
            top += u(80)
        plain = not (s.card or s.appointment_mode or s.staff_priority)
        footer_top = self._footer_buttons(s, appointment=plain)
        if plain and s.settings.staff_priorities:
            bh = u(140)
            x0 = u(40) + u(460) + u(30)
            self.button((x0, footer_top, self.w - u(40) - u(300) - u(30) - x0, bh), t("staff_button", lang),
                        Press("staff"), fill=CARD, color=AMBER, edge=CARD_EDGE, size=u(40))
        hint = s.card is None and not s.appointment_mode and s.staff_priority is None
        bottom = footer_top - (u(80) if hint else u(30))
        cats = s.hall.categories if s.hall else []
        if not cats:
            lost = no_hall(s, now)
            if lost is not None:  # connected, but no controller runs this hall on the broker
                self.text(lost[0], u(40), (self.w // 2, (top + bottom) // 2 - u(36)), WARN, True, "center",
                          self.w - u(120))
                self.text(lost[1], u(30), (self.w // 2, (top + bottom) // 2 + u(36)), MUTED, False, "center",
                          self.w - u(120))
                return
            self.text(t("waiting_config", lang), u(48), (self.w // 2, (top + bottom) // 2), MUTED, True, "center")
            return
        cols = 2 if self.portrait else 3
        if len(cats) <= 2:
            cols = len(cats)
        if len(cats) > 9 and not self.portrait:
            cols = 4
        rows = (len(cats) + cols - 1) // cols
        gap = u(28)
        cw = (self.w - 2 * m - (cols - 1) * gap) // cols
        ch = min(u(300), (bottom - top - (rows - 1) * gap) // max(rows, 1))
        for i, c in enumerate(cats):
            r, k = divmod(i, cols)
            x = m + k * (cw + gap)
            y = top + r * (ch + gap)
            q = s.queue.get(c.code)
            sub = wait_line(q.waiting, q.est_wait_min, lang, q.est_wait_range, q.serving) if q else t("no_queue", lang)
            self.button((x, y, cw, ch), category_name(s, c.code), Press("category", c.code), fill=CARD, color=ACCENT,
                        edge=CARD_EDGE, size=u(64), sub=sub)
        if hint:
            self.text(t("swipe_hint", lang), u(34), (self.w // 2, footer_top - u(14)), MUTED, False, "midbottom",
                      self.w - u(400) * 2 if not self.portrait else self.w - u(80))

    def _draw_appointment(self, s: State, now: datetime) -> None:
        lang, u, pg = s.lang, self.px, self.pg
        m = u(40)
        top = u(130) + u(30)
        self.text(t("appointment", lang), u(56), (m, top), INK, True)
        self.text(t("appointment_hint", lang), u(34), (m, top + u(80)), MUTED)
        box_w = u(820)
        if self.portrait:
            kx = (self.w - box_w) // 2
            ky = top + u(170)
        else:
            kx = self.w - m - box_w - u(200)
            ky = top
        pg.draw.rect(self.surface, CARD, (kx, ky, box_w, u(130)), border_radius=u(16))
        pg.draw.rect(self.surface, CARD_EDGE, (kx, ky, box_w, u(130)), width=u(4), border_radius=u(16))
        shown = s.typing or t("code_placeholder", lang)
        self.text(shown, u(70), (kx + box_w // 2, ky + u(65)), INK if s.typing else MUTED, True, "center")
        keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "0", "ok"]
        g = u(18)
        y0 = ky + u(130) + u(24)
        room = self.h - u(140) - u(30) - u(30) - y0  # down to the bottom buttons
        kw, kh = (box_w - 2 * g) // 3, min(u(150), (room - 3 * g) // 4)
        for i, k in enumerate(keys):
            r, c = divmod(i, 3)
            rect = (kx + c * (kw + g), y0 + r * (kh + g), kw, kh)
            if k == "back":
                self.button(rect, t("backspace", lang), Press("backspace"), fill=CARD, color=INK,
                            edge=CARD_EDGE, size=u(44))
            elif k == "ok":
                ready = len(s.typing) >= 4
                self.button(rect, t("confirm", lang), Press("confirm"), fill=OK if ready else CARD_EDGE,
                            color=WHITE, size=u(48))
            else:
                self.button(rect, k, Press("key", k), fill=CARD, color=INK, edge=CARD_EDGE, size=u(70))
        bh = u(140)
        self.button((m, self.h - bh - u(30), u(360), bh), t("back_home", lang), Press("cancel"), fill=CARD,
                    color=ACCENT, edge=CARD_EDGE, size=u(46))
        self.button((self.w - m - u(300), self.h - bh - u(30), u(300), bh), t("lang_toggle", lang),
                    Press("language"), fill=CARD, color=ACCENT, edge=CARD_EDGE, size=u(44))
        if not self.portrait:
            self.text(t("or_swipe", lang), u(40), (m, top + u(200)), ACCENT, True)

    def _draw_staff(self, s: State, now: datetime) -> None:
        """The floor guide's screen: the priorities this kiosk may confirm, the PIN (dots only), the keypad."""
        lang, u, pg = s.lang, self.px, self.pg
        m = u(40)
        top = u(130) + u(30)
        self.text(t("staff_title", lang), u(56), (m, top), INK, True)
        self.text(t("staff_hint", lang), u(32), (m, top + u(80)), MUTED, max_w=self.w - 2 * m)
        prios = s.settings.staff_priorities
        box_w = min(u(820), self.w - 2 * m)
        gap = u(20)
        if self.portrait:  # the priorities in a row, the PIN and keypad below
            y = top + u(140)
            bw = (self.w - 2 * m - (len(prios) - 1) * gap) // max(len(prios), 1)
            rects = [(m + i * (bw + gap), y, bw, u(120)) for i in range(len(prios))]
            kx, y = (self.w - box_w) // 2, y + u(150)
        else:  # the priorities in a column on the left, the PIN and keypad on the right
            kx, y = self.w - m - box_w, top + u(130)
            bw = kx - 3 * m
            rects = [(m, top + u(140) + i * (u(120) + gap), bw, u(120)) for i in range(len(prios))]
        for p, rect in zip(prios, rects, strict=True):
            chosen = s.staff_choice == p
            self.button(rect, t(f"staff_{p}", lang), Press("priority", p),
                        fill=AMBER if chosen else CARD, color=WHITE if chosen else AMBER, edge=CARD_EDGE, size=u(44))
        pg.draw.rect(self.surface, CARD, (kx, y, box_w, u(110)), border_radius=u(16))
        pg.draw.rect(self.surface, CARD_EDGE, (kx, y, box_w, u(110)), width=u(4), border_radius=u(16))
        if s.staff_checking:
            shown, color = t("staff_checking", lang), MUTED
        elif s.typing:
            shown, color = "● " * len(s.typing), INK
        elif s.staff_wrong:
            left = s.settings.staff_lock_after - s.staff_wrong
            shown, color = t("staff_wrong", lang).format(left=left), WARN
        else:
            shown, color = t("staff_pin", lang), MUTED
        self.text(shown.strip(), u(52), (kx + box_w // 2, y + u(55)), color, True, "center", box_w - u(20))
        ready = s.staff_choice is not None and len(s.typing) >= 4 and not s.staff_checking
        self._keypad(s, kx, y + u(110) + u(20), box_w, ready)
        bh = u(140)
        self.button((m, self.h - bh - u(30), u(360), bh), t("back_home", lang), Press("cancel"), fill=CARD,
                    color=ACCENT, edge=CARD_EDGE, size=u(46))
        self._lang_button(s)

    def _keypad(self, s: State, kx: int, y0: int, box_w: int, ready: bool) -> None:
        lang, u = s.lang, self.px
        keys = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "back", "0", "ok"]
        g = u(18)
        room = self.h - u(140) - u(30) - u(30) - y0  # down to the bottom buttons
        kw, kh = (box_w - 2 * g) // 3, min(u(150), (room - 3 * g) // 4)
        for i, k in enumerate(keys):
            r, c = divmod(i, 3)
            rect = (kx + c * (kw + g), y0 + r * (kh + g), kw, kh)
            if k == "back":
                self.button(rect, t("backspace", lang), Press("backspace"), fill=CARD, color=INK,
                            edge=CARD_EDGE, size=u(44))
            elif k == "ok":
                self.button(rect, t("confirm", lang), Press("confirm"), fill=OK if ready else CARD_EDGE,
                            color=WHITE, size=u(48))
            else:
                self.button(rect, k, Press("key", k), fill=CARD, color=INK, edge=CARD_EDGE, size=u(70))

    def _draw_taking(self, s: State, now: datetime) -> None:
        u = self.px
        cy = self.h // 2
        self.text(t("taking", s.lang), u(72), (self.w // 2, cy - u(30)), INK, True, "center")
        self.text(t("taking_sub", s.lang), u(38), (self.w // 2, cy + u(60)), MUTED, False, "center")

    def _draw_ticket(self, s: State, now: datetime) -> None:
        lang, u = s.lang, self.px
        sh = s.shown
        if sh is None:
            return
        tk = sh.ticket
        cx = self.w // 2
        y = u(130) + (u(60) if not self.portrait else u(200))
        self.text(t("your_number", lang), u(52), (cx, y), MUTED, True, "midtop")
        r = self.text(tk.number, u(300), (cx, y + u(70)), ACCENT, True, "midtop")
        y = r.bottom + u(36)
        self.text(sh.category_name, u(64), (cx, y), INK, True, "midtop")
        y += u(100)
        if tk.est_wait_range is not None:
            low, high = tk.est_wait_range
            key = "ahead_within_line" if low == 0 else "ahead_range_line"
            line = t(key, lang).format(ahead=tk.ahead, low=low, high=high)
        else:
            line = t("ahead_line", lang).format(ahead=tk.ahead, minutes=tk.est_wait_min)
        self.text(line, u(44), (cx, y), INK, False, "midtop")
        y += u(70)
        if tk.priority:
            self.text(t(f"prio_{tk.priority}", lang), u(40), (cx, y), AMBER, True, "midtop")
            y += u(64)
        ap = tk.appointment
        if ap is not None:  # a check-in: its slot, or that it came too late for it
            key = {"early": "slot_early", "late": "slot_late"}.get(ap.arrival, "slot_line")
            line = t(key, lang).format(start=f"{ap.slot_start:%H:%M}", end=f"{ap.slot_end:%H:%M}")
            self.text(line, u(40), (cx, y), WARN if ap.arrival == "late" else AMBER, True, "midtop", self.w - u(80))
            y += u(64)
        if sh.masked_id:
            self.text(t("card_read", lang) + " " + sh.masked_id, u(36), (cx, y), MUTED, False, "midtop")
            y += u(60)
        if sh.printed is None:
            note, color = t("printing", lang), MUTED
        elif sh.printed:
            note, color = t("printed", lang), OK
        else:
            note, color = t("print_failed", lang), WARN
        self.text(note, u(46), (cx, y + u(10)), color, True, "midtop", self.w - u(80))
        bh = u(140)
        self.button((self._primary_x(u(440)), self.h - bh - u(30), u(440), bh), t("done", lang), Press("home"),
                    size=u(50))
        self._lang_button(s)

    def _draw_error(self, s: State, now: datetime) -> None:
        lang, u, pg = s.lang, self.px, self.pg
        f = s.failure
        kind = f.kind if f else "refused"
        title, body = ERRORS[kind]
        cx = self.w // 2
        y = u(130) + u(110)
        pg.draw.circle(self.surface, WARN, (cx, y + u(70)), u(70))
        self.text("!", u(110), (cx, y + u(70)), WHITE, True, "center")
        y += u(190)
        self.text(title[0 if lang == "zh" else 1], u(72), (cx, y), WARN, True, "midtop", self.w - u(80))
        y += u(120)
        for line in self.wrap(body[0 if lang == "zh" else 1], u(42), self.w - u(240)):
            self.text(line, u(42), (cx, y), INK, False, "midtop")
            y += u(62)
        if kind == "closed" and s.hall and s.hall.hours:
            hours = "  ".join(f"{a}–{b}" for a, b in s.hall.hours)
            self.text(t("hours", lang) + " " + hours, u(42), (cx, y + u(10)), ACCENT, True, "midtop")
        bh = u(140)
        self.button((self._primary_x(u(480)), self.h - bh - u(30), u(480), bh), t("back_home", lang), Press("home"),
                    size=u(50))
        self._lang_button(s)

    def _draw_closed(self, s: State, now: datetime) -> None:
        """Outside the opening hours: closed, when numbers are issued again, and the hours."""
        lang, u = s.lang, self.px
        cx = self.w // 2
        y = u(130) + (u(120) if not self.portrait else u(300))
        self.text(t("closed_title", lang), u(80), (cx, y), WARN, True, "midtop", self.w - u(80))
        y += u(140)
        for line in self.wrap(t("closed_body", lang), u(44), self.w - u(240)):
            self.text(line, u(44), (cx, y), INK, False, "midtop")
            y += u(64)
        if s.opens_at is not None:
            y += u(30)
            self.text(opening_text(s, now), u(64), (cx, y), ACCENT, True, "midtop", self.w - u(80))
            y += u(110)
        if s.hall and s.hall.hours:
            hours = "  ".join(f"{a}–{b}" for a, b in s.hall.hours)
            self.text(t("hours", lang) + " " + hours, u(44), (cx, y), MUTED, False, "midtop", self.w - u(80))
        self._lang_button(s)

    def _primary_x(self, width: int) -> int:
        """Centred, unless that would run into the language button on the right."""
        u = self.px
        return min(self.w // 2 - width // 2, self.w - u(40) - u(300) - u(40) - width)

    def _lang_button(self, s: State) -> None:
        u = self.px
        bh = u(140)
        self.button((self.w - u(40) - u(300), self.h - bh - u(30), u(300), bh), t("lang_toggle", s.lang),
                    Press("language"), fill=CARD, color=ACCENT, edge=CARD_EDGE, size=u(44))

    def _draw_attract(self, s: State, now: datetime) -> None:
        lang, u, pg = s.lang, self.px, self.pg
        pg.draw.rect(self.surface, HEAD, (0, 0, self.w, self.h))
        cx = self.w // 2
        y = u(150) if not self.portrait else u(300)
        self.text(hall_name(s) or t("hall", lang), u(84), (cx, y), WHITE, True, "midtop", self.w - u(80))
        y += u(170)
        notices = list(s.hall.notices) if s.hall else []
        for n in notices[:3]:
            for line in self.wrap(n, u(44), self.w - u(240)):
                self.text(line, u(44), (cx, y), WHITE, False, "midtop")
                y += u(64)
            y += u(20)
        if s.quiet:
            y += u(30)
            self.text(t("quiet", lang), u(46), (cx, y), (255, 220, 140), True, "midtop")
            y += u(76)
            self.text("   ".join(s.quiet[:6]), u(58), (cx, y), WHITE, True, "midtop")
        self.text(t("touch_to_start", lang), u(60), (cx, self.h - u(160)), WHITE, True, "midbottom")
        self.hits.append(Hit((0, 0, self.w, self.h), Press("wake")))
