"""The hall's inventory: the ``[[devices]]`` and ``[broker]`` sections of the controller's ``hall.toml``.

The hall has one list of devices, in ``hall.toml``. The controller checks requests against it (the second
line of defence, after the broker's ACL) and ``hallq provision`` gives each listed device its identity.
Both read these sections through the models here, so the two never disagree about what a device is.

```toml
[broker]                       # optional: how devices reach the hall's broker (TLS)
host = "hallq-controller.local"  # a DNS name or an address; it goes into the broker certificate
port = 8883                    # optional, this default
addresses = ["192.168.10.2"]   # optional: more names or addresses the certificate must carry

[[devices]]
id = "kiosk-1"                 # the MQTT client id, also the broker user name
role = "kiosk"                 # kiosk | window (a window's caller) | pad | display (reads only) | sms
                               # | monitor (reads everything of the hall: a technician's monitor, the demo)
window = 1                     # window and pad devices; display devices in window mode
mode = "hall"                  # display devices: "hall" (大厅综合屏) or "window" (窗口屏, with `window`)
staff_priorities = ["military"]  # kiosks: priorities a staff member confirms there (导服台), so a touch
                               # take from this kiosk may claim them (the controller's rule)
```

``controller`` and ``dashboard`` are identities every hall has; they are never listed.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from .config import ConfigError, ConfigModel, _humanise

DeviceId = Annotated[str, Meta(pattern=r"^[a-z0-9_-]{1,64}$")]
WindowNo = Annotated[int, Meta(ge=1, le=999)]
Role = Literal["kiosk", "window", "pad", "display", "sms", "monitor"]
#: The identities every hall has without listing them.
BUILTIN = {"controller": "controller", "dashboard": "dashboard"}
HOST_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?$")


class DeviceEntry(ConfigModel, kw_only=True):
    """One ``[[devices]]`` entry."""

    id: DeviceId
    role: Role
    window: WindowNo | None = None
    #: Display devices only: the hall screen or a window screen.
    mode: Literal["hall", "window"] | None = None
    #: Kiosks only: priorities that need a document (军人证, 残疾证, ...) which a staff member checks at this
    #: kiosk; a touch take from it may claim them, a touch take from any other kiosk may not.
    staff_priorities: list[Literal["elderly", "disabled", "pregnant", "military"]] = []


class BrokerSection(ConfigModel, kw_only=True):
    """``[broker]``: where the devices reach the hall's broker over TLS."""

    host: Annotated[str, Meta(min_length=1, max_length=253)]
    port: Annotated[int, Meta(ge=1, le=65535)] = 8883
    addresses: list[Annotated[str, Meta(min_length=1, max_length=253)]] = []

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtts://{host}:{self.port}"


def check_host(name: str) -> str:
    """A DNS name or an IP address; raises ``ValueError`` otherwise."""
    try:
        ipaddress.ip_address(name)
        return name
    except ValueError:
        pass
    if not HOST_RE.fullmatch(name):
        raise ValueError(f"{name!r} is neither a host name nor an IP address")
    return name


def check_devices(devices: list[DeviceEntry], windows: set[int], source: str = "config") -> None:
    """The checks of ``[[devices]]`` a schema cannot express; raises :class:`ConfigError` naming the key."""
    ids: dict[str, int] = {}
    for i, d in enumerate(devices):
        where = f"{source}: devices[{i}]"
        if d.id in ids:
            raise ConfigError(f"{where}.id: {d.id!r} is already devices[{ids[d.id]}]")
        if d.id in BUILTIN:
            raise ConfigError(f"{where}.id: {d.id!r} is the hall's own {BUILTIN[d.id]} identity; it is not listed")
        ids[d.id] = i
        if d.role == "display":
            mode = d.mode or "hall"
            if mode == "window" and d.window is None:
                raise ConfigError(f"{where}.window: a display in window mode needs `window`")
            if mode == "hall" and d.window is not None:
                raise ConfigError(f"{where}.window: a hall display has no window (mode = \"window\" for a window screen)")
        elif d.mode is not None:
            raise ConfigError(f"{where}.mode: only display devices have a mode")
        if d.role in ("window", "pad") and d.window is None:
            raise ConfigError(f"{where}.window: a {d.role} device needs `window`")
        if d.role in ("kiosk", "sms", "monitor") and d.window is not None:
            raise ConfigError(f"{where}.window: only window, pad and window-screen display devices have a window")
        if d.staff_priorities and d.role != "kiosk":
            raise ConfigError(f"{where}.staff_priorities: only kiosks confirm priorities")
        if d.window is not None and d.window not in windows:
            raise ConfigError(f"{where}.window: unknown window {d.window}")


def check_broker(broker: BrokerSection, source: str = "config") -> None:
    for key, name in [("host", broker.host), *((f"addresses[{i}]", a) for i, a in enumerate(broker.addresses))]:
        try:
            check_host(name)
        except ValueError as exc:
            raise ConfigError(f"{source}: broker.{key}: {exc}") from None


# -- reading the inventory out of a whole hall.toml (what provisioning needs of it) ---------------------------
class _Hall(msgspec.Struct):
    id: Annotated[str, Meta(pattern=r"^[a-z0-9_-]{1,32}$")]
    name: str
    timezone: str = "Asia/Shanghai"


class _Window(msgspec.Struct):
    no: WindowNo
    name: str


class _HallToml(msgspec.Struct):
    hall: _Hall
    windows: list[_Window]
    devices: list[DeviceEntry] = []
    broker: BrokerSection | None = None


class Inventory(msgspec.Struct, frozen=True, kw_only=True):
    """The hall's id and name, its windows, its devices and its broker, read from ``hall.toml``."""

    hall: str
    name: str
    timezone: str
    windows: dict[int, str]
    devices: list[DeviceEntry]
    broker: BrokerSection | None

    def device(self, device_id: str) -> DeviceEntry | None:
        for d in self.devices:
            if d.id == device_id:
                return d
        return None


def read_inventory(path: str | os.PathLike[str]) -> tuple[Inventory, bytes]:
    """The inventory of a ``hall.toml`` and the file's bytes. The other sections are the controller's to
    check (``hallq controller`` refuses a bad file); the ones read here are checked strictly."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
        parsed = msgspec.convert(data, _HallToml)
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{p}: {_humanise(str(exc))}") from None
    windows = {w.no: w.name for w in parsed.windows}
    check_devices(parsed.devices, set(windows), str(p))
    if parsed.broker is not None:
        check_broker(parsed.broker, str(p))
    inv = Inventory(hall=parsed.hall.id, name=parsed.hall.name, timezone=parsed.hall.timezone, windows=windows,
                    devices=parsed.devices, broker=parsed.broker)
    return inv, raw
