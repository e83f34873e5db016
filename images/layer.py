"""Apply a role's layer to the cached base on the host (no emulation), then make the disk image.

Steps: unpack the base; copy images/files/ and images/layers/<role>/; install the role's workspace members
and their PyPI dependencies resolved for aarch64 into /opt/hallq; enable the layer's units; strip what a
device must make itself (machine-id, SSH host keys); move the boot files to the FAT tree; genimage (no
mounting); bmaptool; zstd; the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recipe import HERE, OUT, ROLES, Layer

REPO = HERE.parent
PY = "3.11"
PLATFORM = "aarch64-manylinux_2_36"  # Debian 12's glibc
BOOT_LABEL = "HALLQ-BOOT"
ROOT_LABEL = "hallq-root"
DATA_LABEL = "hallq-data"
BOOT_MB = 256
DATA_MB = 64
# The kernel command line: root by label, read-only; the picture is the app's (no boot text, no cursor, no
# blanking); the console on the Pi's GPIO serial port (ttyS1, the mini UART of a Pi 3/4/Zero 2 W).
CMDLINE = (f"console=ttyS1,115200 root=LABEL={ROOT_LABEL} rootfstype=ext4 rootwait ro fsck.repair=yes "
           "quiet loglevel=3 systemd.show_status=false vt.global_cursor_default=0 consoleblank=0 logo.nologo "
           "net.ifnames=0")


def log(msg: str) -> None:
    print(f"images: {msg}", file=sys.stderr, flush=True)


def sh(*cmd: str | Path, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def uv() -> str:
    for c in (REPO / ".uv/bin/uv", shutil.which("uv")):
        if c and Path(c).exists():
            return str(c)
    raise SystemExit("images: uv not found (make setup)")


def workspace_members() -> dict[str, Path]:
    import tomllib

    root = tomllib.loads((REPO / "pyproject.toml").read_text())
    out = {}
    for m in root["tool"]["uv"]["workspace"]["members"]:
        name = tomllib.loads((REPO / m / "pyproject.toml").read_text())["project"]["name"]
        out[name] = REPO / m
    return out


def install_python(layer: Layer, rootfs: Path, work: Path) -> list[dict]:
    """/opt/hallq: a venv over Debian's python3 (with its dist-packages, for pygame and evdev) holding the
    role's members and their dependencies, resolved for aarch64 from the workspace's lock."""
    members = workspace_members()
    wanted = [m for m in layer.members] + [m for m in layer.optional_members if m in members]
    missing = [m for m in wanted if m not in members]
    if missing:
        raise SystemExit(f"images: layer {layer.role}: not workspace members: {', '.join(missing)}")
    top = next(m for m in wanted if m != "hallq-shared")
    req = subprocess.run(
        [uv(), "export", "--package", top, *[a for m in wanted if m != top for a in ("--package", m)],
         "--frozen", "--no-dev", "--no-hashes", "--no-emit-workspace", "--no-header", "--no-annotate"],
        check=True, capture_output=True, text=True, cwd=REPO).stdout
    skip = {d.lower() for d in layer.from_debian}
    lines = [ln for ln in req.splitlines() if ln and not ln.startswith("#")
             and re.split(r"[=<>; \[]", ln, maxsplit=1)[0].lower() not in skip]
    (work / "requirements.txt").write_text("\n".join(lines) + "\n")
    wheels = work / "wheels"
    wheels.mkdir()
    for m in wanted:
        sh(uv(), "build", "--quiet", "--wheel", "--package", m, "--out-dir", wheels, cwd=REPO)
    venv = rootfs / "opt/hallq"
    site = venv / f"lib/python{PY}/site-packages"
    site.mkdir(parents=True)
    (venv / "bin").mkdir()
    os.symlink(f"/usr/bin/python{PY}", venv / "bin/python3")
    os.symlink("python3", venv / "bin/python")
    (venv / "pyvenv.cfg").write_text(f"home = /usr/bin\ninclude-system-site-packages = true\nversion = {PY}\n")
    sh(uv(), "pip", "install", "--quiet", "--target", site, "--python-platform", PLATFORM, "--python-version", PY,
       "--no-deps", "--no-build", "--link-mode=copy", "-r", work / "requirements.txt", *sorted(wheels.glob("*.whl")))
    shutil.rmtree(site / "bin", ignore_errors=True)
    # Byte-code now, on the host: the root is read-only on the device, where Python would otherwise compile every
    # module it imports again at each start (the kiosk's imports took 2 min 20 s under QEMU without it).
    # unchecked-hash: the files never change without a new image, so nothing checks their time stamps.
    if sys.version_info[:2] != tuple(int(x) for x in PY.split(".")):
        raise SystemExit(f"images: byte-code for Python {PY} needs Python {PY} here (this is {sys.version.split()[0]})")
    sh(sys.executable, "-m", "compileall", "-q", "-j", "0", "--invalidation-mode", "unchecked-hash", site,
       stdout=subprocess.DEVNULL)
    (rootfs / "usr/bin/hallq").write_text(
        "#!/opt/hallq/bin/python3\n# hallq's one command (the installed role's subcommands)\nimport sys\n"
        "from hallq.shared.cli import main\n\nsys.exit(main())\n")
    (rootfs / "usr/bin/hallq").chmod(0o755)
    dists = []
    for meta in sorted(site.glob("*.dist-info/METADATA")):
        name = version = None
        for line in meta.read_text(errors="replace").splitlines():
            if line.startswith("Name: "):
                name = line[6:].strip()
            elif line.startswith("Version: "):
                version = line[9:].strip()
            if name and version:
                break
        dists.append({"name": name, "version": version})
    return dists


def enable_units(layer: Layer, rootfs: Path) -> None:
    def systemctl(*args: str) -> None:
        sh("systemctl", f"--root={rootfs}", "--quiet", *args)

    systemctl("enable", "hallq-setup.service", "systemd-networkd.service", "systemd-resolved.service",
              "fake-hwclock.service", "hallq-clock-save.timer", "ssh.service", *layer.units)
    # services of other roles that the shared base installed, and what a device does not want
    for unit in ("mosquitto.service", "chrony.service"):
        if unit not in layer.units:
            systemctl("disable", unit)
    systemctl("mask", "systemd-networkd-wait-online.service", "apt-daily.timer", "apt-daily-upgrade.timer",
              "e2scrub_all.timer", "e2scrub_reap.service", "fstrim.timer", "man-db.timer")
    if layer.role != "controller":
        # the screen belongs to the app: no login prompt over it
        systemctl("mask", "getty@tty1.service")


def configure(layer: Layer, rootfs: Path) -> None:
    # identity and keys are a device's own, made on its first boot
    (rootfs / "etc/machine-id").write_text("")
    dbus_id = rootfs / "var/lib/dbus/machine-id"
    dbus_id.unlink(missing_ok=True)
    os.symlink("/etc/machine-id", dbus_id)
    for k in (rootfs / "etc/ssh").glob("ssh_host_*"):
        k.unlink()
    (rootfs / "etc/hostname").write_text("hallq\n")
    hosts = rootfs / "etc/hosts"
    hosts.write_text("127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n")
    # writable places on a read-only root
    for link, target in (("etc/hallq", "/data/etc"), ("var/lib/hallq", "/data/hallq"),
                         ("var/log/journal", "/data/journal"),
                         ("etc/resolv.conf", "/run/systemd/resolve/stub-resolv.conf"),
                         ("etc/wpa_supplicant/wpa_supplicant-wlan0.conf", "/run/hallq/wpa_supplicant-wlan0.conf")):
        p = rootfs / link
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink() or p.is_file():
            p.unlink()
        elif p.is_dir():
            shutil.rmtree(p)
        os.symlink(target, p)
    # every mount point in fstab exists in the image (a read-only root cannot make one at boot)
    fstab = (HERE / "files/etc/fstab").read_text().splitlines()
    points = [ln.split()[1].lstrip("/") for ln in fstab if ln.strip() and not ln.startswith("#")]
    for d in points:
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    (rootfs / "etc/timezone").write_text("Asia/Shanghai\n")
    lt = rootfs / "etc/localtime"
    lt.unlink(missing_ok=True)
    os.symlink("/usr/share/zoneinfo/Asia/Shanghai", lt)
    # files of the image: common, then the role's own
    for tree in (HERE / "files", HERE / "layers" / layer.role):
        if tree.is_dir():
            sh("cp", "-a", "--no-preserve=ownership", f"{tree}/.", rootfs)
    sh("chown", "-R", "root:root", rootfs / "usr/lib/hallq")


def boot_files(rootfs: Path, bootfs: Path) -> None:
    """The FAT: the Pi firmware, the kernel, initrd and device trees (raspi-firmware put them under
    /boot/firmware in the base), config.txt and cmdline.txt of our own."""
    src = rootfs / "boot/firmware"
    shutil.copytree(src, bootfs)
    for f in src.iterdir():
        shutil.rmtree(f) if f.is_dir() else f.unlink()
    kernels = sorted(bootfs.glob("vmlinuz-*"))
    initrds = sorted(bootfs.glob("initrd.img-*"))
    if not kernels or not initrds:
        raise SystemExit("images: the base has no kernel or initrd in /boot/firmware")
    (bootfs / "config.txt").write_text(
        "# hallq (Raspberry Pi 3, 4, Zero 2 W; Debian's kernel and device trees)\n"
        "arm_64bit=1\nupstream_kernel=1\n"
        f"kernel={kernels[-1].name}\ninitramfs {initrds[-1].name} followkernel\n"
        "enable_uart=1\ndisable_splash=1\ndisable_overscan=1\n"
        "# the screen: vc4 KMS is in Debian's device trees; an RTC HAT (DS3231): images/README.md\n"
        "dtparam=i2c_arm=on\n")
    (bootfs / "cmdline.txt").write_text(CMDLINE + "\n")


def prune(rootfs: Path, bootfs: Path) -> None:
    """What a read-only device never uses: the second copy of the kernel, initrd, device trees and Pi firmware
    on the root (the FAT has them; a device is updated by a new image, not by apt), and the Pi firmware's debug
    and camera variants."""
    for pattern in ("boot/vmlinuz-*", "boot/initrd.img-*", "boot/System.map-*", "usr/lib/raspi-firmware/*",
                    "usr/lib/linux-image-*"):
        for p in rootfs.glob(pattern):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    for pattern in ("start_db.elf", "start4db.elf", "fixup_db.dat", "fixup4db.dat", "start_x.elf", "start4x.elf",
                    "fixup_x.dat", "fixup4x.dat", "start_cd.elf", "start4cd.elf", "fixup_cd.dat", "fixup4cd.dat"):
        (bootfs / pattern).unlink(missing_ok=True)


def dpkg_packages(rootfs: Path) -> list[dict]:
    out, cur = [], {}
    for line in [*(rootfs / "var/lib/dpkg/status").read_text().splitlines(), ""]:
        if not line:
            if cur.get("Status", "").endswith(" installed"):
                out.append({"name": cur["Package"], "version": cur["Version"], "arch": cur.get("Architecture")})
            cur = {}
        elif not line.startswith(" ") and ":" in line:
            k, _, v = line.partition(":")
            cur[k] = v.strip()
    return sorted(out, key=lambda p: p["name"])


def data_tree(role: str, rootfs: Path, where: Path) -> Path:
    """The data partition's first contents: /data/etc (the identity, empty until first boot), /data/hallq
    (the app's own: /var/lib/hallq), /data/journal; a display's voice clips (made here with espeak-ng)."""
    users = {ln.split(":")[0]: ln.split(":") for ln in (rootfs / "etc/passwd").read_text().splitlines()}
    uid, gid = int(users["hallq"][2]), int(users["hallq"][3])
    jgid = next(int(ln.split(":")[2]) for ln in (rootfs / "etc/group").read_text().splitlines()
                if ln.startswith("systemd-journal:"))
    for d, mode, owner in (("etc", 0o700, (uid, gid)), ("hallq", 0o750, (uid, gid)), ("journal", 0o2755, (0, jgid))):
        p = where / d
        p.mkdir(parents=True)
        os.chown(p, *owner)
        p.chmod(mode)
    if role == "display":
        voice = where / "hallq" / "voice"
        sh(REPO / ".venv/bin/hallq", "display", "voice-pack", "--out", voice, stdout=subprocess.DEVNULL)
        sh("chown", "-R", f"{uid}:{gid}", voice)
    return where


def make_fs(role: str, rootfs: Path, bootfs: Path, work: Path, out: Path) -> Path:
    """The three file systems without mounting (mkfs.vfat + mtools, mkfs.ext4 -d), then the disk with
    genimage from those images."""
    gin = work / "gin"
    gin.mkdir()
    boot = gin / "boot.vfat"
    sh("truncate", "-s", f"{BOOT_MB}M", boot)
    sh("mkfs.vfat", "-F", "32", "-n", BOOT_LABEL, "-i", "4a11c0de", boot, stdout=subprocess.DEVNULL)
    sh("mcopy", "-s", "-p", "-m", "-i", boot, *sorted(bootfs.iterdir()), "::/")
    used = int(subprocess.run(["du", "-sx", "--block-size=1M", str(rootfs)], check=True, capture_output=True,
                              text=True).stdout.split()[0])
    root_mb = int(used * 1.12) + 128
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    env = {**os.environ, **({"E2FSPROGS_FAKE_TIME": epoch} if epoch else {})}
    sh("mkfs.ext4", "-q", "-F", "-L", ROOT_LABEL, "-m", "0", "-d", rootfs, gin / "root.ext4", f"{root_mb}M", env=env)
    datafs = data_tree(role, rootfs, work / "data")
    sh("mkfs.ext4", "-q", "-F", "-L", DATA_LABEL, "-m", "0", "-d", datafs, gin / "data.ext4", f"{DATA_MB}M")
    sig = int(hashlib.sha256(role.encode()).hexdigest()[:8], 16) | 1
    cfg = work / "genimage.cfg"
    cfg.write_text(f"""image hallq-{role}.img {{
    hdimage {{
        partition-table-type = "mbr"
        disk-signature = 0x{sig:08x}
    }}
    partition boot {{
        partition-type = 0xC
        bootable = true
        image = "boot.vfat"
        offset = 4M
    }}
    partition root {{
        partition-type = 0x83
        image = "root.ext4"
    }}
    partition data {{
        partition-type = 0x83
        image = "data.ext4"
    }}
}}
""")
    empty = work / "empty"
    empty.mkdir()
    sh("genimage", "--config", cfg, "--rootpath", empty, "--tmppath", work / "gtmp", "--inputpath", gin,
       "--outputpath", out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return out / f"hallq-{role}.img"


def git(*args: str) -> str:
    r = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)
    return r.stdout.strip() if r.returncode == 0 else "unknown"


def build_image(role: str, base_tar: Path, out: Path = OUT) -> Path:
    if role not in ROLES:
        raise SystemExit(f"images: unknown role {role!r}")
    layer = Layer.load(role)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    steps: dict[str, float] = {}
    mark = [t0]

    def lap(name: str) -> None:
        now = time.monotonic()
        steps[name] = round(now - mark[0], 1)
        mark[0] = now

    with tempfile.TemporaryDirectory(prefix=f"hallq-img-{role}-", dir=os.environ.get("HALLQ_IMAGE_TMP", "/var/tmp")) as w:
        work = Path(w)
        rootfs, bootfs = work / "rootfs", work / "bootfs"
        rootfs.mkdir()
        sh("tar", "-C", rootfs, "--numeric-owner", "-xpf", base_tar)
        t_unpack = time.monotonic() - t0
        lap("unpack_base")
        configure(layer, rootfs)
        lap("files")
        dists = install_python(layer, rootfs, work)
        lap("python")
        enable_units(layer, rootfs)
        boot_files(rootfs, bootfs)
        prune(rootfs, bootfs)
        debs = dpkg_packages(rootfs)
        (rootfs / "usr/lib/hallq/manifest.json").write_text(json.dumps(
            {"role": role, "debian": debs, "python": dists}, indent=1))
        lap("units_boot_prune")
        img = make_fs(role, rootfs, bootfs, work, work / "out")
        final = out / img.name
        os.replace(img, final) if os.stat(img).st_dev == os.stat(out).st_dev else shutil.move(img, final)
        lap("filesystems_and_disk")
    lap("remove_work_tree")
    t_layer = time.monotonic() - t0
    bmap = final.with_suffix(".bmap")
    sh("bmaptool", "-q", "create", "-o", bmap, final)
    lap("bmap")
    sh("zstd", "-q", "-f", "-T0", "-3", final, "-o", final.with_name(final.name + ".zst"))
    lap("zstd")
    digest = hashlib.sha256()
    with open(final, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    lap("sha256")
    from recipe import Base

    manifest = {
        "role": role,
        "hallq_version": next((d["version"] for d in dists if d["name"] == "hallq-shared"), None),
        "git_commit": git("rev-parse", "HEAD"),
        "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "base_key": Base.load().key(),
        "image": final.name,
        "image_bytes": final.stat().st_size,
        "sha256": digest.hexdigest(),
        "seconds": {"unpack_base": round(t_unpack, 1), "layer_and_disk": round(t_layer, 1),
                    "total": round(time.monotonic() - t0, 1), "steps": steps},
        # the build host's load while building (shared build machines make the seconds above vary tenfold)
        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
        "debian": debs,
        "python": dists,
    }
    final.with_name(f"hallq-{role}.manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    log(f"{final} ({final.stat().st_size >> 20} MiB) in {time.monotonic() - t0:.0f} s")
    return final
