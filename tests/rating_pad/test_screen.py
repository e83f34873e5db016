"""The pad's small screen, headless (SDL's dummy driver): what it shows, and clicks on its five buttons."""

from __future__ import annotations

import pygame
import pytest
from hallq.rating_pad.config import ScreenSection


@pytest.fixture
def screen(tmp_path):
    from hallq.rating_pad.screen import PadScreen

    s = PadScreen(ScreenSection(mode="headless", size=(480, 320), screenshot_dir=str(tmp_path)), window=3)
    yield s
    s.close()


def click(x: int, y: int) -> None:
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONDOWN, pos=(x, y), button=1))
    pygame.event.post(pygame.event.Event(pygame.MOUSEBUTTONUP, pos=(x, y), button=1))


def test_clicks_on_the_buttons_are_button_edges(screen):
    rects = screen.button_rects()
    assert len(rects) == 5 and all(r[2] > 40 and r[3] > 40 for r in rects)
    x, y, w, h = rects[2]
    click(x + w // 2, y + h // 2)
    assert screen.poll() == [["down", 2], ["up", 2]]
    click(5, 5)  # above the buttons
    assert screen.poll() == []


def test_it_draws_the_invitation_and_the_thanks(screen, tmp_path):
    screen.apply(["show", "invite", {"window": 3, "clerk": "李娜", "ticket": "A019"}])
    screen.apply(["leds", "pulse"])
    screen.draw(0.0)
    screen.apply(["show", "thanks", {"window": 3, "ticket": "A019", "level": "satisfied"}])
    screen.apply(["leds", "one", 1])
    screen.draw(1.0)
    shots = sorted(p.name for p in tmp_path.glob("*.png"))
    assert shots == ["pad-3-0001-invite.png", "pad-3-0002-thanks.png"]
    thanks = pygame.image.load(str(tmp_path / shots[1]))
    x, y, _w, h = screen.button_rects()[1]
    chosen = thanks.get_at((x + 4, y + h // 2))[:3]
    other = thanks.get_at((screen.button_rects()[4][0] + 4, y + h // 2))[:3]
    assert chosen == (76, 175, 80), "the chosen level stays in its colour"
    assert other != (204, 50, 50), "the others fade"


def test_without_touch_clicks_do_nothing(tmp_path):
    from hallq.rating_pad.screen import PadScreen

    s = PadScreen(ScreenSection(mode="headless", size=(480, 320), touch=False), window=1)
    try:
        x, y, _w, _h = s.button_rects()[0]
        click(x + 5, y + 5)
        assert s.poll() == []
    finally:
        s.close()
