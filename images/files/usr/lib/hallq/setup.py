"""hallq device set-up, on every boot before the network and the role's app (hallq-setup.service).

1. The data partition (hallq-data, the card's last partition, at /data) is grown to fill the card, once.
   /data/hallq (= /var/lib/hallq) belongs to the hallq user the apps run as; the rest of /data to root.
2. A provisioning bundle on the boot partition (/boot/firmware/hallq/) is moved to /etc/hallq
   (= /data/etc; 0700/0600, owned by the hallq user), then wiped from the FAT.
3. From the bundle: host name = device id, SSH host keys (made once), SSH only with the bundle's public key,
   Wi-Fi (wifi.toml), a static address (network.toml), the hall controller as time source, the broker's
   files on the controller.
Idempotent and safe to interrupt: every file is written to a temporary name, synced and renamed.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from urllib.parse import urlsplit

DATA = Path("/data")
ETC = DATA / "etc"  # /etc/hallq is a symlink to it
APP = DATA / "hallq"  # /var/lib/hallq is a symlink to it
FAT_BUNDLE = Path("/boot/firmware/hallq")
RUN = Path("/run/hallq")
SAFE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


def say(msg: str) -> None:
    print(f"hallq-setup: {msg}", flush=True)


def run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, check=check, text=True, capture_output=True, input=input)


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644, uid: int = 0, gid: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    raw = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, raw)
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def grow_data() -> None:
    """Grow the data partition (the last one) and its ext4 to the end of the card, once."""
    marker = DATA / ".grown"
    if marker.exists():
        return
    src = run("findmnt", "-no", "SOURCE", str(DATA)).stdout.strip()
    disk = run("lsblk", "-no", "PKNAME", src).stdout.strip()
    partn = Path(f"/sys/class/block/{Path(src).name}/partition").read_text().strip()
    if not disk:
        say(f"cannot tell the disk of {src}; not growing")
        return
    dev = f"/dev/{disk}"
    size = int(Path(f"/sys/class/block/{disk}/size").read_text())
    start = int(Path(f"/sys/class/block/{Path(src).name}/start").read_text())
    length = int(Path(f"/sys/class/block/{Path(src).name}/size").read_text())
    if size - (start + length) > 2048 * 4:  # more than 4 MiB left after it
        say(f"growing {src} to the end of {dev}")
        run("sfdisk", "--no-reread", "--no-tell-kernel", "-N", partn, dev, input=",+\n")
        run("partx", "-u", "--nr", partn, dev)
        run("resize2fs", src)
    write_atomic(marker, "")


def move_bundle() -> bool:
    """Move a bundle from the boot partition to the data partition; True when one was moved."""
    if not (FAT_BUNDLE / "device.toml").is_file():
        return False
    try:
        ident = tomllib.loads((FAT_BUNDLE / "device.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        say(f"the bundle's device.toml cannot be read ({exc}); leaving it on the boot partition")
        return False
    hallq = pwd.getpwnam("hallq")
    new = DATA / "etc.new"
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir(mode=0o700)
    os.chown(new, hallq.pw_uid, hallq.pw_gid)
    for src in sorted(FAT_BUNDLE.rglob("*")):
        rel = src.relative_to(FAT_BUNDLE)
        dst = new / rel
        if src.is_dir():
            dst.mkdir(mode=0o700, exist_ok=True)
            os.chown(dst, hallq.pw_uid, hallq.pw_gid)
        else:  # the apps run as hallq and refuse an identity others can read
            write_atomic(dst, src.read_bytes(), mode=0o600, uid=hallq.pw_uid, gid=hallq.pw_gid)
    old = DATA / "etc.old"
    shutil.rmtree(old, ignore_errors=True)
    if ETC.exists():
        os.replace(ETC, old)
    os.replace(new, ETC)
    os.sync()
    shutil.rmtree(old, ignore_errors=True)
    # Wipe it from the FAT: overwrite every file (a deleted FAT file's clusters keep their bytes), then remove.
    for src in sorted(FAT_BUNDLE.rglob("*"), reverse=True):
        if src.is_file():
            with open(src, "r+b") as f:
                f.write(b"\0" * src.stat().st_size)
                f.flush()
                os.fsync(f.fileno())
            src.unlink()
        else:
            src.rmdir()
    FAT_BUNDLE.rmdir()
    os.sync()
    say(f"provisioned as {ident.get('device')!r} ({ident.get('role')}); the bundle is off the boot partition")
    return True


def identity() -> dict | None:
    try:
        return tomllib.loads((ETC / "device.toml").read_text())
    except FileNotFoundError:
        return None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        say(f"{ETC / 'device.toml'}: {exc}")
        return None


def serial_number() -> str:
    for p in ("/proc/device-tree/serial-number", "/sys/firmware/devicetree/base/serial-number"):
        try:
            s = Path(p).read_bytes().rstrip(b"\0").decode().strip()
        except OSError:
            continue
        if s:
            return s.lstrip("0") or s
    try:
        return Path("/etc/machine-id").read_text().strip()[:16]
    except OSError:
        return "unknown"


def set_hostname(ident: dict | None) -> None:
    dev = str(ident.get("device", "")) if ident else ""
    name = dev if SAFE_ID.match(dev) else f"hallq-{serial_number()[-8:]}"
    run("hostname", name)
    write_atomic(RUN / "hostname", name + "\n")


def ssh(ident: dict | None) -> None:
    keys = DATA / "ssh"
    keys.mkdir(mode=0o700, exist_ok=True)
    for kind in ("ed25519",):  # every current client speaks it; an RSA key takes a Pi 3 long to make
        key = keys / f"ssh_host_{kind}_key"
        if not key.exists():
            tmp = keys / f".ssh_host_{kind}_key"
            for f in (tmp, tmp.with_name(tmp.name + ".pub")):
                f.unlink(missing_ok=True)
            run("ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"hallq@{os.uname().nodename}", "-f", str(tmp))
            os.replace(tmp.with_name(tmp.name + ".pub"), key.with_name(key.name + ".pub"))
            os.replace(tmp, key)
            say(f"made the SSH host key {key.name}")
    auth = ETC / "authorized_keys"
    target = keys / "authorized_keys"
    if ident is not None and auth.is_file() and auth.read_text().strip():
        write_atomic(target, auth.read_text(), mode=0o600)
    else:
        target.unlink(missing_ok=True)


def network() -> None:
    wifi = ETC / "wifi.toml"
    conf = RUN / "wpa_supplicant-wlan0.conf"
    if wifi.is_file():
        w = tomllib.loads(wifi.read_text())
        ssid = json.dumps(str(w["ssid"]), ensure_ascii=False)
        psk = str(w.get("psk", ""))
        country = str(w.get("country", "CN"))
        secret = f"psk={json.dumps(psk)}" if psk else "key_mgmt=NONE"
        write_atomic(conf, f"ctrl_interface=DIR=/run/wpa_supplicant GROUP=netdev\ncountry={country}\n"
                           f"network={{\n\tssid={ssid}\n\t{secret}\n}}\n", mode=0o600)
        run("systemctl", "--no-block", "start", "wpa_supplicant@wlan0.service", check=False)
    else:
        conf.unlink(missing_ok=True)
    static = ETC / "network.toml"
    out = Path("/run/systemd/network/10-hallq-static.network")
    if static.is_file():
        n = tomllib.loads(static.read_text())
        lines = ["[Match]", f"Name={n.get('interface', 'e* wl*')}", "", "[Network]", f"Address={n['address']}"]
        if n.get("gateway"):
            lines.append(f"Gateway={n['gateway']}")
        lines += [f"DNS={d}" for d in n.get("dns", [])]
        write_atomic(out, "\n".join(lines) + "\n")
    else:
        out.unlink(missing_ok=True)


def time_source(ident: dict | None) -> None:
    """A device takes the hall's time from the controller (the broker's host)."""
    out = RUN / "chrony" / "hallq.sources"
    if ident is None or ident.get("role") == "controller":
        out.unlink(missing_ok=True)
        return
    host = urlsplit(str(ident.get("broker", ""))).hostname
    if host:
        write_atomic(out, f"server {host} iburst\n")


def broker(ident: dict | None) -> None:
    """The controller's Mosquitto reads the broker files from the bundle (owned by mosquitto)."""
    src = ETC / "broker"
    dst = DATA / "broker"
    if ident is None or ident.get("role") != "controller" or not src.is_dir():
        return
    try:
        mq = pwd.getpwnam("mosquitto")
    except KeyError:
        return
    dst.mkdir(mode=0o750, exist_ok=True)
    os.chown(dst, mq.pw_uid, mq.pw_gid)
    for f in src.iterdir():
        if f.is_file() and f.name != "mosquitto.conf":
            write_atomic(dst / f.name, f.read_bytes(), mode=0o600, uid=mq.pw_uid, gid=mq.pw_gid)
    conf = src / "mosquitto.conf"
    if conf.is_file():
        write_atomic(dst / "mosquitto.conf", device_broker_conf(conf.read_text(), dst), mode=0o600,
                     uid=mq.pw_uid, gid=mq.pw_gid)
    (DATA / "mosquitto").mkdir(mode=0o750, exist_ok=True)  # the broker's own store
    os.chown(DATA / "mosquitto", mq.pw_uid, mq.pw_gid)


FILE_KEYS = {"cafile", "capath", "certfile", "keyfile", "password_file", "acl_file", "crlfile", "dhparamfile"}


def device_broker_conf(text: str, where: Path) -> str:
    """Provisioning's mosquitto.conf with its files where they are on this device, the broker's store on the
    data partition and its log in the journal (the root is read-only)."""
    out = ["# made by hallq-setup from the provisioning bundle's broker/mosquitto.conf"]
    for line in text.splitlines():
        words = line.split(None, 1)
        key = words[0] if words and not words[0].startswith("#") else ""
        if key in FILE_KEYS and len(words) == 2:
            line = f"{key} {where / Path(words[1].strip()).name}"
        elif key == "persistence_location":
            line = f"persistence_location {DATA / 'mosquitto'}/"
        elif key in ("log_dest", "pid_file"):
            continue
        out.append(line)
    out.append("log_dest stderr")
    return "\n".join(out) + "\n"


def data_dirs() -> None:
    hallq = pwd.getpwnam("hallq")
    os.chown(DATA, 0, 0)
    DATA.chmod(0o755)
    APP.mkdir(mode=0o750, exist_ok=True)  # the controller's hall.db, the pad's journal, the voice pack
    os.chown(APP, hallq.pw_uid, hallq.pw_gid)
    journal = DATA / "journal"
    journal.mkdir(mode=0o2755, exist_ok=True)
    os.chown(journal, 0, grp.getgrnam("systemd-journal").gr_gid)
    # one journal folder per machine id; a Pi's id is made anew on each boot of a read-only root: keep the
    # newest few (each is capped by journald), so the logs never fill the card
    olds = sorted((d for d in journal.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
    for d in olds[:-3]:
        shutil.rmtree(d, ignore_errors=True)


def main() -> int:
    RUN.mkdir(exist_ok=True)
    steps = (grow_data, data_dirs, move_bundle)
    for step in steps:
        try:
            step()
        except Exception as exc:  # one failed step must not keep the device from starting
            say(f"{step.__name__}: {type(exc).__name__}: {exc}")
    ident = identity()
    for step in (set_hostname, ssh, time_source, broker):
        try:
            step(ident)
        except Exception as exc:
            say(f"{step.__name__}: {type(exc).__name__}: {exc}")
    try:
        network()
    except Exception as exc:
        say(f"network: {type(exc).__name__}: {exc}")
    if ident is None:
        say(f"not provisioned (serial {serial_number()}): put a bundle in hallq/ on the boot partition")
    return 0


if __name__ == "__main__":
    sys.exit(main())
