"""The hall's keyring: a directory (mode 0700) that holds everything secret about a hall.

```
KEYRING/
  keyring.toml        the record: the hall, and per device its role, window, when provisioned/rotated/revoked
  hall.toml           the hall.toml of the last `init` (bundles make the role configs from it)
  ca.crt  ca.key      the hall's CA (the key never leaves the keyring)
  kiosk.key           the hall's kiosk key (person keys); only kiosk (and SMS gateway) bundles carry it
  follow.key          the key of the follow pages' tokens; only the controller and dashboard bundles carry it
  credentials/ID      each device's broker password
  broker/             what Mosquitto needs: mosquitto.conf, passwd, acl, ca.crt, server.crt, server.key
```
Every secret file is 0600. Every write goes to a temporary file that is renamed into place.
"""

from __future__ import annotations

import datetime as dt
import secrets
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path

from hallq.shared.config import ConfigError
from hallq.shared.inventory import BUILTIN, Inventory, read_inventory

from . import broker, pki
from .files import SECRET, ProvisionError, atomic_write, private_dir, toml_str, toml_value

FORMAT = 1
RECORD = "keyring.toml"


def now_text() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


@dataclass
class DeviceRecord:
    id: str
    role: str
    window: int | None = None
    mode: str | None = None
    provisioned: str = ""
    rotated: str | None = None
    revoked: str | None = None

    @property
    def active(self) -> bool:
        return self.revoked is None


@dataclass
class Record:
    hall: str
    created: str
    devices: dict[str, DeviceRecord] = field(default_factory=dict)

    def text(self) -> str:
        out = [
            "# The record of this hall's keyring, written by `hallq provision` (do not edit by hand).",
            f"format = {FORMAT}",
            f"hall = {toml_str(self.hall)}",
            f"created = {toml_str(self.created)}",
        ]
        for d in sorted(self.devices.values(), key=lambda d: d.id):
            out.append("")
            out.append(f"[devices.{toml_str(d.id)}]")
            for key in ("role", "window", "mode", "provisioned", "rotated", "revoked"):
                value = getattr(d, key)
                if value is not None:
                    out.append(f"{key} = {toml_value(value)}")
        return "\n".join(out) + "\n"


@dataclass
class InitReport:
    created_keyring: bool
    added: list[str]
    kept: list[str]
    not_in_hall: list[str]
    server_cert_remade: bool


class Keyring:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    # -- where things are ----------------------------------------------------------------------------
    @property
    def record_file(self) -> Path:
        return self.path / RECORD

    @property
    def broker_dir(self) -> Path:
        return self.path / "broker"

    @property
    def hall_file(self) -> Path:
        return self.path / "hall.toml"

    def credential_file(self, device: str) -> Path:
        return self.path / "credentials" / device

    @property
    def kiosk_key_file(self) -> Path:
        return self.path / "kiosk.key"

    @property
    def follow_key_file(self) -> Path:
        """The key of the follow pages' tokens ([follow] key_file): the controller and the dashboard."""
        return self.path / "follow.key"

    @property
    def ca_file(self) -> Path:
        return self.path / "ca.crt"

    # -- reading -------------------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.record_file.exists()

    def load(self) -> Record:
        if not self.path.is_dir():
            raise ProvisionError(f"{self.path}: no such keyring (make one with `hallq provision init`)")
        try:
            data = tomllib.loads(self.record_file.read_text("utf-8"))
        except FileNotFoundError:
            raise ProvisionError(f"{self.path}: not a hallq keyring (no {RECORD}; "
                                 "make one with `hallq provision init`)") from None
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ProvisionError(f"{self.record_file}: cannot read: {exc}") from None
        if data.get("format") != FORMAT or not isinstance(data.get("hall"), str):
            raise ProvisionError(f"{self.record_file}: not a keyring record this version understands")
        devices = {}
        for did, d in data.get("devices", {}).items():
            devices[did] = DeviceRecord(id=did, **d)
        return Record(hall=data["hall"], created=data.get("created", ""), devices=devices)

    def inventory(self) -> Inventory:
        try:
            inv, _ = read_inventory(self.hall_file)
        except ConfigError as exc:
            raise ProvisionError(str(exc)) from None
        return inv

    def device(self, device: str, *, active: bool = True) -> DeviceRecord:
        rec = self.load()
        d = rec.devices.get(device)
        if d is None:
            known = ", ".join(sorted(rec.devices)) or "none"
            raise ProvisionError(f"unknown device {device!r} in the keyring of hall {rec.hall!r} (devices: {known}); "
                                 "list it in hall.toml [[devices]] and run `hallq provision init` again")
        if active and not d.active:
            raise ProvisionError(f"device {device!r} was revoked on {d.revoked}; `hallq provision rotate {device}` "
                                 "gives it a new credential")
        return d

    def password(self, device: str) -> str:
        try:
            return self.credential_file(device).read_text("ascii").strip()
        except OSError as exc:
            raise ProvisionError(f"{self.credential_file(device)}: cannot read: {exc.strerror}") from None

    def check_hall(self, hall: str) -> None:
        rec = self.load()
        if rec.hall != hall:
            raise ProvisionError(f"{self.path} is the keyring of hall {rec.hall!r}, not of hall {hall!r}")

    # -- init ----------------------------------------------------------------------------------------
    def init(self, hall_config: str | Path) -> InitReport:
        """Make the keyring, or add the devices that are new in ``hall.toml``; nothing else changes."""
        try:
            inv, raw = read_inventory(hall_config)
        except ConfigError as exc:
            raise ProvisionError(str(exc)) from None
        if inv.broker is None:
            raise ProvisionError(f"{hall_config}: no [broker] section: say how devices reach the hall's broker, "
                                 'e.g. [broker] host = "hallq-controller.local" (port 8883 by default)')
        created = not self.exists()
        if created:
            if self.path.exists() and any(self.path.iterdir()):
                raise ProvisionError(f"{self.path} exists and is not a hallq keyring: give an empty or new directory")
            rec = Record(hall=inv.hall, created=now_text())
        else:
            rec = self.load()
            if rec.hall != inv.hall:
                raise ProvisionError(f"{self.path} is the keyring of hall {rec.hall!r}, but {hall_config} is hall "
                                     f"{inv.hall!r}: use that hall's keyring (or a new directory)")
        private_dir(self.path)
        private_dir(self.path / "credentials")
        private_dir(self.broker_dir)

        # the CA and the kiosk key: made once, never replaced
        if not (self.path / "ca.key").exists():
            ca_key, ca_cert = pki.make_ca(inv.hall)
            atomic_write(self.path / "ca.key", pki.key_pem(ca_key), SECRET)
            atomic_write(self.ca_file, pki.cert_pem(ca_cert))
        else:
            ca_cert = pki.load_cert(self.ca_file.read_bytes())
            if pki.ca_hall(ca_cert) != inv.hall:
                raise ProvisionError(f"{self.ca_file} is the CA of hall {pki.ca_hall(ca_cert)!r}, not {inv.hall!r}")
        if not self.kiosk_key_file.exists():
            atomic_write(self.kiosk_key_file, secrets.token_hex(32) + "\n", SECRET)
        if not self.follow_key_file.exists():
            atomic_write(self.follow_key_file, secrets.token_hex(32) + "\n", SECRET)

        # the broker's certificate: made again only when the names devices use for it change
        names = server_names(inv)
        remade = False
        cert_file = self.broker_dir / "server.crt"
        if not cert_file.exists() or pki.cert_names(pki.load_cert(cert_file.read_bytes())) != pki.normal_names(names):
            ca_key = pki.load_key((self.path / "ca.key").read_bytes())
            key, cert = pki.make_server_cert(ca_key, ca_cert, inv.hall, names)
            atomic_write(self.broker_dir / "server.key", pki.key_pem(key), SECRET)
            atomic_write(cert_file, pki.cert_pem(cert))
            remade = not created

        # the devices: the listed ones and the hall's own identities
        wanted = [(d.id, d.role, d.window, d.mode if d.role == "display" else None) for d in inv.devices]
        wanted += [(i, role, None, None) for i, role in BUILTIN.items()]
        added, kept = [], []
        for did, role, window, mode in wanted:
            if did in rec.devices:
                kept.append(did)
                continue
            atomic_write(self.credential_file(did), broker.new_password() + "\n", SECRET)
            rec.devices[did] = DeviceRecord(id=did, role=role, window=window,
                                            mode=(mode or "hall") if role == "display" else None,
                                            provisioned=now_text())
            added.append(did)
        listed = {w[0] for w in wanted}
        atomic_write(self.hall_file, raw)
        atomic_write(self.record_file, rec.text(), SECRET)
        self.write_broker_files(rec, inv)
        return InitReport(created, added, kept, sorted(set(rec.devices) - listed), remade)

    # -- revoke and rotate ---------------------------------------------------------------------------
    def revoke(self, device: str) -> DeviceRecord:
        d = self.device(device)
        rec = self.load()
        rec.devices[device] = d = replace(d, revoked=now_text())
        atomic_write(self.record_file, rec.text(), SECRET)
        self.write_broker_files(rec, self.inventory())
        self.credential_file(device).unlink(missing_ok=True)
        return d

    def rotate(self, device: str) -> DeviceRecord:
        d = self.device(device, active=False)
        rec = self.load()
        atomic_write(self.credential_file(device), broker.new_password() + "\n", SECRET)
        rec.devices[device] = d = replace(d, rotated=now_text(), revoked=None)
        atomic_write(self.record_file, rec.text(), SECRET)
        self.write_broker_files(rec, self.inventory())
        return d

    # -- the broker's files --------------------------------------------------------------------------
    def accounts(self, rec: Record) -> list[broker.Account]:
        """The active identities with their hashes (an unchanged password keeps its hash, so writing the
        broker files again changes nothing for a device whose credential did not change)."""
        old: dict[str, str] = {}
        try:
            for line in (self.broker_dir / "passwd").read_text("ascii").splitlines():
                user, _, hashed = line.partition(":")
                old[user] = hashed
        except OSError:
            pass
        out = []
        for d in rec.devices.values():
            if not d.active:
                continue
            pw = self.password(d.id)
            h = old.get(d.id, "")
            if not broker.check_password(pw, h):
                h = broker.hash_password(pw)
            out.append(broker.Account(d.id, d.role, d.window, h))
        return out

    def write_broker_files(self, rec: Record, inv: Inventory) -> None:
        b = self.broker_dir
        accounts = self.accounts(rec)
        assert inv.broker is not None
        atomic_write(b / "ca.crt", self.ca_file.read_bytes())
        atomic_write(b / "passwd", broker.passwd_text(accounts), SECRET)
        atomic_write(b / "acl", broker.acl_text(rec.hall, accounts))
        atomic_write(b / "mosquitto.conf", broker.conf_text(rec.hall, inv.broker.port, b.resolve()))


def server_names(inv: Inventory) -> list[str]:
    assert inv.broker is not None
    return [inv.broker.host, *inv.broker.addresses, "localhost", "127.0.0.1", "::1"]

