"""Raspberry Pi image benchmarks (issue 11).

- base build time (from the cache's record, or built now), role layer time, image size per role: the bytes
  the card really holds (bmap's mapped blocks; target ≤ 1.2 GB used) and the file's size;
- flash time to a file: `bmaptool copy` (mapped blocks only, checksums verified) vs `dd` of the whole image,
  both with fsync (a real card's write speed is the card's own);
- boot to `online` in QEMU virt per role (the image's own kernel, the role's bundle; the device's retained
  status on a broker), with `systemd-analyze blame`'s top 5 for the controller (over SSH);
- power cuts: the controller image under QEMU with takes arriving from the host, QEMU killed (SIGKILL) at a
  random moment, POWER_CUTS times (HALLQ_BENCH_POWER_CUTS, default 30): after each cut the data partition
  needs no manual repair (`e2fsck -p` as the boot runs it), `PRAGMA integrity_check` is ok and every ticket the
  controller answered is in its database; then it boots again from that card. HALLQ_BENCH_STOP_AT (a Unix
  time) starts no cut after that moment (a run on a shared machine that must end by then): the figures then
  say how many of the cuts asked were done.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "images"))

POWER_CUTS = int(os.environ.get("HALLQ_BENCH_POWER_CUTS", "30"))
STOP_AT = float(os.environ.get("HALLQ_BENCH_STOP_AT", "inf"))
# seconds a boot may take to reach online before it counts as a boot failure (TCG on a shared 2-core machine: a
# boot took 274-489 s at load 12-39; HALLQ_BOOT_TIMEOUT as for the tests)
BOOT_TIMEOUT = float(os.environ.get("HALLQ_BOOT_TIMEOUT", "900"))
GiB = 1 << 30


def _sizes(img: Path) -> dict:
    import xml.etree.ElementTree as ET

    bmap = ET.parse(img.with_suffix(".bmap")).getroot()
    block = int(bmap.findtext("BlockSize"))
    mapped = int(bmap.findtext("MappedBlocksCount")) * block
    zst = img.with_name(img.name + ".zst")
    return {"used_mb": round(mapped / 1e6), "image_mb": round(img.stat().st_size / 1e6),
            "zst_mb": round(zst.stat().st_size / 1e6), "target_used_mb": 1200, "ok": mapped <= 1.2e9}


def _flash(img: Path, work: Path) -> dict:
    target = work / "card.img"
    t0 = time.monotonic()
    subprocess.run(["dd", f"if={img}", f"of={target}", "bs=4M", "conv=fsync", "status=none"], check=True)
    dd = time.monotonic() - t0
    target.unlink()
    target.touch()
    t0 = time.monotonic()
    subprocess.run(["bmaptool", "-q", "copy", "--bmap", str(img.with_suffix(".bmap")),
                    str(img.with_name(img.name + ".zst")), str(target)], check=True)
    bmap = time.monotonic() - t0
    target.unlink()
    return {"dd_s": round(dd, 1), "bmaptool_zst_s": round(bmap, 1), "to": "a file on this machine's disk"}


DEVICES = """[[devices]]
id = "kiosk-1"
role = "kiosk"

[[devices]]
id = "hall-screen"
role = "display"
mode = "hall"

[[devices]]
id = "pad-1"
role = "pad"
window = 1
"""
ROLE_DEVICE = {"controller": "controller", "kiosk": "kiosk-1", "display": "hall-screen", "pad": "pad-1"}


def _card(hall, role: str, disk: Path, ssh_pub: Path | None = None) -> None:
    """The device's bundle onto the image as a technician writes it (``hallq provision card``). The pad's
    buttons and LEDs are GPIO pins a QEMU virt machine does not have: its pad.toml (the one file a technician
    edits for a device's own hardware) takes gpiozero's mock pins there, written with provisioning's own
    card writer."""
    if role != "pad":
        hall.card(ROLE_DEVICE[role], disk, ssh_key=ssh_pub)
        return
    from hallq.provisioning.bundle import Extras, bundle_files
    from hallq.provisioning.card import write_card
    from hallq.provisioning.keyring import Keyring

    extras = Extras(ssh_key=ssh_pub.read_text().strip() if ssh_pub else None)
    files = bundle_files(Keyring(hall.keyring), "pad-1", extras)
    text, mode = files["pad.toml"]
    files["pad.toml"] = (re.sub(rb'^pin_factory = "\w+"', b'pin_factory = "mock"', text, flags=re.M), mode)
    write_card(files, disk)


def _boot_to_online(images: dict[str, Path], work: Path) -> dict:
    """Every role booted once from a provisioned card: seconds from power-on to its retained ``online`` on the
    hall's secure broker (the controller's own broker, reached through hostfwd; the host's for the others)."""
    import subprocess as sp

    from imagekit import HALLQ, Qemu, copy_image, free_port, provision_hall, ssh, ssh_key, wait_mqtt_status

    hall = provision_hall(work / "hall", port=free_port(), devices=DEVICES)
    broker = hall.broker(work / "mosquitto").start()
    dev = hall.device_file("controller", work / "controller-bundle")
    log = open(work / "controller.log", "wb")  # noqa: SIM115
    ctl = sp.Popen([HALLQ, "controller", "--device", str(dev), "--db", str(work / "host-hall.db")],
                   stdout=sp.DEVNULL, stderr=log)
    key, _ = ssh_key(work)
    pub = key.with_name(key.name + ".pub")
    out = {}
    try:
        for role, img in images.items():
            disk = copy_image(img, work / f"{role}.img", size=2 * GiB)
            _card(hall, role, disk, pub)
            sshp = free_port()
            fwd = {sshp: 22}
            if role == "controller":
                port = free_port()
                fwd[port] = hall.port
                url, topic = hall.url("dashboard", port), "hallq/demo/controller/status"
            else:
                url, topic = hall.url("dashboard"), f"hallq/demo/device/{ROLE_DEVICE[role]}/status"
            vm = Qemu(disk, work / f"vm-{role}", hostfwd=fwd, gpu=role in ("kiosk", "display")).start()
            try:
                secs = wait_mqtt_status(url, topic, BOOT_TIMEOUT, vm)
            except AssertionError as exc:
                out[role] = {"error": str(exc)[:500], "console_tail": vm.log()[-1500:]}
            else:
                out[role] = {"boot_to_online_s": round(secs, 1)}
                try:
                    out[role]["blame_top5"] = [b.strip() for b in ssh(sshp, key, "systemd-analyze blame | head -5",
                                                                       timeout=240).splitlines()]
                    out[role]["systemd_analyze"] = ssh(sshp, key, "systemd-analyze time", timeout=240).strip()
                except (AssertionError, subprocess.TimeoutExpired) as exc:
                    out[role]["blame_error"] = str(exc)[:300]
            finally:
                vm.stop(30)
                disk.unlink()
    finally:
        ctl.terminate()
        ctl.wait(10)
        log.close()
        broker.stop()
    return out


def _power_cuts(image: Path, work: Path, cuts: int) -> dict:
    """The controller image, provisioned; takes arrive from the host over TLS (kiosk-1's login through
    hostfwd); QEMU is killed at a random moment; then the card is checked as it lies and booted again."""
    from zoneinfo import ZoneInfo

    from hallq.shared.mqtt import HallClient, RequestError, RequestTimeout
    from hallq.shared.schemas import TakeRequest
    from imagekit import Disk, Ext4, Qemu, copy_image, free_port, provision_hall, wait_mqtt_status

    tz = ZoneInfo("Asia/Shanghai")  # the sample hall's time zone: a ticket's day
    guest = free_port()
    # no daily quotas: 30 cuts' takes would use up the sample hall's 650 tickets a day, and every later take
    # would be refused (seen: cuts 11 and 12 of a run answered none)
    hall = provision_hall(work / "pc-hall", port=guest, host="127.0.0.1", devices=DEVICES, quotas=False)
    disk_path = copy_image(image, work / "power.img", size=2 * GiB)
    _card(hall, "controller", disk_path)
    rng = random.Random(11)
    answered: list[tuple[str, str]] = []  # (day, number) of every ticket the controller answered
    results = {"cuts_asked": cuts, "cuts": 0, "answered": 0, "lost": 0, "integrity_failures": 0, "manual_repairs": 0,
               "fsck_fixed": 0, "boot_failures": 0, "boot_s": [], "takes_per_cut": []}
    for i in range(cuts):
        if time.time() >= STOP_AT:
            print(f"power cuts: stopped at HALLQ_BENCH_STOP_AT after {results['cuts']} of {cuts} cuts",
                  file=sys.stderr, flush=True)
            break
        port = free_port()
        vm = Qemu(disk_path, work / f"vm-pc{i}", hostfwd={port: guest}).start()
        try:
            results["boot_s"].append(round(wait_mqtt_status(hall.url("dashboard", port),
                                                            "hallq/demo/controller/status", BOOT_TIMEOUT, vm), 1))
        except AssertionError as e:
            results["boot_failures"] += 1
            vm.kill()
            (work / f"pc{i}-console.log").write_text(vm.log())
            print(f"power cut {i + 1}/{cuts}: the card did not come back online: {str(e).splitlines()[0]}",
                  file=sys.stderr, flush=True)
            continue
        stop = threading.Event()
        before = len(answered)
        kiosk_url = hall.url("kiosk-1", port)

        def taker(url=kiosk_url, s=stop):
            with HallClient(url, "demo", "kiosk-1") as c:
                c.wait_connected(30)
                while not s.is_set():
                    try:
                        r = c.request("take", TakeRequest(req=c.new_req(), category=rng.choice("ABCDEF")), timeout=10)
                        answered.append((r.ticket.issued_at.astimezone(tz).date().isoformat(), r.ticket.number))
                    except (RequestTimeout, RequestError):
                        pass

        t = threading.Thread(target=taker, daemon=True)
        t.start()
        time.sleep(rng.uniform(3.0, 15.0))
        vm.kill()  # the plug is pulled: no flush, no clean unmount
        stop.set()
        t.join(15)
        results["cuts"] += 1
        results["takes_per_cut"].append(len(answered) - before)
        part = Disk(disk_path).extract(3, work / "data.ext4")
        fsck = subprocess.run(["e2fsck", "-p", str(part)], capture_output=True, text=True)
        if fsck.returncode >= 4:  # what the boot's `fsck -p` could not repair alone
            results["manual_repairs"] += 1
        elif fsck.returncode:
            results["fsck_fixed"] += 1
        d = work / "db"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        fs = Ext4(part)
        for name in ("hall.db", "hall.db-wal"):
            if fs.exists(f"/hallq/{name}"):
                (d / name).write_bytes(fs.read(f"/hallq/{name}"))
        conn = sqlite3.connect(d / "hall.db")
        ok = conn.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            results["integrity_failures"] += 1
        have = set(conn.execute("SELECT day, number FROM tickets"))
        conn.close()
        lost = [n for n in answered if n not in have]
        results["lost"] = max(results["lost"], len(lost))
        if lost:
            (work / f"pc{i}-lost.json").write_text(json.dumps(lost))
        # one line per cut, so that a run stopped early still tells what it finished
        print(f"power cut {i + 1}/{cuts}: boot {results['boot_s'][-1]} s, {len(answered) - before} takes, "
              f"answered {len(answered)}, lost {len(lost)}, integrity {ok}, e2fsck -p rc {fsck.returncode}, "
              f"load {' '.join(Path('/proc/loadavg').read_text().split()[:3])}", file=sys.stderr, flush=True)
    # the card comes back after the last cut too
    port = free_port()
    vm = Qemu(disk_path, work / "vm-pc-last", hostfwd={port: guest}).start()
    try:
        results["boot_s"].append(round(wait_mqtt_status(hall.url("dashboard", port),
                                                        "hallq/demo/controller/status", BOOT_TIMEOUT, vm), 1))
    except AssertionError:
        results["boot_failures"] += 1
    finally:
        vm.stop(30)
    results["answered"] = len(answered)
    b = results["boot_s"]
    results["boot_s"] = {"n": len(b), "min": min(b, default=None), "max": max(b, default=None),
                         "mean": round(sum(b) / len(b), 1) if b else None,
                         "median": sorted(b)[len(b) // 2] if b else None, "each": b}
    results["ok"] = results["cuts"] == cuts and not (results["lost"] or results["integrity_failures"]
                                                    or results["manual_repairs"] or results["boot_failures"])
    return results


def run() -> dict:
    from build import build_base
    from layer import build_image
    from recipe import Base

    base = Base.load().cached()
    t0 = time.monotonic()
    tar = build_base()
    base_info = json.loads(tar.with_suffix(".json").read_text()) if tar.with_suffix(".json").exists() else {}
    out: dict = {"base": {"build_s": base_info.get("seconds"), "built": base_info.get("built"),
                          "this_run_s": round(time.monotonic() - t0, 1), "cached_at": str(base)}}
    # HALLQ_BENCH_IMAGES=DIR: use the images already built there (e.g. by `make images`) instead of building;
    # HALLQ_BENCH_IMAGES_BOOT=0: skip the boot-to-online round (the power cuts still boot the controller).
    reuse = os.environ.get("HALLQ_BENCH_IMAGES")
    with tempfile.TemporaryDirectory(prefix="hallq-bench-img-", dir="/var/tmp") as w:
        work = Path(w)
        images = {}
        out["roles"] = {}
        for role in ("controller", "kiosk", "display", "pad"):
            img = Path(reuse) / f"hallq-{role}.img" if reuse else build_image(role, tar, work / "out")
            images[role] = img
            m = json.loads(img.with_name(f"hallq-{role}.manifest.json").read_text())
            out["roles"][role] = {"layer_s": m["seconds"]["total"], "seconds": m["seconds"],
                                  "loadavg": m.get("loadavg"), "built_now": not reuse, **_sizes(img)}
        out["flash_controller"] = _flash(images["controller"], work)
        if os.environ.get("HALLQ_BENCH_IMAGES_BOOT", "1") != "0":
            out["boot_to_online"] = _boot_to_online(images, work)
        out["power_cuts"] = _power_cuts(images["controller"], work, POWER_CUTS)
    out["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    return out
