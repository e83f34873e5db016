"""The hall on its secure broker: the real controller, kiosk, window caller and hall screen run from their
bundles (`--device`), over TLS with the hall's CA, each as itself; the controller's [[devices]] check stays
the second line behind the broker's ACL."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from hallq.provisioning.bundle import bundle_files, write_bundle
from hallq.shared.identity import load_identity
from hallq.shared.mqtt import HallClient, RequestError
from hallq.shared.schemas import Staff, TakeRequest, WindowRequest
from hallq.shared.topics import HallTopics

HALLQ = str(Path(sys.executable).parent / "hallq")
T = HallTopics("t1")


def bundle(hall, device: str, tmp: Path) -> Path:
    out = tmp / "bundles" / device
    write_bundle(bundle_files(hall.kr, device), out)
    return out / "device.toml"


@pytest.fixture
def controller(hall, tmp_path):
    dev = bundle(hall, "controller", tmp_path)
    log = open(tmp_path / "controller.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([HALLQ, "controller", "--device", str(dev), "--db", str(tmp_path / "hall.db")],
                            stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    watch = hall.login("dashboard")
    watch.subscribe(T.controller_status)
    if not watch.wait(lambda: [m for m in watch.got(T.controller_status) if m.payload == b"online"], 30):
        proc.kill()
        raise AssertionError((tmp_path / "controller.log").read_text()[-2000:])
    yield proc
    proc.terminate()
    proc.wait(10)
    log.close()


def client(dev: Path) -> HallClient:
    ident = load_identity(dev)
    c = HallClient(ident.broker, ident.hall, ident.device).start()
    assert c.wait_connected(10)
    return c


def test_devices_work_from_their_bundles_and_the_controller_checks_windows(hall, controller, tmp_path):
    kiosk = client(bundle(hall, "kiosk-1", tmp_path))
    try:
        reply = kiosk.request("take", TakeRequest(req=kiosk.new_req(), category="A"), timeout=10)
        assert reply.ticket.number.startswith("A")
    finally:
        kiosk.stop()
    window = client(bundle(hall, "window-1", tmp_path))
    try:
        staff = Staff(id="s1", name="李娜")
        window.request("window", WindowRequest(req=window.new_req(), window=1, op="open", staff=staff), timeout=10)
        called = window.request("window", WindowRequest(req=window.new_req(), window=1, op="next"), timeout=10)
        assert called.ticket is not None and called.ticket.number == reply.ticket.number
        # the broker lets window-1 publish on its own topic; the controller refuses another window's work
        with pytest.raises(RequestError) as err:
            window.request("window", WindowRequest(req=window.new_req(), window=2, op="open", staff=staff),
                           timeout=10)
        assert err.value.code == "not_allowed"
    finally:
        window.stop()


def test_the_hall_screen_runs_from_its_bundle(hall, controller, tmp_path):
    dev = bundle(hall, "display-hall", tmp_path)
    shot = tmp_path / "hall.png"
    p = subprocess.run([HALLQ, "display", "--device", str(dev), "--headless", "--screenshot", str(shot),
                        "--wait", "20"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "SDL_VIDEODRIVER": "dummy", "SDL_AUDIODRIVER": "dummy"})
    assert p.returncode == 0, p.stderr[-2000:]
    assert shot.stat().st_size > 10_000
    assert "connected to mqtts://display-hall@127.0.0.1" in p.stderr
    assert hall.kr.password("display-hall") not in p.stderr


def test_an_app_refuses_another_roles_identity(hall, tmp_path):
    dev = bundle(hall, "kiosk-1", tmp_path)
    p = subprocess.run([HALLQ, "display", "--device", str(dev), "--headless", "--screenshot",
                        str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "identity of a kiosk (kiosk-1), not of a display or window" in p.stderr
    p = subprocess.run([HALLQ, "controller", "--device", str(dev)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "not of a controller" in p.stderr


def test_the_controller_refuses_what_a_display_or_a_stranger_asks(hall):
    """Even if a request got past the broker (it does not), the controller's own [[devices]] check refuses a
    display, a device of another role and a client it does not know."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from hallq.controller import config, core
    cfg = config.load(hall.kr.hall_file)
    now = datetime(2026, 3, 2, 10, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
    st = core.new_state(cfg, now)
    assert st.devices["display-hall"] == ("display", None)
    for client, payload in [("display-hall", TakeRequest(req="r1", category="A")),
                            ("pad-1", TakeRequest(req="r2", category="A")),
                            ("stranger", TakeRequest(req="r3", category="A")),
                            ("display-2", WindowRequest(req="r4", window=2, op="next"))]:
        st, fx = core.handle(st, core.Request(client, payload), now)
        assert fx.reply is not None and b'"not_allowed"' in fx.reply[1], (client, fx.reply)
        assert not fx.calls and not fx.changed  # only the refusal itself is kept (to answer a repeat alike)
        assert all(type(r).__name__ == "CachedReply" for r in fx.records)
    st, fx = core.handle(st, core.Request("kiosk-1", TakeRequest(req="r5", category="A")), now)
    assert b'"ok":true' in fx.reply[1]


def test_the_registry_shows_each_device_its_status_and_version(hall, controller, tmp_path):
    import json

    from hallq.shared import software_version
    from hallq.shared.schemas import DeviceHealth

    watch = hall.login("dashboard")
    watch.subscribe(T.devices)

    def registry(pred) -> dict:
        def ok() -> bool:
            msgs = watch.got(T.devices)
            return bool(msgs) and pred({d["id"]: d for d in json.loads(msgs[-1].payload)["devices"]})
        assert watch.wait(ok, 10), watch.got(T.devices)[-1:]
        return {d["id"]: d for d in json.loads(watch.got(T.devices)[-1].payload)["devices"]}

    devs = registry(lambda d: "pad-1" in d)
    assert devs["pad-1"]["status"] == "never_seen" and devs["pad-1"]["window"] == 1
    kiosk = client(bundle(hall, "kiosk-1", tmp_path))
    kiosk.publish(T.device_health("kiosk-1"), DeviceHealth(at=datetime.now().astimezone(), role="kiosk",
                                                            version=software_version("hallq-kiosk")), retain=True)
    devs = registry(lambda d: d["kiosk-1"].get("version"))
    assert devs["kiosk-1"]["status"] == "online" and devs["kiosk-1"]["version"] == software_version("hallq-kiosk")
    kiosk.stop()
    registry(lambda d: d["kiosk-1"]["status"] == "stopped")


def test_a_second_controller_is_refused_without_bumping_the_first(hall, controller, tmp_path):
    """Issue 13's known limit: on the provisioned broker the client id is the user name, so the second
    controller's look (as ``controller``) once took the running controller's connection: the hall read
    ``offline`` for a moment and the first reconnected. The look now logs in as ``controller-look`` (same
    password, may only read ``controller/instance``): the second is refused, naming the first, and the
    first is never disconnected."""
    import time

    assert "user controller-look\ntopic read hallq/t1/controller/instance\n" in (hall.kr.broker_dir / "acl").read_text()
    look = hall.login("controller-look", password=hall.kr.password("controller"))
    assert look.accepted
    look.subscribe(T.controller_instance)
    look.subscribe(T.queue)
    watch = hall.login("dashboard")
    watch.subscribe(T.controller_status)
    watch.subscribe(T.queue)
    assert look.wait(lambda: look.got(T.controller_instance), 5)  # the running controller's record
    time.sleep(0.5)
    assert watch.got(T.queue) and not look.got(T.queue)  # and nothing else
    before = len(watch.got(T.controller_status))
    dev = bundle(hall, "controller", tmp_path / "second")
    second = subprocess.run([HALLQ, "controller", "--device", str(dev), "--db", str(tmp_path / "second.db")],
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1, second.stderr[-2000:]
    assert second.stderr.strip().splitlines()[-1].startswith(
        f"Error: another controller already serves hall t1 on mqtts://controller@127.0.0.1:{hall.port}: "
        f"pid {controller.pid} on host ")
    time.sleep(2)
    assert watch.got(T.controller_status)[before:] == [], "the first controller was pushed off the broker"
    assert "lost the broker" not in (tmp_path / "controller.log").read_text()
    assert controller.poll() is None
