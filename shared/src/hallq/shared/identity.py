"""A device's identity: the ``device.toml`` of the bundle that ``hallq provision`` made for it.

```toml
device = "kiosk-1"                        # the device id: MQTT client id and broker user name
role = "kiosk"                            # kiosk | window | pad | display | controller | dashboard
hall = "demo"
broker = "mqtts://hallq-controller.local:8883"
username = "kiosk-1"
password = "…"                            # this file is the device's secret: mode 0600, never in a log
ca = "ca.crt"                             # the hall's CA; relative paths are relative to this file
kiosk_key = "kiosk.key"                   # kiosks (and the SMS gateway) only: the hall's key for person keys
```

Every role's app takes ``--device PATH`` (or ``HALLQ_DEVICE``); without either it uses the installed
default :data:`DEFAULT_PATH` when that exists. The role's own config file sits beside ``device.toml``
(``kiosk.toml``, ``display.toml``, ``pad.toml``, ``hall.toml``). No password is ever typed on a command line.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .config import BrokerURL, ConfigError, ConfigModel, load_config
from .topics import TopicError, check_client_id, check_hall_id

#: Where a device's first boot installs its bundle.
DEFAULT_PATH = Path("/etc/hallq/device.toml")
ENV = "HALLQ_DEVICE"
#: A controller's second broker user, the same password under ``{user}-look``, that may only read
#: ``controller/instance``: a starting controller looks for another one of its hall under it, so on the
#: provisioned broker (client id = user name) the look does not take the running controller's connection.
LOOK_SUFFIX = "-look"
ROLES = ("kiosk", "window", "pad", "display", "sms", "monitor", "controller", "dashboard")
#: The roles that hold the hall's kiosk key (person keys of ID numbers and phone numbers).
KEY_ROLES = ("kiosk", "sms")
#: The role's own config file in a bundle.
ROLE_CONFIG = {"kiosk": "kiosk.toml", "window": "display.toml", "display": "display.toml", "pad": "pad.toml",
               "sms": "sms.toml", "controller": "hall.toml"}


class DeviceFile(ConfigModel, kw_only=True):
    device: str
    role: Literal["kiosk", "window", "pad", "display", "sms", "monitor", "controller", "dashboard"]
    hall: str
    broker: str
    username: str
    password: str
    ca: str = "ca.crt"
    kiosk_key: str | None = None


@dataclass(frozen=True, slots=True)
class Identity:
    """Who this device is and how it reaches the hall's broker (``broker`` carries the credentials)."""

    device: str
    role: str
    hall: str
    broker: BrokerURL
    folder: Path
    kiosk_key_file: Path | None = None

    @property
    def config_file(self) -> Path | None:
        """The role's own config file beside ``device.toml`` (``None`` for the dashboard)."""
        name = ROLE_CONFIG.get(self.role)
        return self.folder / name if name else None

    def __repr__(self) -> str:  # never shows the password
        return f"Identity({self.device!r}, role={self.role!r}, hall={self.hall!r}, broker={str(self.broker)!r})"


def load_identity(path: str | os.PathLike[str]) -> Identity:
    """Read and check a ``device.toml``; raises :class:`ConfigError` naming the file and the problem."""
    p = Path(path)
    try:
        st = p.stat()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the device identity: {exc.strerror}") from None
    if os.name == "posix" and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{p}: holds the device's password but others may read it "
                          f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {p}")
    f = load_config(p, DeviceFile)
    try:
        check_client_id(f.device)
        check_hall_id(f.hall)
    except TopicError as exc:
        raise ConfigError(f"{p}: {exc}") from None
    if f.username != f.device:
        raise ConfigError(f"{p}: username {f.username!r} must be the device id {f.device!r} (the broker's client id)")
    if not f.password:
        raise ConfigError(f"{p}: password is empty")
    url = BrokerURL.parse(f.broker, env={})
    if url.username or url.password or url.ca_file:
        raise ConfigError(f"{p}: broker: give the user, password and CA as their own keys, not in the URL")
    ca = (p.parent / f.ca).resolve() if url.tls else None
    if ca is not None and not ca.is_file():
        raise ConfigError(f"{p}: ca: {ca} does not exist")
    key = None
    if f.kiosk_key is not None:
        key = (p.parent / f.kiosk_key).resolve()
        if not key.is_file():
            raise ConfigError(f"{p}: kiosk_key: {key} does not exist")
    elif f.role in KEY_ROLES:
        raise ConfigError(f"{p}: kiosk_key: a {f.role} device needs the hall's kiosk key")
    broker = BrokerURL(host=url.host, port=url.port, tls=url.tls, username=f.username, password=f.password,
                       ca_file=str(ca) if ca else None)
    return Identity(device=f.device, role=f.role, hall=f.hall, broker=broker, folder=p.parent.resolve(),
                    kiosk_key_file=key)


def find_identity(path: str | os.PathLike[str] | None, *, env: dict[str, str] | None = None) -> Identity | None:
    """The identity the app runs as: ``path`` (``--device``), else ``$HALLQ_DEVICE``, else the installed
    default when it exists; ``None`` when there is none (a development machine with a plain config)."""
    env = os.environ if env is None else env
    chosen = path or env.get(ENV) or (DEFAULT_PATH if DEFAULT_PATH.exists() else None)
    return load_identity(chosen) if chosen else None


def expect_role(ident: Identity, *roles: str) -> Identity:
    """Refuse to run a role's app under another role's identity."""
    if ident.role not in roles:
        raise ConfigError(f"{ident.folder / 'device.toml'}: this is the identity of a {ident.role} "
                          f"({ident.device}), not of a {' or '.join(roles)}")
    return ident


def for_app(device: str | os.PathLike[str] | None, config: str | None, *roles: str) -> tuple[Identity | None, str | None]:
    """What a role's app runs as: its identity (``None`` without one) and the config file to read (``--config``,
    else the role's config beside ``device.toml``). Raises :class:`ConfigError` for an identity of another role."""
    ident = find_identity(device)
    if ident is None:
        return None, config
    expect_role(ident, *roles)
    if config is None and ident.config_file is not None and ident.config_file.exists():
        config = str(ident.config_file)
    return ident, config


#: The ``--device`` option's help, the same for every role.
DEVICE_HELP = ("The device's identity (device.toml of its bundle); default: $HALLQ_DEVICE, else "
               f"{DEFAULT_PATH} when it exists. Its broker, user, password and CA are used, and the role's "
               "config beside it when --config is not given.")
