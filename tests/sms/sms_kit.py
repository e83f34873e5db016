"""SMS gateway test helpers: the hall, the gateway as a process, and a window clerk.

Imported by the SMS tests as ``sms_kit`` (tests/sms/conftest.py puts it on the path)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from hallq.shared.mqtt import HallClient
from hallq.shared.schemas import Staff, WindowRequest
from harness import HALLQ, ROOT

HALL = "smshall"

HALL_TOML = f"""
[hall]
id = "{HALL}"
name = "测试中心"
timezone = "Asia/Shanghai"

[[categories]]
code = "A"
name = "社保医保"
name_en = "Social Insurance"

[[categories]]
code = "B"
name = "不动产登记"

[[categories]]
code = "C"
name = "户籍办理"
daily_quota = 1

[[windows]]
no = 1
name = "1号窗口"
categories = ["A"]

[[windows]]
no = 2
name = "2号综合窗口"
categories = ["*"]
"""


def sms_toml(broker: str, port: str, secret: Path, db: Path, **sms: object) -> str:
    extra = "".join(f"{k} = {v!r}\n" if not isinstance(v, bool) else f"{k} = {str(v).lower()}\n"
                    for k, v in sms.items())
    return (
        f'[sms]\nid = "sms-1"\nhall = "{HALL}"\nbroker = "{broker}"\nsecret_key_file = "{secret}"\n'
        f'db = "{db}"\nresend_every_s = 0.5\n{extra}'
        f'[modem]\nport = "{port}"\ncommand_timeout_s = 3\nhealth_every_s = 1\n'
    )


class GatewayProcess:
    """``hallq sms`` in a process of its own (so a test can SIGKILL it)."""

    def __init__(self, workdir: Path, toml: str, env: dict[str, str] | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config = self.workdir / "sms.toml"
        self.config.write_text(toml, encoding="utf-8")
        self.log = self.workdir / "sms.log"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "HALLQ_LOG_LEVEL": "debug", **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> GatewayProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([HALLQ, "sms", "--config", str(self.config)], env=self.env,
                                         stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        return self

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                return self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        return None

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


class Clerk:
    """A window caller that speaks the contract."""

    def __init__(self, broker: str, window: int):
        self.window = window
        self.client = HallClient(broker, HALL, f"window-{window}").start()
        assert self.client.wait_connected(10)
        self.op("open", staff=Staff(id=f"s{window}", name="王芳"))

    def op(self, op: str, **kw):
        return self.client.request("window", WindowRequest(req=self.client.new_req(), window=self.window, op=op, **kw),
                                   timeout=10)

    def close(self) -> None:
        self.client.stop()


def wait_until(predicate, timeout: float = 20.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen within {timeout} s")
