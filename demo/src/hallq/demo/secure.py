"""``make demo SECURE=1``: the demo hall as a real hall is provisioned. A throwaway keyring is made with
``hallq provision init`` from the demo's ``hall.toml`` (plus a ``[broker]`` on a free loopback port and
``[[devices]]`` for every client of the demo), every device gets its bundle, and the hall runs on the real
Mosquitto with the generated TLS listener, password file and ACL. Every process connects as its own
identity: the controller and the device apps with ``--device``, the simulated clients with theirs.
"""

from __future__ import annotations

import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from hallq.controller.config import HallFile
from hallq.provisioning.bundle import bundle_files, write_bundle
from hallq.provisioning.keyring import Keyring
from hallq.provisioning.local import LocalBroker
from hallq.shared.config import BrokerURL, ConfigError
from hallq.shared.identity import load_identity
from hallq.shared.topics import HallTopics

#: The demo's own observers: they read the whole hall (the live view, the simulation's watcher).
MONITORS = ("demo-view", "sim-observer")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_devices(windows: list[int]) -> list[tuple[str, str, int | None, str | None]]:
    """(id, role, window, display mode) of every client of the demo: the simulated kiosks, clerks and pads
    (hallsim's ids), the device apps that join the demo (kiosk-1, the hall screen, the screen of the first
    window, the pad of window 1) and the two observers."""
    first = windows[0]
    pad_window = 1 if 1 in windows else first
    out: list[tuple[str, str, int | None, str | None]] = [("sim-kiosk-1", "kiosk", None, None),
                                                          ("sim-kiosk-2", "kiosk", None, None)]
    out += [(f"sim-window-{w}", "window", w, None) for w in windows]
    out += [(f"sim-pad-{w}", "pad", w, None) for w in windows]
    out += [("kiosk-1", "kiosk", None, None), ("display-hall", "display", None, "hall"),
            (f"display-window-{first}", "display", first, "window"), (f"pad-{pad_window}", "pad", pad_window, None)]
    out += [(m, "monitor", None, None) for m in MONITORS]
    return out


def demo_acl(hall: str, windows: list[int]) -> str:
    """ACL lines for the demo's own topic: the simulated clerk at the real pad's window tells that pad which
    button its citizen presses (``demo/pad/{n}/press``, ``hallq pad --demo-presses``). Appended to the
    throwaway keyring's ACL only: a provisioned hall has no demo topics."""
    first = windows[0]
    pad_window = 1 if 1 in windows else first
    press = HallTopics(hall).demo_press(pad_window)
    return ("\n# Added by `hallq demo --secure`: the simulated citizen at the real pad's window says what it "
            f"presses.\nuser sim-window-{pad_window}\ntopic write {press}\n"
            f"user pad-{pad_window}\ntopic read {press}\n")


def secure_hall_toml(text: str, cfg: HallFile, port: int) -> str:
    if cfg.broker is not None:
        raise ConfigError("--secure makes the demo's own [broker] on a free loopback port: "
                          "give a hall.toml without [broker]")
    listed = {d.id for d in cfg.devices or []}
    lines = [text.rstrip(), "", "# Added by `hallq demo --secure`.", "[broker]", 'host = "127.0.0.1"',
             f"port = {port}"]
    for did, role, window, mode in demo_devices(sorted(w.no for w in cfg.windows)):
        if did in listed:
            continue
        lines += ["", "[[devices]]", f'id = "{did}"', f'role = "{role}"']
        if window is not None:
            lines.append(f"window = {window}")
        if mode is not None:
            lines.append(f'mode = "{mode}"')
        if did.startswith("sim-kiosk"):  # the simulated citizens' priorities are confirmed by staff there
            lines.append('staff_priorities = ["disabled", "pregnant", "military"]')
    return "\n".join(lines) + "\n"


@dataclass
class SecureHall:
    hall_toml: Path
    identities: Path
    broker: LocalBroker

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.broker.port}"

    def connect_as(self, device: str) -> BrokerURL:
        """How the demo's own client ``device`` logs in (its bundle's broker, user, password and CA)."""
        return load_identity(self.identities / device / "device.toml").broker

    def device_file(self, device: str) -> Path:
        return self.identities / device / "device.toml"

    def stop(self) -> None:
        self.broker.stop()


def start(config_path: Path, cfg: HallFile, out: Path) -> SecureHall:
    """Provision a fresh keyring in ``out/secure`` and start Mosquitto with its files."""
    folder = out / "secure"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, mode=0o700)
    hall_toml = folder / "hall.toml"
    hall_toml.write_text(secure_hall_toml(config_path.read_text(encoding="utf-8"), cfg, _free_port()),
                         encoding="utf-8")
    kr = Keyring(folder / "keyring")
    kr.init(hall_toml)
    acl = kr.path / "broker" / "acl"
    acl.write_text(acl.read_text(encoding="utf-8") + demo_acl(cfg.hall.id, sorted(w.no for w in cfg.windows)),
                   encoding="utf-8")
    identities = folder / "devices"
    identities.mkdir(mode=0o700)
    for device in kr.load().devices:
        write_bundle(bundle_files(kr, device), identities / device)
    broker = LocalBroker(kr.path, folder / "mosquitto").start()
    return SecureHall(hall_toml=hall_toml, identities=identities, broker=broker)
