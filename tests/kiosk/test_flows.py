"""Headless kiosk flows against the real controller and Mosquitto, with a fake printer (python-escpos
Dummy answering DLE EOT) and a simulated GA 467 reader on a pty. Screenshots stay in tmp_path."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hallq.kiosk import core
from hallq.kiosk.app import KioskApp
from hallq.kiosk.config import load
from hallq.kiosk.idcard import IdNumber
from hallq.shared.personkey import day_key
from kiosk_kit import Controller, StatusDummy, make_id

SENIOR = make_id(date(1950, 6, 1), area="320102", seq="771")
YOUNG = make_id(date(1995, 2, 14), area="320102", seq="772")


def write_config(tmp_path: Path, broker: str, secret: Path, readers: list[str], chinese: str = "raster") -> Path:
    p = tmp_path / "kiosk.toml"
    reader_lines = "".join(f'\n[[readers]]\nurl = "{u}"\n' for u in readers)
    p.write_text(
        f'[kiosk]\nid = "kiosk-1"\nhall = "demo"\nbroker = "{broker}"\nsecret_key_file = "{secret}"\n'
        'qr_url = "https://hall.example/q?n={number}"\nrequest_timeout_s = 6\n'
        f'[screen]\nwidth = 1920\nheight = 1080\nmode = "headless"\n'
        f'[printer]\nurl = "file:{tmp_path / "unused.bin"}"\nchinese = "{chinese}"\n' + reader_lines,
        encoding="utf-8",
    )
    return p


@pytest.fixture
def make_kiosk(tmp_path, mosquitto, secret_file):
    apps = []

    def make(printer=None, readers=(), chinese="raster"):
        cfg = load(write_config(tmp_path, mosquitto.url, secret_file, list(readers), chinese))
        app = KioskApp(cfg, mode="headless", screenshot_dir=tmp_path / "shots", printer=printer or StatusDummy())
        app.start()
        apps.append(app)
        assert app.run_until(lambda s: s.hall is not None and s.queue is not None and s.controller == "online", 15)
        app.run_until(lambda s: False, 0.1)
        return app

    yield make
    for a in apps:
        a.stop()


def tap(app: KioskApp, action: str, arg: str | None = None) -> None:
    app.step(0)
    app.tap(app.ui.find(action, arg))
    app.step(0)


def takes(monitor) -> list[dict]:
    return [json.loads(m.payload) for m in monitor.on("hallq/demo/req/kiosk-1/take")]


def test_touch_flow_ticket_printed_and_quota(controller, monitor, make_kiosk, tmp_path, caplog):
    printer = StatusDummy()
    app = make_kiosk(printer)
    # payloads that do not fit the contract are logged and change nothing
    hall, queue = app.state.hall, app.state.queue
    monitor.publish("hallq/demo/config", b'{"hall": "demo", "name": 5}')
    monitor.publish("hallq/demo/queue", b"not json")
    monitor.publish("hallq/demo/controller/status", b"sleepy")
    app.run_until(lambda s: False, 0.3)
    assert app.state.hall == hall and app.state.queue == queue and app.state.controller == "online"
    assert sum("does not fit the contract" in r.getMessage() for r in caplog.records) == 2
    tap(app, "category", "A")
    assert app.run_until(lambda s: s.screen == "ticket" and s.shown.printed is not None, 5)
    shown = app.state.shown
    assert re.fullmatch(r"A\d{3}", shown.ticket.number) and shown.printed is True
    assert b"\x1dv0" in printer.output  # the raster ticket went to the printer
    assert takes(monitor)[-1]["channel"] == "touch" and "person" not in takes(monitor)[-1]
    health = monitor.wait_for("hallq/demo/device/kiosk-1/health", lambda m: json.loads(m.payload)["printer"].get("paper") == "ok")
    assert health.retain or json.loads(health.payload)["role"] == "kiosk"
    tap(app, "home")
    # B has a daily quota of 1
    tap(app, "category", "B")
    assert app.run_until(lambda s: s.screen == "ticket", 5)
    tap(app, "home")
    tap(app, "category", "B")
    assert app.run_until(lambda s: s.screen == "error", 5)
    assert app.state.failure.kind == "quota_full"
    assert printer.queries >= 3  # asked before each of the three requests (and at start)
    app.run_until(lambda s: False, 0.1)
    tap(app, "language")
    app.run_until(lambda s: False, 0.1)
    shots = sorted(p.name for p in (tmp_path / "shots").iterdir())
    assert any("ticket" in n for n in shots) and any("error" in n for n in shots)


def test_card_flow_elderly_duplicate_and_privacy(controller, monitor, make_kiosk, tmp_path, sam, secret_file, caplog):
    caplog.set_level(logging.DEBUG)
    printer = StatusDummy()
    app = make_kiosk(printer, readers=[sam.url], chinese="gb18030")
    assert app.run_until(lambda s: any(r.online for r in s.readers), 5)
    monitor.wait_for("hallq/demo/device/kiosk-1/health",
                     lambda m: [r["online"] for r in json.loads(m.payload).get("readers", [])] == [True])
    sam.card = SENIOR
    assert app.run_until(lambda s: s.card is not None, 5)
    app.run_until(lambda s: False, 0.1)
    sam.card = None
    tap(app, "category", "A")
    assert app.run_until(lambda s: s.screen == "ticket" and s.shown.printed is not None, 5)
    assert app.state.shown.ticket.priority == "elderly"
    masked = SENIOR[:3] + "*" * 11 + SENIOR[-4:]
    assert app.state.shown.masked_id == masked
    sent = takes(monitor)[-1]
    key = IdNumber(SENIOR).person_key(day_key(bytes.fromhex(secret_file.read_text().strip()), app.clock.now().date()))
    assert (sent["channel"], sent["priority"], sent["person"]) == ("idcard", "elderly", key)
    assert masked.encode("gb18030") in printer.output  # masked on paper
    app.run_until(lambda s: False, 0.3)
    # the same person again in the same category: duplicate
    tap(app, "home")
    app.run_until(lambda s: False, 0.3)
    sam.card = SENIOR
    assert app.run_until(lambda s: s.card is not None, 5)
    sam.card = None
    tap(app, "category", "A")
    assert app.run_until(lambda s: s.screen == "error", 5)
    assert app.state.failure.kind == "duplicate"
    app.run_until(lambda s: False, 0.3)
    # a card with a wrong check digit
    tap(app, "home")
    app.run_until(lambda s: False, 0.3)
    sam.card = YOUNG[:-1] + ("0" if YOUNG[-1] != "0" else "1")
    assert app.run_until(lambda s: s.screen == "error", 5)
    assert app.state.failure.kind == "invalid_card"
    app.run_until(lambda s: False, 0.3)

    # privacy: the raw numbers are nowhere outside the process
    raws = [SENIOR, YOUNG, sam.card]
    everything = b"".join(m.topic.encode() + m.payload for m in monitor.messages)
    logs = "\n".join(r.getMessage() for r in caplog.records)
    names = "\n".join(p.name for p in (tmp_path / "shots").iterdir())
    for raw in raws:
        assert raw.encode() not in everything, "an ID number went over MQTT"
        assert raw not in logs, "an ID number is in the logs"
        assert raw not in names
        assert raw.encode() not in printer.output and raw.encode("gb18030") not in printer.output
        for f in [*Path(controller.workdir).rglob("*"), *tmp_path.rglob("*")]:  # the controller's record,
            if f.is_file():  # the broker's log, the kiosk's config and screenshots
                assert raw.encode() not in f.read_bytes(), f"an ID number reached {f.name}"
    assert len(monitor.messages) > 5 and "card read" in logs


def test_printer_out_of_paper_issues_nothing(controller, monitor, make_kiosk):
    app = make_kiosk(StatusDummy(paper_byte=0x72))
    tap(app, "category", "A")
    assert app.run_until(lambda s: s.screen == "error", 5)
    assert app.state.failure.kind == "printer_out"
    assert takes(monitor) == []
    monitor.wait_for("hallq/demo/device/kiosk-1/health", lambda m: json.loads(m.payload)["printer"].get("paper") == "out")


def test_printer_failure_after_issue_keeps_the_number(controller, make_kiosk):
    printer = StatusDummy()
    printer.fail_print = True
    app = make_kiosk(printer)
    tap(app, "category", "C")
    assert app.run_until(lambda s: s.screen == "ticket" and s.shown.printed is False, 5)
    assert app.state.shown.ticket.number.startswith("C") and app.state.shown.problem


def test_controller_gone(controller, make_kiosk):
    app = make_kiosk()
    controller.proc.kill()  # SIGKILL: the broker publishes the Last Will
    controller.proc.wait(5)
    assert app.run_until(lambda s: s.controller == "offline", 10)
    tap(app, "category", "A")
    assert app.run_until(lambda s: s.screen == "error", 2)
    assert app.state.failure.kind == "unreachable"


def test_link_down_sends_nothing_now_or_later_and_says_so(controller, mosquitto, make_kiosk, tmp_path):
    """Issue 9 §4: while the kiosk's own link is down it takes no number (nothing is queued for later: a
    reconnection must not turn a take the citizen was told failed into a ghost ticket), and says so."""
    import sqlite3

    from harness import Monitor

    app = make_kiosk()
    mosquitto.kill()
    assert app.run_until(lambda s: s.link is False, 15)
    assert app.state.controller == "online"  # the last news from the controller, now stale
    tap(app, "category", "A")
    assert app.run_until(lambda s: s.screen == "error", 2)
    assert app.state.failure.kind == "unreachable"
    shots = sorted((tmp_path / "shots").glob("*.png"))
    assert shots  # the link-down mark is drawn (kiosk/ui.py: link_down_mark)
    mosquitto.start()
    mon = Monitor(mosquitto.url, "hallq/demo/req/#")
    assert app.run_until(lambda s: s.link is True, 20)
    app.run_until(lambda s: False, 2.0)
    assert not mon.on("hallq/demo/req/kiosk-1/take")
    mon.close()
    with sqlite3.connect(controller.db) as db:
        assert db.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0


def test_hall_closed(tmp_path, mosquitto, make_kiosk):
    now = datetime.now(ZoneInfo("Asia/Shanghai"))
    start = (now + timedelta(hours=6)).strftime("%H:00")
    end = (now + timedelta(hours=7)).strftime("%H:00")
    if end <= start:
        start, end = "00:00", "00:01"
    (tmp_path / "closed").mkdir()
    c = Controller(tmp_path / "closed", mosquitto.url, hours=f'hours = [["{start}", "{end}"]]').start()
    try:
        app = make_kiosk()
        # the closed screen from the hours in `config`, before anyone taps (it once looked open until a tap)
        assert app.run_until(lambda s: s.screen == "closed", 5)
        assert app.state.opens_at is not None and app.state.opens_at.strftime("%H:%M") == start
        with pytest.raises(LookupError):
            app.ui.find("category", "A")
        # a citizen who was already choosing when the hall closed gets the controller's refusal
        app.feed(core.Press("category", "A"))  # as if tapped on the last home screen
        app.state = core._home(app.state, app.now())
        app.feed(core.Press("category", "A"))
        assert app.run_until(lambda s: s.screen == "error", 5)
        assert app.state.failure.kind == "closed"
    finally:
        c.stop()


def test_auto_tap_keeps_taking_numbers(controller, make_kiosk):
    """`hallq kiosk --auto-tap` once crashed after the first ticket: it touched a category on a frame that
    still showed the ticket (LookupError: no category B on this screen)."""
    app = make_kiosk()
    app.auto_tap = 0.05
    numbers: set[str] = set()

    def watch(s):
        if s.shown is not None:
            numbers.add(s.shown.ticket.number)
        if s.screen == "ticket":
            app.feed(core.Press("home"))  # the citizen takes the ticket and goes
        return len(numbers) >= 3

    assert app.run_until(watch, 30), numbers
    assert {n[0] for n in numbers} >= {"A", "B", "C"}  # one category after the other


def test_appointment_check_in_with_a_missing_wedge_reader(controller, monitor, make_kiosk):
    app = make_kiosk(readers=["evdev:/dev/input/by-id/no-such-reader-event-kbd"])
    monitor.wait_for("hallq/demo/device/kiosk-1/health",
                     lambda m: [r["online"] for r in json.loads(m.payload).get("readers", [])] == [False])
    tap(app, "appointment")
    assert app.run_until(lambda s: s.screen == "appointment", 2)
    for k in "20261":
        tap(app, "key", k)
    tap(app, "backspace")
    tap(app, "key", "7")
    tap(app, "confirm")
    assert app.run_until(lambda s: s.screen == "home" and s.appointment == "20267", 2)
    tap(app, "category", "C")
    # the controller checks the code against its bookings (tests/kiosk/test_appointments.py checks one in)
    assert app.run_until(lambda s: s.screen == "error", 5)
    assert app.state.failure.kind == "unknown_appointment"
    sent = takes(monitor)[-1]
    assert (sent["channel"], sent["priority"], sent["appointment"]) == ("appointment", "appointment", "20267")


def test_hallq_kiosk_process_headless_with_screenshots(controller, monitor, mosquitto, tmp_path, secret_file):
    import signal
    import subprocess
    import sys

    cfg = write_config(tmp_path, mosquitto.url, secret_file, [])
    shots = tmp_path / "proc-shots"
    proc = subprocess.Popen([sys.executable, "-m", "hallq.shared.cli", "kiosk", "--config", str(cfg), "--headless",
                             "--screenshot", str(shots)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        monitor.wait_for("hallq/demo/device/kiosk-1/status", lambda m: m.payload == b"online", timeout=15)
        monitor.wait_for("hallq/demo/device/kiosk-1/health", timeout=5)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not list(shots.glob("*-home.png")):
            time.sleep(0.1)
        assert list(shots.glob("*-home.png"))
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out.decode(errors="replace")
    monitor.wait_for("hallq/demo/device/kiosk-1/status", lambda m: m.payload == b"stopped", timeout=5)


def test_a_kiosk_that_gave_up_on_a_stalled_controller_says_no_number_and_none_is_issued(controller, monitor,
                                                                                          make_kiosk):
    """Issue 9 §4, request deadlines: the controller is stopped (SIGSTOP) while a citizen takes a number. The kiosk
    gives up after its time-out and says that no number was issued; when the controller runs again it refuses the
    kiosk's waiting copies ``expired`` (their deadline passed): the record holds no ticket the citizen never saw."""
    import signal
    import sqlite3

    from hallq.kiosk.texts import ERRORS

    app = make_kiosk()
    for code in "AB":  # a kiosk at work: the controller learns how quick its requests can be
        tap(app, "category", code)
        assert app.run_until(lambda s: s.screen == "ticket", 10)
        tap(app, "home")
    os.kill(controller.proc.pid, signal.SIGSTOP)
    try:
        tap(app, "category", "C")
        assert app.run_until(lambda s: s.screen == "error", 12)
        assert app.state.failure.kind == "unreachable"
        assert "未取到号码" in ERRORS["unreachable"][1][0] and "no number was issued" in ERRORS["unreachable"][1][1]
        time.sleep(1.0)
    finally:
        os.kill(controller.proc.pid, signal.SIGCONT)
    req = takes(monitor)[-1]["req"]
    m = monitor.wait_for("hallq/demo/reply/kiosk-1", lambda m: json.loads(m.payload).get("req") == req, 20)
    assert json.loads(m.payload)["error"]["code"] == "expired"
    tap(app, "home")
    tap(app, "category", "C")
    assert app.run_until(lambda s: s.screen == "ticket", 10)
    assert app.state.shown.ticket.number == "C001"  # the stalled request took none
    with sqlite3.connect(controller.db) as conn:
        assert conn.execute("SELECT count(*) FROM tickets WHERE category = 'C'").fetchone()[0] == 1
