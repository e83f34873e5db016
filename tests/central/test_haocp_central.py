"""The city's one 好差评 link: once the city says so, the centre uploads its halls' ratings (the hall's own
records, same keys), and each hall's own link is the fallback while the centre is away; the province keeps
exactly one record per rating."""

from __future__ import annotations

import random
import sqlite3
import sys
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "controller"))

from centralkit import SIM_HALL, CentralServer, hall_day, outbox_left, set_up_centre, wait_until
from controller_kit import StoredHall
from hallq.controller import config
from hallq.controller.haocp.uploader import Uploader
from hallq.controller.shipper import Shipper
from hallq.demo import province as province_mod


class HallClock:
    def __init__(self, h):
        self.h = h
        self.scaled = False

    def now(self):
        return self.h.now


def _statuses(db) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return dict(c.execute("SELECT status, count(*) FROM haocp_outbox GROUP BY status").fetchall())


def _keys(db) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return {k for (k,) in c.execute("SELECT key FROM haocp_outbox")}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_centre_uploads_when_the_city_says_so_and_the_hall_falls_back(central_dsn, tmp_path, monkeypatch):
    monkeypatch.setattr(province_mod, "REFUSE_SHARE", 0.0)  # busy once now and then (503), never refusing
    province = province_mod.Province(seed=15).start()
    tls_dir, creds = set_up_centre(tmp_path, central_dsn)
    from hallq.central.cli import command as central_cli

    r = CliRunner().invoke(central_cli, ["--db", central_dsn, "haocp", "on", "test"])
    assert r.exit_code == 0, r.output
    centre = CentralServer(tmp_path, central_dsn, tls_dir, extra=["--haocp-url", province.url]).start()
    toml = SIM_HALL.format(hall="test") + f'\n[haocp]\nurl = "{province.url}"\narea_code = "320312"\n'
    db = tmp_path / "hall.db"
    h = StoredHall(db, toml)
    section = config.CentralSection(url=centre.url, credentials=str(creds), ca=str(tls_dir / "ca.crt"),
                                    linger_seconds=0, retry_min_seconds=0.05, retry_max_seconds=0.3,
                                    haocp_fallback_minutes=24 * 60)  # hall time runs ~10,000x here
    shipper = Shipper(str(db), "test", section).start()
    uploader = Uploader(str(db), h.cfg.haocp, HallClock(h))
    uploader.fallback = timedelta(minutes=section.haocp_fallback_minutes)
    uploader.start()
    rng = random.Random(3)
    try:
        # the centre uploads: the hall's records become the centre's, the hall sends none of them itself
        hall_day(h, date(2026, 3, 2), 25, rng)
        keys = _keys(db)
        assert len(keys) >= 10
        wait_until(lambda: set(province.accepted) == keys, 60, "the centre to upload every record")
        assert _statuses(db) == {"central": len(keys)}
        assert uploader.tries == 0
        with psycopg.connect(central_dsn) as conn:
            assert conn.execute("SELECT status, count(*) FROM haocp_uploads GROUP BY status").fetchall() == [
                ("sent", len(keys))]
        # the centre away: the hall's own link uploads a record once it is older than the fallback
        centre.kill()
        hall_day(h, date(2026, 3, 3), 15, rng)
        late = _keys(db) - keys
        assert late and _statuses(db).get("pending") == len(late)
        assert uploader.tries == 0  # not yet: the centre may still take them over
        h.later(24 * 60 + 1)
        wait_until(lambda: set(province.accepted) == keys | late, 60, "the hall to upload the late records itself")
        assert _statuses(db) == {"central": len(keys), "sent": len(late)}
        # the centre back: it gets those records too and uploads them again: the province keeps one per key
        centre.start()
        wait_until(lambda: outbox_left(db) == 0, 60, "the hall's backlog to reach the centre")
        wait_until(lambda: province.counts["duplicate"] >= len(late), 60, "the centre's repeats of the late records")
        assert province.counts["accepted"] == len(keys | late) == len(province.accepted)
        assert _statuses(db) == {"central": len(keys), "sent": len(late)}  # the hall's own uploads stay sent
        r = CliRunner().invoke(central_cli, ["--db", central_dsn, "haocp", "status"])
        assert r.exit_code == 0 and f"sent {len(keys) + len(late)}" in r.output, r.output
        # the city gives the upload back: records left to the centre but not yet uploaded go back to the hall
        r = CliRunner().invoke(central_cli, ["--db", central_dsn, "haocp", "off", "test"])
        assert r.exit_code == 0
        centre.kill()
        hall_day(h, date(2026, 3, 4), 5, rng)
        centre.start()
        wait_until(lambda: outbox_left(db) == 0, 60, "the backlog to reach the centre")
        newest = _keys(db) - keys - late
        assert newest
        # (the records the centre had taken over go back to the hall as well: it cannot know which the centre
        # uploaded; the province answers those as duplicates)
        h.later(24 * 60 + 1)
        wait_until(lambda: _statuses(db) == {"sent": len(keys | late | newest)}, 60, "the hall to upload again")
        assert set(province.accepted) == keys | late | newest
        assert province.counts["accepted"] == len(province.accepted)
    finally:
        uploader.stop()
        shipper.stop()
        h.storage.close()
        centre.kill()
        province.stop()
