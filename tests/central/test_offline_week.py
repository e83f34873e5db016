"""A hall whose centre is away for a (simulated) week: the outbox keeps every row, the hall works as ever,
and once the centre is back the hall catches up while it goes on serving; then both records are equal."""

from __future__ import annotations

import random
import sys
from datetime import date, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controller"))

from centralkit import (
    SIM_HALL,
    CentralServer,
    central_rows,
    hall_day,
    hall_rows,
    outbox_left,
    set_up_centre,
    wait_until,
)
from controller_kit import StoredHall
from hallq.controller import central_outbox, config
from hallq.controller.shipper import Shipper


def _section(url: str, creds, ca, batch: int = 50) -> config.CentralSection:
    return config.CentralSection(url=url, credentials=str(creds), ca=str(ca), batch=batch, timeout_seconds=5.0,
                                 retry_min_seconds=0.05, retry_max_seconds=0.2,
                                 linger_seconds=0)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_week_offline_then_catching_up_while_the_hall_works(central_dsn, tmp_path):
    tls_dir, creds = set_up_centre(tmp_path, central_dsn)
    centre = CentralServer(tmp_path, central_dsn, tls_dir)  # not started: the link is down all week
    db = tmp_path / "hall.db"
    monday = date(2026, 3, 2)
    h = StoredHall(db, SIM_HALL.format(hall="test"))
    shipper = Shipper(str(db), "test", _section(centre.url, creds, tls_dir / "ca.crt")).start()
    rng = random.Random(15)
    try:
        for d in range(7):
            hall_day(h, monday + timedelta(days=d), 60, rng)
        queued = outbox_left(db)
        assert queued > 7 * 60 * 3  # every version of every row of the week is kept
        assert shipper.shipped == 0 and shipper.failures > 0  # it kept trying all week
        # the centre comes back during the next day's work: the hall serves on while the backlog drains
        centre.start()
        seen: list[tuple[int, int]] = []  # (citizen served, rows still waiting) while shipping goes on

        def watch(i: int) -> None:
            seen.append((i, central_outbox.backlog(shipper.conn)[0]))

        hall_day(h, monday + timedelta(days=7), 120, rng, after_each=watch)
        draining = [n for _, n in seen if n > 0]
        assert len(draining) >= 10, "the catching-up overlapped the hall's own work"
        # the hall's work only adds rows: a fall proves the centre took some while the hall served (on a busy
        # machine the day may still add rows faster than they ship, so the day's end is not compared)
        assert any(b < a for a, b in pairwise(draining)), draining
        wait_until(lambda: outbox_left(db) == 0, 180, "the week's backlog to be shipped")
        hall, centre_rows = hall_rows(db), central_rows(central_dsn, "test")
        for table in hall:
            assert hall[table] == centre_rows[table], table
        assert len(hall["tickets"]) == 8 * 60 + 60 and len({t.day for t in hall["tickets"]}) == 8
        assert len(hall["followups"]) > 0
    finally:
        shipper.stop()
        h.storage.close()
        centre.kill()


def test_the_backlog_command_and_a_hall_without_central(tmp_path):
    from click.testing import CliRunner
    from controller_kit import HALL_TOML, StoredHall
    from hallq.controller.cli import command

    db = tmp_path / "hall.db"
    h = StoredHall(db, HALL_TOML)
    assert h.at("09:30").take("A")["ok"]
    h.storage.close()
    r = CliRunner().invoke(command, ["central", "--db", str(db)])
    assert r.exit_code == 0 and "never shipped" in r.output
    import sqlite3

    conn = sqlite3.connect(db)
    assert conn.execute("SELECT count(*) FROM central_outbox").fetchone()[0] == 0  # nothing queued without [central]
    conn.close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("INSERT INTO central_outbox (kind, body) VALUES ('x', '{}')")  # seq 1, as if shipped long ago
    conn.execute("DELETE FROM central_outbox")
    stream, queued = central_outbox.enable(conn)
    assert queued == 1 and central_outbox.enable(conn) == (stream, 0)
    conn.close()
    r = CliRunner().invoke(command, ["central", "--db", str(db)])
    assert r.exit_code == 0 and "1 rows waiting" in r.output, r.output
    # a record restored from a backup ships again under a new stream (the controller is stopped)
    r = CliRunner().invoke(command, ["central", "--db", str(db), "--new-stream"])
    assert r.exit_code == 0 and "1 rows queued" in r.output and stream not in r.output, r.output
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT seq FROM central_outbox").fetchall() == [(1,)]  # the centre wants 1 first
    conn.close()
