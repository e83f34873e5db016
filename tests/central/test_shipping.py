"""The hall ships its record to the centre exactly once: through kills, restarts, 500s, time-outs and a week
offline, the central tables end up equal to the hall's record, row for row."""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controller"))

from centralkit import (
    SIM_HALL,
    CentralServer,
    FaultProxy,
    central_rows,
    hall_rows,
    outbox_left,
    set_up_centre,
    wait_until,
)
from controller_kit import SYSTEM_DEVICES, ControllerProc, Requester

HALL = SIM_HALL.format(hall="test")  # the simulated hall's layout, under the hall id these tests use

CENTRAL = """
[central]
url = "{url}"
credentials = "{creds}"
ca = "{ca}"
batch = 7
linger_seconds = 0.3
timeout_seconds = 1.0
retry_min_seconds = 0.1
retry_max_seconds = 0.5
"""


def _ok(reply: dict) -> dict:
    assert reply["ok"], reply
    return reply


class Traffic:
    """A hall's day through the contract: takes, calls, cases, ratings (some bad: follow-ups), clerks."""

    def __init__(self, r: Requester):
        self.r = r
        self.n = itertools.count(1)
        self.opened: set[int] = set()

    def req(self) -> str:
        return f"q{next(self.n)}"

    def round(self, k: int = 4) -> None:
        for i in range(k):
            _ok(self.r.send("kiosk-1", "take", {"req": self.req(), "category": "AB"[i % 2]}, timeout=15))
        for w in (1, 2):
            if w not in self.opened:
                _ok(self.r.send(f"caller-{w}", "window", {"req": self.req(), "window": w, "op": "open",
                                                         "staff": {"id": f"s{w}", "name": f"王{w}"}}, timeout=15))
                self.opened.add(w)
        for _ in range(k // 2):
            for w in (1, 2):
                called = self.r.send(f"caller-{w}", "window", {"req": self.req(), "window": w, "op": "next"},
                                     timeout=15)
                if not called["ok"]:
                    continue
                ticket = called["ticket"]["number"]
                seq = next(self.n)
                _ok(self.r.send(f"caller-{w}", "window", {
                    "req": self.req(), "window": w, "op": "done",
                    "case": {"id": f"C{seq}", "item_code": "11100000000000000001"}}, timeout=15))
                level = ("very_satisfied", "satisfied", "dissatisfied")[seq % 3]
                self.r.send(f"pad-{w}", "rate", {"req": self.req(), "window": w, "ticket": ticket, "level": level},
                            timeout=15)

    def close_windows(self) -> None:
        for w in sorted(self.opened):
            _ok(self.r.send(f"caller-{w}", "window", {"req": self.req(), "window": w, "op": "close"}, timeout=15))
        self.opened.clear()


def _assert_equal(db, dsn: str) -> dict[str, int]:
    hall, centre = hall_rows(db), central_rows(dsn, "test")
    for table in hall:
        assert len(centre[table]) == len(hall[table]), table
        for a, b in zip(hall[table], centre[table], strict=True):
            assert a == b, (table, a, b)
    return {t: len(v) for t, v in hall.items()}


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_exactly_once_through_kills_restarts_500s_and_timeouts(mosquitto, central_dsn, tmp_path):
    tls_dir, creds = set_up_centre(tmp_path, central_dsn)
    centre = CentralServer(tmp_path, central_dsn, tls_dir).start()
    proxy = FaultProxy(centre.url, tls_dir, hang_s=2.0).start()
    devices = SYSTEM_DEVICES + '\n[[devices]]\nid = "pad-2"\nrole = "pad"\nwindow = 2\n'
    toml = HALL + devices + CENTRAL.format(url=proxy.url, creds=creds, ca=tls_dir / "ca.crt")
    ctl = ControllerProc(tmp_path / "hall", mosquitto.url, toml)
    # two days the hall served before it was linked to the centre: their records and, once the controller sees
    # they are over, their figures (daily_figures) travel too
    _seed_days_before(ctl.db, toml)
    r = Requester(mosquitto.port)
    try:
        ctl.start(wait_online=True)
        t = Traffic(r)
        t.round()
        # a kiosk comes online, runs out of paper (device events, from its retained status and health)
        dev = "hallq/test/device/kiosk-1"
        r.mon.publish(f"{dev}/status", b"online", retain=True)
        r.mon.publish(f"{dev}/health", _health(paper="out"), retain=True)
        wait_until(lambda: _device_events(ctl.db) == [("kiosk-1", "online", "[]"),
                                                     ("kiosk-1", "online", '["paper_out"]')], 30,
                   "the kiosk's two events in the record")
        # the centre is killed (SIGKILL) while the hall works on, then comes back
        centre.kill()
        t.round()
        centre.start()
        t.round()
        # 500s: before the centre saw the batch, and after it applied it (the hall never hears the ack)
        for mode in ("500_before", "500_after", "hang_before", "hang_after"):
            proxy.mode = mode
            t.round()
            wait_until(lambda mode=mode: proxy.seen.get(mode, 0) >= 3, 60, f"three batches through {mode}")
        proxy.mode = "pass"
        # the centre restarted cleanly, and the hall's controller killed mid-stream
        centre.stop()
        centre.start()
        t.round()
        ctl.kill()
        ctl.start(wait_online=True)
        # the restarted controller sees the same retained status and health: nothing new; then the kiosk dies
        r.mon.publish(f"{dev}/status", b"offline", retain=True)
        t.opened.clear()  # the windows stay open in the record; opening again is allowed
        t.round()
        wait_until(lambda: len(_device_events(ctl.db)) == 3, 30, "the kiosk's offline event")
        assert _device_events(ctl.db)[2] == ("kiosk-1", "offline", '["paper_out"]')
        t.close_windows()
        # a follow-up closed by the manager's command (an UPDATE outside the core) travels too
        import subprocess

        from centralkit import HALLQ

        out = subprocess.run([HALLQ, "controller", "followups", "--db", str(ctl.db), "--json"],
                             capture_output=True, text=True, timeout=60, check=True)
        first_open = next((json.loads(line)["id"] for line in out.stdout.splitlines()), None)
        if first_open is not None:
            subprocess.run([HALLQ, "controller", "followups", "close", str(first_open), "--by", "张主任",
                            "--action", "电话回访，已解释", "--db", str(ctl.db)], check=True, capture_output=True,
                           timeout=60)
        wait_until(lambda: outbox_left(ctl.db) == 0, 120, "the outbox to empty")
        counts = _assert_equal(ctl.db, central_dsn)
        assert counts["tickets"] >= 28 and counts["calls"] >= 14 and counts["ratings"] >= 10
        assert counts["followups"] >= 3 and counts["staff_sessions"] >= 2
        assert counts["device_events"] == 3
        assert sorted(str(f.day) for f in hall_rows(ctl.db)["daily_figures"]) == ["2026-02-26", "2026-02-27"]
        import psycopg

        with psycopg.connect(central_dsn) as conn:
            if first_open is not None:
                assert conn.execute("SELECT called_back_by FROM followups WHERE id = %s",
                                    (first_open,)).fetchone() == ("张主任",)
            # one stream, every row applied once: acked == the rows the hall queued (no seq twice, none missing)
            (acked, records), = conn.execute("SELECT acked, records FROM streams").fetchall()
            assert acked == records
            applied = conn.execute("SELECT sum(records), min(first_seq), max(last_seq) FROM batches").fetchone()
            assert applied == (acked, 1, acked)
    finally:
        r.close()
        ctl.kill()
        proxy.stop()
        centre.kill()
    log = (tmp_path / "hall" / "controller.log").read_text()
    assert "central: cannot ship" in log  # the hall said, in one line, that the centre was away
    assert halls_token(creds) not in log


def _seed_days_before(db, toml: str) -> None:
    from datetime import date

    from hallq.controller import config

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
    from seed import seed

    seed(db, config.parse(toml), date(2026, 2, 26), 2, 12, seed=5)


def _health(paper: str) -> bytes:
    from datetime import datetime

    from hallq.shared.schemas import DeviceHealth, PrinterHealth, encode

    return encode(DeviceHealth(at=datetime.now().astimezone(), role="kiosk",
                               printer=PrinterHealth(online=True, paper=paper)))  # type: ignore[arg-type]


def _device_events(db) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute("SELECT device, status, problems FROM device_events ORDER BY id").fetchall()
    finally:
        conn.close()


def halls_token(path) -> str:
    from hallq.shared.central import Credentials

    return Credentials.load(path).token
