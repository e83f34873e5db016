"""The pad's buttons and LEDs through gpiozero: a ``ButtonBoard`` of five buttons and five ``PWMLED``s.

The pin factory is the Pi's own (gpiozero's default) or, when the config says ``pin_factory = "mock"``,
gpiozero's ``MockFactory`` with PWM-capable mock pins: a desk or the demo without buttons. Tests pass a
``MockFactory`` of their own and drive its pins (``factory.pin("GPIO5").drive_low()``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from gpiozero import PWMLED, ButtonBoard, GPIOZeroError
from hallq.shared.gpio import NoGpio, pin_factory

from .config import GpioSection

log = logging.getLogger(__name__)

PULSE_SECONDS = 0.8  # fade in, then fade out


__all__ = ["GpioPad", "NoGpio", "make_factory"]


def make_factory(kind: str) -> Any:
    """The pin factory ``kind`` names (``native``: the Pi's GPIO; ``mock``: a MockFactory); :class:`NoGpio`
    in one line when this machine has no GPIO."""
    return pin_factory(kind, what="pad's GPIO", mock_hint='[gpio] pin_factory = "mock"')


class GpioPad:
    """Five buttons that report edges to ``on_edge(index, down)`` and five LEDs driven by pad effects."""

    def __init__(self, cfg: GpioSection, on_edge: Callable[[int, bool], None], pin_factory: Any = None):
        self.factory = pin_factory if pin_factory is not None else make_factory(cfg.pin_factory)
        try:
            self.buttons = ButtonBoard(*cfg.buttons, pull_up=cfg.pull_up, pin_factory=self.factory)
            self.leds = [PWMLED(p, pin_factory=self.factory) for p in cfg.leds or ()]
        except GPIOZeroError as exc:
            raise NoGpio(
                f"cannot open the pad's GPIO ({type(exc).__name__}: {exc}); on a desk without buttons set "
                '[gpio] pin_factory = "mock"'
            ) from None
        for i, button in enumerate(self.buttons):
            button.when_pressed = _edge(on_edge, i, True)
            button.when_released = _edge(on_edge, i, False)

    def apply(self, effect: list[Any]) -> None:
        """Show an ``["leds", ...]`` effect."""
        what = effect[1]
        for i, led in enumerate(self.leds):
            if what == "pulse":
                led.pulse(fade_in_time=PULSE_SECONDS, fade_out_time=PULSE_SECONDS)
            elif what == "one" and i == effect[2]:
                led.on()
            else:
                led.off()

    def close(self) -> None:
        for led in self.leds:
            led.close()
        self.buttons.close()


def _edge(on_edge: Callable[[int, bool], None], index: int, down: bool) -> Callable[[], None]:
    def fire() -> None:
        on_edge(index, down)

    return fire
