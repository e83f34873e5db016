"""Strict TOML configuration.

Every role's config file is a ``ConfigModel``: an unknown key, a missing key or a value of the wrong
type stops start-up with a :class:`ConfigError` naming the key (``hall.timezone: ...``).
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import msgspec

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message says which file and key."""


class ConfigModel(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every config section: unknown keys are refused."""


def _where(path: str) -> str:
    # msgspec paths look like "$.hall.hours[0]"; people read "hall.hours[0]".
    return path.removeprefix("$").removeprefix(".") or "(top level)"


def _humanise(message: str) -> str:
    if " - at `" in message:
        text, _, at = message.rpartition(" - at `")
        return f"{_where(at.rstrip('`'))}: {text}"
    return message


def parse_config(data: str | bytes | dict, model: type[T], *, source: str = "config") -> T:
    """Validate TOML text (or an already-parsed dict) against ``model``."""
    try:
        if isinstance(data, dict):
            return msgspec.convert(data, model)
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return msgspec.convert(tomllib.loads(text), model)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML: {exc}") from None
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_humanise(str(exc))}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8: {exc}") from None


def load_config(path: str | os.PathLike[str], model: type[T]) -> T:
    """Read and validate a TOML config file."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from None
    return parse_config(data, model, source=str(p))


# -- broker addresses --------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BrokerURL:
    """Where the broker is: ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...`` (TLS).

    User and password may also come from ``HALLQ_MQTT_USERNAME`` / ``HALLQ_MQTT_PASSWORD``;
    ``mqtts://host?ca=/path/ca.crt`` names a CA file (the system's CAs otherwise).
    """

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @classmethod
    def parse(cls, url: str, env: dict[str, str] | None = None) -> BrokerURL:
        env = os.environ if env is None else env
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConfigError(f"broker URL {url!r}: scheme must be mqtt:// or mqtts://")
        tls = parts.scheme in ("mqtts", "ssl")
        if not parts.hostname:
            raise ConfigError(f"broker URL {url!r}: no host")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError(f"broker URL {url!r}: bad port") from None
        query = parse_qs(parts.query)
        unknown = set(query) - {"ca"}
        if unknown:
            raise ConfigError(f"broker URL {url!r}: unknown option {sorted(unknown)[0]!r}")
        username = unquote(parts.username) if parts.username else env.get("HALLQ_MQTT_USERNAME")
        password = unquote(parts.password) if parts.password else env.get("HALLQ_MQTT_PASSWORD")
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=username or None,
            password=password or None,
            ca_file=query.get("ca", [None])[0],
        )

    def __str__(self) -> str:  # never shows the password
        scheme = "mqtts" if self.tls else "mqtt"
        user = f"{self.username}@" if self.username else ""
        return f"{scheme}://{user}{self.host}:{self.port}"
