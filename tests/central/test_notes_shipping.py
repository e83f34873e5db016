"""The hall dashboard's follow-up notes reach the centre exactly once, through the real parts: a manager writes
them on the dashboard's follow-up page (``hallq dashboard`` with ``[central]``), the dashboard ships its own
``dashboard.db`` outbox with the controller's shipper, over HTTPS to ``hallq central serve`` behind a fault
proxy; the centre is killed, restarted, answers 500 before and after applying and hangs past the time-out, and
the dashboard is killed mid-stream. Afterwards the centre holds every note once, row for row, and (the
controller ships beside it, in its own stream) the hall's whole record too."""

from __future__ import annotations

import re
import sqlite3
import sys
from datetime import date
from pathlib import Path

import msgspec
import psycopg
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from centralkit import (
    CentralServer,
    FaultProxy,
    central_rows,
    hall_rows,
    outbox_left,
    set_up_centre,
    wait_until,
)
from dashkit import HALL_TOML, WebHall
from hallq.shared.central import FollowUpNoteRow

CENTRAL = """
[central]
url = "{url}"
credentials = "{creds}"
ca = "{ca}"
batch = 3
linger_seconds = 0.2
timeout_seconds = 1.0
retry_min_seconds = 0.1
retry_max_seconds = 0.5
"""


def _history(db: Path, cfg) -> None:
    from seed import seed

    seed(db, cfg, date(2026, 11, 16), 5, 60, seed=2)  # four bad reviews to follow up


def _rollup_equals_the_halls_own_figures(dsn: str, days) -> None:
    """The centre's roll-up of the shipped record (``hallq.central.web.figures``) gives, for each closed day, the
    figures the hall's own report gave (shipped as ``daily_figures``); the wait P90 comes from the roll-up's
    histogram and may read one step above the hall's (central/README.md)."""
    from hallq.central import db
    from hallq.central.web import figures

    with db.connect(dsn, autocommit=True) as conn:
        for d in days:
            figures.rollup(conn, d.day, ["web"])
            (line,) = figures.report(conn, "hall", d.day, d.day, ["web"])
            got, own = line.figures, d.figures.hall
            assert own.issued > 0
            for f in ("issued", "called", "served", "noshow", "transferred", "wait_mean_min", "service_mean_min",
                      "ratings", "satisfaction"):
                assert getattr(got, f) == getattr(own, f), (d.day, f, getattr(got, f), getattr(own, f))
            assert own.wait_p90_min is None or own.wait_p90_min <= got.wait_p90_min <= own.wait_p90_min + 5


def _dashboard_notes(state: Path) -> list[FollowUpNoteRow]:
    from hallq.dashboard.notes_outbox import note_json

    conn = sqlite3.connect(f"file:{state}?mode=ro", uri=True)
    try:
        rows = [msgspec.json.decode(b, type=FollowUpNoteRow)
                for (b,) in conn.execute(f"SELECT {note_json('n')} FROM followup_notes n ORDER BY id")]
    finally:
        conn.close()
    return rows


def _central_notes(dsn: str) -> list[FollowUpNoteRow]:
    with psycopg.connect(dsn) as conn:
        cur = conn.execute('SELECT id, day, followup_id, at, "user", note FROM followup_notes WHERE hall = %s'
                           " ORDER BY id", ("web",))
        return [FollowUpNoteRow(id=a, day=b, followup_id=c, at=d, user=e, note=f) for a, b, c, d, e, f in cur]


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_followup_notes_ship_exactly_once_through_faults_and_a_killed_dashboard(central_dsn, tmp_path):
    tls_dir, creds = set_up_centre(tmp_path, central_dsn, hall="web")
    centre = CentralServer(tmp_path, central_dsn, tls_dir).start()
    proxy = FaultProxy(centre.url, tls_dir, hang_s=2.0).start()
    toml = HALL_TOML + CENTRAL.format(url=proxy.url, creds=creds, ca=tls_dir / "ca.crt")
    try:
        hall = WebHall(tmp_path / "hall", toml, history=_history)
    except BaseException:  # nothing of the centre left running when the hall cannot start
        proxy.stop()
        centre.kill()
        raise
    written: list[str] = []
    try:
        c = hall.http("boss")
        page = c.get("/followups", headers={"accept": "text/html"})
        fids = sorted({int(x) for x in re.findall(r"/followups/(\d+)/note", page.text)})
        assert len(fids) >= 3, (page.status_code, page.text[-1500:])  # the seeded history has bad reviews

        def note(k: int) -> None:
            text = f"第{k}次回访：已电话联系市民 (call-back {k})"
            if k == 1:  # a manager types the number called: it is kept and shipped masked
                text = "已拨打 13800138000，身份证 110101199003071234 核对"
            r = c.post(f"/followups/{fids[k % len(fids)]}/note", data={"note": text},
                       headers={"x-csrf-token": c.csrf})
            assert r.status_code == 303 and "done=note" in r.headers["location"], r.text
            written.append(text.replace("13800138000", "138****8000")
                           .replace("110101199003071234", "110***********1234"))

        for k in range(3):
            note(k)
        centre.kill()  # SIGKILL: the notes wait in dashboard.db
        for k in range(3, 6):
            note(k)
        centre.start()
        for mode in ("500_before", "500_after", "hang_before", "hang_after"):
            proxy.mode = mode
            for k in range(len(written), len(written) + 3):
                note(k)
            wait_until(lambda mode=mode: proxy.seen.get(mode, 0) >= 4, 60, f"batches through {mode}")
        proxy.mode = "pass"
        # the dashboard killed mid-stream (its outbox is in dashboard.db), then started again
        hall.dash.proc.kill()
        hall.dash.proc.wait(10)
        hall.dash.start()
        c = hall.http("boss")
        for k in range(len(written), len(written) + 3):
            note(k)
        r = c.post(f"/followups/{fids[0]}/close", data={"action": "回访 139-1234-5678，已整改"},
                   headers={"x-csrf-token": c.csrf})
        assert r.status_code == 303, r.text
        wait_until(lambda: outbox_left(hall.dash.state) == 0 and outbox_left(hall.controller.db) == 0, 120,
                   "both outboxes to empty")
        notes = _dashboard_notes(hall.dash.state)
        assert [n.note for n in notes] == written
        assert _central_notes(central_dsn) == notes  # every note once, row for row
        # the controller's record came beside them, in its own stream, whole
        hall_record, centre_record = hall_rows(hall.controller.db), central_rows(central_dsn, "web")
        assert {t: len(v) for t, v in centre_record.items()} == {t: len(v) for t, v in hall_record.items()}
        assert centre_record == hall_record
        assert len(hall_record["daily_figures"]) == 5  # the seeded days, once they were over
        _rollup_equals_the_halls_own_figures(central_dsn, hall_record["daily_figures"])
        closed = next(f for f in centre_record["followups"] if f.id == fids[0])
        assert closed.action == "回访 139****5678，已整改"
        for path in (hall.dash.state, hall.controller.db):  # nowhere in clear
            data = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
            for clear in ("13800138000", "110101199003071234", "139-1234-5678"):
                assert clear.encode() not in data
        with psycopg.connect(central_dsn) as conn:
            streams = conn.execute("SELECT stream, acked, records FROM streams WHERE hall = 'web'").fetchall()
            assert len(streams) == 2 and all(acked == records for _, acked, records in streams)
            for stream, acked, _ in streams:  # each seq applied once, none missing
                got = conn.execute("SELECT sum(records), min(first_seq), max(last_seq) FROM batches"
                                   " WHERE hall = 'web' AND stream = %s", (stream,)).fetchone()
                assert got == (acked, 1, acked)
            notes_stream = conn.execute("SELECT DISTINCT src_stream FROM followup_notes").fetchall()
            assert len(notes_stream) == 1 and notes_stream[0][0] in {s for s, _, _ in streams}
    finally:
        hall.close()
        proxy.stop()
        centre.kill()
    log = hall.dash.log.read_text()
    assert "cannot ship the follow-ups' notes" in log
    from hallq.shared.central import Credentials

    assert Credentials.load(creds).token not in log


def test_notes_written_before_the_centre_was_configured_are_queued_once(tmp_path):
    from datetime import UTC, datetime

    from hallq.dashboard import notes_outbox
    from hallq.dashboard.accounts import Accounts, User

    acc = Accounts(tmp_path / "dashboard.db")
    user = User(name="boss", role="manager", display_name="张主任", windows=())
    acc.add_note(7, user, "before the centre", datetime(2026, 11, 30, 1, tzinfo=UTC))
    conn = sqlite3.connect(tmp_path / "dashboard.db", isolation_level=None)
    assert conn.execute("SELECT count(*) FROM central_outbox").fetchone()[0] == 0  # no stream: nothing queued
    sid, queued = notes_outbox.enable(conn)
    assert queued == 1 and notes_outbox.enable(conn) == (sid, 0)
    acc.add_note(7, user, "after", datetime(2026, 11, 30, 2, tzinfo=UTC))
    rows = notes_outbox.pending(conn, 10)
    got = [msgspec.json.decode(r.body, type=FollowUpNoteRow) for r in rows]
    assert [(n.followup_id, n.note, n.day) for n in got] == [(7, "before the centre", date(2026, 11, 30)),
                                                            (7, "after", date(2026, 11, 30))]
    assert notes_outbox.acknowledge(conn, rows[0].seq) == 1 and len(notes_outbox.pending(conn, 10)) == 1
    acc.close()
    conn.close()


def test_the_dashboard_says_what_of_its_notes_waits(tmp_path):
    import subprocess
    from datetime import UTC, datetime

    from centralkit import HALLQ
    from hallq.dashboard import notes_outbox
    from hallq.dashboard.accounts import Accounts, User

    state = tmp_path / "dashboard.db"

    def said() -> str:
        r = subprocess.run([HALLQ, "dashboard", "--state", str(state), "central"], capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        return r.stdout

    acc = Accounts(state)
    acc.add_note(3, User("boss", "manager", "张主任", ()), "已回访", datetime(2026, 11, 30, 1, tzinfo=UTC))
    assert "never been shipped" in said()
    conn = sqlite3.connect(state, isolation_level=None)
    notes_outbox.enable(conn)
    assert "1 notes waiting" in said()
    notes_outbox.acknowledge(conn, 1)
    assert "every note is at the centre" in said()
    conn.close()
    acc.close()
