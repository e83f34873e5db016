"""A whole hall for the dashboard's tests: real Mosquitto, the real controller and ``hallq dashboard``, each
as its own process on the same scaled clock (a weekday at 10:00, so the hall is open whatever the time)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from hallq.controller.config import HallFile
from hallq.shared.mqtt import HallClient
from hallq.shared.schemas import TakeRequest
from harness import HALLQ, ROOT, ControllerProcess, Monitor, Mosquitto, free_port, wait_port

CLOCK = "2026-11-23T10:00:00+08:00"  # a Monday

HALL_TOML = """
[hall]
id = "web"
name = "测试政务服务中心"
name_en = "Test Service Center"
timezone = "Asia/Shanghai"
hours = [["08:00", "18:00"]]

[[categories]]
code = "A"
name = "社保医保"
name_en = "Social insurance"

[[categories]]
code = "B"
name = "不动产登记"
name_en = "Real estate"

[[windows]]
no = 1
name = "1号窗口"
name_en = "Window 1"
categories = ["A"]

[[windows]]
no = 2
name = "2号窗口"
name_en = "Window 2"
categories = ["A", "B"]

[[windows]]
no = 3
name = "3号综合窗口"
name_en = "Window 3 (all)"
categories = ["*"]

[[devices]]
id = "kiosk-1"
role = "kiosk"

[[devices]]
id = "web-caller-1"
role = "window"
window = 1

[[devices]]
id = "web-caller-2"
role = "window"
window = 2

[[devices]]
id = "web-caller-3"
role = "window"
window = 3

[[devices]]
id = "pad-3"
role = "pad"
window = 3
"""

PASSWORDS = {"boss": "boss-password-1", "clerk": "clerk-password-1", "viewer": "viewer-password-1"}


class DashboardProcess:
    """``hallq dashboard`` as a process of its own."""

    def __init__(self, workdir: Path, broker_url: str, config: Path, env: dict[str, str], db: Path | None):
        self.workdir = workdir
        self.state = workdir / "dashboard.db"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "dashboard.log"
        self.args = [HALLQ, "dashboard", "--config", str(config), "--broker", broker_url, "--state", str(self.state),
                     "--listen", f"127.0.0.1:{self.port}"] + (["--db", str(db)] if db else [])
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    def user(self, name: str, role: str, password: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([HALLQ, "dashboard", "--state", str(self.state), "user", "add", name, "--role", role,
                               *extra], input=password + "\n", text=True, capture_output=True, env=self.env,
                              timeout=60)

    def start(self) -> DashboardProcess:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(self.args, env=self.env, stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            try:
                wait_port(self.port, timeout=0.5)
                return self
            except TimeoutError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the dashboard did not start:\n{self.log.read_text()[-3000:]}") from None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class WebHall:
    """Broker, controller, dashboard, a kiosk client and a monitor of the whole hall."""

    def __init__(self, workdir: Path, toml: str = HALL_TOML, *, with_db: bool = True, speed: float = 1.0,
                 history: Callable[[Path, HallFile], object] | None = None):
        self.workdir = workdir
        self.broker = Mosquitto(workdir / "mosquitto").start()
        self.controller = ControllerProcess(workdir / "controller", self.broker.url, toml, clock=CLOCK, hall="web",
                                            speed=speed)
        if history is not None:  # earlier days, written before the controller starts
            from hallq.controller import config

            history(self.controller.db, config.parse(toml))
        self.controller.start(wait_online=True)
        env = {**self.controller.env}
        self.dash = DashboardProcess(workdir, self.broker.url, self.controller.config, env,
                                     self.controller.db if with_db else None)
        for name, role, *extra in (("boss", "manager"), ("clerk", "clerk", "--windows", "3",
                                                          "--display-name", "李娜"), ("viewer", "viewer")):
            r = self.dash.user(name, role, PASSWORDS[name], *extra)
            assert r.returncode == 0, r.stderr
        self.dash.start()
        self.monitor = Monitor(self.broker.url, "hallq/web/#")
        self.kiosk = HallClient(self.broker.url, "web", "kiosk-1").start()
        assert self.kiosk.wait_connected(10)

    @property
    def url(self) -> str:
        return self.dash.url

    def take(self, category: str) -> str:
        r = self.kiosk.request("take", TakeRequest(req=self.kiosk.new_req(), category=category), timeout=10,
                               resend_every=1)
        return r.ticket.number  # type: ignore[attr-defined]

    def http(self, user: str | None = None) -> httpx.Client:
        """An HTTP client, signed in as ``user`` when given (its CSRF token in ``.csrf``)."""
        c = httpx.Client(base_url=self.url, timeout=60, follow_redirects=False)
        c.csrf = ""  # type: ignore[attr-defined]
        if user is not None:
            page = c.get("/login")
            token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = c.post("/login", data={"name": user, "password": PASSWORDS[user], "login_csrf": token})
            assert r.status_code == 303, r.text
            home = c.get(r.headers["location"], headers={"accept": "text/html"}, follow_redirects=True)
            m = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text)
            assert m, home.text[:500]
            c.csrf = m.group(1)  # type: ignore[attr-defined]
        return c

    def close(self) -> None:
        self.kiosk.stop()
        self.monitor.close()
        self.dash.stop()
        self.controller.stop()
        self.broker.stop()


def wait_until(cond, timeout: float = 10.0, what: str = "a condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


SCREENSHOTS = Path(os.environ.get("HALLQ_SCREENSHOTS", ROOT / "tests" / "dashboard" / "out"))
