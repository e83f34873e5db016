"""The images booted in QEMU (``-M virt``, the image's own kernel and initrd from its FAT), provisioned the
way a technician provisions a card: the bundle in hallq/ on the boot partition.

- the controller: its Mosquitto accepts a kiosk from the host (through hostfwd) and the controller answers a
  take; over SSH (the bundle's key): / is read-only, the bundle is off the FAT, the data partition grew;
- the kiosk (with a virtio-gpu screen for KMSDRM): it reaches a broker on the host and reports online; the bundle
  is off the FAT.
Each boot is bounded (a few minutes under TCG on 2 cores).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from imagekit import (
    Disk,
    Ext4,
    Qemu,
    copy_image,
    free_port,
    hall_toml_all_day,
    plain_bundle,
    ssh,
    ssh_key,
    wait_mqtt_status,
    write_card,
)

pytestmark = pytest.mark.timeout(3600)

BOOT_TIMEOUT = 900  # seconds from power-on to online: emulated arm64 (TCG) on a shared 2-core machine
GiB = 1 << 30
RESULTS = Path(os.environ.get("HALLQ_IMAGE_RESULTS", "images/out/boot-results.json"))


def record(role: str, **figures) -> None:
    """Boot figures for the benchmark report (images/out/boot-results.json)."""
    try:
        data = json.loads(RESULTS.read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    data[role] = {**data.get(role, {}), **figures}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")


def test_controller_image_serves_a_take_from_the_host(images, tmp_path):
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import TakeReply, TakeRequest

    img = copy_image(images["controller"], tmp_path / "controller.img", size=2 * GiB)
    size_before = Disk(img).parts[2].size
    key, pub = ssh_key(tmp_path)
    bundle = plain_bundle(tmp_path, device="controller", role="controller", broker="mqtt://127.0.0.1:1883",
                          files={"hall.toml": hall_toml_all_day(), "authorized_keys": pub,
                                 "broker/mosquitto.conf": "listener 1883 0.0.0.0\nallow_anonymous true\n"})
    write_card(img, bundle)
    mqtt, sshp = free_port(), free_port()
    vm = Qemu(img, tmp_path / "vm", hostfwd={mqtt: 1883, sshp: 22}).start()
    try:
        online = wait_mqtt_status(mqtt, "hallq/demo/controller/status", BOOT_TIMEOUT, vm)
        with HallClient(f"mqtt://127.0.0.1:{mqtt}", "demo", "kiosk-1") as kiosk:
            assert kiosk.wait_connected(30)
            reply = kiosk.request("take", TakeRequest(req=kiosk.new_req(), category="A"), timeout=30)
        assert isinstance(reply, TakeReply) and reply.ticket.number.startswith("A")
        assert ssh(sshp, key, "findmnt -no OPTIONS /").split(",")[0] == "ro"
        assert ssh(sshp, key, "hostname").strip() == "controller"
        assert ssh(sshp, key, "test -e /boot/firmware/hallq && echo present || echo gone").strip() == "gone"
        assert ssh(sshp, key, "stat -c '%a %U %G' /etc/hallq/device.toml").split() == ["600", "hallq", "hallq"]
        assert ssh(sshp, key, "systemctl is-active hallq-controller mosquitto chrony").split() == ["active"] * 3
        assert "WatchdogUSec=30s" in ssh(sshp, key, "systemctl show -p WatchdogUSec hallq-controller")
        failed = ssh(sshp, key, "systemctl list-units --failed --plain --no-legend").strip()
        assert not failed, failed
        blame = ssh(sshp, key, "systemd-analyze blame | head -5").splitlines()
        record("controller", boot_to_online_s=round(online, 1), blame_top5=[b.strip() for b in blame])
    finally:
        vm.stop()
    disk = Disk(img)
    assert "hallq" not in disk.fat_ls(), "the bundle is wiped from the boot partition"
    data = disk.parts[2]
    assert data.size > size_before and data.start + data.size >= os.path.getsize(img) - (4 << 20), \
        "the data partition grew to fill the card"
    dfs = Ext4(disk.extract(3, tmp_path / "data.ext4"))
    assert dfs.exists("/etc/device.toml") and dfs.exists("/hallq/hall.db")


def kiosk_toml(broker: str) -> str:
    text = (Path(__file__).resolve().parents[2] / "kiosk/examples/kiosk.toml").read_text()
    text = text.replace('broker = "mqtt://127.0.0.1:1883"', f'broker = "{broker}"')
    text = text.replace('url = "usb:0x0416:0x5011"', 'url = "file:/var/lib/hallq/tickets.bin"')
    text = text.replace("/etc/hallq/hall.key", "/etc/hallq/kiosk.key")
    # no readers fitted in the test machine
    return text.split("[[readers]]")[0]


def test_kiosk_image_reports_online(images, tmp_path):
    from harness import ControllerProcess, Mosquitto

    broker = Mosquitto(tmp_path / "mosquitto").start()  # on loopback: the guest reaches it as 10.0.2.2
    controller = ControllerProcess(tmp_path / "controller", broker.url, hall_toml_all_day()).start()
    img = copy_image(images["kiosk"], tmp_path / "kiosk.img", size=2 * GiB)
    bundle = plain_bundle(tmp_path, device="kiosk-1", role="kiosk", broker=f"mqtt://10.0.2.2:{broker.port}",
                          files={"kiosk.toml": kiosk_toml(f"mqtt://10.0.2.2:{broker.port}")})
    write_card(img, bundle)
    vm = Qemu(img, tmp_path / "vm", gpu=True).start()
    try:
        online = wait_mqtt_status(broker.port, "hallq/demo/device/kiosk-1/status", BOOT_TIMEOUT, vm)
        # QEMU's screendump, kept in the test's folder for a person to look at. The picture is not
        # asserted yet: on this machine it stayed black (the kiosk's KMSDRM output on virtio-gpu; issue 11).
        shot = vm.screendump(tmp_path / "kiosk-screen.png")
        record("kiosk", boot_to_online_s=round(online, 1), screenshot=str(shot))
    finally:
        vm.stop()
        controller.stop()
        broker.kill()
    disk = Disk(img)
    assert "hallq" not in disk.fat_ls()

