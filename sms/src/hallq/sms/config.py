"""The SMS gateway's configuration (``sms.toml``), strict: an unknown key or a bad value stops start-up.

```toml
[sms]
id = "sms-1"                          # the client id (also the broker user name)
hall = "demo"
broker = "mqtt://127.0.0.1:1883"
secret_key_file = "/etc/hallq/hall.key"   # the hall's key for person keys (the kiosks' key)
db = "/var/lib/hallq/sms.db"          # the inbox, the outbox and today's numbers (encrypted)
timezone = "Asia/Shanghai"            # the hall's: when a day ends (its numbers are deleted)
notify_ahead = 3                      # text a citizen when this many tickets are ahead
max_texts_per_day = 10                # texts answered per phone and day
english = false                       # add a short English line to every text (each part costs)
take_timeout_s = 120                  # the controller did not answer: "busy, try again"

[modem]
port = "/dev/ttyUSB2"                 # the modem's AT port, or any pyserial URL
baudrate = 115200
command_timeout_s = 10
pin_file = "/etc/hallq/sim.pin"       # optional: the SIM's PIN, in a file (0600)
health_every_s = 30
max_attempts = 8                      # tries of one message before it is given up
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from hallq.shared.config import BrokerURL, ConfigError, ConfigModel, load_config
from hallq.shared.topics import TopicError, check_client_id, check_hall_id
from msgspec import Meta


class SmsSection(ConfigModel, kw_only=True):
    id: str
    hall: str
    broker: str = "mqtt://127.0.0.1:1883"
    secret_key_file: str
    db: str = "/var/lib/hallq/sms.db"
    timezone: str = "Asia/Shanghai"
    notify_ahead: Annotated[int, Meta(ge=1, le=50)] = 3
    max_texts_per_day: Annotated[int, Meta(ge=1, le=1000)] = 10
    english: bool = False
    take_timeout_s: Annotated[float, Meta(gt=0, le=3600)] = 120.0
    resend_every_s: Annotated[float, Meta(gt=0, le=60)] = 3.0


class ModemSection(ConfigModel, kw_only=True):
    port: str
    baudrate: Annotated[int, Meta(ge=1200, le=4_000_000)] = 115200
    command_timeout_s: Annotated[float, Meta(gt=0, le=300)] = 10.0
    pin_file: str | None = None
    health_every_s: Annotated[float, Meta(gt=0)] = 30.0
    max_attempts: Annotated[int, Meta(ge=1, le=100)] = 8


class SmsConfig(ConfigModel, kw_only=True):
    sms: SmsSection
    modem: ModemSection


def check(cfg: SmsConfig, source: str = "config") -> SmsConfig:
    """The checks a schema cannot express; raises :class:`ConfigError` naming the key."""
    try:
        check_client_id(cfg.sms.id)
    except TopicError as exc:
        raise ConfigError(f"{source}: sms.id: {exc}") from None
    try:
        check_hall_id(cfg.sms.hall)
    except TopicError as exc:
        raise ConfigError(f"{source}: sms.hall: {exc}") from None
    BrokerURL.parse(cfg.sms.broker)
    try:
        from zoneinfo import ZoneInfo

        ZoneInfo(cfg.sms.timezone)
    except Exception:
        raise ConfigError(f"{source}: sms.timezone: unknown time zone {cfg.sms.timezone!r}") from None
    return cfg


def load(path: str | Path) -> SmsConfig:
    return check(load_config(path, SmsConfig), str(path))


def read_pin(path: str | None) -> str | None:
    if not path:
        return None
    try:
        pin = Path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"modem.pin_file {path}: cannot read: {exc}") from None
    if not pin.isdigit() or not 4 <= len(pin) <= 8:
        raise ConfigError(f"modem.pin_file {path}: a SIM PIN is 4-8 digits")
    return pin
