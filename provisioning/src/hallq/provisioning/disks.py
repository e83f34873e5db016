"""What a target is: a block device or an image file, whether it is in use, mounted, or the system's disk."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
from pathlib import Path

from .files import ProvisionError

SYSTEM_MOUNTS = ("/", "/boot", "/boot/firmware", "/boot/efi", "/usr", "/var", "/home")


def _mounts() -> list[tuple[str, str, str]]:
    """(major:minor, mount point, source) of every mount."""
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            parts = line.split()
            sep = parts.index("-")
            out.append((parts[2], parts[4].replace("\\040", " "), parts[sep + 2]))
    return out


def _disk_of(devno: str) -> str | None:
    """The whole disk (its major:minor) that holds the block device ``devno``."""
    sysdir = Path("/sys/dev/block") / devno
    if not sysdir.exists():
        return None
    real = sysdir.resolve()
    if (real / "partition").exists():
        real = real.parent
    try:
        return (real / "dev").read_text().strip()
    except OSError:
        return None


def _devno(path: Path) -> str:
    st = os.stat(path)
    return f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"


def _partitions(disk_devno: str) -> set[str]:
    real = (Path("/sys/dev/block") / disk_devno).resolve()
    found = {disk_devno}
    for child in real.iterdir() if real.exists() else ():
        if (child / "partition").exists():
            try:
                found.add((child / "dev").read_text().strip())
            except OSError:
                pass
    return found


def check_block_device(dev: Path) -> None:
    """Refuse the system's disk, a mounted disk (or one with a mounted partition) and a disk in use."""
    devno = _devno(dev)
    disk = _disk_of(devno) or devno
    if disk != devno:
        raise ProvisionError(f"{dev} is a partition: give the whole card (e.g. /dev/sdb, not /dev/sdb1)")
    parts = _partitions(disk)
    for mdev, point, _src in _mounts():
        if point in SYSTEM_MOUNTS and (_disk_of(mdev) == disk or mdev in parts):
            raise ProvisionError(f"{dev} holds this computer's {point}: that is the system disk, not a card")
    for mdev, point, _src in _mounts():
        if mdev in parts:
            raise ProvisionError(f"{dev} is mounted at {point}: unmount it first (umount {point})")
    try:
        with open("/proc/swaps", encoding="utf-8") as f:
            swaps = [line.split()[0] for line in f.readlines()[1:]]
    except OSError:
        swaps = []
    for s in swaps:
        try:
            if _devno(Path(s)) in parts:
                raise ProvisionError(f"{dev} is in use as swap ({s})")
        except OSError:
            pass
    try:
        fd = os.open(dev, os.O_RDONLY | os.O_EXCL)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            raise ProvisionError(f"{dev} is busy (in use by the system or another program)") from None
        raise ProvisionError(f"{dev}: cannot open: {exc.strerror}") from None
    os.close(fd)


def check_image_file(path: Path) -> None:
    """Refuse an image file that a loop device uses (it may be mounted)."""
    try:
        out = subprocess.run(["losetup", "-j", str(path)], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    if out.strip():
        raise ProvisionError(f"{path} is in use by a loop device ({out.split(':')[0]}): detach it first")


def check_target(target: Path) -> str:
    """``"block"`` or ``"file"``; raises :class:`ProvisionError` for anything else or anything in use."""
    try:
        st = os.stat(target)
    except OSError as exc:
        raise ProvisionError(f"{target}: {exc.strerror}") from None
    if stat.S_ISBLK(st.st_mode):
        check_block_device(target)
        return "block"
    if stat.S_ISREG(st.st_mode):
        check_image_file(target)
        return "file"
    raise ProvisionError(f"{target} is neither a card (block device) nor an image file")
