"""SDL set-up for the screens (shared.screen): what a device's screen asks SDL for."""

from __future__ import annotations

import os

import pytest
from hallq.shared import screen


@pytest.fixture
def env(monkeypatch):
    for name in ("SDL_VIDEODRIVER", "SDL_FRAMEBUFFER_ACCELERATION", "DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_a_device_without_a_desktop_draws_on_kmsdrm_through_opengl_es(env):
    # SDL's first choice for showing pygame's window surface ("opengl") leaves a KMSDRM screen black
    screen._prepare_sdl("fullscreen")
    assert os.environ["SDL_VIDEODRIVER"] == "kmsdrm"
    assert os.environ["SDL_FRAMEBUFFER_ACCELERATION"] == "opengles2"


def test_an_explicit_setting_wins(env):
    env.setenv("SDL_FRAMEBUFFER_ACCELERATION", "opengl")
    screen._prepare_sdl("fullscreen")
    assert os.environ["SDL_FRAMEBUFFER_ACCELERATION"] == "opengl"


def test_a_desktop_is_left_to_sdl(env):
    env.setenv("DISPLAY", ":0")
    screen._prepare_sdl("fullscreen")
    assert "SDL_FRAMEBUFFER_ACCELERATION" not in os.environ and "SDL_VIDEODRIVER" not in os.environ
