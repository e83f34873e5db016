"""The one place that opens the hall's SQLite database (a leaf: it imports nothing of the controller)."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sqlite3
from datetime import datetime
from pathlib import Path

from hallq.shared.paths import ensure_parent


class DatabaseInUse(RuntimeError):
    """Another controller process holds the database."""


class DbLock:
    """An exclusive lock on ``<db>.lock`` beside the database, held while one controller uses it: a second
    controller on the same record (a service started twice) refuses to start, naming the first's pid.

    ``flock`` is released by the kernel when the process ends, however it ends, so a crash leaves no stale
    lock; the file's text only says who held it last."""

    def __init__(self, db: str | os.PathLike[str]):
        self.path = Path(f"{db}.lock")
        self._fd: int | None = None

    def acquire(self) -> DbLock:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                who = json.loads(os.read(fd, 4096) or b"{}")
            except ValueError:
                who = {}
            os.close(fd)
            held = f"pid {who.get('pid', '?')} on {who.get('host', '?')} since {who.get('since', '?')}"
            raise DatabaseInUse(f"{Path(str(self.path)[:-5])} is in use by another controller ({held}): "
                                "stop that one first; two controllers must never share a hall's record") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": datetime.now().astimezone().isoformat(timespec="seconds")}).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None


def connect(path: str | os.PathLike[str], *, readonly: bool = False) -> sqlite3.Connection:
    """A connection with the controller's settings (WAL, ``synchronous=FULL``, explicit transactions)."""
    if readonly:
        conn = sqlite3.connect(f"file:{Path(path)}?mode=ro", uri=True, isolation_level=None,
                               check_same_thread=False)
    else:
        ensure_parent(path, "the hall's record")
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        # no checkpoint inside a request's commit: the app runs :meth:`Storage.checkpoint` when idle
        conn.execute("PRAGMA wal_autocheckpoint=0")
    conn.execute("PRAGMA busy_timeout=5000")
    return conn
