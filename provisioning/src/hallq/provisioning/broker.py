"""The broker's files for Mosquitto 2.0: ``mosquitto.conf``, the password file and the ACL.

The ACL (``acl_file``) is Mosquitto's built-in one: ``pattern`` rules with ``%u`` give every user what every
device has (its own status and health, its Last Will included, and its own replies); a ``user`` block per
device adds what its role may do. ``use_username_as_clientid`` makes the client id the user name, so ``%u``
is also the client id and a device can never act under another device's id. ``provisioning/README.md``
says why not the dynamic-security plugin.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from pathlib import Path

from hallq.shared.identity import LOOK_SUFFIX
from hallq.shared.topics import ACTIONS, HallTopics

#: Iterations of PBKDF2-SHA512 in the ``$7$`` hashes: what Mosquitto 2.0's ``mosquitto_passwd`` writes. The
#: passwords are 192 random bits (never chosen by people), so more iterations would protect nothing and
#: would only slow every connection and every reload (Mosquitto checks all connected clients again then).
ITERATIONS = 101


def new_password() -> str:
    return secrets.token_urlsafe(24)


def hash_password(password: str, *, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """A ``$7$`` hash (PBKDF2-SHA512, 12-byte salt, 64-byte key) as ``mosquitto_passwd`` writes it."""
    salt = secrets.token_bytes(12) if salt is None else salt
    dk = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(dk).decode()}"


def check_password(password: str, hashed: str) -> bool:
    """Whether ``hashed`` (a ``$7$`` hash) is the hash of ``password``."""
    try:
        _, seven, iterations, salt, dk = hashed.split("$")
    except ValueError:
        return False
    if seven != "7":
        return False
    try:
        got = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), base64.b64decode(salt), int(iterations))
    except ValueError:
        return False
    return secrets.compare_digest(base64.b64encode(got).decode(), dk)


@dataclass(frozen=True, slots=True)
class Account:
    """A broker user: a device (or the controller or the dashboard) that may log in."""

    user: str
    role: str
    window: int | None = None
    password_hash: str = ""


def role_rules(t: HallTopics, a: Account) -> list[tuple[str, str]]:
    """(access, topic) the role adds to the common ``pattern`` rules."""
    if a.role == "controller":
        return [("readwrite", t.everything)]
    if a.role == "monitor":  # a technician's monitor (and the demo's view): reads everything, says nothing
        return [("read", t.everything)]
    public = [t.config, t.controller_status]
    screens = [t.queue, t.all_window_states, t.board, t.stats, t.calls]
    if a.role == "kiosk":
        return [("write", t.request(a.user, "take")), *(("read", x) for x in [*public, t.queue, t.stats])]
    if a.role == "window":
        return [("write", t.request(a.user, "window")), *(("read", x) for x in [*public, *screens])]
    if a.role == "display":
        return [("read", x) for x in [*public, *screens]]
    if a.role == "pad":
        assert a.window is not None
        return [("write", t.request(a.user, "rate")), *(("read", x) for x in [*public, t.window_state(a.window)])]
    if a.role == "sms":  # the SMS gateway takes (and cancels) numbers for citizens' phones
        return [*(("write", t.request(a.user, x)) for x in ("take", "cancel") if x in ACTIONS),
                *(("read", x) for x in [*public, t.queue, t.all_window_states, t.calls])]
    if a.role == "dashboard":  # it reads; its web callers are window devices of their own (web-caller-N)
        return [("read", x) for x in [*public, *screens, t.followups, t.all_device_status, t.all_device_health,
                                      t.devices]]
    raise ValueError(f"unknown role {a.role!r}")


def acl_text(hall: str, accounts: list[Account]) -> str:
    t = HallTopics(hall)
    lines = [
        f"# Mosquitto ACL of hall {hall}, written by `hallq provision`: do not edit by hand (init, revoke and",
        "# rotate write it again). Anonymous clients are refused in mosquitto.conf and get nothing here.",
        "",
        "# Every user: its own availability and health (its Last Will included) and its own replies.",
        f"pattern write {t.root}/device/%u/status",
        f"pattern write {t.root}/device/%u/health",
        f"pattern read {t.root}/reply/%u",
        "",
        "# What each user's role adds.",
    ]
    for a in sorted(accounts, key=lambda a: a.user):
        where = f" (window {a.window})" if a.window is not None else ""
        lines.append(f"# {a.role}{where}")
        lines.append(f"user {a.user}")
        lines.extend(f"topic {access} {topic}" for access, topic in role_rules(t, a))
        lines.append("")
        if a.role == "controller":  # its look for another controller of the hall, before it serves
            lines += [f"# controller {a.user}: its look for another controller (same password, nothing else)",
                      f"user {a.user}{LOOK_SUFFIX}", f"topic read {t.controller_instance}", ""]
    return "\n".join(lines)


def passwd_text(accounts: list[Account]) -> str:
    """One line per account; a controller's look user (``{user}-look``) shares its password's hash."""
    lines = []
    for a in sorted(accounts, key=lambda a: a.user):
        lines.append(f"{a.user}:{a.password_hash}\n")
        if a.role == "controller":
            lines.append(f"{a.user}{LOOK_SUFFIX}:{a.password_hash}\n")
    return "".join(lines)


def conf_text(hall: str, port: int, folder: Path, *, bind: str | None = None) -> str:
    """``mosquitto.conf`` for Mosquitto 2.0 whose files are in ``folder``.

    It holds only what security needs, so it also works as a drop-in (``/etc/mosquitto/conf.d/``) beside
    Debian's own ``mosquitto.conf`` (which sets persistence and logging).
    """
    f = Path(folder)
    listener = f"listener {port}" + (f" {bind}" if bind else "")
    return f"""\
# Mosquitto 2.0 broker of hall {hall}, written by `hallq provision` (do not edit by hand).
# Every client logs in with its own user and password over TLS; the ACL says what each may publish and read.
per_listener_settings false
allow_anonymous false
password_file {f / "passwd"}
acl_file {f / "acl"}

{listener}
protocol mqtt
cafile {f / "ca.crt"}
certfile {f / "server.crt"}
keyfile {f / "server.key"}
tls_version tlsv1.2
require_certificate false
# The client id is the user name, so a device can never appear under another device's id.
use_username_as_clientid true

# Small packets out at once: without it a call waits for Nagle's algorithm and a delayed ACK (44 ms vs
# 1.1 ms per request measured; README, "The broker's settings").
set_tcp_nodelay true
# Per client: room for a whole hall's burst of requests to the controller, and a bound on a stuck client.
max_queued_messages 10000
# QoS 1 messages on their way to one client before its acknowledgements (default 20): the controller reads
# a burst (or a flood it drops) at its own pace, not at 20 per round trip.
max_inflight_messages 1000
"""
