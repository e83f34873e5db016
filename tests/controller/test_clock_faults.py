"""Issue 9 §3: a clock that goes back (a Raspberry Pi without RTC booting in the past, a step back while running)
expires nothing, signs nobody out, re-issues no number and overwrites no ticket; until the clock is trusted,
takes are answered ``clock_unsynced``.

Through the real controller process with the clock port (``HALLQ_CLOCK``), and the pure core with explicit times.
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import timedelta

from controller_kit import HALL_TOML, SYSTEM_DEVICES, ControllerProc, Hall, Requester, at
from hallq.controller import core

TOML = HALL_TOML.replace('hours = [["09:00", "12:00"], ["14:00", "18:00"]]\n', "") + SYSTEM_DEVICES


def tickets(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT day, number, issued_at, status FROM tickets ORDER BY day, number").fetchall()


def online_again(r: Requester, mark: int) -> None:
    r.mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online" and m in r.mon.messages[mark:],
                   timeout=40)


def test_a_controller_booting_in_the_past_refuses_takes_and_changes_nothing(mosquitto, tmp_path):
    r = Requester(mosquitto.port)
    work = tmp_path / "c"
    c = ControllerProc(work, mosquitto.url, TOML, start="2026-03-02T09:00:00+08:00")
    c.start()
    try:
        online_again(r, 0)
        numbers = [r.send("kiosk-1", "take", {"req": f"m{i}", "category": "A"})["ticket"]["number"] for i in range(3)]
        assert numbers == ["A001", "A002", "A003"]
        r.send("caller-1", "window", {"req": "o1", "window": 1, "op": "open", "staff": {"id": "s1", "name": "早"}})
        morning = tickets(c.db)
        c.kill()

        # the Pi boots a day in the past (no RTC, no network time yet)
        past = ControllerProc(work, mosquitto.url, TOML, start="2026-03-01T09:00:00+08:00")
        mark = len(r.mon.messages)
        past.start()
        online_again(r, mark)
        rep = r.send("kiosk-2", "take", {"req": "p1", "category": "A"})
        assert rep["ok"] is False and rep["error"]["code"] == "clock_unsynced", rep
        ws = json.loads(r.mon.wait_for("hallq/test/window/1/state", lambda m: m in r.mon.messages[mark:]).payload)
        assert ws["status"] != "closed" and ws["staff"]["name"] == "早"  # the clerk is still signed in
        past.kill()
        assert tickets(c.db) == morning  # nothing expired, nothing re-issued
        log = (work / "controller.log").read_text()
        assert "behind the record" in log

        # the clock is set again (later the same day): numbering goes on, the morning's records stay as they were
        later = ControllerProc(work, mosquitto.url, TOML, start="2026-03-02T09:30:00+08:00")
        mark = len(r.mon.messages)
        later.start()
        online_again(r, mark)
        rep = r.send("kiosk-2", "take", {"req": "l1", "category": "A"})
        assert rep["ok"] is True and rep["ticket"]["number"] == "A004", rep
        later.terminate()
        after = tickets(c.db)
        assert after[:3] == morning and after[3][1] == "A004"
    finally:
        for p in ("c", "past", "later"):
            proc = locals().get(p)
            if proc is not None:
                proc.kill()
        r.close()


def test_a_step_back_while_running_expires_nothing_and_reissues_nothing():
    from datetime import datetime

    h = Hall().at("10:00")
    first = h.take("A")
    h.op(1, "open")
    h.at("10:05")
    h.take("A")
    # the clock steps back a whole day
    h.at(at("10:06") - timedelta(days=1))
    fx = h.tick()
    assert fx.records == [] and h.state.day == at("10:00").date()
    assert all(t.status == "waiting" for t in h.state.tickets.values())
    assert h.state.windows[1].staff is not None  # nobody signed out
    # and a few minutes back on the same day
    h.at("10:04")
    third = h.take("A")
    assert third["ticket"]["number"] == "A003"
    issued = datetime.fromisoformat(third["ticket"]["issued_at"])
    assert issued >= datetime.fromisoformat(first["ticket"]["issued_at"]) + timedelta(minutes=5)  # never back


def test_the_record_never_overwrites_a_ticket(tmp_path):
    from controller_kit import StoredHall

    h = StoredHall(tmp_path / "hall.db").at(at("09:00"))
    h.take("A")
    t = next(iter(h.state.tickets.values()))
    other = core.TicketRec(**{**{f: getattr(t, f) for f in t.__slots__ if f != "calls"}, "issued_at": t.issued_at
                              + timedelta(hours=1), "client": "kiosk-evil"})
    import pytest

    with pytest.raises(sqlite3.IntegrityError):
        h.storage.write([other])
    with sqlite3.connect(tmp_path / "hall.db") as conn:
        assert conn.execute("SELECT client FROM tickets").fetchall() == [(t.client,)]
    h.storage.close()
    time.sleep(0)


# -- the system clock itself stepped back under the running process (libfaketime, as an NTP step or a wrong
# manual `date` would) -------------------------------------------------------------------------------------------
FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def faked(work, url: str, toml: str, offset_file):
    """The real controller on the system clock as libfaketime shifts it by what ``offset_file`` says."""
    from pathlib import Path

    import pytest
    from harness import ControllerProcess

    lib = next((p for p in (FAKETIME_LIB, "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1") if Path(p).exists()),
               None)
    if lib is None:
        pytest.fail("libfaketime is missing: make setup installs it (scripts/setup.sh)")
    offset_file.write_text("+0\n")
    c = ControllerProcess(work, url, toml, hall="test")
    # (the monotonic clock is shifted too: Debian 12's libfaketime 0.9.10 breaks Python 3.11's time.sleep when
    # it is not, libfaketime issue #426; the process then sees a step of both clocks, the worse case)
    c.env.update(LD_PRELOAD=lib, FAKETIME_TIMESTAMP_FILE=str(offset_file), FAKETIME_CACHE_DURATION="1")
    c.env.pop("HALLQ_CLOCK", None)
    return c


def step(offset_file, offset: str) -> None:
    offset_file.write_text(offset + "\n")
    time.sleep(2.5)  # libfaketime reads the file again within a second (FAKETIME_CACHE_DURATION)


def test_the_system_clock_stepped_back_a_day_under_the_running_controller(mosquitto, tmp_path):
    from datetime import datetime

    toml = TOML.replace('name = "测试政务服务中心"', 'name = "测试政务服务中心"\ntimezone = "UTC"')
    offset = tmp_path / "faketime.rc"
    r = Requester(mosquitto.port)
    c = faked(tmp_path / "c", mosquitto.url, toml, offset).start()
    try:
        online_again(r, 0)
        first = r.send("kiosk-1", "take", {"req": "a", "category": "A"})["ticket"]
        r.send("caller-1", "window", {"req": "o", "window": 1, "op": "open", "staff": {"id": "s1", "name": "早"}})
        step(offset, "-1d")  # yesterday, as far as the process can tell
        second = r.send("kiosk-1", "take", {"req": "b", "category": "A"}, timeout=10)["ticket"]
        mark = len(r.mon.messages)
        b1 = r.send("kiosk-1", "take", {"req": "c", "category": "B"}, timeout=10)["ticket"]
        # The queue topic goes out at most every 0.1 s: a change that close to the last one is published by
        # the worker's timed wake-up. Under libfaketime 0.9.10 no timed wait of the process ever ends (Python
        # waits with sem_clockwait on the monotonic clock, which libfaketime shifts but does not wrap), so
        # here the worker wakes only on a message: the kiosk sends its request again after that 0.1 s (a
        # repeat, answered the same from the kept answers), as a kiosk that missed the reply would.
        time.sleep(0.3)
        assert r.send("kiosk-1", "take", {"req": "c", "category": "B"}, timeout=10)["ticket"] == b1
        queue = json.loads(r.mon.wait_for("hallq/test/queue", lambda m: m in r.mon.messages[mark:]).payload)
        step(offset, "+0")
        third = r.send("kiosk-1", "take", {"req": "d", "category": "A"}, timeout=10)["ticket"]
        time.sleep(0.5)
        # the window's latest state (a rollover would have published it closed)
        ws = json.loads([m for m in r.mon.messages if m.topic == "hallq/test/window/1/state"][-1].payload)
    finally:
        c.kill()
        r.close()
    # numbering went on, issue times never went back, nothing expired, the clerk is still signed in
    assert [first["number"], second["number"], third["number"]] == ["A001", "A002", "A003"]
    times = [datetime.fromisoformat(t["issued_at"]) for t in (first, second, third)]
    assert times == sorted(times) and len({t.date() for t in times}) == 1
    assert queue["categories"]["A"]["waiting"] == 2
    assert ws["status"] != "closed" and ws["staff"]["name"] == "早"
    rows = tickets(c.db)
    assert [n for _, n, _, _ in rows] == ["A001", "A002", "A003", "B001"]
    assert {d for d, *_ in rows} == {times[0].date().isoformat()} and {s for *_, s in rows} == {"waiting"}
    assert "behind the record" in c.log.read_text()
