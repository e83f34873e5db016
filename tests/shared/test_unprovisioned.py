"""`hallq not-provisioned`: what a device image shows until it has its bundle; it exits once the bundle is there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def test_shows_the_message_then_hands_over_when_the_bundle_arrives(tmp_path):
    device = tmp_path / "etc" / "device.toml"
    shot = tmp_path / "screen.png"
    env = {**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"}
    p = subprocess.Popen([BIN / "hallq", "not-provisioned", "--role", "kiosk", "--headless", "--device", device,
                          "--screenshot", shot], env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not shot.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert shot.exists(), "the screen was drawn"
        time.sleep(1)
        assert p.poll() is None, "it waits (no exit, so no restart loop)"
        device.parent.mkdir()
        device.write_text('device = "kiosk-1"\n')
        assert p.wait(20) == 0
    finally:
        p.kill()
    err = p.stderr.read()
    assert "not provisioned" in err and "bundle found" in err
    import pygame

    img = pygame.image.load(str(shot))
    assert img.get_size() == (1280, 720)
    colours = {tuple(img.get_at((x, y)))[:3] for x in range(0, 1280, 16) for y in range(0, 720, 16)}
    assert (255, 196, 64) in colours, "the 未配置 Not provisioned message is drawn"
