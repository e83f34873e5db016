"""Screens for the kiosk, the call displays and the pad: pygame set-up, CJK fonts, screenshots.

pygame is imported only here and only when a screen is opened (``hallq-shared[screen]``; on a Pi image
Debian's ``python3-pygame`` with the system SDL, which has the KMSDRM driver the PyPI wheel lacks).

Modes: ``fullscreen`` (a Pi with no desktop: KMSDRM, or the desktop's fullscreen), ``window`` (a desktop),
``headless`` (SDL's dummy drivers, for tests and screenshots; chosen explicitly, never as a fallback).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

Mode = Literal["fullscreen", "window", "headless"]

#: Where Debian's packages put the CJK fonts; (path, face index). Noto Sans CJK's face 2 is SC.
CJK_FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
)
CJK_BOLD: tuple[tuple[str, int], ...] = (("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 2),)


class FontNotFound(FileNotFoundError):
    pass


class ScreenUnavailable(RuntimeError):
    """A screen was asked for and this machine has none that SDL can open."""


#: The SDL renderer that shows pygame's window surface on KMSDRM (SDL_FRAMEBUFFER_ACCELERATION; see _prepare_sdl).
KMSDRM_RENDERER = "opengles2"

#: SDL's video drivers that draw into memory only: nothing is ever seen.
INVISIBLE_DRIVERS = ("offscreen", "dummy", "evdev")


def find_cjk_font(path: str | None = None, index: int | None = None, *, bold: bool = False) -> tuple[str, int]:
    """The configured font, or the first installed CJK font (bold when asked and available)."""
    if path:
        if not Path(path).exists():
            raise FontNotFound(f"font {path} does not exist")
        return path, index or 0
    for p, i in (CJK_BOLD if bold else ()) + CJK_FONTS:
        if Path(p).exists():
            return p, i
    raise FontNotFound(
        "no CJK font found: install fonts-noto-cjk (or fonts-wqy-zenhei), or set the font path in the config"
    )


def _prepare_sdl(mode: Mode) -> None:
    if mode == "headless":
        os.environ["SDL_VIDEODRIVER"] = "dummy"
        os.environ["SDL_AUDIODRIVER"] = os.environ.get("SDL_AUDIODRIVER", "dummy")
    elif mode == "fullscreen" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ.setdefault("SDL_VIDEODRIVER", "kmsdrm")
    elif not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or os.environ.get("XDG_RUNTIME_DIR")):
        # No X display and no Wayland socket can exist (no runtime folder): only the console's KMS is left.
        # Without this SDL's Wayland probe prints "error: XDG_RUNTIME_DIR is invalid..." before our one line.
        os.environ.setdefault("SDL_VIDEODRIVER", "kmsdrm")
    if os.environ.get("SDL_VIDEODRIVER") == "kmsdrm":
        # pygame draws into SDL's window surface, which SDL shows through a renderer of its own choosing: the
        # first one it knows that is not "software", i.e. "opengl" (desktop GL over EGL). On KMSDRM that
        # renderer cannot upload the surface (Mesa: GL_INVALID_OPERATION in glTexSubImage2D, "unsupported
        # function called") and the screen stays black while SDL flips its empty buffers. OpenGL ES 2 is what
        # KMS devices speak (the Pi's vc4/v3d, Mesa's software GL in a virtual machine): ask SDL for it.
        os.environ.setdefault("SDL_FRAMEBUFFER_ACCELERATION", KMSDRM_RENDERER)
    os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")


@dataclass
class Screen:
    """An open pygame display with a font cache."""

    surface: Any
    size: tuple[int, int]
    mode: Mode
    font_path: str
    font_index: int
    bold_path: str
    bold_index: int
    _fonts: dict[tuple[int, bool], Any] = field(default_factory=dict)

    def font(self, size: int, bold: bool = False) -> Any:
        """A ``pygame.freetype.Font`` of ``size`` pixels (cached)."""
        key = (size, bold)
        f = self._fonts.get(key)
        if f is None:
            import pygame.freetype

            path, index = (self.bold_path, self.bold_index) if bold else (self.font_path, self.font_index)
            f = pygame.freetype.Font(path, size, font_index=index)
            f.antialiased = True
            self._fonts[key] = f
        return f

    def flip(self) -> None:
        import pygame

        pygame.display.flip()

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        import pygame

        from .paths import ensure_parent

        p = ensure_parent(path, "screenshots")
        pygame.image.save(self.surface, str(p))
        return p

    def close(self) -> None:
        import pygame

        pygame.display.quit()


def open_screen(
    size: tuple[int, int], mode: Mode = "window", *, title: str = "hallq", font_path: str | None = None,
    font_index: int | None = None,
) -> Screen:
    """Open the display. ``size`` is ignored in fullscreen (the screen's own size is used)."""
    _prepare_sdl(mode)
    import pygame
    import pygame.freetype

    hint = "run it on the device's screen or a desktop, or pass --headless to run without a screen"
    nothing = ("no screen: SDL found no display (DISPLAY and WAYLAND_DISPLAY are not set, no KMS/DRM device)")
    no_desktop = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    try:
        pygame.display.init()
    except pygame.error as exc:
        if mode != "headless" and no_desktop:
            raise ScreenUnavailable(f"{nothing}; {hint}") from None
        raise ScreenUnavailable(f"no screen: SDL cannot open one ({exc}); {hint}") from None
    driver = pygame.display.get_driver()
    asked = os.environ.get("SDL_VIDEODRIVER", "")
    if mode != "headless" and driver in INVISIBLE_DRIVERS and driver not in asked.split(","):
        # SDL found no display and fell back to drawing into memory: a screen that nobody sees.
        pygame.display.quit()
        raise ScreenUnavailable(f"{nothing} and would draw {driver}, where nobody sees it; {hint}")
    pygame.freetype.init()
    path, index = find_cjk_font(font_path, font_index)
    bold_path, bold_index = find_cjk_font(font_path, font_index, bold=True) if not font_path else (path, index)
    if mode == "fullscreen":
        surface = pygame.display.set_mode((0, 0), pygame.FULLSCREEN)
        pygame.mouse.set_visible(False)
    else:
        surface = pygame.display.set_mode(size)
    pygame.display.set_caption(title)
    return Screen(surface, surface.get_size(), mode, path, index, bold_path, bold_index)
