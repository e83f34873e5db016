"""Writing a bundle into ``hallq/`` on the FAT boot partition of a card or an image file, with mtools.

Nothing is mounted. The bundle goes into ``hallq.new`` first, is read back and compared byte for byte,
then replaces ``hallq`` (the old one is deleted only then) and is read back once more. A target that is not
a card or an image with a FAT first partition is refused before anything is written.
"""

from __future__ import annotations

import filecmp
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .bundle import FOLDER
from .disks import check_target
from .files import ProvisionError

FAT_TYPES = {"b", "c", "e", "6", "4", "1", "ef",
             "c12a7328-f81f-11d2-ba4b-00a0c93ec93b",   # GPT: EFI system partition
             "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7"}   # GPT: Microsoft basic data
MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": "/dev/null", "MTOOLS_NO_VFAT": "0"}


@dataclass(frozen=True, slots=True)
class BootPartition:
    target: Path
    offset: int  # bytes
    size: int

    @property
    def spec(self) -> str:
        return f"{self.target}@@{self.offset}"


def find_boot_partition(target: Path) -> BootPartition:
    """The first partition of ``target`` if it is FAT; refuses anything else."""
    try:
        p = subprocess.run(["sfdisk", "--json", str(target)], capture_output=True, text=True, timeout=30)
    except FileNotFoundError:
        raise ProvisionError("sfdisk is not installed (Debian package fdisk)") from None
    if p.returncode != 0:
        raise ProvisionError(f"{target} has no partition table: it is not a flashed card or a hallq image")
    table = json.loads(p.stdout)["partitiontable"]
    sector = int(table.get("sectorsize", 512))
    parts = table.get("partitions", [])
    if not parts:
        raise ProvisionError(f"{target} has a partition table but no partitions")
    first = min(parts, key=lambda x: x["start"])
    if str(first.get("type", "")).lower() not in FAT_TYPES:
        raise ProvisionError(f"{target}: the first partition (type {first.get('type')}) is not a FAT boot partition")
    bp = BootPartition(target, int(first["start"]) * sector, int(first["size"]) * sector)
    with open(target, "rb") as f:
        f.seek(bp.offset)
        boot = f.read(512)
    if len(boot) < 512 or boot[510:512] != b"\x55\xaa" or (b"FAT" not in boot[54:62] and b"FAT" not in boot[82:90]):
        raise ProvisionError(f"{target}: the first partition is not formatted FAT (no FAT boot sector)")
    return bp


def _mtools(args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        p = subprocess.run(args, capture_output=True, text=True, env={**os.environ, **MTOOLS_ENV}, timeout=120)
    except FileNotFoundError:
        raise ProvisionError(f"{args[0]} is not installed (Debian package mtools)") from None
    if check and p.returncode != 0:
        raise ProvisionError(f"{' '.join(args[:1])} failed: {(p.stderr or p.stdout).strip()}")
    return p


def _exists(bp: BootPartition, name: str) -> bool:
    return _mtools(["mdir", "-i", bp.spec, "-b", f"::/{name}"], check=False).returncode == 0


def read_folder(bp: BootPartition, name: str, dest: Path) -> Path:
    """Copy ``::/name`` off the partition into ``dest/name``."""
    _mtools(["mcopy", "-i", bp.spec, "-s", "-n", f"::/{name}", str(dest)])
    return dest / name


def same_tree(a: Path, b: Path) -> list[str]:
    """Relative paths that differ between two folders (missing, extra or other bytes)."""
    diff = []
    fa = {p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file()}
    fb = {p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file()}
    diff += sorted(fa ^ fb)
    for rel in sorted(fa & fb):
        if not filecmp.cmp(a / rel, b / rel, shallow=False):
            diff.append(rel)
    return diff


def write_card(files: dict[str, tuple[bytes, int]], target: Path) -> BootPartition:
    """Write the bundle ``files`` into ``hallq/`` on ``target``'s FAT boot partition; verify it."""
    target = Path(target)
    check_target(target)
    bp = find_boot_partition(target)
    with tempfile.TemporaryDirectory(prefix="hallq-card-") as tmp:
        stage = Path(tmp) / "stage"
        stage.mkdir(mode=0o700)
        for rel, (data, _mode) in files.items():
            p = stage / rel
            p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            p.write_bytes(data)
            os.chmod(p, 0o600)
        new = f"{FOLDER}.new"
        if _exists(bp, new):
            _mtools(["mdeltree", "-i", bp.spec, f"::/{new}"])
        _mtools(["mmd", "-i", bp.spec, f"::/{new}"])
        for child in sorted(stage.iterdir()):
            _mtools(["mcopy", "-i", bp.spec, "-s", "-o", "-Q", str(child), f"::/{new}/"])
        back = Path(tmp) / "back"
        back.mkdir()
        if diff := same_tree(stage, read_folder(bp, new, back)):
            _mtools(["mdeltree", "-i", bp.spec, f"::/{new}"], check=False)
            raise ProvisionError(f"{target}: the bundle did not read back the same ({', '.join(diff)}); "
                                 "the card's old bundle is untouched")
        if _exists(bp, FOLDER):
            _mtools(["mdeltree", "-i", bp.spec, f"::/{FOLDER}"])
        _mtools(["mren", "-i", bp.spec, f"::/{new}", f"::/{FOLDER}"])
        final = Path(tmp) / "final"
        final.mkdir()
        if diff := same_tree(stage, read_folder(bp, FOLDER, final)):
            raise ProvisionError(f"{target}: hallq/ did not read back the same after the rename ({', '.join(diff)})")
        shutil.rmtree(stage)
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return bp
