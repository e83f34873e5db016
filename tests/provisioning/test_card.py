"""`card` and `flash` on images made here (a partition table, a FAT boot partition, an ext4 root), with the
real mtools, sfdisk and bmaptool; `flash` onto a loop device, as onto a card."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hallq.provisioning.bundle import bundle_files
from hallq.provisioning.card import find_boot_partition, write_card
from hallq.provisioning.files import ProvisionError
from provkit import make_keyring

HALLQ = str(Path(sys.executable).parent / "hallq")
MIB = 1 << 20


def make_image(path: Path, *, size_mib: int = 48, boot_mib: int = 16, fat: bool = True,
               boot_type: str = "c") -> Path:
    """A card image as the images issue makes them: MBR, partition 1 FAT (boot), partition 2 Linux."""
    with open(path, "wb") as f:
        f.truncate(size_mib * MIB)
    layout = f"label: dos\nstart=2048, size={boot_mib * 2048}, type={boot_type}\nstart={2048 + boot_mib * 2048}, type=83\n"
    subprocess.run(["sfdisk", "--no-reread", "--no-tell-kernel", str(path)], input=layout, text=True, check=True,
                   capture_output=True)
    if fat:
        subprocess.run(["mkfs.fat", "-F", "16", "-n", "BOOT", "--offset", "2048", str(path), str(boot_mib * 1024)],
                       check=True, capture_output=True)
        env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
        cfg = path.parent / "config.txt"
        cfg.write_text("enable_uart=1\n")
        subprocess.run(["mcopy", "-i", f"{path}@@{2048 * 512}", str(cfg), "::/config.txt"], check=True, env=env)
    return path


def read_back(image: Path, offset: int, dest: Path) -> Path:
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    dest.mkdir()
    subprocess.run(["mcopy", "-i", f"{image}@@{offset}", "-s", "-n", "::/hallq", str(dest)], check=True, env=env)
    return dest / "hallq"


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_card_writes_the_bundle_that_reads_back_byte_for_byte(tmp_path):
    kr = make_keyring(tmp_path)
    img = make_image(tmp_path / "hallq-kiosk.img")
    files = bundle_files(kr, "kiosk-1")
    bp = write_card(files, img)
    assert bp.offset == 2048 * 512
    got = read_back(img, bp.offset, tmp_path / "back")
    assert {p.name for p in got.iterdir()} == set(files)
    for name, (data, _mode) in files.items():
        assert (got / name).read_bytes() == data, name
    # what was on the partition before is still there
    env = {**os.environ, "MTOOLS_SKIP_CHECK": "1"}
    out = subprocess.run(["mtype", "-i", f"{img}@@{bp.offset}", "::/config.txt"], capture_output=True, text=True,
                         env=env, check=True).stdout
    assert out == "enable_uart=1\n"
    # a second card write (another device) replaces hallq/ entirely: no stale kiosk key left behind
    files2 = bundle_files(kr, "controller")
    write_card(files2, img)
    got2 = read_back(img, bp.offset, tmp_path / "back2")
    names = {p.relative_to(got2).as_posix() for p in got2.rglob("*") if p.is_file()}
    assert names == set(files2)
    assert "kiosk.key" not in names
    assert (got2 / "broker" / "passwd").read_bytes() == files2["broker/passwd"][0]


@pytest.mark.parametrize("kind", ["zeros", "no-fat", "linux-first", "text"])
def test_card_refuses_what_is_not_a_card_image_and_leaves_it_unchanged(tmp_path, kind):
    kr = make_keyring(tmp_path)
    target = tmp_path / "target.img"
    if kind == "zeros":
        with open(target, "wb") as f:
            f.truncate(8 * MIB)
    elif kind == "no-fat":
        make_image(target, fat=False)
    elif kind == "linux-first":
        make_image(target, boot_type="83", fat=False)
    else:
        target.write_text("this is not a disk image\n" * 100)
    before = sha(target)
    with pytest.raises(ProvisionError) as err:
        write_card(bundle_files(kr, "kiosk-1"), target)
    assert str(target) in str(err.value)
    assert sha(target) == before


def test_card_refuses_a_folder_and_a_missing_file(tmp_path):
    kr = make_keyring(tmp_path)
    with pytest.raises(ProvisionError, match="neither a card"):
        write_card(bundle_files(kr, "kiosk-1"), tmp_path)
    with pytest.raises(ProvisionError, match="No such file"):
        write_card(bundle_files(kr, "kiosk-1"), tmp_path / "missing.img")


def test_card_on_the_command_line(tmp_path):
    kr = make_keyring(tmp_path)
    img = make_image(tmp_path / "c.img")
    p = subprocess.run([HALLQ, "provision", "card", "display-hall", "--keyring", str(kr.path), "--to", str(img)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "read back and verified" in p.stdout
    bp = find_boot_partition(img)
    got = read_back(img, bp.offset, tmp_path / "back")
    assert b'device = "display-hall"' in (got / "device.toml").read_bytes()
    bad = tmp_path / "bad.img"
    bad.write_bytes(b"\0" * MIB)
    p = subprocess.run([HALLQ, "provision", "card", "display-hall", "--keyring", str(kr.path), "--to", str(bad)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "no partition table" in p.stderr


# -- flash ----------------------------------------------------------------------------------------------------
def _losetup(path: Path, *extra: str) -> str:
    p = subprocess.run(["losetup", "-f", "--show", *extra, str(path)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop devices here: {p.stderr.strip()}")
    return p.stdout.strip()


@pytest.fixture
def loop(tmp_path):
    made: list[str] = []

    def attach(path: Path, *extra: str) -> Path:
        dev = _losetup(path, *extra)
        made.append(dev)
        return Path(dev)

    yield attach
    for dev in made:
        subprocess.run(["losetup", "-d", dev], capture_output=True)


@pytest.mark.skipif(not shutil.which("bmaptool") or os.geteuid() != 0, reason="needs bmaptool and root (loop devices)")
def test_flash_writes_the_image_and_the_bundle_and_reads_both_back(tmp_path, loop):
    kr = make_keyring(tmp_path)
    img = make_image(tmp_path / "hallq-kiosk.img")
    subprocess.run(["bmaptool", "create", "-o", str(tmp_path / "hallq-kiosk.bmap"), str(img)], check=True,
                   capture_output=True)
    subprocess.run(["zstd", "-q", "-k", str(img), "-o", str(tmp_path / "hallq-kiosk.img.zst")], check=True)
    card = tmp_path / "card.bin"
    with open(card, "wb") as f:
        f.truncate(64 * MIB)
    dev = loop(card)
    p = subprocess.run([HALLQ, "provision", "flash", "kiosk-1", "--keyring", str(kr.path), "--image",
                        str(tmp_path / "hallq-kiosk.img.zst"), "--to", str(dev)], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "kiosk-1 (kiosk) of hall t1 is ready" in p.stdout
    got = read_back(card, 2048 * 512, tmp_path / "back")
    assert (got / "device.toml").read_bytes() == bundle_files(kr, "kiosk-1")["device.toml"][0]
    # the second partition is the image's, block for block
    with open(img, "rb") as a, open(card, "rb") as b:
        a.seek(18 * MIB)
        b.seek(18 * MIB)
        assert a.read(30 * MIB) == b.read(30 * MIB)


@pytest.mark.skipif(not shutil.which("bmaptool") or os.geteuid() != 0, reason="needs bmaptool and root (loop devices)")
def test_flash_refuses_the_wrong_image_a_partition_and_a_missing_bmap(tmp_path, loop):
    kr = make_keyring(tmp_path)
    img = make_image(tmp_path / "hallq-kiosk.img")
    card = tmp_path / "card.bin"
    shutil.copy(img, card)
    before = sha(card)
    dev = loop(card, "-P")

    def flash(device: str, image: Path, to: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HALLQ, "provision", "flash", device, "--keyring", str(kr.path), "--image", str(image),
                               "--to", str(to)], capture_output=True, text=True, timeout=120)

    p = flash("kiosk-1", img, dev)
    assert p.returncode == 1 and "no block map" in p.stderr
    subprocess.run(["bmaptool", "create", "-o", str(tmp_path / "hallq-kiosk.bmap"), str(img)], check=True,
                   capture_output=True)
    p = flash("pad-1", img, dev)
    assert p.returncode == 1 and "a pad device runs hallq-pad" in p.stderr
    part = Path(f"{dev}p1")
    if part.exists():
        p = flash("kiosk-1", img, part)
        assert p.returncode == 1 and "is a partition" in p.stderr
    small = tmp_path / "small.bin"
    with open(small, "wb") as f:
        f.truncate(8 * MIB)
    p = flash("kiosk-1", img, loop(small))
    assert p.returncode == 1 and "the image needs" in p.stderr
    assert sha(card) == before


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, mount)")
def test_flash_and_card_refuse_a_mounted_card(tmp_path, loop):
    kr = make_keyring(tmp_path)
    disk = tmp_path / "usbstick.bin"  # a whole-disk file system, as on many USB sticks
    with open(disk, "wb") as f:
        f.truncate(16 * MIB)
    subprocess.run(["mkfs.ext4", "-q", str(disk)], check=True)
    dev = loop(disk)
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if subprocess.run(["mount", "-o", "ro", str(dev), str(mnt)], capture_output=True).returncode != 0:
        pytest.skip("cannot mount here")
    try:
        before = sha(disk)
        with pytest.raises(ProvisionError, match="is mounted at"):
            write_card(bundle_files(kr, "kiosk-1"), dev)
        img = make_image(tmp_path / "hallq-kiosk.img")
        subprocess.run(["bmaptool", "create", "-o", str(tmp_path / "hallq-kiosk.bmap"), str(img)], check=True,
                       capture_output=True)
        p = subprocess.run([HALLQ, "provision", "flash", "kiosk-1", "--keyring", str(kr.path), "--image", str(img),
                            "--to", str(dev)], capture_output=True, text=True, timeout=120)
        assert p.returncode == 1 and "is mounted at" in p.stderr and "umount" in p.stderr
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
    assert sha(disk) == before
    # an image file that a loop device uses is refused too
    img2 = make_image(tmp_path / "in-use.img")
    loop(img2)
    with pytest.raises(ProvisionError, match="in use by a loop device"):
        write_card(bundle_files(kr, "kiosk-1"), img2)


def test_the_system_disk_is_refused(tmp_path):
    """Whatever disk holds this computer's / (when it is a block device at all) is never a target."""
    from hallq.provisioning.disks import _disk_of, _mounts

    roots = [m for m in _mounts() if m[1] == "/"]
    disk = _disk_of(roots[-1][0]) if roots else None
    if disk is None:
        pytest.skip("/ is not on a block device here (a container's overlay)")
    uevent = dict(line.split("=", 1) for line in Path(f"/sys/dev/block/{disk}/uevent").read_text().split())
    dev = Path("/dev") / uevent.get("DEVNAME", "?")
    if not dev.exists():
        pytest.skip(f"no {dev} here")
    kr = make_keyring(tmp_path)
    with pytest.raises(ProvisionError, match="system disk"):
        write_card(bundle_files(kr, "kiosk-1"), dev)
