"""``display.toml``: the strict configuration of a hall screen, a window screen and its caller.

Unknown keys, missing keys and wrong types stop start-up with a :class:`~hallq.shared.config.ConfigError`
that names the key. Every section but ``[display]`` is optional; see ``call-display/examples/display.toml``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from hallq.shared.config import ConfigError, ConfigModel, load_config, parse_config
from hallq.shared.topics import check_client_id, check_hall_id
from msgspec import Meta

WindowNo = Annotated[int, Meta(ge=1, le=999)]
Seconds = Annotated[float, Meta(gt=0, le=3600)]
Pin = Annotated[str, Meta(min_length=1, max_length=32)]

#: What a caller button or key can do.
CallerAction = Literal["next", "recall", "noshow", "transfer", "pause", "done", "open", "close"]


class DisplaySection(ConfigModel):
    hall: str
    broker: str = "mqtt://127.0.0.1:1883"
    #: MQTT client id; defaults to ``display-hall`` for the hall screen, ``window-{n}`` for a window screen
    #: with its caller (the window's device id) and ``display-window-{n}`` for a window screen alone.
    client_id: str | None = None
    mode: Literal["hall", "window"] = "hall"
    window: WindowNo | None = None
    screen: Literal["fullscreen", "window", "headless"] = "window"
    #: Pixel size in window and headless modes; the orientation follows from it (1920×1080 or 1080×1920).
    size: tuple[Annotated[int, Meta(ge=160, le=7680)], Annotated[int, Meta(ge=120, le=7680)]] = (1920, 1080)
    font: str | None = None
    font_index: int | None = None
    fps: Annotated[int, Meta(ge=1, le=60)] = 20
    #: How long the newest call (and a recall) flashes.
    flash_seconds: Seconds = 8.0
    #: How many earlier calls the hall screen lists under the newest one.
    recent_calls: Annotated[int, Meta(ge=0, le=9)] = 8
    #: How long a caller error stays on the window screen.
    error_seconds: Seconds = 5.0
    #: Pixels per second of the scrolling line.
    ticker_speed: Annotated[int, Meta(ge=10, le=1000)] = 120
    english: bool = True


class ClipVoice(ConfigModel, tag_field="backend", tag="clips"):
    """``backend = "clips"``: announcements built from a folder of WAV clips, played with pygame.mixer."""

    #: A folder of WAV files (``hallq display voice-pack --out DIR`` makes one).
    pack: str
    #: Make the pack with espeak-ng at start-up when the folder does not exist yet.
    make_if_missing: bool = False
    languages: tuple[Literal["zh", "en"], ...] = ("zh", "en")
    repeats: Annotated[int, Meta(ge=1, le=5)] = 1
    volume: Annotated[float, Meta(ge=0, le=1)] = 1.0


class SerialVoice(ConfigModel, tag_field="backend", tag="syn6288"):
    """``backend = "syn6288"``: a serial TTS module (SYN6288-style frames, GB2312 text)."""

    port: str
    baudrate: int = 9600
    languages: tuple[Literal["zh", "en"], ...] = ("zh",)
    repeats: Annotated[int, Meta(ge=1, le=5)] = 1
    #: The longest an announcement may take before the next one is sent anyway.
    timeout: Seconds = 15.0


class FrameLed(ConfigModel, tag_field="protocol", tag="frame"):
    """``protocol = "frame"``: the configurable frame (header, address, command, GB2312 text, checksum)."""

    port: str
    baudrate: int = 9600
    address: Annotated[int, Meta(ge=0, le=255)] = 1
    header: str = "AA55"  # hex
    trailer: str = ""  # hex
    checksum: Literal["sum", "xor", "crc16-modbus"] = "crc16-modbus"
    command: Annotated[int, Meta(ge=0, le=255)] = 0x01


class ModbusLed(ConfigModel, tag_field="protocol", tag="modbus"):
    """``protocol = "modbus"``: a Modbus RTU text board (function 0x10 into its text registers)."""

    port: str
    baudrate: int = 9600
    address: Annotated[int, Meta(ge=1, le=247)] = 1
    register: Annotated[int, Meta(ge=0, le=0xFFFF)] = 0
    #: Text registers on the board (two GB2312 bytes each); the text is padded with spaces.
    registers: Annotated[int, Meta(ge=1, le=123)] = 32
    timeout: Seconds = 0.5


class PygameLed(ConfigModel, tag_field="protocol", tag="pygame"):
    """``protocol = "pygame"``: the LED board drawn on this screen (a desk without the board)."""

    #: Dots across and down of the imitated board.
    dots: tuple[Annotated[int, Meta(ge=16, le=512)], Annotated[int, Meta(ge=8, le=256)]] = (128, 32)


class GpioCaller(ConfigModel):
    #: Action → pin (BCM numbers as "GPIO5" or "BOARD29", gpiozero's names).
    buttons: dict[CallerAction, Pin]
    pull_up: bool = True
    bounce_seconds: Annotated[float, Meta(ge=0, le=1)] = 0.05
    #: A buzzer that beeps on errors; without it the speaker beeps.
    buzzer: Pin | None = None


class KeypadCaller(ConfigModel):
    #: The input device (``/dev/input/by-id/...-event-kbd``).
    device: str
    #: evdev key name → action.
    keys: dict[Annotated[str, Meta(pattern=r"^(KEY|BTN)_[A-Z0-9_]+$")], CallerAction]
    grab: bool = True


class StaffSection(ConfigModel):
    id: Annotated[str, Meta(min_length=1, max_length=64)]
    name: Annotated[str, Meta(min_length=1, max_length=64)]


class TransferSection(ConfigModel):
    category: str | None = None
    window: WindowNo | None = None


class CallerSection(ConfigModel):
    #: The device id the requests come from; defaults to ``window-{n}``.
    device_id: str | None = None
    hold_seconds: Annotated[float, Meta(ge=0.2, le=10)] = 1.5
    #: Where ``transfer`` sends the current ticket.
    transfer_to: TransferSection | None = None
    #: The clerk the ``open`` key signs in.
    staff: StaffSection | None = None
    timeout: Seconds = 5.0
    gpio: GpioCaller | None = None
    keypad: KeypadCaller | None = None


class DisplayConfig(ConfigModel):
    display: DisplaySection
    voice: ClipVoice | SerialVoice | None = None
    led: FrameLed | ModbusLed | PygameLed | None = None
    caller: CallerSection | None = None

    def __post_init__(self) -> None:
        d = self.display
        try:
            check_hall_id(d.hall)
            if d.client_id is not None:
                check_client_id(d.client_id)
            if self.caller and self.caller.device_id is not None:
                check_client_id(self.caller.device_id)
        except ValueError as exc:
            raise ValueError(str(exc)) from None
        if d.mode == "window" and d.window is None:
            raise ValueError("display.window is needed in window mode")
        if self.caller is not None:
            c = self.caller
            if (c.gpio is None) == (c.keypad is None):
                raise ValueError("caller needs exactly one of [caller.gpio] or [caller.keypad]")
            t = c.transfer_to
            if t is not None and (t.category is None) == (t.window is None):
                raise ValueError("caller.transfer_to needs exactly one of category or window")
        if isinstance(self.led, FrameLed):
            for name, text in (("led.header", self.led.header), ("led.trailer", self.led.trailer)):
                try:
                    bytes.fromhex(text)
                except ValueError:
                    raise ValueError(f"{name} {text!r} is not hex bytes") from None

    @property
    def client_id(self) -> str:
        d = self.display
        if d.client_id:
            return d.client_id
        if d.mode == "hall":
            return "display-hall"
        if self.caller is not None:
            return self.caller.device_id or f"window-{d.window}"
        return f"display-window-{d.window}"


def load(path: str | Path) -> DisplayConfig:
    return load_config(path, DisplayConfig)


def parse(text: str, source: str = "display.toml") -> DisplayConfig:
    return parse_config(text, DisplayConfig, source=source)


__all__ = ["ConfigError", "DisplayConfig", "load", "parse"]
