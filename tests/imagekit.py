"""Helpers for the image tests and benchmarks: read a disk image without mounting it, boot it in QEMU."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "images"))


@dataclass
class Part:
    number: int
    start: int  # bytes
    size: int  # bytes
    type: str
    bootable: bool


class Disk:
    """A disk image file: its MBR partitions, their file systems read with mtools and debugfs."""

    def __init__(self, path: Path):
        self.path = Path(path)
        table = json.loads(subprocess.run(["sfdisk", "--json", str(self.path)], check=True, capture_output=True,
                                          text=True).stdout)["partitiontable"]
        self.label = table["label"]
        self.id = table.get("id")
        sector = table.get("sectorsize", 512)
        self.parts = [Part(i + 1, p["start"] * sector, p["size"] * sector, p["type"], bool(p.get("bootable")))
                      for i, p in enumerate(table["partitions"])]

    def extract(self, n: int, to: Path) -> Path:
        p = self.parts[n - 1]
        with open(self.path, "rb") as src, open(to, "wb") as dst:
            src.seek(p.start)
            left = p.size
            while left:
                chunk = src.read(min(left, 8 << 20))
                if not chunk:
                    break
                dst.write(chunk)
                left -= len(chunk)
        return to

    def fat_spec(self) -> str:
        return f"{self.path}@@{self.parts[0].start}"

    def fat_ls(self, path: str = "::/") -> list[str]:
        out = subprocess.run(["mdir", "-b", "-i", self.fat_spec(), path], capture_output=True, text=True)
        if out.returncode != 0:
            return []
        return [line.strip().removeprefix("::/").rstrip("/") for line in out.stdout.splitlines() if line.strip()]

    def fat_read(self, name: str) -> bytes:
        return subprocess.run(["mtype", "-i", self.fat_spec(), f"::{name}"], check=True, capture_output=True).stdout

    def fat_get(self, name: str, to: Path) -> Path:
        subprocess.run(["mcopy", "-n", "-i", self.fat_spec(), f"::{name}", str(to)], check=True)
        return to

    def fat_put(self, src: Path, name: str) -> None:
        """Write ``src`` as ``name`` on the FAT (replacing it), as a technician edits a file on the card."""
        subprocess.run(["mcopy", "-o", "-i", self.fat_spec(), str(src), f"::{name}"], check=True)


def fs_label(dev: Path) -> str:
    return subprocess.run(["blkid", "-p", "-s", "LABEL", "-o", "value", str(dev)], capture_output=True,
                          text=True).stdout.strip()


class Ext4:
    """An ext4 image read with debugfs (no mounting)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _run(self, req: str) -> str:
        r = subprocess.run(["debugfs", "-R", req, str(self.path)], capture_output=True, text=True)
        return r.stdout

    def read(self, path: str) -> bytes:
        r = subprocess.run(["debugfs", "-R", f"cat {path}", str(self.path)], capture_output=True)
        return r.stdout

    def exists(self, path: str) -> bool:
        r = subprocess.run(["debugfs", "-R", f"stat {path}", str(self.path)], capture_output=True, text=True)
        return "Inode:" in r.stdout

    def ls(self, path: str) -> list[str]:
        out = self._run(f"ls -p {path}")
        names = []
        for line in out.splitlines():
            f = line.split("/")
            if len(f) >= 6 and f[5] not in (".", ".."):
                names.append(f[5])
        return names

    def readlink(self, path: str) -> str | None:
        out = self._run(f"stat {path}")
        m = re.search(r'Fast link dest: "(.*)"', out)
        return m.group(1) if m else None

    def rdump(self, path: str, to: Path) -> Path:
        to.mkdir(parents=True, exist_ok=True)
        subprocess.run(["debugfs", "-R", f"rdump {path} {to}", str(self.path)], check=True, capture_output=True)
        return to / Path(path).name


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: The emulated Pi 3's network interface: a MAC in the Raspberry Pi Foundation's range (B8:27:EB).
PI_MAC = "b8:27:eb:12:34:56"

#: The screen a kiosk or display image gets in QEMU (a person looks at its screendump; the tests check it).
SCREEN_DEVICE = os.environ.get("HALLQ_QEMU_SCREEN", "virtio-gpu-pci")


class Qemu:
    """One boot of an image in ``qemu-system-aarch64 -M virt`` with the image's own kernel and initrd."""

    def __init__(self, image: Path, work: Path, *, hostfwd: dict[int, int] | None = None, gpu: bool | str = False,
                 memory: int = 1024, cmdline_extra: str = "", machine: str = "virt"):
        self.image, self.work = Path(image), Path(work)
        self.work.mkdir(parents=True, exist_ok=True)
        self.hostfwd = hostfwd or {}
        self.gpu, self.memory, self.machine = gpu, memory, machine
        self.cmdline_extra = cmdline_extra
        self.console = self.work / "console.log"
        self.qmp_path = self.work / "qmp.sock"
        self.proc: subprocess.Popen | None = None
        self.started = 0.0

    def boot_files(self) -> tuple[Path, Path, str]:
        disk = Disk(self.image)
        names = disk.fat_ls()
        kernel = next(n for n in names if n.startswith("vmlinuz-"))
        initrd = next(n for n in names if n.startswith("initrd.img-"))
        k = disk.fat_get(kernel, self.work / "vmlinuz")
        i = disk.fat_get(initrd, self.work / "initrd.img")
        cmdline = disk.fat_read("cmdline.txt").decode().strip()
        return k, i, cmdline

    def start(self) -> Qemu:
        kernel, initrd, cmdline = self.boot_files()
        console = "ttyAMA0" if self.machine == "virt" else "ttyS1"
        cmdline = re.sub(r"console=\S+", f"console={console},115200", cmdline)
        # the test reads the console: show systemd's progress there
        cmdline = cmdline.replace(" quiet", "").replace("systemd.show_status=false", "systemd.show_status=true")
        # ... and the kernel's own messages (devices found, errors, hung tasks): what tells a stuck boot's cause
        cmdline = re.sub(r"loglevel=\d", "loglevel=7", cmdline)
        fwd = ",".join(f"hostfwd=tcp:127.0.0.1:{h}-:{g}" for h, g in self.hostfwd.items())
        net = "user,id=n0" + (f",{fwd}" if fwd else "")
        cmd = ["qemu-system-aarch64", "-M", self.machine, "-m", str(self.memory),
               "-kernel", str(kernel), "-initrd", str(initrd), "-append", f"{cmdline} {self.cmdline_extra}".strip(),
               "-monitor", "none", "-qmp", f"unix:{self.qmp_path},server=on,wait=off", "-no-reboot"]
        if self.machine == "virt":
            cmd += ["-cpu", "cortex-a53", "-smp", "2",
                    "-drive", f"file={self.image},if=none,format=raw,id=hd0,cache=writeback",
                    "-device", "virtio-blk-pci,drive=hd0", "-netdev", net, "-device", "virtio-net-pci,netdev=n0",
                    "-device", "virtio-rng-pci", "-serial", f"file:{self.console}"]
        else:  # raspi3b: the Pi 3's own device tree from the FAT, the card on the SD controller, USB network
            dtb = Disk(self.image).fat_get("bcm2837-rpi-3-b.dtb", self.work / "rpi3b.dtb")
            cmd += ["-dtb", str(dtb), "-drive", f"file={self.image},if=sd,format=raw,cache=writeback",
                    # the Pi 3's own Ethernet sits on USB too; with a MAC of the Pi's own range (not a locally
                    # administered one) the kernel names it eth0 as on a Pi, not usb0
                    "-netdev", net, "-device", f"usb-net,netdev=n0,mac={PI_MAC}",
                    "-serial", "null", "-serial", f"file:{self.console}"]
        if self.gpu:
            device = self.gpu if isinstance(self.gpu, str) else SCREEN_DEVICE
            cmd += ["-device", device, "-display", "none", "-vga", "none"]
        else:
            cmd += ["-display", "none"]
        self.started = time.monotonic()
        with open(self.work / "qemu.out", "wb") as out:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        return self

    def log(self) -> str:
        try:
            return self.console.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_console(self, pattern: str, timeout: float) -> re.Match | None:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.log())
            if m:
                return m
            if self.proc is not None and self.proc.poll() is not None:
                return rx.search(self.log())
            time.sleep(0.5)
        return None

    def quiet_for(self) -> float:
        """Seconds since the guest last wrote to its console (since power-on if it never did)."""
        try:
            last = self.console.stat().st_mtime
        except FileNotFoundError:
            return time.monotonic() - self.started
        return min(time.time() - last, time.monotonic() - self.started)

    def report(self, tail: int = 6000) -> str:
        """What a failed boot leaves for the reader: the console's last lines (with how long ago it last
        grew) and what QEMU itself printed."""
        try:
            quiet = f"{time.time() - self.console.stat().st_mtime:.0f} s"
        except FileNotFoundError:
            quiet = "never written"
        try:
            qemu = (self.work / "qemu.out").read_text(errors="replace")[-2000:]
        except FileNotFoundError:
            qemu = ""
        alive = "running" if self.proc is not None and self.proc.poll() is None else "ended"
        return (f"QEMU {alive}, {time.monotonic() - self.started:.0f} s after power-on; the console last grew "
                f"{quiet} ago; QEMU printed: {qemu.strip() or '(nothing)'}\n--- console (last {tail} chars) ---\n"
                f"{self.log()[-tail:]}")

    def check(self) -> None:
        """Raise when the guest cannot come up any more (emergency mode, a kernel panic, QEMU gone)."""
        log = self.log()
        for bad in ("You are in emergency mode", "Kernel panic", "Give root password for maintenance"):
            if bad in log:
                raise AssertionError(f"guest: {bad}\n{log[-4000:]}")
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"QEMU ended ({self.proc.returncode})\n{log[-4000:]}")

    def qmp(self, command: str, **arguments) -> dict:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(30)
        s.connect(str(self.qmp_path))
        f = s.makefile("rwb")
        json.loads(f.readline())
        for msg in ({"execute": "qmp_capabilities"}, {"execute": command, "arguments": arguments}):
            f.write(json.dumps(msg).encode() + b"\n")
            f.flush()
            while True:
                reply = json.loads(f.readline())
                if "return" in reply or "error" in reply:
                    break
        s.close()
        return reply

    def screendump(self, to: Path) -> Path:
        to = Path(to)
        reply = self.qmp("screendump", filename=str(to), format="png")
        if "error" in reply:
            # QEMU before 7.1 writes PPM only
            ppm = to.with_suffix(".ppm")
            self.qmp("screendump", filename=str(ppm))
            from PIL import Image

            Image.open(ppm).save(to)
        return to

    def kill(self) -> None:
        """Pull the plug (SIGKILL to QEMU: the guest gets no chance to flush anything)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout: float = 60) -> None:
        """A clean power-off through ACPI-less virt: system_powerdown, then kill."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            self.qmp("system_powerdown")
            self.proc.wait(timeout)
        except Exception:
            self.kill()


def copy_image(src: Path, dst: Path, size: int | None = None) -> Path:
    """A sparse copy to boot (the build's image stays pristine), optionally enlarged like a bigger card."""
    subprocess.run(["cp", "--sparse=always", str(src), str(dst)], check=True)
    if size:
        os.truncate(dst, size)
    return dst


def have_tools() -> list[str]:
    need = ["mmdebstrap", "genimage", "bmaptool", "mcopy", "debugfs", "sfdisk", "qemu-system-aarch64", "zstd"]
    return [t for t in need if shutil.which(t) is None]


# -- provisioning bundles for the boot tests, written into an image's FAT as a technician's card would be


#: A kiosk's cap on waiting tickets in a hall without quotas: no window calls anyone in a power-cut run, so
#: every ticket stays waiting, and the default cap (1,000 per kiosk) was reached in cut 11 of a 30-cut run (every
#: later take refused `too_many`).
NO_QUOTA_OPEN_TICKETS = 1_000_000


def hall_toml_all_day(quotas: bool = True) -> str:
    """The sample hall, open all day (the tests run at any hour); when ``quotas`` is false, without its caps on
    how many numbers a long run of takes may get: no daily quotas (650 tickets a day in the sample hall) and
    ``NO_QUOTA_OPEN_TICKETS`` waiting tickets per kiosk (a number of a category still ends at 999 a day)."""
    text = (REPO / "controller/examples/hall.toml").read_text()
    text = re.sub(r"^hours = .*$", "", text, flags=re.M)
    if quotas:
        return text
    text = re.sub(r"^daily_quota = .*$", "", text, flags=re.M)
    return text + f"\n[limits.kiosk]\nrate = 10\nburst = 60\nopen_tickets = {NO_QUOTA_OPEN_TICKETS}\n"


def ssh_key(where: Path) -> tuple[Path, str]:
    key = where / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hallq-test", "-f", str(key)],
                       check=True)
    return key, key.with_name(key.name + ".pub").read_text()


HALLQ = str(Path(sys.executable).parent / "hallq")
#: Where a QEMU guest (user networking) finds the host's loopback services.
HOST_FROM_GUEST = "10.0.2.2"


@dataclass
class ProvisionedHall:
    """A hall's keyring made the way a technician makes it (``hallq provision init``), its devices' bundles
    written onto images with ``hallq provision card``; its broker (TLS + ACL) listens on ``port``."""

    keyring: Path
    port: int
    hall: str

    def card(self, device: str, image: Path, *, ssh_key: Path | None = None) -> None:
        cmd = [HALLQ, "provision", "card", device, "--keyring", str(self.keyring), "--to", str(image)]
        if ssh_key is not None:
            cmd += ["--ssh-key", str(ssh_key)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            raise AssertionError(f"hallq provision card {device}: {r.returncode}\n{r.stdout}{r.stderr}")

    def url(self, device: str, port: int | None = None):
        """``device``'s login to the hall's broker as seen from this machine: 127.0.0.1:``port`` over TLS with
        the hall's CA (the server certificate names 127.0.0.1)."""
        from hallq.provisioning.keyring import Keyring
        from hallq.shared.config import BrokerURL

        kr = Keyring(self.keyring)
        return BrokerURL("127.0.0.1", port or self.port, tls=True, username=device, password=kr.password(device),
                         ca_file=str(kr.ca_file))

    def device_file(self, device: str, where: Path) -> Path:
        """``device``'s bundle written by ``hallq provision bundle`` into ``where``; its device.toml."""
        r = subprocess.run([HALLQ, "provision", "bundle", device, "--keyring", str(self.keyring), "--out",
                            str(where)], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise AssertionError(f"hallq provision bundle {device}: {r.returncode}\n{r.stdout}{r.stderr}")
        return where / "device.toml"

    def broker(self, workdir: Path):
        """The hall's secure Mosquitto on this machine (provisioning's ``LocalBroker``: the files ``apply``
        installs on a controller), listening on every address so that a guest reaches it at 10.0.2.2."""
        from hallq.provisioning.local import LocalBroker

        return LocalBroker(self.keyring, workdir)


def provision_hall(where: Path, *, port: int, host: str = HOST_FROM_GUEST, devices: str = "",
                   quotas: bool = True) -> ProvisionedHall:
    """``hallq provision init`` for the sample hall (open all day) with the broker at ``host``:``port`` and
    ``devices`` (TOML ``[[devices]]`` tables); the controller and the dashboard are always made."""
    where.mkdir(parents=True, exist_ok=True)
    cfg = where / "hall.toml"
    cfg.write_text(hall_toml_all_day(quotas) + f'\n[broker]\nhost = "{host}"\nport = {port}\n\n{devices}',
                   encoding="utf-8")
    keyring = where / "keyring"
    r = subprocess.run([HALLQ, "provision", "init", "--hall-config", str(cfg), "--keyring", str(keyring)],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError(f"hallq provision init: {r.returncode}\n{r.stdout}{r.stderr}")
    return ProvisionedHall(keyring, port, "demo")


# -- reaching a booted image
#: seconds one command over SSH may take: a loaded 2-core machine emulating arm64 (TCG) answers slowly
SSH_TIMEOUT = float(os.environ.get("HALLQ_SSH_TIMEOUT", "240"))


def ssh(port: int, key: Path, command: str, timeout: float = SSH_TIMEOUT) -> str:
    r = subprocess.run(["ssh", "-i", str(key), "-p", str(port), "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=60",
                        "-o", "LogLevel=ERROR", "root@127.0.0.1", command],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"ssh {command!r}: {r.returncode} {r.stderr}")
    return r.stdout


class BootStalled(AssertionError):
    """The guest stopped making progress: no SSH, and its console has not grown for a long time."""


def wait_ssh(port: int, key: Path, timeout: float, vm: Qemu | None = None, stall: float | None = None) -> float:
    """Seconds until the guest answers over SSH (hostfwd to ``port``), failing at once when the guest dropped to
    emergency mode or QEMU ended; with ``stall``, raising :class:`BootStalled` when SSH still does not answer
    ``stall`` seconds after the guest's console last grew, or after its login prompt appeared (booted, but
    unreachable)."""
    t0 = time.monotonic()
    prompt_at = None
    while time.monotonic() - t0 < timeout:
        if vm is not None:
            vm.check()
            if prompt_at is None and re.search(r"\S+ login: ", vm.log()):
                prompt_at = time.monotonic()
            if stall is not None and vm.quiet_for() > stall:
                raise BootStalled(f"no SSH on port {port} and no console output for {stall:.0f} s\n{vm.report()}")
            if stall is not None and prompt_at is not None and time.monotonic() - prompt_at > stall:
                raise BootStalled(f"no SSH on port {port} {stall:.0f} s after the login prompt\n{vm.report()}")
        try:
            ssh(port, key, "true")
            return time.monotonic() - t0
        except (AssertionError, subprocess.TimeoutExpired):
            time.sleep(3)
    raise AssertionError(f"no SSH on port {port} within {timeout} s" + (f"\n{vm.report()}" if vm is not None else ""))


def wait_mqtt_status(url, topic: str, timeout: float, vm: Qemu | None = None) -> float:
    """Seconds until ``topic`` (retained) says online on the broker ``url`` (a BrokerURL: TLS, user and
    password), failing at once when the guest ``vm`` dropped to emergency mode or QEMU ended."""
    import ssl

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    t0 = time.monotonic()
    deadline = t0 + timeout
    seen: list[bytes] = []

    def online() -> bool:
        return any(b'"online"' in p or p == b"online" for p in seen)

    while time.monotonic() < deadline:
        if vm is not None:
            vm.check()
        c = paho.Client(CallbackAPIVersion.VERSION2, client_id=url.username or f"boot-test-{url.port}")
        if url.username:
            c.username_pw_set(url.username, url.password)
        if url.tls:
            c.tls_set(ca_certs=url.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        c.on_connect = lambda cl, *a: cl.subscribe(topic, qos=1)
        c.on_message = lambda cl, u, m: seen.append(m.payload)
        try:
            c.connect(url.host, url.port, keepalive=10)
        except (OSError, ssl.SSLError):
            time.sleep(2)
            continue
        c.loop_start()
        end = min(deadline, time.monotonic() + 20)
        while time.monotonic() < end and not online():
            time.sleep(0.5)
        c.loop_stop()
        c.disconnect()
        if online():
            return time.monotonic() - t0
        time.sleep(1)
    raise AssertionError(f"{topic} not online within {timeout} s" + (f"\n{vm.report()}" if vm is not None else ""))


# -- what a booted screen shows
def kiosk_home_reference(url, hall: str, size: tuple[int, int], to: Path) -> tuple[Path, dict[str, tuple]]:
    """The kiosk's home screen as the kiosk's own code draws it (headless, here) for the hall's retained
    config, queue and figures read from the broker ``url``; with its regions by name: the header and every
    touch target (the category cards, appointment, language). Returns (the picture, {name: (x, y, w, h)})."""
    import queue as queue_mod
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from hallq.kiosk import core
    from hallq.kiosk.ui import KioskUI
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import HallConfig, QueueState, Stats, decode
    from hallq.shared.screen import open_screen
    from hallq.shared.topics import HallTopics

    t = HallTopics(hall)
    got: queue_mod.Queue = queue_mod.Queue()
    c = HallClient(url, hall, url.username)
    for topic in (t.config, t.queue, t.stats, t.controller_status):
        c.subscribe(topic, lambda m: got.put((m.topic, m.payload)))
    retained: dict[str, bytes] = {}
    with c:
        assert c.wait_connected(30), "reaching the hall's broker for its retained config"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not {t.config, t.queue} <= retained.keys():
            try:
                topic, payload = got.get(timeout=1)
            except queue_mod.Empty:
                continue
            retained[topic] = payload
        try:
            while True:
                topic, payload = got.get(timeout=2)
                retained[topic] = payload
        except queue_mod.Empty:
            pass
    config = decode(retained[t.config], HallConfig)
    now = datetime.now(ZoneInfo(config.timezone))
    s = core.initial(core.Settings(device="reference", req_prefix="reference"), now)
    events = [core.ConfigChanged(config), core.QueueChanged(decode(retained[t.queue], QueueState)), core.Link(True)]
    if t.stats in retained:
        events.append(core.QuietChanged(tuple(decode(retained[t.stats], Stats).quiet_half_hours)))
    if t.controller_status in retained:
        events.append(core.ControllerStatus(retained[t.controller_status].decode().strip()))
    events.append(core.Tick(now))
    for ev in events:
        s, _ = core.handle(s, ev, now)
    assert s.screen == "home", f"the reference kiosk is on {s.screen}, not home"
    screen = open_screen(size, "headless")
    try:
        ui = KioskUI(screen)
        ui.draw(s, now, now.strftime("%H:%M"))
        regions = {"header": (0, 0, size[0], ui.px(130))}
        for h in ui.hits:
            if h.press.action != "wake":
                regions[f"{h.press.action}:{h.press.arg}" if h.press.arg else h.press.action] = h.rect
        screen.screenshot(to)
    finally:
        screen.close()
    return to, regions


def region_match(shot: Path, reference: Path, regions: dict[str, tuple], tolerance: int = 24) -> dict[str, float]:
    """Per region, the share of its pixels within ``tolerance`` (each channel) of the reference picture."""
    from PIL import Image, ImageChops

    a = Image.open(shot).convert("RGB")
    b = Image.open(reference).convert("RGB")
    if a.size != b.size:
        return {name: 0.0 for name in regions}
    # per pixel the largest difference of its three channels, then 255 where it is within the tolerance
    r, g, bl = ImageChops.difference(a, b).split()
    near = ImageChops.lighter(ImageChops.lighter(r, g), bl).point(lambda v: 255 if v <= tolerance else 0)
    out = {}
    for name, (x, y, w, h) in regions.items():
        inside = near.crop((x, y, x + w, y + h)).histogram()[255]
        out[name] = round(inside / max(1, w * h), 3)
    return out
