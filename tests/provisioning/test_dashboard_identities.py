"""The dashboard on the secure broker acts under identities of its own, carried by its bundle: the scan-to-take
page takes as the kiosk `[follow] take_client`, each web caller calls as its window device; each logs in over
TLS with its own credential, so the broker's ACL lets it do just that and nobody bumps the dashboard."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from hallq.provisioning.bundle import bundle_files, write_bundle
from hallq.provisioning.keyring import Keyring
from hallq.provisioning.local import LocalBroker
from hallq.shared.topics import HallTopics
from harness import free_port, wait_port
from provkit import HALL, hall_toml

HALLQ = str(Path(sys.executable).parent / "hallq")
T = HallTopics(HALL)
PASSWORD = "boss-password-1"


@pytest.fixture
def secure_hall(tmp_path):
    kr_path = tmp_path / "keyring"
    extra = f"""
[[devices]]
id = "web-take"
role = "kiosk"

[[devices]]
id = "web-caller-1"
role = "window"
window = 1

[follow]
url = "http://127.0.0.1/m/f/{{token}}"
key_file = "{kr_path / 'follow.key'}"
take_client = "web-take"
"""
    cfg = tmp_path / "hall-in.toml"
    cfg.write_text(hall_toml(free_port(), extra_devices=extra), encoding="utf-8")
    kr = Keyring(kr_path)
    kr.init(cfg)
    broker = LocalBroker(kr.path, tmp_path / "mosquitto").start()
    procs: list[subprocess.Popen] = []
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    controller_dir = tmp_path / "bundles" / "controller"
    write_bundle(bundle_files(kr, "controller"), controller_dir)
    clog = open(tmp_path / "controller.log", "wb")  # noqa: SIM115
    procs.append(subprocess.Popen([HALLQ, "controller", "--device", str(controller_dir / "device.toml"),
                                   "--db", str(tmp_path / "hall.db")], stdout=subprocess.DEVNULL, stderr=clog, env=env))
    try:
        yield kr, broker, tmp_path, procs, env
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(5)
        clog.close()
        broker.stop()


def start_dashboard(tmp_path: Path, device: Path, config: Path, env: dict, procs: list) -> tuple[str, subprocess.Popen]:
    state = tmp_path / "dashboard.db"
    r = subprocess.run([HALLQ, "dashboard", "--state", str(state), "user", "add", "boss", "--role", "manager"],
                       input=PASSWORD + "\n", text=True, capture_output=True, env=env, timeout=60)
    assert r.returncode == 0 or "exists" in r.stderr, r.stderr
    port = free_port()
    log = open(tmp_path / "dashboard.log", "ab")  # noqa: SIM115
    p = subprocess.Popen([HALLQ, "dashboard", "--config", str(config), "--device", str(device), "--db",
                          str(tmp_path / "hall.db"), "--state", str(state), "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=log, env=env)
    procs.append(p)
    return f"http://127.0.0.1:{port}", p


def wait_started(url: str, p: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    port = int(url.rsplit(":", 1)[1])
    while time.monotonic() < deadline:
        try:
            wait_port(port, timeout=0.5)
            return
        except TimeoutError:
            assert p.poll() is None, log.read_text()[-3000:]
    raise AssertionError(log.read_text()[-3000:])


def wait_for_record(db: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not db.exists():
        assert time.monotonic() < deadline, "the controller made no record"
        time.sleep(0.1)


def signed_in(url: str) -> httpx.Client:
    c = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    page = c.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = c.post("/login", data={"name": "boss", "password": PASSWORD, "login_csrf": token})
    assert r.status_code == 303, r.text
    home = c.get(r.headers["location"], headers={"accept": "text/html"}, follow_redirects=True)
    c.headers["X-CSRF-Token"] = re.search(r'"X-CSRF-Token": "([^"]+)"', home.text).group(1)  # type: ignore[union-attr]
    return c


@pytest.mark.timeout(300)
def test_scan_to_take_and_the_web_caller_log_in_as_themselves(secure_hall):
    kr, _broker, tmp, procs, env = secure_hall
    dash = tmp / "bundles" / "dashboard"
    write_bundle(bundle_files(kr, "dashboard"), dash)
    # the dashboard's bundle carries the identities it acts under, and only those
    assert sorted(p.name for p in (dash / "identities").iterdir()) == ["web-caller-1", "web-take"]
    assert (dash / "identities" / "web-take" / "device.toml").stat().st_mode & 0o077 == 0
    wait_for_record(tmp / "hall.db")
    url, p = start_dashboard(tmp, dash / "device.toml", kr.hall_file, env, procs)
    wait_started(url, p, tmp / "dashboard.log")

    # a citizen scans the door's code and takes a number: it goes out as web-take, over TLS, within the ACL
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as phone:
        page = phone.get("/m/q")
        assert page.status_code == 200, page.text
        form = re.search(r'name="form" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = phone.post("/m/q", data={"category": "A", "form": form})
        assert r.status_code == 303, r.text
        follow = phone.get(r.headers["location"])
        assert follow.status_code == 200 and re.search(r"A\d{3}", follow.text)
    with sqlite3.connect(tmp / "hall.db") as db:
        assert db.execute("SELECT number, client, channel FROM tickets").fetchall() == [("A001", "web-take", "qr")]

    # a manager calls it at window 1 through the web caller: it goes out as web-caller-1
    c = signed_in(url)
    try:
        r = c.post("/caller/1/open", headers={"accept": "text/html"})
        assert r.status_code == 200, r.text
        r = c.post("/caller/1/next", headers={"accept": "text/html"})
        assert r.status_code == 200 and "A001" in r.text, r.text
        # the dashboard's own connection was never pushed off by them: its pages still see the hall live
        now = c.get("/now", headers={"accept": "text/html"})
        assert now.status_code == 200
    finally:
        c.close()
    with sqlite3.connect(tmp / "hall.db") as db:
        assert db.execute("SELECT window, staff_id FROM calls").fetchall() == [(1, "boss")]
    log = (tmp / "dashboard.log").read_text()
    assert "not authori" not in log.lower(), log[-2000:]


@pytest.mark.timeout(300)
def test_without_the_take_identity_the_dashboard_refuses_to_start(secure_hall):
    """On a broker with logins, scan-to-take as the dashboard itself would be refused by the ACL (and its
    login would push the dashboard's own connection off): the dashboard says what it needs and stops."""
    kr, _broker, tmp, procs, env = secure_hall
    dash = tmp / "bundles" / "dashboard"
    files = {k: v for k, v in bundle_files(kr, "dashboard").items() if not k.startswith("identities/")}
    write_bundle(files, dash)
    wait_for_record(tmp / "hall.db")
    _url, p = start_dashboard(tmp, dash / "device.toml", kr.hall_file, env, procs)
    assert p.wait(60) != 0
    err = (tmp / "dashboard.log").read_text()
    assert "take_client = 'web-take'" in err and "hallq provision bundle dashboard" in err, err[-2000:]
