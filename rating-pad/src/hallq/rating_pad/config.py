"""``pad.toml``: the strict configuration of a Raspberry Pi rating pad.

Unknown keys, missing keys and wrong types stop start-up with a :class:`~hallq.shared.config.ConfigError`
naming the key. See ``rating-pad/examples/pad.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
from hallq.shared.config import ConfigError, ConfigModel, load_config, parse_config
from hallq.shared.topics import check_client_id, check_hall_id
from msgspec import Meta

WindowNo = Annotated[int, Meta(ge=1, le=999)]
Pin = Annotated[str, Meta(min_length=1, max_length=32)]


class PadSection(ConfigModel):
    hall: str
    window: WindowNo
    broker: str = "mqtt://127.0.0.1:1883"
    #: MQTT client id; ``pad-{window}`` when not given.
    client_id: str | None = None
    #: The ratings journal (append-only, fsynced); it must be on storage that survives power loss.
    journal: str = "/var/lib/hallq/pad-ratings.jsonl"
    timezone: str = "Asia/Shanghai"
    #: How long an invitation waits for a press, and how long the thank-you shows.
    invite_seconds: Annotated[float, Meta(gt=0, le=600)] = 30.0
    thanks_seconds: Annotated[float, Meta(gt=0, le=60)] = 4.0
    #: How long a button must be steady before its level counts.
    debounce_ms: Annotated[int, Meta(ge=0, le=500)] = 30
    #: How long to wait for the controller's answer before sending the same rating again.
    resend_seconds: Annotated[float, Meta(gt=0, le=60)] = 2.0


class GpioSection(ConfigModel):
    #: ``native``: the Pi's GPIO (gpiozero's default factory). ``mock``: gpiozero's MockFactory, for a
    #: desk or the demo without buttons (chosen here explicitly, never as a fallback).
    pin_factory: Literal["native", "mock"] = "native"
    #: The five buttons, 非常满意 first (gpiozero pin names: "GPIO5", "BOARD29", or a BCM number).
    buttons: tuple[Pin, Pin, Pin, Pin, Pin] = ("GPIO5", "GPIO6", "GPIO13", "GPIO19", "GPIO26")
    #: Buttons wired to ground (the Pi's pull-ups on); false for buttons that pull the pin high.
    pull_up: bool = True
    #: The five PWM LEDs in the same order, or none.
    leds: tuple[Pin, Pin, Pin, Pin, Pin] | None = ("GPIO12", "GPIO16", "GPIO20", "GPIO21", "GPIO25")


class ScreenSection(ConfigModel):
    mode: Literal["fullscreen", "window", "headless"] = "window"
    size: tuple[Annotated[int, Meta(ge=160, le=3840)], Annotated[int, Meta(ge=120, le=2160)]] = (800, 480)
    font: str | None = None
    font_index: int | None = None
    #: Five buttons on the screen that take clicks or touches as presses.
    touch: bool = True
    fps: Annotated[int, Meta(ge=1, le=60)] = 20
    #: Save a picture of each new screen here (headless demo and tests).
    screenshot_dir: str | None = None


class PadConfig(ConfigModel):
    pad: PadSection
    gpio: GpioSection = msgspec.field(default_factory=GpioSection)
    #: Optional: a small screen through pygame (left out: no screen, no pygame import).
    screen: ScreenSection | None = None

    def __post_init__(self) -> None:
        try:
            check_hall_id(self.pad.hall)
            if self.pad.client_id is not None:
                check_client_id(self.pad.client_id)
        except ValueError as exc:
            raise ValueError(str(exc)) from None

    @property
    def client_id(self) -> str:
        return self.pad.client_id or f"pad-{self.pad.window}"

    @property
    def core_settings(self) -> dict[str, int]:
        return {
            "invite_ms": round(self.pad.invite_seconds * 1000),
            "thanks_ms": round(self.pad.thanks_seconds * 1000),
            "debounce_ms": self.pad.debounce_ms,
        }


def load(path: str | Path) -> PadConfig:
    return load_config(path, PadConfig)


def parse(text: str, source: str = "pad.toml") -> PadConfig:
    return parse_config(text, PadConfig, source=source)


__all__ = ["ConfigError", "PadConfig", "load", "parse"]
