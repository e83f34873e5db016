"""The hall's secret key: the key under which person keys (HMACs of ID and phone numbers) are made.

It is a file with tight permissions (provisioned, never committed, never on a command line): hex text, as
``hallq demo`` and the provisioning write it (``openssl rand -hex 32``), or raw bytes; at least 16 bytes.
"""

from __future__ import annotations

import re
import stat
from pathlib import Path

MIN_BYTES = 16


class HallKeyError(ValueError):
    """The key file cannot be used; the message names the file, never the key."""


def load(path: str | Path, *, strict_mode: bool = False) -> bytes:
    """Read the key. With ``strict_mode`` a file that others may read is refused."""
    p = Path(path)
    try:
        if strict_mode and p.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise HallKeyError(f"secret key file {p}: others may read it (chmod 600 {p})")
        data = p.read_bytes().strip()
    except OSError as exc:
        raise HallKeyError(f"secret key file {p}: cannot read: {exc.strerror}") from None
    if data and len(data) % 2 == 0 and re.fullmatch(rb"[0-9a-fA-F]+", data):
        data = bytes.fromhex(data.decode("ascii"))
    if len(data) < MIN_BYTES:
        raise HallKeyError(f"secret key file {p}: the key must be at least {MIN_BYTES} bytes")
    return data
