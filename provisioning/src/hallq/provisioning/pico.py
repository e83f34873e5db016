"""``hallq provision pico``: a Pico W rating pad's identity, written through mpremote and read back.

The pad's ``pad.json`` (see ``rating-pad/firmware/picopad.py``) gets the hall, its client id and window from
the inventory, the broker's address and TLS port, its user and password, and ``ca`` (the hall's CA as DER,
``ca.der``, which MicroPython's TLS loads); the Wi-Fi network and passphrase come from the command line and
a file. With ``--firmware DIR`` the firmware is installed first when the board does not have it yet.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .files import ProvisionError
from .keyring import Keyring

FIRMWARE_MODULES = ("padcore", "padjournal", "picopad")


def pad_files(kr: Keyring, device: str, *, ssid: str, psk: str, buttons: list[int], leds: list[int],
              utc_offset_min: int = 480) -> dict[str, bytes]:
    """``pad.json`` and ``ca.der`` for the Pico W pad ``device``."""
    d = kr.device(device)
    if d.role != "pad":
        raise ProvisionError(f"{device} is a {d.role} device: `pico` provisions Pico W rating pads")
    inv = kr.inventory()
    if inv.device(device) is None:
        raise ProvisionError(f"device {device!r} is no longer in the hall's hall.toml [[devices]]")
    assert inv.broker is not None and d.window is not None
    if len(buttons) != 5 or len(leds) not in (0, 5):
        raise ProvisionError("--buttons needs five GPIO numbers (非常满意 first), --leds five or none")
    if not 8 <= len(psk) <= 63:
        raise ProvisionError("the Wi-Fi passphrase must be 8 to 63 characters")
    ca = x509.load_pem_x509_certificate(kr.ca_file.read_bytes()).public_bytes(serialization.Encoding.DER)
    cfg = {
        "ssid": ssid, "password": psk, "broker": inv.broker.host, "port": inv.broker.port, "hall": inv.hall,
        "client": device, "window": d.window, "buttons": buttons, "leds": leds, "user": device,
        "mqtt_password": kr.password(device), "ca": "ca.der", "utc_offset_min": utc_offset_min,
    }
    return {"pad.json": json.dumps(cfg, ensure_ascii=False, indent=1).encode(), "ca.der": ca}


def _mpremote(port: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("mpremote")
    if exe is None:
        raise ProvisionError("mpremote is not installed (pip install mpremote; `make setup` installs it)")
    try:
        p = subprocess.run([exe, "connect", port, *args], capture_output=True, timeout=120)
    except subprocess.TimeoutExpired:
        raise ProvisionError(f"{port}: the board did not answer (is it a Pico W running MicroPython?)") from None
    if check and p.returncode != 0:
        raise ProvisionError(f"{port}: mpremote {' '.join(args[:2])} failed: "
                             f"{(p.stderr or p.stdout).decode(errors='replace').strip()[-400:]}")
    return p


def has_firmware(port: str) -> bool:
    p = _mpremote(port, "fs", "ls", ":")
    listing = p.stdout.decode(errors="replace")
    return all(f"{m}.mpy" in listing for m in FIRMWARE_MODULES) and "main.py" in listing


def install_firmware(port: str, firmware: Path) -> None:
    """Compile the firmware with mpy-cross and copy it (umqtt.simple through mip), as ``make flash-pad`` does."""
    cross = shutil.which("mpy-cross")
    if cross is None:
        raise ProvisionError("mpy-cross is not installed (`make setup` installs it)")
    with tempfile.TemporaryDirectory() as tmp:
        for m in FIRMWARE_MODULES:
            src = firmware / f"{m}.py"
            if not src.is_file():
                raise ProvisionError(f"{firmware} is not the pad firmware folder (no {m}.py)")
            subprocess.run([cross, "-o", f"{tmp}/{m}.mpy", str(src)], check=True, capture_output=True)
        _mpremote(port, "mip", "install", "umqtt.simple")
        for m in FIRMWARE_MODULES:
            _mpremote(port, "fs", "cp", f"{tmp}/{m}.mpy", f":{m}.mpy")
        _mpremote(port, "fs", "cp", str(firmware / "main.py"), ":main.py")


def write_pico(port: str, files: dict[str, bytes], *, firmware: Path | None = None) -> bool:
    """Write ``files`` onto the board, read each back and compare; returns whether the firmware was installed.
    Each file goes to ``NAME.new`` first and is renamed over ``NAME`` once it reads back right."""
    installed = False
    if firmware is not None and not has_firmware(port):
        install_firmware(port, firmware)
        installed = True
    for name, data in files.items():
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / name
            local.write_bytes(data)
            os.chmod(local, 0o600)
            _mpremote(port, "fs", "cp", str(local), f":{name}.new")
        code = (f"import hashlib,binascii\nf=open('{name}.new','rb')\n"
                "print(binascii.hexlify(hashlib.sha256(f.read()).digest()).decode())\nf.close()")
        got = _mpremote(port, "exec", code).stdout.decode(errors="replace").strip()
        if got != hashlib.sha256(data).hexdigest():
            _mpremote(port, "exec", f"import os\nos.remove('{name}.new')", check=False)
            raise ProvisionError(f"{port}: {name} did not read back the same; the pad's old one is untouched")
        _mpremote(port, "exec", f"import os\ntry:\n os.remove('{name}')\nexcept OSError:\n pass\n"
                                f"os.rename('{name}.new','{name}')")
    _mpremote(port, "reset", check=False)
    return installed
