"""The kiosk's configuration (``kiosk.toml``), strict: an unknown key or a bad value stops start-up.

```toml
[kiosk]
id = "kiosk-1"                       # the client id (also the broker user name)
hall = "demo"
broker = "mqtt://127.0.0.1:1883"
secret_key_file = "/etc/hallq/hall.key"   # the hall's key for person keys (provisioned, never committed)
language = "zh"                      # zh | en: the default; citizens can toggle
elderly_age = 65                     # priority from the ID card at or above this age
qr_url = "https://hall.example.gov.cn/q?n={number}"   # optional; {number} {category} {hall} {date};
                                     # "{follow}" alone: the ticket's follow page (also when left out and
                                     # the hall has follow pages: [follow] in hall.toml)
footer = "过号请重新取号"
idle_timeout_s = 30                  # back home from a half-finished screen
attract_after_s = 60                 # the attract screen after this long on home
ticket_seconds = 8                   # how long the issued number stays on screen
request_timeout_s = 5                # the controller is unreachable after this

[screen]
width = 1920                         # 1080 x 1920 for a portrait kiosk
height = 1080
mode = "fullscreen"                  # fullscreen | window | headless
font = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"   # optional
font_index = 2                       # optional: Noto Sans CJK SC is face 2 of the .ttc

[printer]
url = "usb:0x0416:0x5011"            # usb:VID:PID, serial:/dev/ttyUSB0?baudrate=9600, tcp:HOST:9100, file:/path
chinese = "raster"                   # raster | gb18030
width_px = 576                       # 576 for 80 mm paper, 384 for 58 mm

[[readers]]
url = "serial:/dev/ttyUSB0?baudrate=115200"   # GA 467; or evdev:/dev/input/by-id/...-event-kbd

[staff]                              # optional: the floor guide (导引员) confirms priorities here
priorities = ["military", "disabled", "pregnant", "elderly"]   # also list them under this kiosk's
                                     # staff_priorities in hall.toml [[devices]], or the controller refuses them
pins_file = "/etc/hallq/staff-pins"  # 0600; hallq kiosk staff-pin --file ... --staff ID adds a guide's PIN
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
from hallq.shared.config import BrokerURL, ConfigError, ConfigModel, load_config
from hallq.shared.topics import TopicError, check_client_id, check_hall_id
from msgspec import Meta

QR_FIELDS = {"number": "A001", "category": "A", "hall": "demo", "date": "2026-01-01", "follow": ""}


class KioskSection(ConfigModel, kw_only=True):
    id: str
    hall: str
    broker: str = "mqtt://127.0.0.1:1883"
    secret_key_file: str
    language: Literal["zh", "en"] = "zh"
    elderly_age: Annotated[int, Meta(ge=40, le=120)] = 65
    qr_url: str = ""
    footer: str = "过号请重新取号"
    idle_timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    attract_after_s: Annotated[float, Meta(gt=0)] = 60.0
    ticket_seconds: Annotated[float, Meta(gt=0)] = 8.0
    error_seconds: Annotated[float, Meta(gt=0)] = 8.0
    request_timeout_s: Annotated[float, Meta(gt=0)] = 5.0


class ScreenSection(ConfigModel, kw_only=True):
    width: Annotated[int, Meta(ge=320, le=7680)] = 1920
    height: Annotated[int, Meta(ge=320, le=7680)] = 1080
    mode: Literal["fullscreen", "window", "headless"] = "fullscreen"
    font: str | None = None
    font_index: Annotated[int, Meta(ge=0)] | None = None


class PrinterSection(ConfigModel, kw_only=True):
    url: str
    chinese: Literal["raster", "gb18030"] = "raster"
    width_px: Annotated[int, Meta(ge=200, le=1024)] = 576


class ReaderSection(ConfigModel, kw_only=True):
    url: str


class StaffSection(ConfigModel, kw_only=True):
    priorities: Annotated[list[Literal["elderly", "disabled", "pregnant", "military"]], Meta(min_length=1)]
    pins_file: str
    lock_after: Annotated[int, Meta(ge=1, le=20)] = 5  # wrong PINs in a row lock the staff screen ...
    lock_minutes: Annotated[float, Meta(gt=0, le=1440)] = 5.0  # ... this long


class KioskConfig(ConfigModel, kw_only=True):
    kiosk: KioskSection
    printer: PrinterSection
    staff: StaffSection | None = None
    screen: ScreenSection = msgspec.field(default_factory=ScreenSection)
    readers: list[ReaderSection] = []


def check(cfg: KioskConfig, source: str = "config") -> KioskConfig:
    """The checks a schema cannot express; raises :class:`ConfigError` naming the key."""
    try:
        check_client_id(cfg.kiosk.id)
    except TopicError as exc:
        raise ConfigError(f"{source}: kiosk.id: {exc}") from None
    try:
        check_hall_id(cfg.kiosk.hall)
    except TopicError as exc:
        raise ConfigError(f"{source}: kiosk.hall: {exc}") from None
    BrokerURL.parse(cfg.kiosk.broker)
    if cfg.kiosk.qr_url:
        try:
            cfg.kiosk.qr_url.format(**QR_FIELDS)
        except (KeyError, IndexError, ValueError) as exc:
            raise ConfigError(
                f"{source}: kiosk.qr_url: only {{number}} {{category}} {{hall}} {{date}} may be used ({exc})"
            ) from None
    if cfg.printer.url.partition(":")[0] not in ("usb", "serial", "tcp", "file"):
        raise ConfigError(f"{source}: printer.url: expected usb:, serial:, tcp: or file:")
    for i, r in enumerate(cfg.readers):
        if r.url.partition(":")[0] not in ("serial", "evdev"):
            raise ConfigError(f"{source}: readers[{i}].url: expected serial:DEVICE?baudrate=N or evdev:/dev/input/...")
    return cfg


def load(path: str | Path) -> KioskConfig:
    return check(load_config(path, KioskConfig), str(path))
