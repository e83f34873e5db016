"""A hall's secure broker on this machine: the real Mosquitto with the keyring's TLS + ACL files, installed
the way ``apply`` installs them on a controller. ``make demo SECURE=1``, the tests and the benchmarks run it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from . import apply as applying
from .files import ProvisionError
from .keyring import Keyring

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class LocalBroker:
    """Mosquitto serving the hall of ``keyring`` on its ``[broker]`` port, from files in ``workdir``."""

    def __init__(self, keyring: str | Path, workdir: str | Path, *, log_types: tuple[str, ...] = ()):
        #: Mosquitto log types besides error, warning and notice (e.g. ``subscribe``, ``unsubscribe``)
        self.log_types = log_types
        self.keyring = Keyring(keyring)
        self.workdir = Path(workdir)
        inv = self.keyring.inventory()
        assert inv.broker is not None
        self.port = inv.broker.port
        self.hall = inv.hall
        self.files = self.workdir / "broker"
        self.conf_d = self.workdir / "conf.d"
        self.conf = self.workdir / "mosquitto.conf"
        self.log = self.workdir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> applying.Applied:
        """Install the broker files (as ``apply`` does) and tell a running broker to reload them."""
        return applying.apply(self.keyring.path, self.files, self.conf_d / "hallq.conf",
                              pid=self.proc.pid if self.running else None, systemd=False)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 10.0) -> LocalBroker:
        if not Path(MOSQUITTO).exists():
            raise ProvisionError("mosquitto is not installed: run `make setup` (it installs the Debian package)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.install()
        # The main file is what Debian's /etc/mosquitto/mosquitto.conf is on a controller; run as root (the
        # tests, CI), Mosquitto would otherwise switch to the user mosquitto, who cannot enter our folders.
        user = "user root\n" if os.geteuid() == 0 else ""
        self.conf.write_text(f"{user}persistence false\nlog_dest file {self.log}\n"
                             "log_type error\nlog_type warning\nlog_type notice\n"
                             + "".join(f"log_type {t}\n" for t in self.log_types) +
                             f"include_dir {self.conf_d}\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                raise ProvisionError(f"mosquitto did not start: {err or log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise ProvisionError(f"mosquitto does not listen on port {self.port}")

    def reload(self) -> applying.Applied:
        """``apply``: install the keyring's current broker files and SIGHUP the broker."""
        return self.install()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc is not None and self.proc.stderr:
            self.proc.stderr.close()
        self.proc = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
