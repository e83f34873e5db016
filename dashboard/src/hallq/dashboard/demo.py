"""The dashboard in ``make demo``: the manager's pages of the demo hall, with a demo account whose password is
made up on the spot and written to a file in the demo's output folder (never shown in a log or an argument)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
from pathlib import Path

from hallq.shared.demo import DemoContext, DemoProcess

USER = "demo"
PORT = 8080


def _port() -> int:
    for port in (PORT, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise OSError("no free port for the dashboard")


def participants(ctx: DemoContext) -> list[DemoProcess]:
    config = ctx.config
    if config is None:
        return []
    device = ctx.device_args("dashboard")
    if device and not Path(device[1]).exists():
        print("demo: no dashboard identity in the secure hall's bundles: the dashboard is left out", file=sys.stderr)
        return []
    out = ctx.out_dir
    out.mkdir(parents=True, exist_ok=True)
    state = out / "dashboard.db"
    for suffix in ("", "-wal", "-shm"):  # a fresh demo, a fresh account
        Path(f"{state}{suffix}").unlink(missing_ok=True)
    password = secrets.token_urlsafe(12)
    pw_file = out / "dashboard-password.txt"
    pw_file.write_text(password + "\n", encoding="utf-8")
    pw_file.chmod(0o600)
    cli = [sys.executable, "-m", "hallq.shared.cli", "dashboard", "--state", str(state)]
    subprocess.run([*cli, "user", "add", USER, "--role", "manager", "--display-name", "演示管理员"],
                   input=password + "\n", text=True, check=True, capture_output=True, env={**os.environ, **ctx.env}, timeout=60)
    port = _port()
    argv = [*cli, "--config", str(config), "--broker", ctx.broker, *device, "--db", str(out / "hall.db"),
            "--listen", f"127.0.0.1:{port}"]
    print(f"demo: the dashboard is at http://127.0.0.1:{port}/ (user {USER!r}, password in {pw_file})",
          file=sys.stderr)
    return [DemoProcess(name="dashboard", argv=argv)]
