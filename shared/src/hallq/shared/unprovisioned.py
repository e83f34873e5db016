"""What a device image runs while it has no provisioning bundle (``hallq not-provisioned``).

It shows 「未配置 Not provisioned」 and the device's serial number full-screen (screen roles), blinks the
pad's LEDs (the pad), tells systemd it is ready and keeps the watchdog fed, and waits; no restart loop. When
the bundle appears (``/etc/hallq/device.toml``) it exits 0, so systemd starts the role's real app.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from .service import Notifier

log = logging.getLogger(__name__)

SERIAL_FILES = ("/proc/device-tree/serial-number", "/sys/firmware/devicetree/base/serial-number")


def serial_number() -> str:
    """The Pi's serial number (its device tree), else the start of the machine id."""
    for p in SERIAL_FILES:
        try:
            s = Path(p).read_bytes().rstrip(b"\0").decode().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if s:
            return s.lstrip("0") or s
    try:
        return Path("/etc/machine-id").read_text().strip()[:16] or "unknown"
    except OSError:
        return "unknown"


def draw(screen, role: str, serial: str, now: float) -> None:
    """One frame: the message, the role, the serial number and what to do (blinking dot shows it runs)."""
    import pygame

    w, h = screen.size
    surf = screen.surface
    surf.fill((24, 28, 36))
    unit = max(h // 12, 16)

    def line(text: str, y: int, size: int, color: tuple[int, int, int], bold: bool = False) -> None:
        font = screen.font(size, bold)
        rect = font.get_rect(text)
        font.render_to(surf, ((w - rect.width) // 2, y), text, color)

    line("未配置", int(h * 0.18), int(unit * 2.2), (255, 196, 64), True)
    line("Not provisioned", int(h * 0.18 + unit * 2.6), unit, (255, 196, 64))
    line(f"序列号 Serial  {serial}", int(h * 0.52), int(unit * 0.9), (235, 235, 235), True)
    line(f"角色 Role  {role}", int(h * 0.52 + unit * 1.3), int(unit * 0.7), (200, 200, 200))
    line("请将配置包写入启动分区的 hallq/ 后重新上电", int(h * 0.78), int(unit * 0.55), (170, 170, 170))
    line("Write the device's bundle to hallq/ on the boot partition, then power it again",
         int(h * 0.78 + unit * 0.8), int(unit * 0.45), (170, 170, 170))
    if int(now) % 2 == 0:
        pygame.draw.circle(surf, (255, 196, 64), (w - unit, h - unit), max(unit // 5, 4))
    screen.flip()


def run(role: str, *, device_file: Path, screen: bool, mode: str = "fullscreen",
        blink_pins: tuple[str, ...] = (), poll_s: float = 2.0, stop: threading.Event | None = None,
        screenshot: Path | None = None) -> int:
    """Wait for the bundle; returns 0 once it is there (or when ``stop`` is set)."""
    stop = stop or threading.Event()
    serial = serial_number()
    notifier = Notifier()
    log.warning("not provisioned (role %s, serial %s): waiting for %s", role, serial, device_file)
    scr = None
    if screen:
        from .screen import open_screen

        try:
            scr = open_screen((1280, 720), mode, title="hallq")  # type: ignore[arg-type]
        except Exception as exc:  # a pad without a screen, a controller with no display: go on without one
            log.warning("no screen to show it on (%s)", exc)
            scr = None
    leds = []
    if blink_pins:
        try:
            from gpiozero import LED

            leds = [LED(p) for p in blink_pins]
        except Exception as exc:
            log.warning("cannot blink the LEDs %s (%s)", ",".join(blink_pins), exc)
    notifier.ready(f"未配置 Not provisioned: serial {serial}")
    last_poll = 0.0
    shot_done = False
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now - last_poll >= poll_s:
                last_poll = now
                if device_file.exists():
                    log.info("bundle found at %s: starting the role's app", device_file)
                    return 0
            if scr is not None:
                import pygame

                pygame.event.pump()
                draw(scr, role, serial, time.time())
                if screenshot is not None and not shot_done:
                    scr.screenshot(screenshot)
                    shot_done = True
            on = int(now * 2) % 2 == 0
            for led in leds:
                led.value = on
            notifier.alive()
            stop.wait(0.25)
        return 0
    finally:
        notifier.stopping()
        for led in leds:
            led.close()
        if scr is not None:
            scr.close()
