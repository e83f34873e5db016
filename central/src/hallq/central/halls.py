"""The halls the centre accepts records from, and their credentials.

``hallq central hall add ID --name NAME --out FILE`` makes a 256-bit random token for the hall, keeps only
its SHA-256 in ``halls`` (a high-entropy random secret needs no slow password hash: nobody can guess it, and
the ingest checks it on every batch), and writes the token once into a TOML file (0600) for the hall's
controller (``[central] credentials`` in hall.toml). The token is never printed or logged.
``rotate`` gives a hall a new token (the old one stops working at once), ``revoke`` refuses the hall.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import psycopg

HALL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class HallError(ValueError):
    """A hall that cannot be added, rotated or revoked as asked."""


@dataclass(frozen=True)
class Credentials:
    """The hall side's credentials file."""

    hall: str
    token: str

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Credentials:
        p = Path(path)
        try:
            mode = p.stat().st_mode
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise HallError(f"{p}: cannot read the central credentials: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise HallError(f"{p}: not a credentials file: {exc}") from None
        if mode & 0o077:
            raise HallError(f"{p}: the credentials file must be readable by its owner only (chmod 600)")
        unknown = set(data) - {"hall", "token"}
        if unknown:
            raise HallError(f"{p}: unknown key(s) {', '.join(sorted(unknown))}")
        hall, token = data.get("hall"), data.get("token")
        if not isinstance(hall, str) or not HALL_ID.match(hall):
            raise HallError(f"{p}: `hall` must be the hall's id")
        if not isinstance(token, str) or not re.fullmatch(r"[0-9a-f]{64}", token):
            raise HallError(f"{p}: `token` must be the 64 hex digits hallq central wrote")
        return cls(hall, token)

    def write(self, path: str | os.PathLike[str]) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".new")
        fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (f'# hallq central: this hall\'s credentials ([central] credentials in hall.toml)\n'
                          f'hall = "{self.hall}"\ntoken = "{self.token}"\n').encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, p)
        return p


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _new_token() -> str:
    return secrets.token_hex(32)


def add(conn: psycopg.Connection, hall: str, name: str) -> Credentials:
    if not HALL_ID.match(hall):
        raise HallError(f"{hall!r}: a hall id is 1-64 letters, digits, '_', '.' or '-' (as [hall] id)")
    if not name.strip():
        raise HallError("give the hall's name (--name)")
    token = _new_token()
    with conn.transaction():
        if conn.execute("SELECT 1 FROM halls WHERE id = %s", (hall,)).fetchone():
            raise HallError(f"hall {hall} is already known (use `rotate` for new credentials)")
        conn.execute("INSERT INTO halls (id, name, token_sha256) VALUES (%s, %s, %s)", (hall, name.strip(),
                                                                                       digest(token)))
    return Credentials(hall, token)


def rotate(conn: psycopg.Connection, hall: str) -> Credentials:
    token = _new_token()
    with conn.transaction():
        cur = conn.execute("UPDATE halls SET token_sha256 = %s, revoked_at = NULL WHERE id = %s",
                           (digest(token), hall))
        if cur.rowcount != 1:
            raise HallError(f"there is no hall {hall}")
    return Credentials(hall, token)


def revoke(conn: psycopg.Connection, hall: str) -> None:
    with conn.transaction():
        cur = conn.execute("UPDATE halls SET revoked_at = now() WHERE id = %s AND revoked_at IS NULL", (hall,))
        if cur.rowcount != 1:
            raise HallError(f"there is no hall {hall} that is not revoked already")


def listing(conn: psycopg.Connection) -> list[tuple[str, str, datetime, datetime | None, int, datetime | None]]:
    """(id, name, created, revoked, rows acknowledged, last batch) of every hall."""
    return conn.execute(
        "SELECT h.id, h.name, h.created_at, h.revoked_at, coalesce(sum(s.acked), 0), max(s.last_at)"
        " FROM halls h LEFT JOIN streams s ON s.hall = h.id GROUP BY h.id ORDER BY h.id").fetchall()


def authenticate(conn: psycopg.Connection, token: str) -> str | None:
    """The hall whose (not revoked) token this is, or None."""
    if not re.fullmatch(r"[0-9a-f]{64}", token):
        return None
    d = digest(token)
    row = conn.execute("SELECT id, token_sha256 FROM halls WHERE token_sha256 = %s AND revoked_at IS NULL",
                       (d,)).fetchone()
    if row and hmac.compare_digest(bytes(row[1]), d):
        return row[0]
    return None
