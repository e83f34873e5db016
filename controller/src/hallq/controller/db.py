"""The one place that opens the hall's SQLite database (a leaf: it imports nothing of the controller)."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

#: The record holds clerks' names, person keys and ratings: only its owner reads it (SQLite gives its -wal
#: and -shm files the same mode).
MODE = 0o600


def _private(path: Path) -> None:
    """Create the database file 0600, or take group and other rights away from one that has them."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            try:
                os.chmod(path, MODE)
            except OSError:
                pass  # a read-only file system: SQLite says what it cannot do
        return
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, MODE)
    except FileExistsError:
        return
    os.close(fd)


def connect(path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the controller's settings (WAL, ``synchronous=FULL``, explicit transactions)."""
    if readonly:
        conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
    else:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _private(Path(path))
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # no checkpoint inside a request's commit: the app runs :meth:`Storage.checkpoint` when idle
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
