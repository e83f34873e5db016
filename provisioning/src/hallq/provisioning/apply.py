"""``hallq provision apply`` on the controller: install the broker files and make Mosquitto reload them.

The files come from ``FROM/broker/`` (a keyring, or the controller's installed bundle ``/etc/hallq``) and go
to ``--to`` (default ``/etc/mosquitto/hallq``), readable by Mosquitto's group only where they are secret;
``mosquitto.conf`` goes to ``--conf`` (default ``/etc/mosquitto/conf.d/hallq.conf``) with its paths pointing
there. Then Mosquitto is told: SIGHUP (it reads the password file and the ACL again and disconnects every
client whose credential is gone), or a restart when the listener itself changed.
"""

from __future__ import annotations

import grp
import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .files import ProvisionError, atomic_write

FILES = {"ca.crt": 0o644, "server.crt": 0o644, "server.key": 0o640, "passwd": 0o640, "acl": 0o644}
PATH_KEYS = re.compile(r"^(password_file|acl_file|cafile|certfile|keyfile)\s+(\S.*)$", re.M)
DEFAULT_TO = Path("/etc/mosquitto/hallq")
DEFAULT_CONF = Path("/etc/mosquitto/conf.d/hallq.conf")


@dataclass(frozen=True, slots=True)
class Applied:
    to: Path
    conf: Path
    changed: list[str]
    how: str  # "reloaded", "restarted", "nothing to do", or what the technician must do


def _group() -> int | None:
    try:
        return grp.getgrnam("mosquitto").gr_gid
    except KeyError:
        return None


def apply(src: Path, to: Path = DEFAULT_TO, conf: Path = DEFAULT_CONF, *, pid: int | None = None,
          pid_file: Path | None = None, systemd: bool = True) -> Applied:
    bdir = Path(src) / "broker"
    missing = [n for n in [*FILES, "mosquitto.conf"] if not (bdir / n).is_file()]
    if missing:
        raise ProvisionError(f"{src}: not a keyring or a controller bundle (broker/ lacks {', '.join(missing)})")
    to = Path(to).resolve()
    conf = Path(conf)
    new_hall = _hall_of(bdir / "mosquitto.conf")
    old_hall = _hall_of(conf) if conf.exists() else None
    if old_hall is not None and new_hall is not None and old_hall != new_hall:
        raise ProvisionError(f"{conf} serves hall {old_hall!r}, but {src} is the keyring of hall {new_hall!r}: "
                             "nothing installed (remove the old hall's files first if this controller changes hall)")
    gid = _group() if os.geteuid() == 0 else None
    to.mkdir(mode=0o750, parents=True, exist_ok=True)
    os.chmod(to, 0o750)
    if gid is not None:
        os.chown(to, -1, gid)
    changed = []
    for name, mode in FILES.items():
        data = (bdir / name).read_bytes()
        dest = to / name
        if dest.exists() and dest.read_bytes() == data:
            continue
        atomic_write(dest, data, mode)
        if gid is not None:
            os.chown(dest, -1, gid)
        changed.append(name)
    text = PATH_KEYS.sub(lambda m: f"{m[1]} {to / Path(m[2].strip()).name}", (bdir / "mosquitto.conf").read_text())
    conf_changed = not conf.exists() or conf.read_text() != text
    if conf_changed:
        conf.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(conf, text, 0o644)
        changed.append(conf.name)
    if not changed:
        return Applied(to, conf, [], "nothing to do")
    how = _tell(conf_changed, pid, pid_file, systemd)
    return Applied(to, conf, changed, how)


def _hall_of(conf: Path) -> str | None:
    """The hall a generated mosquitto.conf serves (its first line says so)."""
    m = re.search(r"broker of hall ([a-z0-9_-]+),", conf.read_text(errors="replace")[:300])
    return m[1] if m else None


def _tell(restart: bool, pid: int | None, pid_file: Path | None, systemd: bool) -> str:
    if pid is None and pid_file is not None:
        try:
            pid = int(Path(pid_file).read_text().strip())
        except (OSError, ValueError) as exc:
            raise ProvisionError(f"{pid_file}: no Mosquitto process id in it ({exc})") from None
    if pid is not None:
        if restart:
            return f"mosquitto.conf changed: restart Mosquitto (process {pid}) to use it"
        try:
            os.kill(pid, signal.SIGHUP)
        except ProcessLookupError:
            raise ProvisionError(f"no process {pid}: is Mosquitto running?") from None
        return f"reloaded (SIGHUP to process {pid})"
    if systemd and shutil.which("systemctl"):
        action = "restart" if restart else "reload"
        p = subprocess.run(["systemctl", action, "mosquitto"], capture_output=True, text=True, timeout=60)
        if p.returncode != 0:
            raise ProvisionError(f"the files are installed, but `systemctl {action} mosquitto` failed "
                                 f"({(p.stderr or p.stdout).strip().splitlines()[0]}): {action} Mosquitto yourself, "
                                 "or give its process id with --pid")
        return "restarted" if restart else "reloaded"
    return "installed; Mosquitto was not told (no --pid and no systemd): restart it"
