"""A throwaway PostgreSQL 15 cluster for tests and benchmarks: ``initdb`` + ``pg_ctl`` on a free loopback port.

    cluster = PgCluster().start()          # a new cluster in a temporary folder
    dsn = cluster.create_database("t1")    # an empty database in it
    ...
    cluster.stop()                         # stops the server and deletes the folder

PostgreSQL refuses to run as root: when the tests run as root (CI does), the cluster's folder belongs to the
``postgres`` system user (made by Debian's package) and ``initdb``/``pg_ctl`` run as that user (``runuser``).
The server listens on 127.0.0.1 only, with ``trust`` authentication for the superuser ``hallq``; the folder is
under /tmp (not pytest's 0700 tmp_path, which ``postgres`` cannot enter).
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "hallq"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bindir() -> Path:
    """Debian's PostgreSQL 15 programs (any other installed major version if 15 is missing)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    for f in found:
        if "/15/" in f:
            return Path(f).parent
    if found:
        return Path(found[-1]).parent
    raise RuntimeError("PostgreSQL is not installed (make setup installs Debian's postgresql)")


class PgCluster:
    def __init__(self, *, fsync: bool = False, settings: dict[str, str] | None = None):
        self.fsync = fsync
        self.settings = settings or {}
        self.port = free_port()
        self.dir: Path | None = None
        self.bin = bindir()
        self._as_postgres = os.geteuid() == 0
        self._n = 0

    # -- running the programs ------------------------------------------------------------------------------
    def _run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
        cmd = [str(self.bin / args[0]), *args[1:]]
        if self._as_postgres:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, timeout=timeout,
                              env={**os.environ, "LC_ALL": "C.UTF-8"})

    @property
    def data(self) -> Path:
        assert self.dir is not None
        return self.dir / "data"

    def start(self) -> PgCluster:
        if self.dir is None:
            self.dir = Path(tempfile.mkdtemp(prefix="hallq-pg-", dir="/tmp"))
            if self._as_postgres:
                pw = pwd.getpwnam("postgres")
                os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self._run("initdb", "-D", str(self.data), "-U", SUPERUSER, "--auth=trust", "-E", "UTF8",
                      "--no-locale", "--no-sync")
            atexit.register(self.stop)
        opts = [f"-p {self.port}", f"-k {self.dir}", "-c listen_addresses=127.0.0.1",
                f"-c fsync={'on' if self.fsync else 'off'}", "-c max_connections=200"]
        opts += [f"-c {k}={v}" for k, v in self.settings.items()]
        try:
            self._run("pg_ctl", "-D", str(self.data), "-l", str(self.dir / "server.log"), "-o", " ".join(opts),
                      "-w", "-t", "120", "start")
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"PostgreSQL did not start: {exc.stderr}\n{self.log()[-2000:]}") from None
        return self

    def log(self) -> str:
        try:
            return (self.dir / "server.log").read_text(errors="replace")  # type: ignore[operator]
        except OSError:
            return ""

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def running(self) -> bool:
        return self.dir is not None and self._run("pg_ctl", "-D", str(self.data), "status", check=False).returncode == 0

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash: the next start recovers from the WAL)."""
        pid = self.pid()
        if pid:
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            # the postmaster's children leave when they notice it is gone
            time.sleep(0.5)

    def stop(self, *, keep: bool = False) -> None:
        if self.dir is None:
            return
        if self.data.exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop", check=False)
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None

    # -- databases -------------------------------------------------------------------------------------
    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname={dbname}"

    def create_database(self, name: str | None = None) -> str:
        import psycopg

        if name is None:
            self._n += 1
            name = f"t{os.getpid()}_{self._n}"
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')  # type: ignore[arg-type]
        return self.dsn(name)
