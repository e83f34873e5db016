"""The built images, read without mounting or booting: partitions and labels, the Pi's boot files, the units,
the role's contents (and no other role's), accounts without passwords, the manifest, bmaptool's checksums."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess

import pytest
from imagekit import Disk, Ext4, fs_label

pytestmark = pytest.mark.timeout(3600)  # the first run on a machine builds the base (≈12 min)

ROLES = ("controller", "kiosk", "display", "pad")
ROLE_PACKAGES = {"controller": "controller", "kiosk": "kiosk", "display": "call_display", "pad": "rating_pad"}
ROLE_DISTS = {"controller": "hallq_controller", "kiosk": "hallq_kiosk", "display": "hallq_call_display",
              "pad": "hallq_rating_pad"}
SITE = "/opt/hallq/lib/python3.11/site-packages"


@pytest.fixture(scope="session")
def unpacked(images, tmp_path_factory):
    """Per role: the disk, its root file system (extracted partition, read with debugfs)."""
    out = {}
    for role, img in images.items():
        d = tmp_path_factory.mktemp(f"parts-{role}")
        disk = Disk(img)
        out[role] = (disk, Ext4(disk.extract(2, d / "root.ext4")), disk.extract(1, d / "boot.vfat"),
                     disk.extract(3, d / "data.ext4"))
    return out


@pytest.mark.parametrize("role", ROLES)
def test_partitions_and_labels(unpacked, role):
    disk, root, boot, data = unpacked[role]
    assert disk.label == "dos", "a Pi 3 boots from MBR only"
    assert disk.id and int(disk.id, 16) != 0, "the disk signature is set"
    assert [p.type for p in disk.parts] == ["c", "83", "83"]
    assert disk.parts[0].bootable and disk.parts[0].start % (4 << 20) == 0
    assert fs_label(boot) == "HALLQ-BOOT"
    assert fs_label(root.path) == "hallq-root"
    assert fs_label(data) == "hallq-data"
    assert disk.parts[2] == max(disk.parts, key=lambda p: p.start), "the data partition is last (it grows)"
    fat = subprocess.run(["file", "-s", str(boot)], capture_output=True, text=True).stdout
    assert "FAT (32 bit)" in fat


@pytest.mark.parametrize("role", ROLES)
def test_every_boot_file_named_is_on_the_fat(unpacked, role):
    disk, root, _, _ = unpacked[role]
    names = set(disk.fat_ls())
    config = disk.fat_read("config.txt").decode()
    named = []
    for line in config.splitlines():
        line = line.split("#", 1)[0].strip()
        if m := re.match(r"(kernel|device_tree|os_prefix)=(\S+)", line):
            named.append(m.group(2))
        elif m := re.match(r"initramfs\s+(\S+)", line):
            named.append(m.group(1))
        elif m := re.match(r"dtoverlay=([^,\s]+)", line):
            named.append(f"overlays/{m.group(1)}.dtbo")
    assert any(n.startswith("vmlinuz-") for n in named) and any(n.startswith("initrd.img-") for n in named)
    for n in named:
        assert n.split("/")[0] in names, f"config.txt names {n}, not on the boot partition"
    # the firmware of a Pi 3 / Zero 2 W and of a Pi 4, and their device trees
    for f in ("bootcode.bin", "start.elf", "fixup.dat", "start4.elf", "fixup4.dat", "bcm2837-rpi-3-b.dtb",
              "bcm2837-rpi-3-b-plus.dtb", "bcm2711-rpi-4-b.dtb"):
        assert f in names, f"{f} missing from the boot partition"
    cmdline = disk.fat_read("cmdline.txt").decode()
    assert cmdline.count("\n") == 1 and cmdline.endswith("\n"), "cmdline.txt is one line"
    args = cmdline.split()
    root_arg = next(a for a in args if a.startswith("root="))
    assert root_arg == f"root=LABEL={fs_label(root.path)}"
    assert "ro" in args and "rw" not in args
    assert "vt.global_cursor_default=0" in args and "consoleblank=0" in args


@pytest.mark.parametrize("role", ROLES)
def test_fstab_root_read_only_data_by_label(unpacked, role):
    _, root, _, _ = unpacked[role]
    rows = [ln.split() for ln in root.read("/etc/fstab").decode().splitlines() if ln and not ln.startswith("#")]
    by_mount = {r[1]: r for r in rows}
    assert by_mount["/"][0] == "LABEL=hallq-root" and "ro" in by_mount["/"][3].split(",")
    assert by_mount["/data"][0] == "LABEL=hallq-data" and by_mount["/data"][5] == "2", "checked on every boot"
    assert by_mount["/boot/firmware"][0] == "LABEL=HALLQ-BOOT"
    for m in ("/tmp", "/var/tmp", "/var/lib/systemd"):
        assert by_mount[m][2] == "tmpfs"
    assert root.readlink("/etc/hallq") == "/data/etc"
    assert root.readlink("/var/lib/hallq") == "/data/hallq"
    assert root.readlink("/var/log/journal") == "/data/journal"


@pytest.mark.parametrize("role", ROLES)
def test_the_role_and_no_other(unpacked, role):
    _, root, _, _ = unpacked[role]
    hallq = set(root.ls(f"{SITE}/hallq"))
    assert {"shared", ROLE_PACKAGES[role]} <= hallq
    others = {ROLE_PACKAGES[r] for r in ROLES if r != role}
    assert not hallq & others, f"{role} image holds other roles' code: {hallq & others}"
    dists = {n.split("-")[0] for n in root.ls(SITE) if n.endswith(".dist-info")}
    assert ROLE_DISTS[role] in dists
    assert not dists & {ROLE_DISTS[r] for r in ROLES if r != role}
    if role != "controller":
        assert "amqtt" not in dists, "the controller's broker dependency is not on a device"
    else:
        assert "pygame" not in dists
    launcher = root.read("/usr/bin/hallq").decode()
    assert launcher.startswith("#!/opt/hallq/bin/python3")
    assert root.readlink("/opt/hallq/bin/python3") == "/usr/bin/python3.11"
    assert "include-system-site-packages = true" in root.read("/opt/hallq/pyvenv.cfg").decode()
    if role in ("kiosk", "display", "pad"):
        assert root.exists("/usr/lib/python3/dist-packages/pygame"), "Debian's pygame (SDL with KMSDRM)"
        assert root.exists("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
    for d in ROLE_DISTS.values():
        assert not root.exists(f"/usr/lib/python3/dist-packages/{d}")


@pytest.mark.parametrize("role", ROLES)
def test_units_enabled_for_the_role(unpacked, role):
    _, root, _, _ = unpacked[role]
    wants = set(root.ls("/etc/systemd/system/multi-user.target.wants"))
    assert f"hallq-{role}.service" in wants
    assert not {f"hallq-{r}.service" for r in ROLES if r != role} & wants
    assert ("mosquitto.service" in wants) == (role == "controller")
    assert "chrony.service" in wants
    assert "hallq-setup.service" in set(root.ls("/etc/systemd/system/sysinit.target.wants"))
    unit = root.read(f"/etc/systemd/system/hallq-{role}.service").decode()
    for line in ("Type=notify", "Restart=always", "User=hallq"):
        assert line in unit
    assert re.search(r"^WatchdogSec=\d+", unit, re.M)
    system = root.read("/etc/systemd/system.conf.d/hallq.conf").decode()
    assert re.search(r"^RuntimeWatchdogSec=\d+", system, re.M), "the hardware watchdog is used"
    if role != "controller":
        assert root.readlink("/etc/systemd/system/getty@tty1.service") == "/dev/null", "no login over the screen"


@pytest.mark.parametrize("role", ["controller", "kiosk"])
def test_units_pass_systemd_analyze_verify(unpacked, role, tmp_path):
    _, root, _, _ = unpacked[role]
    tree = tmp_path / "root"
    tree.mkdir()
    for link in ("bin", "sbin", "lib"):  # Debian 12's merged /usr
        (tree / link).symlink_to(f"usr/{link}")
    for d in ("/etc/systemd", "/usr/lib/systemd/system", "/usr/lib/hallq", "/usr/bin/hallq", "/usr/bin/python3",
              "/usr/bin/python3.11", "/usr/sbin/mosquitto", "/usr/sbin/fake-hwclock", "/usr/bin/kill",
              "/usr/bin/mkdir", "/usr/bin/chown"):
        dest = tree / d.lstrip("/")
        dest.parent.mkdir(parents=True, exist_ok=True)
        if root.exists(d):
            root.rdump(d, dest.parent)
    units = [f"hallq-{role}.service", "hallq-setup.service", "hallq-clock-save.service", "hallq-clock-save.timer"]
    r = subprocess.run(["systemd-analyze", "verify", f"--root={tree}", "--man=no", "--recursive-errors=no",
                        *[str(tree / "etc/systemd/system" / u) for u in units]],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("role", ROLES)
def test_no_passwords_keys_or_identity_in_the_image(unpacked, role):
    _, root, _, data = unpacked[role]
    for line in root.read("/etc/shadow").decode().splitlines():
        user, pw = line.split(":")[:2]
        assert "$" not in pw and (pw in ("*", "") or pw.startswith("!")), f"{user} has a password: {pw[:3]}…"
        assert pw != "", f"{user} may log in without a password"
    assert not [n for n in root.ls("/etc/ssh") if n.startswith("ssh_host_")], "no SSH host keys in the image"
    assert root.read("/etc/machine-id") == b""
    assert "hallq" in root.read("/etc/passwd").decode()
    assert not Ext4(data).ls("/etc"), "no identity on the data partition before the first boot"
    assert ("voice" in Ext4(data).ls("/hallq")) == (role == "display"), "a display's voice clips are made at build"


@pytest.mark.parametrize("role", ["kiosk"])
def test_manifest(images, role):
    img = images[role]
    m = json.loads(img.with_name(f"hallq-{role}.manifest.json").read_text())
    h = hashlib.sha256()
    with open(img, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    assert m["sha256"] == h.hexdigest()
    assert re.fullmatch(r"[0-9a-f]{40}", m["git_commit"])
    debs = {p["name"]: p["version"] for p in m["debian"]}
    assert "linux-image-arm64" in debs and "raspi-firmware" in debs and "python3-pygame" in debs
    dists = {p["name"] for p in m["python"]}
    assert {"hallq-shared", "hallq-kiosk", "paho-mqtt", "msgspec"} <= dists
    assert m["hallq_version"]
    assert img.with_suffix(".bmap").exists() and img.with_name(img.name + ".zst").exists()


def test_bmaptool_refuses_a_corrupted_image(images, tmp_path):
    img = images["pad"]
    bad = tmp_path / "bad.img"
    shutil.copyfile(img, bad)
    disk = Disk(bad)
    with open(bad, "r+b") as f:  # a byte inside the root file system's first blocks (mapped data)
        f.seek(disk.parts[1].start + 1024 + 7)
        b = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([b[0] ^ 0xFF]))
    target = tmp_path / "card"
    target.touch()
    r = subprocess.run(["bmaptool", "copy", "--bmap", str(img.with_suffix(".bmap")), str(bad), str(target)],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "checksum" in (r.stderr + r.stdout).lower()
    good = subprocess.run(["bmaptool", "copy", "--bmap", str(img.with_suffix(".bmap")), str(img), str(target)],
                          capture_output=True, text=True)
    assert good.returncode == 0, good.stderr
