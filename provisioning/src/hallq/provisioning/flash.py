"""``hallq provision flash``: a role's image onto a card with bmaptool, then the device's bundle, then both
read back (the image's mapped blocks against the bmap's SHA-256 checksums, the bundle byte for byte)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from .card import write_card
from .disks import check_target
from .files import ProvisionError

COMPRESSED = (".zst", ".xz", ".gz", ".bz2", ".lz4")
#: The image that runs each role (a window's caller runs on the display image).
IMAGE_ROLE = {"kiosk": "kiosk", "display": "display", "window": "display", "pad": "pad",
              "controller": "controller", "dashboard": "controller"}


@dataclass(frozen=True, slots=True)
class Bmap:
    path: Path
    image_size: int
    block_size: int
    checksum: str
    ranges: list[tuple[int, int, str]]  # first block, last block, checksum


def find_bmap(image: Path) -> Path:
    base = image.name
    for ext in COMPRESSED:
        if base.endswith(ext):
            base = base[: -len(ext)]
    stem = base[:-4] if base.endswith(".img") else base
    for cand in (image.parent / f"{base}.bmap", image.parent / f"{stem}.bmap"):
        if cand.is_file():
            return cand
    raise ProvisionError(f"{image}: no block map beside it ({base}.bmap): the image build writes one "
                         "(bmaptool create), and it is what lets the write be checked")


def read_bmap(path: Path) -> Bmap:
    try:
        root = ET.parse(path).getroot()
        size = int(root.findtext("ImageSize", "").strip())
        bs = int(root.findtext("BlockSize", "").strip())
        ctype = (root.findtext("ChecksumType") or "sha256").strip()
        ranges = []
        for r in root.iter("Range"):
            a, _, b = r.text.strip().partition("-")
            ranges.append((int(a), int(b or a), r.get("chksum", "")))
    except (ET.ParseError, ValueError, AttributeError) as exc:
        raise ProvisionError(f"{path}: not a bmap file ({exc})") from None
    if ctype not in ("sha256", "sha1", "md5"):
        raise ProvisionError(f"{path}: unknown checksum type {ctype}")
    return Bmap(path, size, bs, ctype, ranges)


def check_image_role(image: Path, role: str) -> None:
    m = re.match(r"hallq-([a-z]+)", image.name)
    want = IMAGE_ROLE.get(role)
    if m and want and m[1] != want:
        raise ProvisionError(f"{image.name} is the {m[1]} image; a {role} device runs hallq-{want}")


def verify_image(target: Path, bmap: Bmap) -> int:
    """Read the mapped blocks back from ``target`` and check them; returns the bytes read."""
    total = 0
    with open(target, "rb", buffering=0) as f:
        os.fsync(f.fileno())
        os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)  # read the card, not the page cache
        for first, last, chk in bmap.ranges:
            h = hashlib.new(bmap.checksum)
            f.seek(first * bmap.block_size)
            left = (last - first + 1) * bmap.block_size
            left = min(left, bmap.image_size - first * bmap.block_size)
            while left > 0:
                chunk = f.read(min(left, 4 << 20))
                if not chunk:
                    break
                h.update(chunk)
                left -= len(chunk)
                total += len(chunk)
            if chk and h.hexdigest() != chk:
                raise ProvisionError(f"{target}: blocks {first}-{last} read back wrong: the card is faulty or "
                                     "was removed; use another card")
    return total


def target_size(target: Path) -> int:
    with open(target, "rb") as f:
        return f.seek(0, 2)


def flash(files: dict[str, tuple[bytes, int]], image: Path, target: Path, role: str,
          log=print) -> dict[str, float]:
    """Write ``image`` and then the bundle onto ``target``; returns the seconds each step took."""
    image, target = Path(image), Path(target)
    if not image.is_file():
        raise ProvisionError(f"{image}: no such image")
    check_image_role(image, role)
    bmap = read_bmap(find_bmap(image))
    check_target(target)
    if target_size(target) < bmap.image_size:
        raise ProvisionError(f"{target} holds {target_size(target) / 1e9:.1f} GB, the image needs "
                             f"{bmap.image_size / 1e9:.1f} GB")
    times = {}
    t0 = time.monotonic()
    log(f"writing {image.name} to {target} (bmaptool; the image's checksums are verified as it goes)")
    p = subprocess.run(["bmaptool", "copy", "--bmap", str(bmap.path), str(image), str(target)],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise ProvisionError(f"bmaptool could not write {target}: {(p.stderr or p.stdout).strip()[-600:]}")
    times["image"] = time.monotonic() - t0
    t1 = time.monotonic()
    log("reading the image back")
    verify_image(target, bmap)
    times["verify"] = time.monotonic() - t1
    t2 = time.monotonic()
    log("writing the bundle into hallq/ on the boot partition")
    write_card(files, target)
    times["bundle"] = time.monotonic() - t2
    times["total"] = time.monotonic() - t0
    return times
