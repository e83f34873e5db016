"""The pad's optional small screen (pygame, imported only when a screen is configured).

It draws what the pad's ``show`` effects say: the invitation 「请对本次服务进行评价」 with the window, the clerk
and the ticket, the thank-you, or the window at rest, over five level buttons that pulse while a rating is
invited. With ``touch`` the buttons take clicks and touches: they become the same button edges as GPIO.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from hallq.shared.screen import open_screen

from . import padcore
from .config import ScreenSection

LEVEL_COLOURS = ((22, 128, 61), (76, 175, 80), (230, 160, 40), (232, 110, 50), (204, 50, 50))
BACKGROUND = (244, 246, 248)
INK = (30, 36, 44)
MUTED = (120, 128, 138)
STATUS_ZH = {"idle": "空闲", "serving": "正在办理", "paused": "暂停服务", "closed": "未开放"}  # docs/glossary.md


class PadScreen:
    def __init__(self, cfg: ScreenSection, window: int):
        self.cfg = cfg
        self.window = window
        self.screen = open_screen(tuple(cfg.size), cfg.mode, title=f"hallq 评价器 {window}号窗口",
                                  font_path=cfg.font, font_index=cfg.font_index)
        self.view: list[Any] = ["show", "idle", {"window": window, "clerk": None, "status": None}]
        self.leds: list[Any] = ["leds", "off"]
        self.held: int | None = None  # the on-screen button held down by a click or touch
        self.shots = 0
        self.dirty = True

    # -- what the pad says ------------------------------------------------------------------------------
    def apply(self, effect: list[Any]) -> None:
        if effect[0] == "show":
            self.view = effect
        elif effect[0] == "leds":
            self.leds = effect
        self.dirty = True

    # -- input --------------------------------------------------------------------------------------------
    def poll(self) -> list[list[Any]]:
        """Pad events from clicks and touches on the five buttons; ``["quit"]`` when the window is closed."""
        import pygame

        events: list[list[Any]] = []
        w, h = self.screen.size
        for e in pygame.event.get():
            if e.type == pygame.QUIT:
                events.append(["quit"])
            elif not self.cfg.touch:
                continue
            elif e.type in (pygame.MOUSEBUTTONDOWN, pygame.FINGERDOWN):
                pos = (e.x * w, e.y * h) if e.type == pygame.FINGERDOWN else e.pos
                i = self.button_at(pos)
                if i is not None and self.held is None:
                    self.held = i
                    events.append(["down", i])
            elif e.type in (pygame.MOUSEBUTTONUP, pygame.FINGERUP) and self.held is not None:
                events.append(["up", self.held])
                self.held = None
        return events

    def button_rects(self) -> list[tuple[int, int, int, int]]:
        w, h = self.screen.size
        gap = max(6, w // 80)
        top = int(h * 0.58)
        bw = (w - gap * 6) // 5
        return [(gap + i * (bw + gap), top, bw, h - top - gap) for i in range(5)]

    def button_at(self, pos: tuple[float, float]) -> int | None:
        x, y = pos
        for i, (bx, by, bw, bh) in enumerate(self.button_rects()):
            if bx <= x < bx + bw and by <= y < by + bh:
                return i
        return None

    # -- drawing ---------------------------------------------------------------------------------------------
    def draw(self, now: float) -> None:
        """Draw the current picture (every frame while pulsing, else only when something changed)."""
        pulsing = self.leds[1] == "pulse"
        if not (self.dirty or pulsing):
            return
        import pygame

        surf = self.screen.surface
        w, h = self.screen.size
        surf.fill(BACKGROUND)
        lines = padcore.screen_text(self.view)
        what = self.view[1]
        big = self.screen.font(max(18, h // 9), bold=True)
        small = self.screen.font(max(14, h // 16))
        y = h // 14
        for n, line in enumerate(lines):
            font = big if n == 0 else small
            colour = INK if n == 0 else MUTED
            if what == "idle" and n == 0:
                status = self.view[2].get("status")
                if status:
                    line = f"{line}  {STATUS_ZH.get(status, status)}"
            rect = font.get_rect(line)
            font.render_to(surf, ((w - rect.width) // 2, y), line, colour)
            y += rect.height + h // 28
        wave = 0.5 + 0.5 * math.sin(now * math.pi / 0.8) if pulsing else 1.0
        for i, (bx, by, bw, bh) in enumerate(self.button_rects()):
            colour = LEVEL_COLOURS[i]
            chosen = self.leds[1] == "one" and self.leds[2] == i
            if what == "idle":
                colour = tuple(int(c * 0.35 + 200 * 0.65) for c in colour)
            elif what == "thanks" and not chosen:
                colour = tuple(int(c * 0.3 + 220 * 0.7) for c in colour)
            pygame.draw.rect(surf, colour, (bx, by, bw, bh), border_radius=bw // 8)
            if pulsing:
                glow = tuple(int(c + (255 - c) * wave * 0.6) for c in LEVEL_COLOURS[i])
                pygame.draw.rect(surf, glow, (bx, by, bw, bh), width=max(3, bw // 25), border_radius=bw // 8)
            if self.held == i:
                pygame.draw.rect(surf, INK, (bx, by, bw, bh), width=3, border_radius=bw // 8)
            label = padcore.LEVEL_NAMES_ZH[i]
            font = self.screen.font(max(12, min(bw // 6, bh // 3)), bold=True)  # one size: the longest fits
            rect = font.get_rect(label)
            font.render_to(surf, (bx + (bw - rect.width) // 2, by + (bh - rect.height) // 2), label, (255, 255, 255))
        self.screen.flip()
        if self.dirty and self.cfg.screenshot_dir:
            self.shots += 1
            self.screen.screenshot(Path(self.cfg.screenshot_dir) / f"pad-{self.window}-{self.shots:04d}-{what}.png")
        self.dirty = False

    def close(self) -> None:
        self.screen.close()
