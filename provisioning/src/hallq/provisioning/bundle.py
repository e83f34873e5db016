"""A device's bundle: the files a device needs to be itself in its hall.

```
device.toml        the identity (hallq.shared.identity reads it): device, role, hall, broker, username,
                   password, ca (and kiosk_key on kiosks); mode 0600
ca.crt             the hall's CA, to trust the broker
kiosk.key          kiosks and the SMS gateway only: the hall's kiosk key (person keys)
follow.key         the controller and the dashboard only: the key of the follow pages' tokens
identities/ID/     the dashboard only: device.toml and ca.crt (kiosk.key for a kiosk) of each identity it
                   acts under: its web callers (window devices web-caller-N) and the scan-to-take page's
                   kiosk ([follow] take_client); the dashboard finds them beside its own device.toml
kiosk.toml | display.toml | pad.toml      the role's config, made from hall.toml (windows, display modes);
                   the device's own hardware (printer, readers, LED board, buttons) is set there after
hall.toml, broker/ the controller only: the hall's config and Mosquitto's files
wifi.toml          optional: ssid, psk, country (given with --wifi-ssid / --wifi-psk-file)
authorized_keys    optional: one SSH public key (--ssh-key)
```
On a card the bundle is the folder ``hallq/`` at the root of the FAT boot partition; a device's first boot
moves it to ``/etc/hallq/`` (:data:`INSTALLED`), which is where the role configs point.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from hallq.shared.identity import KEY_ROLES
from hallq.shared.inventory import Inventory

from .files import PUBLIC, SECRET, ProvisionError, atomic_write, private_dir, toml_str
from .keyring import DeviceRecord, Keyring

INSTALLED = Path("/etc/hallq")
IDENTITIES = "identities"  # the dashboard's other identities (hallq.dashboard.server.IDENTITIES)
FOLDER = "hallq"  # on the FAT boot partition


@dataclass(frozen=True, slots=True)
class Extras:
    """What the technician adds on the command line (never a secret itself: the Wi-Fi passphrase comes
    from a file)."""

    wifi_ssid: str | None = None
    wifi_psk: str | None = None
    wifi_country: str = "CN"
    ssh_key: str | None = None


def bundle_files(kr: Keyring, device: str, extras: Extras = Extras()) -> dict[str, tuple[bytes, int]]:
    """Every file of the device's bundle: relative path -> (content, mode)."""
    rec = kr.load()
    d = kr.device(device)
    inv = kr.inventory()
    if inv.hall != rec.hall:
        raise ProvisionError(f"{kr.hall_file} is hall {inv.hall!r} but the keyring is hall {rec.hall!r}")
    if d.role not in ("controller", "dashboard") and inv.device(device) is None:
        raise ProvisionError(f"device {device!r} is no longer in the hall's hall.toml [[devices]] "
                             "(revoke it, or list it again and run init)")
    assert inv.broker is not None
    # the controller runs beside its broker
    url = f"mqtts://127.0.0.1:{inv.broker.port}" if d.role == "controller" else inv.broker.url
    files: dict[str, tuple[bytes, int]] = {}
    lines = [
        f"# The identity of {device} ({d.role}) in hall {rec.hall}, made by `hallq provision bundle`.",
        "# It holds the device's password: keep it mode 0600, never copy it into a log or a ticket.",
        f"device = {toml_str(device)}",
        f"role = {toml_str(d.role)}",
        f"hall = {toml_str(rec.hall)}",
        f"broker = {toml_str(url)}",
        f"username = {toml_str(device)}",
        f"password = {toml_str(kr.password(device))}",
        'ca = "ca.crt"',
    ]
    if d.role in KEY_ROLES:
        lines.append('kiosk_key = "kiosk.key"')
        files["kiosk.key"] = (kr.kiosk_key_file.read_bytes(), SECRET)
    if d.role in ("controller", "dashboard"):  # [follow] key_file = "/etc/hallq/follow.key"
        files["follow.key"] = (kr.follow_key_file.read_bytes(), SECRET)
    if d.role == "dashboard":  # the identities it acts under, each logging in as itself
        for other in dashboard_identities(kr, inv):
            for name, content in bundle_files(kr, other).items():
                if name in ("device.toml", "ca.crt", "kiosk.key"):
                    files[f"{IDENTITIES}/{other}/{name}"] = content
    files["device.toml"] = (("\n".join(lines) + "\n").encode(), SECRET)
    files["ca.crt"] = (kr.ca_file.read_bytes(), PUBLIC)
    role_cfg = role_config(d, inv, url)
    if role_cfg is not None:
        files[role_cfg[0]] = (role_cfg[1].encode(), PUBLIC)
    if d.role == "controller":
        files["hall.toml"] = (kr.hall_file.read_bytes(), PUBLIC)
        for name in ("mosquitto.conf", "passwd", "acl", "ca.crt", "server.crt", "server.key"):
            secret = name in ("passwd", "server.key")
            files[f"broker/{name}"] = ((kr.broker_dir / name).read_bytes(), SECRET if secret else PUBLIC)
    if extras.wifi_ssid:
        if not extras.wifi_psk:
            raise ProvisionError("--wifi-ssid needs --wifi-psk-file (the passphrase is never a command-line argument)")
        if not 8 <= len(extras.wifi_psk) <= 63:
            raise ProvisionError("the Wi-Fi passphrase must be 8 to 63 characters")
        files["wifi.toml"] = ((f"ssid = {toml_str(extras.wifi_ssid)}\npsk = {toml_str(extras.wifi_psk)}\n"
                               f"country = {toml_str(extras.wifi_country)}\n").encode(), SECRET)
    if extras.ssh_key:
        key = extras.ssh_key.strip()
        if "\n" in key or not key.startswith(("ssh-", "ecdsa-", "sk-")):
            raise ProvisionError("--ssh-key: expected one OpenSSH public key (ssh-ed25519 AAAA...)")
        files["authorized_keys"] = ((key + "\n").encode(), PUBLIC)
    return files


def dashboard_identities(kr: Keyring, inv: Inventory) -> list[str]:
    """The devices the dashboard acts as, whose identities its bundle carries in ``identities/``: its web
    callers (the window devices named ``web-caller-N``, as the dashboard names them) and the scan-to-take
    page's kiosk (``[follow] take_client`` of hall.toml, when it is a kiosk in ``[[devices]]``)."""
    import tomllib

    try:
        follow = tomllib.loads(kr.hall_file.read_text(encoding="utf-8")).get("follow") or {}
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ProvisionError(f"{kr.hall_file}: cannot read it: {exc}") from None
    take = follow.get("take_client") if isinstance(follow, dict) else None
    known = {k for k, d in kr.load().devices.items() if d.active}  # a revoked one is left out
    out = []
    for dev in inv.devices:
        if dev.id not in known:
            continue
        if (dev.role == "window" and dev.id.startswith("web-caller-")) or (dev.role == "kiosk" and dev.id == take):
            out.append(dev.id)
    return sorted(out)


def role_config(d: DeviceRecord, inv: Inventory, url: str) -> tuple[str, str] | None:
    """The role's config file made from the inventory (``None`` for the dashboard and the controller)."""
    head = (f"# {d.id} of hall {inv.hall} ({inv.name}), made by `hallq provision bundle` from hall.toml.\n"
            f"# Its identity (id, hall, broker, password) comes from device.toml; this device's own hardware\n"
            f"# is set below: change it here (every key is checked at start-up).\n")
    if d.role == "kiosk":
        return "kiosk.toml", head + f"""
[kiosk]
id = {toml_str(d.id)}
hall = {toml_str(inv.hall)}
broker = {toml_str(url)}
secret_key_file = {toml_str(str(INSTALLED / "kiosk.key"))}
language = "zh"

[screen]
mode = "fullscreen"

[printer]
url = "usb:0x0416:0x5011"            # usb:VID:PID, serial:/dev/ttyUSB0?baudrate=9600, tcp:HOST:9100
chinese = "raster"
width_px = 576                       # 384 for 58 mm paper

# An ID card reader: GA 467 on a serial port, or a keyboard-wedge reader.
# [[readers]]
# url = "serial:/dev/ttyUSB0?baudrate=115200"
"""
    if d.role in ("display", "window"):
        mode = "window" if d.role == "window" else (d.mode or "hall")
        window = f"window = {d.window}\n" if d.window is not None else ""
        caller = ""
        if d.role == "window":
            caller = f"""
# The window's caller: five buttons on GPIO (or [caller.keypad] for a USB keypad instead).
[caller]
device_id = {toml_str(d.id)}

[caller.gpio]
buttons = {{ next = "GPIO5", recall = "GPIO6", noshow = "GPIO13", transfer = "GPIO19", pause = "GPIO26" }}
"""
        return "display.toml", head + f"""
[display]
hall = {toml_str(inv.hall)}
broker = {toml_str(url)}
client_id = {toml_str(d.id)}
mode = {toml_str(mode)}
{window}screen = "fullscreen"

[voice]
backend = "clips"
pack = "/var/lib/hallq/voice"
make_if_missing = true
{caller}"""
    if d.role == "pad":
        return "pad.toml", head + f"""
[pad]
hall = {toml_str(inv.hall)}
window = {d.window}
broker = {toml_str(url)}
client_id = {toml_str(d.id)}
journal = "/var/lib/hallq/pad-ratings.jsonl"
timezone = {toml_str(inv.timezone)}

[gpio]
pin_factory = "native"
buttons = ["GPIO5", "GPIO6", "GPIO13", "GPIO19", "GPIO26"]   # 非常满意 … 非常不满意
leds = ["GPIO12", "GPIO16", "GPIO20", "GPIO21", "GPIO25"]
"""
    return None


def write_bundle(files: dict[str, tuple[bytes, int]], out: Path, *, force: bool = False) -> None:
    """Write the bundle as the folder ``out`` (0700): into a temporary folder beside it, renamed into place."""
    out = Path(out)
    if out.exists() and not force:
        raise ProvisionError(f"{out} exists: give a new folder, or --force to replace it")
    if out.exists() and not out.is_dir():
        raise ProvisionError(f"{out} exists and is not a folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.new"
    if tmp.exists():
        shutil.rmtree(tmp)
    private_dir(tmp)
    for rel, (data, mode) in files.items():
        p = tmp / rel
        if p.parent != tmp:
            private_dir(p.parent)
        atomic_write(p, data, mode)
    old = out.parent / f".{out.name}.old"
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old)
