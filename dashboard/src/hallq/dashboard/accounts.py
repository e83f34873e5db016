"""The dashboard's own record (``dashboard.db``, SQLite): accounts, sessions, login failures, the audit log
and the call-back notes of follow-ups (shipped to the city's centre through their own outbox:
:mod:`.notes_outbox`). The controller's record is never written here.

What it promises:

- passwords are kept only as Argon2id hashes (argon2-cffi); there is no default account or password;
- a session is a random token in an HttpOnly cookie; only its SHA-256 is stored, with its own CSRF token;
  it ends on sign-out, after :data:`IDLE` without use, or when its account is removed or disabled;
- login failures are counted per account and per address: :data:`ACCOUNT_LIMIT` failures within
  :data:`WINDOW` lock the account for that long, :data:`ADDRESS_LIMIT` lock the address (a locked login is
  refused even with the right password, and says for how long);
- every manager action is written to ``audit`` with who, when, from where and what.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from hallq.shared.paths import ensure_parent
from hallq.shared.redact import redact

from . import notes_outbox

ROLES = ("manager", "clerk", "viewer")
NAME_RE = re.compile(r"^[a-z0-9_.-]{1,32}$")
MIN_PASSWORD = 8

IDLE = timedelta(hours=12)
WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, pw_hash TEXT NOT NULL, display_name TEXT NOT NULL,
    windows TEXT NOT NULL DEFAULT '[]', created_at TEXT NOT NULL, disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY, user TEXT NOT NULL, csrf TEXT NOT NULL, created_at TEXT NOT NULL,
    seen_at TEXT NOT NULL, address TEXT
);
CREATE TABLE IF NOT EXISTS login_failures (kind TEXT NOT NULL, key TEXT NOT NULL, at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (kind, key, at);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, at TEXT NOT NULL, user TEXT NOT NULL, role TEXT NOT NULL, address TEXT,
    action TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS followup_notes (
    id INTEGER PRIMARY KEY, followup_id INTEGER NOT NULL, at TEXT NOT NULL, user TEXT NOT NULL,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS followup_notes_fu ON followup_notes (followup_id, id);
"""


class AccountError(ValueError):
    """A refused account operation; the message is for people."""


class LockedOut(AccountError):
    def __init__(self, what: str, until: datetime):
        super().__init__(f"too many failed sign-ins for this {what}; try again after {until:%H:%M}")
        self.what = what
        self.until = until


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: str
    display_name: str
    windows: tuple[int, ...]

    def may_use_window(self, no: int) -> bool:
        return self.role == "manager" or (self.role == "clerk" and no in self.windows)

    @property
    def sees_dashboard(self) -> bool:
        return self.role in ("manager", "viewer")


@dataclass(frozen=True, slots=True)
class Session:
    user: User
    csrf: str
    token_hash: str


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Accounts:
    """The dashboard's record; safe to use from several threads (one connection, one lock)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        ensure_parent(self.path, "the dashboard's accounts")
        new = not self.path.exists()
        self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        if new:
            os.chmod(self.path, 0o600)  # password hashes and session hashes: owner only
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(SCHEMA + notes_outbox.SCHEMA)
        self._lock = threading.Lock()
        self._hasher = PasswordHasher()
        # verifying against this when the account does not exist costs the same time as a real check
        self._dummy = self._hasher.hash(secrets.token_hex(16))

    def close(self) -> None:
        self._conn.close()

    def _tx(self, fn: Any) -> Any:
        with self._lock:
            c = self._conn
            c.execute("BEGIN IMMEDIATE")
            try:
                out = fn(c)
            except BaseException:
                c.execute("ROLLBACK")
                raise
            c.execute("COMMIT")
            return out

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    # -- accounts -------------------------------------------------------------------------------------
    def add_user(self, name: str, role: str, password: str, *, display_name: str | None = None,
                 windows: list[int] | None = None, now: datetime) -> User:
        if not NAME_RE.fullmatch(name or ""):
            raise AccountError("a user name is 1-32 characters of a-z, 0-9, '_', '.' or '-'")
        if role not in ROLES:
            raise AccountError(f"role must be one of {', '.join(ROLES)}")
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
        wins = sorted(set(windows or []))
        if role == "clerk" and not wins:
            raise AccountError("a clerk needs the windows they may use (--windows 1,2)")
        if role != "clerk" and wins:
            raise AccountError("only clerks are bound to windows (a manager may use every window)")
        display = (display_name or name).strip()[:64] or name
        pw_hash = self._hasher.hash(password)

        def run(c: sqlite3.Connection) -> None:
            if c.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise AccountError(f"there is already a user {name!r}")
            c.execute("INSERT INTO users (name, role, pw_hash, display_name, windows, created_at)"
                      " VALUES (?, ?, ?, ?, ?, ?)", (name, role, pw_hash, display, json.dumps(wins), now.isoformat()))

        self._tx(run)
        return User(name, role, display, tuple(wins))

    def set_password(self, name: str, password: str) -> None:
        if len(password) < MIN_PASSWORD:
            raise AccountError(f"the password needs at least {MIN_PASSWORD} characters")
        pw_hash = self._hasher.hash(password)

        def run(c: sqlite3.Connection) -> None:
            if c.execute("UPDATE users SET pw_hash = ? WHERE name = ?", (pw_hash, name)).rowcount == 0:
                raise AccountError(f"there is no user {name!r}")
            c.execute("DELETE FROM sessions WHERE user = ?", (name,))

        self._tx(run)

    def remove_user(self, name: str) -> None:
        def run(c: sqlite3.Connection) -> None:
            if c.execute("DELETE FROM users WHERE name = ?", (name,)).rowcount == 0:
                raise AccountError(f"there is no user {name!r}")
            c.execute("DELETE FROM sessions WHERE user = ?", (name,))

        self._tx(run)

    def users(self) -> list[User]:
        return [User(n, r, d, tuple(json.loads(w)))
                for n, r, d, w in self._query("SELECT name, role, display_name, windows FROM users ORDER BY name")]

    def user(self, name: str) -> User | None:
        rows = self._query("SELECT name, role, display_name, windows FROM users WHERE name = ? AND disabled = 0",
                           (name,))
        if not rows:
            return None
        n, r, d, w = rows[0]
        return User(n, r, d, tuple(json.loads(w)))

    # -- signing in -----------------------------------------------------------------------------------
    def _locked_until(self, c: sqlite3.Connection, kind: str, key: str, limit: int, now: datetime) -> datetime | None:
        since = (now - WINDOW).isoformat()
        rows = c.execute("SELECT at FROM login_failures WHERE kind = ? AND key = ? AND at >= ? ORDER BY at",
                         (kind, key, since)).fetchall()
        if len(rows) < limit:
            return None
        return datetime.fromisoformat(rows[-limit][0]) + WINDOW

    def login(self, name: str, password: str, address: str, now: datetime) -> tuple[str, Session]:
        """Check a password and open a session: (cookie token, session). Raises :class:`AccountError`."""
        name = (name or "").strip().lower()
        address = address or "?"

        def check_locks(c: sqlite3.Connection) -> None:
            for kind, key, limit in (("address", address, ADDRESS_LIMIT), ("account", name, ACCOUNT_LIMIT)):
                until = self._locked_until(c, kind, key, limit, now)
                if until is not None:
                    raise LockedOut(kind, until)

        with self._lock:
            check_locks(self._conn)
            row = self._conn.execute("SELECT pw_hash, disabled FROM users WHERE name = ?", (name,)).fetchone()
        ok = False
        try:
            ok = self._hasher.verify(row[0] if row else self._dummy, password) and row is not None and not row[1]
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok:
            def fail(c: sqlite3.Connection) -> None:
                c.execute("INSERT INTO login_failures (kind, key, at) VALUES ('address', ?, ?)", (address, now.isoformat()))
                if name:
                    c.execute("INSERT INTO login_failures (kind, key, at) VALUES ('account', ?, ?)",
                              (name[:64], now.isoformat()))
                c.execute("DELETE FROM login_failures WHERE at < ?", ((now - WINDOW * 4).isoformat(),))

            self._tx(fail)
            raise AccountError("wrong user name or password")
        user = self.user(name)
        assert user is not None
        token = secrets.token_urlsafe(32)
        csrf = secrets.token_urlsafe(24)
        th = _hash_token(token)

        def open_session(c: sqlite3.Connection) -> None:
            c.execute("DELETE FROM login_failures WHERE kind = 'account' AND key = ?", (name,))
            c.execute("DELETE FROM sessions WHERE seen_at < ?", ((now - IDLE).isoformat(),))
            c.execute("INSERT INTO sessions (token_hash, user, csrf, created_at, seen_at, address) VALUES (?, ?, ?, ?, ?, ?)",
                      (th, name, csrf, now.isoformat(), now.isoformat(), address))

        self._tx(open_session)
        if self._hasher.check_needs_rehash(row[0]):
            self.set_password_hash(name, self._hasher.hash(password))
        return token, Session(user, csrf, th)

    def set_password_hash(self, name: str, pw_hash: str) -> None:
        self._tx(lambda c: c.execute("UPDATE users SET pw_hash = ? WHERE name = ?", (pw_hash, name)))

    def session(self, token: str | None, now: datetime) -> Session | None:
        """The live session of a cookie token (its use is noted, at most once a minute)."""
        if not token or len(token) > 128:
            return None
        th = _hash_token(token)
        rows = self._query(
            "SELECT s.user, s.csrf, s.seen_at FROM sessions s JOIN users u ON u.name = s.user"
            " WHERE s.token_hash = ? AND u.disabled = 0", (th,))
        if not rows:
            return None
        name, csrf, seen = rows[0]
        seen_at = datetime.fromisoformat(seen)
        if now - seen_at > IDLE:
            self._tx(lambda c: c.execute("DELETE FROM sessions WHERE token_hash = ?", (th,)))
            return None
        if now - seen_at > timedelta(minutes=1):
            self._tx(lambda c: c.execute("UPDATE sessions SET seen_at = ? WHERE token_hash = ?", (now.isoformat(), th)))
        user = self.user(name)
        return None if user is None else Session(user, csrf, th)

    def logout(self, session: Session) -> None:
        self._tx(lambda c: c.execute("DELETE FROM sessions WHERE token_hash = ?", (session.token_hash,)))

    # -- audit and notes -------------------------------------------------------------------------------
    def audit(self, user: User, action: str, detail: dict[str, Any], address: str | None, now: datetime) -> None:
        self._tx(lambda c: c.execute(
            "INSERT INTO audit (at, user, role, address, action, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (now.isoformat(), user.name, user.role, address, action, json.dumps(detail, ensure_ascii=False))))

    def audit_log(self, limit: int = 200) -> list[dict[str, Any]]:
        return [dict(id=i, at=a, user=u, role=r, address=ad, action=ac, detail=json.loads(d))
                for i, a, u, r, ad, ac, d in self._query(
                    "SELECT id, at, user, role, address, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,))]

    def add_note(self, followup_id: int, user: User, note: str, now: datetime) -> None:
        """Keep a call-back note; a phone or ID number typed into it is kept masked (:mod:`hallq.shared.redact`):
        the note is kept here and shipped to the city's centre."""
        note = redact(note)
        self._tx(lambda c: c.execute("INSERT INTO followup_notes (followup_id, at, user, note) VALUES (?, ?, ?, ?)",
                                     (followup_id, now.isoformat(), user.display_name, note)))

    def notes(self) -> dict[int, list[dict[str, str]]]:
        out: dict[int, list[dict[str, str]]] = {}
        for fid, at, user, note in self._query("SELECT followup_id, at, user, note FROM followup_notes ORDER BY id"):
            out.setdefault(fid, []).append({"at": at, "user": user, "note": note})
        return out
