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
import re
import secrets
from datetime import datetime

import psycopg
from hallq.shared.central import Credentials, CredentialsError

__all__ = ["Credentials", "CredentialsError", "HallError"]

HALL_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class HallError(CredentialsError):
    """A hall that cannot be added, rotated or revoked as asked."""


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
