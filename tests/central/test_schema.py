"""The central schema: migrations, monthly partitions, per-hall credentials, and the ingest rules."""

from __future__ import annotations

import os
import stat
from datetime import UTC, date, datetime, timedelta, timezone

import msgspec
import psycopg
import pytest
from click.testing import CliRunner
from hallq.central import db, halls, ingest
from hallq.shared import central as contract

TZ = timezone(timedelta(hours=8))


def test_migrate_makes_every_table_partitioned_by_month_and_is_idempotent(pg_dsn):
    with db.connect(pg_dsn, autocommit=True) as conn:
        before, after = db.migrate(conn, today=date(2026, 12, 15))
        assert (before, after) == (0, db.VERSION)
        assert db.migrate(conn, today=date(2026, 12, 15)) == (db.VERSION, db.VERSION)
        parents = dict(conn.execute(
            "SELECT c.relname, p.partstrat FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid"
        ).fetchall())
        assert parents == {t: "r" for t in db.PARTITIONED}
        parts = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid").fetchall()}
        for t in db.PARTITIONED:  # this month's and the next (across the year's end)
            assert {f"{t}_p202612", f"{t}_p202701"} <= parts
        # no DEFAULT partition: a row of a month without its partition is refused, not parked somewhere
        conn.execute("INSERT INTO halls (id, name, token_sha256) VALUES ('H', 'h', 'x')")
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO staff_sessions (hall, day, id, window_no, staff_id, staff_name, started_at,"
                         " src_stream, src_seq) VALUES ('H', '2030-01-01', 1, 1, 's', 'n', now(), 'x', 1)")
        assert db.ensure_months(conn, [date(2030, 1, 9)], ["staff_sessions"]) == ["staff_sessions_p203001"]
        conn.execute("INSERT INTO staff_sessions (hall, day, id, window_no, staff_id, staff_name, started_at,"
                     " src_stream, src_seq) VALUES ('H', '2030-01-01', 1, 1, 's', 'n', now(), 'x', 1)")
        assert conn.execute("SELECT count(*) FROM staff_sessions_p203001").fetchone()[0] == 1


def test_a_newer_schema_is_refused(central_dsn):
    with db.connect(central_dsn, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, 'future')", (db.VERSION + 1,))
        with pytest.raises(db.CentralDbError, match="newer hallq"):
            db.migrate(conn)


def test_hall_credentials_are_written_0600_and_only_their_hash_is_kept(central_dsn, tmp_path):
    out = tmp_path / "h1.toml"
    r = CliRunner().invoke(_cli(), ["--db", central_dsn, "hall", "add", "H1", "--name", "一号大厅", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    creds = halls.Credentials.load(out)
    assert creds.hall == "H1" and creds.token not in r.output
    with db.connect(central_dsn, autocommit=True) as conn:
        assert halls.authenticate(conn, creds.token) == "H1"
        assert halls.authenticate(conn, "0" * 64) is None
        stored = conn.execute("SELECT token_sha256 FROM halls").fetchone()[0]
        assert creds.token.encode() not in bytes(stored) and bytes(stored) == halls.digest(creds.token)
    # a second add is refused and the file is not overwritten
    r = CliRunner().invoke(_cli(), ["--db", central_dsn, "hall", "add", "H1", "--name", "x", "--out", str(out)])
    assert r.exit_code != 0 and "exists" in r.output
    r = CliRunner().invoke(_cli(), ["--db", central_dsn, "hall", "rotate", "H1", "--out", str(tmp_path / "n.toml")])
    assert r.exit_code == 0, r.output
    with db.connect(central_dsn, autocommit=True) as conn:
        assert halls.authenticate(conn, creds.token) is None  # the old token stops working at once
        assert halls.authenticate(conn, halls.Credentials.load(tmp_path / "n.toml").token) == "H1"
    r = CliRunner().invoke(_cli(), ["--db", central_dsn, "hall", "revoke", "H1"])
    assert r.exit_code == 0
    with db.connect(central_dsn, autocommit=True) as conn:
        assert halls.authenticate(conn, halls.Credentials.load(tmp_path / "n.toml").token) is None
    os.chmod(out, 0o644)
    with pytest.raises(halls.CredentialsError, match="chmod 600"):
        halls.Credentials.load(out)
    r = CliRunner().invoke(_cli(), ["--db", "host=127.0.0.1 password=secret", "hall", "list"])
    assert r.exit_code != 0 and "pgpass" in r.output


def _cli():
    from hallq.central.cli import command

    return command


def _ticket(n: int, status: str = "waiting", day: date = date(2026, 11, 30)) -> contract.TicketRow:
    return contract.TicketRow(day=day, number=f"A{n:03d}", category="A", seq=n,
                              issued_at=datetime(2026, 11, 30, 9, 0, n % 60, tzinfo=TZ), status=status, queue="A")


def _batch(first: int, records, stream: str = "a" * 32, hall: str = "H1") -> contract.Batch:
    now = datetime.now(UTC)
    # through JSON and the shared decoder, as the endpoint receives it
    raw = contract.Batch(hall=hall, stream=stream, first=first, records=list(records), queued_first=now,
                         queued_last=now)
    return msgspec.json.decode(msgspec.json.encode(raw), type=contract.Batch)


def test_ingest_applies_in_order_once_and_asks_for_a_gap_again(central_dsn):
    with db.connect(central_dsn, autocommit=True) as conn:
        halls.add(conn, "H1", "一号大厅")
        # a new stream must start at 1
        out = ingest.apply(conn, "H1", _batch(5, [_ticket(1)]))
        assert (out.status, out.ack.expected) == (409, 1)
        out = ingest.apply(conn, "H1", _batch(1, [_ticket(1), _ticket(2), _ticket(1, "called")]))
        assert (out.status, out.ack.acked, out.applied) == (200, 3, 3)
        # a gap: refused, nothing written, the centre asks for seq 4
        out = ingest.apply(conn, "H1", _batch(6, [_ticket(3)]))
        assert (out.status, out.ack.expected) == (409, 4)
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 2
        # a repeat overlapping the end: the known rows skipped, the new one applied
        out = ingest.apply(conn, "H1", _batch(2, [_ticket(2), _ticket(1, "called"), _ticket(2, "done")]))
        assert (out.status, out.ack.acked, out.applied) == (200, 4, 1)
        # the whole batch again: nothing changes
        out = ingest.apply(conn, "H1", _batch(1, [_ticket(1), _ticket(2), _ticket(1, "called"), _ticket(2, "done")]))
        assert (out.status, out.ack.acked, out.applied) == (200, 4, 0)
        got = conn.execute("SELECT number, status, src_seq FROM tickets ORDER BY number").fetchall()
        assert got == [("A001", "called", 3), ("A002", "done", 4)]
        assert conn.execute("SELECT acked, records FROM streams").fetchone() == (4, 4)
        # a day no record can hold (it would make partitions) is refused, nothing written
        out = ingest.apply(conn, "H1", _batch(5, [_ticket(7, day=date(1970, 1, 1))]))
        assert out.status == 422 and "outside" in (out.ack.error or "")
        out = ingest.apply(conn, "H1", _batch(5, [_ticket(7, day=date.today() + timedelta(days=40))]))
        assert out.status == 422
        assert conn.execute("SELECT acked FROM streams").fetchone() == (4,)
        # another hall's batch under H1's token is refused
        out = ingest.apply(conn, "H1", _batch(5, [_ticket(9)], hall="H2"))
        assert out.status == 403
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 2


def test_a_batch_is_applied_whole_or_not_at_all(central_dsn):
    with db.connect(central_dsn, autocommit=True) as conn:
        halls.add(conn, "H1", "一号大厅")
        bad_session = contract.StaffSessionRow(id=1, window=1, staff_id="s" * 10, staff_name="n",
                                               started_at=datetime(2026, 11, 30, 8, tzinfo=TZ))
        conn.execute("ALTER TABLE staff_sessions ADD CONSTRAINT no_s CHECK (staff_id <> 'ssssssssss')")
        with pytest.raises(psycopg.errors.CheckViolation):
            ingest.apply(conn, "H1", _batch(1, [_ticket(1), bad_session]))
        assert conn.execute("SELECT count(*) FROM tickets").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM streams").fetchone()[0] == 0


def test_commands_on_a_database_without_the_schema_say_to_migrate(pg_dsn):
    r = CliRunner().invoke(_cli(), ["--db", pg_dsn, "hall", "list"])
    assert r.exit_code == 1 and "run hallq central migrate" in r.output, r.output
    r = CliRunner().invoke(_cli(), ["--db", pg_dsn, "migrate"])
    assert r.exit_code == 0 and f"0 -> {db.VERSION}" in r.output
    r = CliRunner().invoke(_cli(), ["--db", pg_dsn, "hall", "list"])
    assert r.exit_code == 0 and "no halls yet" in r.output


def test_device_events_daily_figures_and_followup_notes_are_held_and_checked(central_dsn):
    from hallq.shared.schemas import Figures, Stats

    d = date(2026, 11, 30)
    event = contract.DeviceEventRow(id=1, day=d, at=datetime(2026, 11, 30, 9, 5, tzinfo=TZ), device="kiosk-1",
                                    role="kiosk", status="online", problems=["paper_out"], change="health")
    figures = Stats(date=d.isoformat(), at=datetime(2026, 12, 1, tzinfo=TZ), hall=Figures(issued=3, called=2))
    day_row = contract.DailyFiguresRow(day=d, at=figures.at, figures=figures)
    note = contract.FollowUpNoteRow(id=1, day=d, followup_id=4, at=datetime(2026, 11, 30, 2, tzinfo=UTC),
                                    user="张主任", note="已电话回访")
    again = msgspec.structs.replace(day_row, figures=msgspec.structs.replace(figures, hall=Figures(issued=4)))
    with db.connect(central_dsn, autocommit=True) as conn:
        halls.add(conn, "H1", "一号大厅")
        out = ingest.apply(conn, "H1", _batch(1, [event, day_row, note, again]))
        assert out.status == 200 and out.applied == 4
        assert conn.execute("SELECT device, status, problems, change, window_no FROM device_events").fetchall() == [
            ("kiosk-1", "online", ["paper_out"], "health", None)]
        (held,), = conn.execute("SELECT figures FROM daily_figures WHERE hall = 'H1' AND day = %s", (d,)).fetchall()
        assert msgspec.convert(held, Stats) == again.figures  # the newest version
        assert conn.execute('SELECT followup_id, "user", note FROM followup_notes').fetchall() == [
            (4, "张主任", "已电话回访")]
    # the shared schemas refuse what does not fit, before anything is written
    good = msgspec.json.decode(msgspec.json.encode(_batch(1, [event, day_row, note])))
    for i, field, value in ((0, "change", "reboot"), (0, "problems", "paper_out"), (1, "figures", {"date": "x"}),
                            (2, "note", ""), (2, "followup_id", -1)):
        bad = msgspec.json.decode(msgspec.json.encode(good))
        bad["records"][i][field] = value
        with pytest.raises(msgspec.ValidationError):
            msgspec.json.decode(msgspec.json.encode(bad), type=contract.Batch)
