"""``hallq demo --secure`` (``make demo SECURE=1``): the demo hall provisioned with a throwaway keyring, on the
real Mosquitto with TLS and the ACL; the controller, the device apps and every simulated client log in as
themselves, and the day runs as on the open broker."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time


def test_the_secure_demo_runs_the_day_with_every_process_as_itself(tmp_path):
    out, report = tmp_path / "out", tmp_path / "r.json"
    r = subprocess.run(
        [sys.executable, "-m", "hallq.shared.cli", "demo", "--secure", "--headless", "--speed", "300",
         "--span", "09:00-09:30", "--seed", "4", "--out", str(out), "--report", str(report)],
        capture_output=True, text=True, timeout=180, env=os.environ | {"HALLQ_LOG_LEVEL": "info"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "secure broker (TLS + ACL" in r.stderr
    doc = json.loads(report.read_text())
    sim, ctl = doc["simulated"], doc["controller"]["hall"]
    assert sim["taken"] == sim["arrived"] > 10 and not sim["refused"] and sim["timeouts"] == 0
    # (how much of the queue the clerks clear before the short day ends depends on the machine's load: the
    # half hour runs 6 s, enough for the first services on a loaded machine; the record leaves zeros out)
    # every number the simulated citizens took is in the record, and the only others are the headless kiosk's
    # own (it taps a category every 15 s, so the screenshots show a ticket)
    with sqlite3.connect(out / "hall.db") as db:
        by_client = dict(db.execute("SELECT client LIKE 'sim-%', count(*) FROM tickets GROUP BY 1").fetchall())
        others = {c for (c,) in db.execute("SELECT DISTINCT client FROM tickets WHERE client NOT LIKE 'sim-%'")}
    assert sim["taken"] == by_client.get(1, 0) and others <= {"kiosk-1"}
    assert ctl["issued"] == sim["taken"] + by_client.get(0, 0)
    assert 0 < sim["served"] <= ctl.get("served", 0) and sim["rated"] > 0
    # the dashboard joins the demo too, with its own identity
    assert sorted(doc["devices"]) == ["dashboard", "display-hall", "display-window-1", "kiosk-1", "pad-1"]
    # the simulated clients took their numbers, so they logged in with their own credentials; the controller
    # did, and every device app that got as far as connecting (a slow machine may end the short day before a
    # screen has started) did so as itself
    log = (out / "logs" / "controller.log").read_text()
    assert re.search(r"connected to mqtts://controller@127\.0\.0\.1:\d+ as controller", log), log[-1500:]
    for name in doc["devices"]:
        log = (out / "logs" / f"{name}.log").read_text()
        assert set(re.findall(r"connected to mqtts://([a-z0-9-]+)@", log)) <= {name}, (name, log[-1500:])
    broker_log = (out / "secure" / "mosquitto" / "mosquitto.log").read_text()
    assert "not authorised" not in broker_log
    # the keyring was made by init: private, with the broker's files
    kr = out / "secure" / "keyring"
    assert (kr.stat().st_mode & 0o777) == 0o700
    assert "allow_anonymous false" in (kr / "broker" / "mosquitto.conf").read_text()


def test_the_secure_demos_real_pad_hears_what_its_citizens_press(tmp_path):
    """The secure demo's real pad once never rated: the ACL had no demo topics, so the simulated citizens
    could not tell it which button they press. The demo's throwaway ACL now lets exactly the simulated clerk
    of the pad's window publish that, and exactly that pad read it."""
    import threading
    from pathlib import Path

    from hallq.controller import config as hall_config
    from hallq.demo import secure
    from hallq.rating_pad.demo import participants
    from hallq.shared.demo import DemoContext
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import DemoPress, decode

    root = Path(__file__).resolve().parents[2]
    path = root / "controller" / "examples" / "hall.toml"
    cfg = hall_config.load(path)
    hall = secure.start(path, cfg, tmp_path)
    clients = []
    try:
        heard: list[DemoPress] = []
        got = threading.Event()

        def client(did: str) -> HallClient:
            c = HallClient(hall.connect_as(did), cfg.hall.id, did, auto_online=False)
            clients.append(c)
            return c

        pad, clerk, other = client("pad-1"), client("sim-window-1"), client("sim-window-2")
        pad.subscribe(pad.topics.demo_press(1), lambda m: (heard.append(decode(m.payload, DemoPress)), got.set()))
        for c in clients:
            c.start()
            assert c.wait_connected(10)
        time.sleep(0.5)  # the subscription is in
        other.publish(other.topics.demo_press(1), DemoPress(ticket="A001", level="dissatisfied"))
        clerk.publish(clerk.topics.demo_press(1), DemoPress(ticket="A002", level="very_satisfied"))
        assert got.wait(10)
        time.sleep(0.5)
        assert [(p.ticket, p.level) for p in heard] == [("A002", "very_satisfied")]  # only its own window's clerk
    finally:
        for c in clients:
            c.stop()
        hall.stop()
    ctx = DemoContext(hall=cfg.hall.id, broker=hall.url, out_dir=tmp_path / "out", headless=True, windows=(1, 2),
                      secret_file=tmp_path / "k", env={}, sound=False, identities=hall.identities, config=path)
    (p,) = participants(ctx)
    assert "--demo-presses" in p.argv and "press:1" in p.replaces  # so the simulated citizens press it
