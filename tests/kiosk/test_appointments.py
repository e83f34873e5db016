"""Appointment check-in at the kiosk through the real controller and Mosquitto: the hall's bookings come
from a CSV dropped in the controller's bookings folder; a citizen checks in by booking code and another by
ID card; the ticket screen shows the slot; a second check-in, an unknown code and tomorrow's booking are
refused with their own messages."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hallq.controller import stats
from hallq.controller.db import connect
from hallq.shared.personkey import person_key
from harness import ControllerProcess
from kiosk_kit import HALL_TOML
from test_flows import YOUNG, make_kiosk, takes, tap  # noqa: F401 (make_kiosk: a fixture)

TZ = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def booked_controller(tmp_path, mosquitto, secret_file):
    now = datetime.now(TZ)
    start = max(now - timedelta(minutes=1), now.replace(hour=0, minute=0))
    end = min(start + timedelta(minutes=30), now.replace(hour=23, minute=59))
    # the key the kiosk will send for this card today (per-day keys: hallq.shared.personkey)
    key = person_key(bytes.fromhex(secret_file.read_text().strip()), now.date(), YOUNG)
    folder = tmp_path / "bookings"
    folder.mkdir()
    today, tomorrow = now.date(), now.date() + timedelta(days=1)
    (folder / "today.csv").write_text(
        "code,category,date,start,end,person,name\n"
        f"2026001,C,{today},{start:%H:%M},{end:%H:%M},,王*\n"
        f"2026002,A,{today},{start:%H:%M},{end:%H:%M},{key},张*\n"
        f"2026003,A,{tomorrow},09:00,09:30,,李*\n"
        f"2026004,A,{today},09:00,not a time,,赵*\n", encoding="utf-8")
    toml = HALL_TOML.format(hall="demo", hours="") + f'\n[appointments]\nfolder = "{folder}"\n'
    c = ControllerProcess(tmp_path / "controller", mosquitto.url, toml, hall="demo").start()
    deadline = time.monotonic() + 20
    while "today.csv: 3 read, 1 malformed" not in c.log.read_text(errors="replace"):
        assert time.monotonic() < deadline, c.log.read_text(errors="replace")[-2000:]
        time.sleep(0.1)
    assert "today.csv line 5: end 'not a time' is not HH:MM (skipped)" in c.log.read_text(errors="replace")
    yield c
    c.stop()


def check_in_by_code(app, code: str) -> None:
    tap(app, "appointment")
    assert app.run_until(lambda s: s.screen == "appointment", 2)
    for k in code:
        tap(app, "key", k)
    tap(app, "confirm")
    assert app.run_until(lambda s: s.screen == "home" and s.appointment == code, 2)
    tap(app, "category", "A")  # the citizen taps any service: the booking's category counts


def test_check_in_by_code_and_by_id_card(booked_controller, monitor, make_kiosk, sam):  # noqa: F811
    app = make_kiosk(readers=[sam.url])
    assert app.run_until(lambda s: any(r.online for r in s.readers), 5)

    check_in_by_code(app, "2026001")
    assert app.run_until(lambda s: s.screen == "ticket", 5)
    tk = app.state.shown.ticket
    assert tk.category == "C" and tk.priority == "appointment" and tk.number.startswith("C")
    assert tk.appointment.code == "2026001" and tk.appointment.arrival == "on_time"
    app.run_until(lambda s: False, 0.3)  # the ticket screen with the slot line renders

    # the same code again: already checked in
    tap(app, "home")
    check_in_by_code(app, "2026001")
    assert app.run_until(lambda s: s.screen == "error", 5)
    assert app.state.failure.kind == "already_checked_in"
    # tomorrow's booking, and a code the hall never booked
    for code, kind in (("2026003", "not_today"), ("2026999", "unknown_appointment")):
        tap(app, "home")
        check_in_by_code(app, code)
        assert app.run_until(lambda s: s.screen == "error", 5)
        assert app.state.failure.kind == kind

    # by ID card: the booking holds the person key of this card
    tap(app, "home")
    tap(app, "appointment")
    assert app.run_until(lambda s: s.screen == "appointment", 2)
    sam.card = YOUNG
    assert app.run_until(lambda s: s.card is not None, 5)
    sam.card = None
    tap(app, "category", "C")
    assert app.run_until(lambda s: s.screen == "ticket", 5)
    tk = app.state.shown.ticket
    assert tk.appointment.code == "2026002" and tk.category == "A"
    sent = takes(monitor)[-1]
    assert sent["channel"] == "appointment" and sent.get("appointment") is None and len(sent["person"]) == 64

    # the day's figures count them (as `stats` and `hallq controller report` compute them)
    with connect(booked_controller.db, readonly=True) as conn:
        now = datetime.now(TZ)
        ap = stats.compute(conn, now.date(), now).appointments
    assert (ap.booked, ap.checked_in, ap.late, ap.noshow) == (2, 2, 0, 0)
