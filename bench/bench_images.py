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
  controller answered is in its database; then it boots again from that card.
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


def _bundles(work: Path, broker_port: int) -> dict[str, Path]:
    from imagekit import REPO, hall_toml_all_day, plain_bundle

    url = f"mqtt://10.0.2.2:{broker_port}"
    kiosk = (REPO / "kiosk/examples/kiosk.toml").read_text().replace('broker = "mqtt://127.0.0.1:1883"',
                                                                     f'broker = "{url}"')
    kiosk = kiosk.replace('url = "usb:0x0416:0x5011"', 'url = "file:/var/lib/hallq/tickets.bin"')
    kiosk = kiosk.replace("/etc/hallq/hall.key", "/etc/hallq/kiosk.key").split("[[readers]]")[0]
    out = {"controller": plain_bundle(work / "controller", device="controller", role="controller",
                                      broker="mqtt://127.0.0.1:1883",
                                      files={"hall.toml": hall_toml_all_day(),
                                             "broker/mosquitto.conf": "listener 1883 0.0.0.0\nallow_anonymous true\n"}),
           "kiosk": plain_bundle(work / "kiosk", device="kiosk-1", role="kiosk", broker=url,
                                 files={"kiosk.toml": kiosk})}
    for role, cfg in (("display", "display.toml"), ("pad", "pad.toml")):
        examples = REPO / {"display": "call-display", "pad": "rating-pad"}[role] / "examples"
        src = next((p for p in sorted(examples.glob("*.toml")) if p.name == cfg), None)
        if src is None:
            continue
        text = src.read_text().replace("mqtt://127.0.0.1:1883", url)
        if role == "pad":
            text = re.sub(r'^pin_factory = "\w+"', 'pin_factory = "mock"', text, flags=re.M)
        device = {"display": "hall-screen", "pad": "pad-1"}[role]
        out[role] = plain_bundle(work / role, device=device, role=role, broker=url, files={cfg: text})
    return out


def _boot_to_online(images: dict[str, Path], work: Path) -> dict:
    from harness import ControllerProcess, Mosquitto
    from imagekit import (
        Qemu,
        copy_image,
        free_port,
        hall_toml_all_day,
        ssh,
        ssh_key,
        wait_mqtt_status,
        write_card,
    )

    broker = Mosquitto(work / "mosquitto").start()
    ctl = ControllerProcess(work / "ctl", broker.url, hall_toml_all_day()).start()
    bundles = _bundles(work / "bundles", broker.port)
    key, pub = ssh_key(work)
    (bundles["controller"] / "authorized_keys").write_text(pub)
    out = {}
    try:
        for role, img in images.items():
            if role not in bundles:
                continue
            disk = copy_image(img, work / f"{role}.img", size=2 * GiB)
            write_card(disk, bundles[role])
            fwd, port, topic = {}, broker.port, None
            if role == "controller":
                port, sshp = free_port(), free_port()
                fwd = {port: 1883, sshp: 22}
                topic = "hallq/demo/controller/status"
            else:
                device = (bundles[role] / "device.toml").read_text().split('"')[1]
                topic = f"hallq/demo/device/{device}/status"
            vm = Qemu(disk, work / f"vm-{role}", hostfwd=fwd, gpu=role != "controller").start()
            try:
                secs = wait_mqtt_status(port, topic, 600, vm)
                out[role] = {"boot_to_online_s": round(secs, 1)}
                if role == "controller":
                    out[role]["blame_top5"] = [b.strip() for b in ssh(sshp, key, "systemd-analyze blame | head -5")
                                               .splitlines()]
                    out[role]["systemd_analyze"] = ssh(sshp, key, "systemd-analyze time").strip()
            except AssertionError as exc:
                out[role] = {"error": str(exc), "console_tail": vm.log()[-1500:]}
            finally:
                vm.stop(30)
                disk.unlink()
    finally:
        ctl.stop()
        broker.kill()
    return out


def _power_cuts(image: Path, work: Path, cuts: int) -> dict:
    from hallq.shared.mqtt import HallClient, RequestError, RequestTimeout
    from hallq.shared.schemas import TakeRequest
    from imagekit import Disk, Ext4, Qemu, copy_image, free_port, wait_mqtt_status, write_card

    disk_path = copy_image(image, work / "power.img", size=2 * GiB)
    write_card(disk_path, _bundles(work / "pc-bundles", 1)["controller"])
    rng = random.Random(11)
    answered: list[str] = []
    results = {"cuts": 0, "answered": 0, "lost": 0, "integrity_failures": 0, "manual_repairs": 0,
               "boot_failures": 0, "boot_s": []}
    for i in range(cuts):
        port = free_port()
        vm = Qemu(disk_path, work / f"vm-pc{i}", hostfwd={port: 1883}).start()
        try:
            results["boot_s"].append(round(wait_mqtt_status(port, "hallq/demo/controller/status", 600, vm), 1))
        except AssertionError:
            results["boot_failures"] += 1
            vm.kill()
            (work / f"pc{i}-console.log").write_text(vm.log())
            continue
        stop = threading.Event()

        def taker(p=port, s=stop):
            with HallClient(f"mqtt://127.0.0.1:{p}", "demo", "kiosk-1") as c:
                c.wait_connected(20)
                while not s.is_set():
                    try:
                        r = c.request("take", TakeRequest(req=c.new_req(), category=rng.choice("ABC")), timeout=5)
                        answered.append(r.ticket.number)
                    except (RequestTimeout, RequestError):
                        pass

        t = threading.Thread(target=taker, daemon=True)
        t.start()
        time.sleep(rng.uniform(1.0, 12.0))
        vm.kill()  # the plug is pulled: no flush, no clean unmount
        stop.set()
        t.join(10)
        results["cuts"] += 1
        part = Disk(disk_path).extract(3, work / "data.ext4")
        fsck = subprocess.run(["e2fsck", "-p", str(part)], capture_output=True, text=True)
        if fsck.returncode >= 4:
            results["manual_repairs"] += 1
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
        have = {r[0] for r in conn.execute("SELECT number FROM tickets")}
        conn.close()
        lost = [n for n in answered if n not in have]
        results["lost"] += len(lost)
    results["answered"] = len(answered)
    b = results["boot_s"]
    results["boot_s"] = {"n": len(b), "min": min(b, default=None), "max": max(b, default=None)}
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
    with tempfile.TemporaryDirectory(prefix="hallq-bench-img-", dir="/var/tmp") as w:
        work = Path(w)
        images = {}
        out["roles"] = {}
        for role in ("controller", "kiosk", "display", "pad"):
            img = build_image(role, tar, work / "out")
            images[role] = img
            m = json.loads(img.with_name(f"hallq-{role}.manifest.json").read_text())
            out["roles"][role] = {"layer_s": m["seconds"]["total"], **_sizes(img)}
        out["flash_controller"] = _flash(images["controller"], work)
        out["boot_to_online"] = _boot_to_online(images, work)
        out["power_cuts"] = _power_cuts(images["controller"], work, POWER_CUTS)
    return out
