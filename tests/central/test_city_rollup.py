"""The city's roll-up is exact: every report (by hall, category, item, clerk, half hour; all halls or some; a
day, a block, a month, ranges across a month's end) read from the roll-up (``city_figures`` days, the city's
own lines and the ``city_spans`` months and seven-day blocks) equals the same report summed here, row by row,
from the raw record (tickets, calls, ratings) — also after a hall that was offline sends an old day late,
and after the roll-up of today is refreshed while today's record grows.

The reference below is written from the rules (``hallq.central.web.figures`` docstring), not from the
roll-up's SQL; that those rules are the hall's own is shown by test_city_web (each hall's own report)."""

from __future__ import annotations

import math
import sys
from collections import defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from city_kit import Shipper, hall_records, register
from dashkit import HALL_TOML
from seed import seed

FIRST = date(2026, 10, 24)  # 16 days across the end of October: blocks, a month's end, a month's start
DAYS = 16
LATE = date(2026, 10, 29)   # the day hall "south" sends only after the others were rolled up


def _toml(hall: str) -> str:
    return HALL_TOML.replace('id = "web"', f'id = "{hall}"')


def _day_of(r) -> date | None:
    return getattr(r, "day", None)


def _slot(ts: datetime, tz: ZoneInfo) -> str:
    t = ts.astimezone(tz)
    return f"{t.hour:02d}:{'30' if t.minute >= 30 else '00'}"


def reference(conn, kind: str, start: date, end: date, halls: list[str] | None) -> dict:
    """(line) -> (counts, histogram) summed from the raw rows by the report's rules."""
    from hallq.central.web import figures
    from hallq.shared.schemas import LEVELS

    tz = {h: ZoneInfo(z) for h, z in conn.execute("SELECT id, timezone FROM halls")}
    want = set(halls) if halls is not None else set(tz)
    lines: dict = defaultdict(lambda: (defaultdict(float), [0] * figures.NBUCKETS))

    def ident(hall: str, key: str):
        return {"hall": hall, "category": key, "item": key, "clerk": (hall, key), "half_hour": key}[kind]

    def add(hall, k, key, *, issued=0, called=0, outcome=None, wait=None, service=None, level=None):
        if k != kind or key is None:
            return
        counts, hist = lines[ident(hall, key)]
        counts["issued"] += issued
        counts["called"] += called
        counts["served"] += outcome == "done"
        counts["noshow"] += outcome == "noshow"
        counts["transferred"] += outcome == "transferred"
        if wait is not None:
            counts["wait_n"] += 1
            counts["wait_sum"] += wait
            hist[figures.bucket_of(wait)] += 1
        if service is not None:
            counts["service_n"] += 1
            counts["service_sum"] += service
        if level is not None:
            counts[f"r_{level}"] += 1

    rng = {"a": start, "b": end}
    slots = {}
    for hall, number, category, issued_at in conn.execute(
            "SELECT hall, number, category, issued_at FROM tickets WHERE day BETWEEN %(a)s AND %(b)s", rng):
        if hall not in want:
            continue
        slots[(hall, number, issued_at.astimezone(tz[hall]).date())] = _slot(issued_at, tz[hall])
        for k, key in (("hall", ""), ("category", category), ("half_hour", _slot(issued_at, tz[hall]))):
            add(hall, k, key, issued=1)
    queue_of = {}
    for (hall, day, cid, number, queue, staff, item, first, outcome, wait, called_at,
         ended_at) in conn.execute(
            "SELECT hall, day, id, number, queue, staff_id, item_code, first, outcome, wait_s, called_at, ended_at"
            " FROM calls WHERE day BETWEEN %(a)s AND %(b)s", rng):
        queue_of[(hall, day, cid)] = queue
        if hall not in want:
            continue
        service = ((ended_at - called_at).total_seconds()
                   if ended_at is not None and outcome in ("done", "transferred") else None)
        add(hall, "hall", "", called=int(first), outcome=outcome, wait=wait if first else None, service=service)
        for k, key in (("category", queue), ("clerk", staff), ("item", item)):
            add(hall, k, key, called=1, outcome=outcome, wait=wait, service=service)
        add(hall, "half_hour", _slot(called_at, tz[hall]), called=1, outcome=outcome, service=service)
        if first:
            add(hall, "half_hour", slots.get((hall, number, day)), wait=wait)
    for hall, day, level, staff, item, call_id, at in conn.execute(
            "SELECT hall, day, level, staff_id, item_code, call_id, at FROM ratings WHERE day BETWEEN %(a)s AND %(b)s",
            rng):
        if hall not in want:
            continue
        for k, key in (("hall", ""), ("category", queue_of.get((hall, day, call_id))), ("clerk", staff),
                       ("item", item), ("half_hour", _slot(at, tz[hall]))):
            add(hall, k, key, level=level)
    assert set(LEVELS)  # the levels' columns are r_<level>
    return {k: (dict(c), h) for k, (c, h) in lines.items()}


def _ident(row) -> object:
    return {"hall": row.hall, "category": row.key, "item": row.key, "clerk": (row.hall, row.key),
            "half_hour": row.key}[row.kind]


def assert_reports_exact(conn, ranges, hall_sets) -> int:
    from hallq.central.web import figures

    checked = 0
    for start, end in ranges:
        for halls in hall_sets:
            for kind in figures.KINDS:
                got = {_ident(r): r for r in figures.report(conn, kind, start, end, halls)}
                ref = reference(conn, kind, start, end, halls)
                where = (kind, str(start), str(end), halls)
                assert set(got) == set(ref), where
                for line, (counts, hist) in ref.items():
                    row = got[line]
                    assert row.hist == hist, (*where, line, "histogram")
                    for col in figures.COUNT_COLS[:-figures.NBUCKETS]:
                        mine, theirs = row.counts.get(col, 0), counts.get(col, 0)
                        if col.endswith("_sum"):
                            assert math.isclose(mine, theirs, rel_tol=1e-9, abs_tol=1e-6), (*where, line, col)
                        else:
                            assert mine == theirs, (*where, line, col, mine, theirs)
                checked += 1
    return checked


@pytest.fixture
def city(central_dsn, tmp_path):
    from hallq.central import db
    from hallq.controller import config

    conn = db.connect(central_dsn, autocommit=True)
    records = {}
    for i, hall in enumerate(("north", "south")):
        register(conn, hall, f"{hall}大厅", hall)
        path = tmp_path / hall / "hall.db"
        path.parent.mkdir()
        seed(path, config.parse(_toml(hall)), FIRST, DAYS, 40, seed=11 + i)
        records[hall] = hall_records(path)
    db.ensure_months(conn, [FIRST + timedelta(days=k) for k in range(DAYS + 1)])
    yield conn, records
    conn.close()


def test_rolled_up_reports_equal_the_raw_record_also_after_a_late_day(city):
    from hallq.central.web import figures

    conn, records = city
    north, south = Shipper("north"), Shipper("south")
    north.send(conn, records["north"])
    early = [r for r in records["south"] if _day_of(r) != LATE]
    late = [r for r in records["south"] if _day_of(r) == LATE]
    assert late and early
    south.send(conn, early)
    done = figures.catch_up(conn)
    assert set(done) >= {FIRST + timedelta(days=k) for k in range(DAYS)}
    last = FIRST + timedelta(days=DAYS - 1)
    ranges = [(FIRST, last), (date(2026, 10, 1), date(2026, 11, 30)), (date(2026, 11, 1), last),
              (date(2026, 10, 29), date(2026, 10, 31)), (date(2026, 10, 27), date(2026, 11, 3)),
              (LATE, LATE), (date(2026, 10, 22), date(2026, 10, 28)), (last, last)]
    # the ranges use every way of reading: months, blocks, single days, the city's own lines
    kinds_of_read = [figures.pieces(a, b, last) for a, b in ranges]
    assert any(m for _, m, _ in kinds_of_read) and any(b for _, _, b in kinds_of_read)
    assert any(d for d, _, _ in kinds_of_read)
    hall_sets = [None, ["south"], ["north", "south"]]
    assert assert_reports_exact(conn, ranges, hall_sets) == len(ranges) * len(hall_sets) * len(figures.KINDS)
    before = figures.report(conn, "hall", LATE, LATE, ["south"])

    # the batches so far came an hour before that catch-up (it looks again at those received shortly before
    # its mark, in case one committed late: not these)
    conn.execute("UPDATE batches SET received_at = received_at - interval '1 hour'")
    # south was offline: its late day arrives now; the next catch-up rolls that day up again
    south.send(conn, late)
    done = figures.catch_up(conn)
    assert set(done) == {LATE}  # that day only, and only for south
    assert conn.execute("SELECT count(*) FROM city_rollups WHERE day = %s AND rolled_at > (SELECT max(rolled_at)"
                        " FROM city_rollups WHERE day <> %s)", (LATE, LATE)).fetchone()[0] == 1
    after = figures.report(conn, "hall", LATE, LATE, ["south"])
    assert after[0].counts["issued"] > (before[0].counts.get("issued", 0) if before else 0)
    assert assert_reports_exact(conn, ranges, hall_sets) == len(ranges) * len(hall_sets) * len(figures.KINDS)


def test_pieces_cover_each_day_once():
    from hallq.central.web import figures

    last = date(2026, 11, 27)
    for start in (date(2026, 8, 30), date(2026, 10, 1), date(2026, 10, 29), date(2026, 11, 22)):
        for span in (1, 3, 7, 8, 30, 31, 45, 90, 120):
            end = start + timedelta(days=span - 1)
            days, months, blocks = figures.pieces(start, end, last)
            covered = list(days)
            for m in months:
                d = m
                while d < figures.next_month(m) and d <= last:
                    covered.append(d)
                    d += timedelta(days=1)
            for b in blocks:
                b0, b1 = figures.block_of(b)
                assert b0 == b
                d = b0
                while d <= min(b1, last):
                    covered.append(d)
                    d += timedelta(days=1)
            want = [start + timedelta(days=k) for k in range(span) if start + timedelta(days=k) <= last]
            assert sorted(covered) == want, (start, end)
            assert len(days) <= 12 or span <= 14, (start, end, len(days))  # at most 6 loose days at each edge
    assert figures.block_of(date(2026, 10, 31)) == (date(2026, 10, 29), date(2026, 10, 31))
    assert figures.block_of(date(2026, 2, 28)) == (date(2026, 2, 22), date(2026, 2, 28))
    assert figures.pieces(date(2026, 12, 1), date(2026, 12, 5), last) == ([], [], [])


def test_p90_is_the_nearest_rank_buckets_edge():
    """``p90_minutes`` (a table of each bucket's reading, looked up by bisecting the running counts) equals the
    rule written out: sort every wait's bucket, take the ceil(0.9 n)-th, read its upper edge in minutes (the
    open last bucket: its lower edge) — on histograms of every shape, none to all in the last bucket."""
    import random

    from hallq.central.web import figures

    def rule(hist):
        waits = sorted(b for b, n in enumerate(hist) for _ in range(n))
        if not waits:
            return None
        b = waits[-(-9 * len(waits) // 10) - 1]
        edge = figures.EDGES[b] if b < figures.NBUCKETS - 1 else figures.EDGES[b - 1]
        return round(edge / 60, 1)

    rnd = random.Random(15)
    hists = [[0] * figures.NBUCKETS, [0] * (figures.NBUCKETS - 1) + [3], [1] + [0] * (figures.NBUCKETS - 1)]
    for _ in range(3000):
        h = [0] * figures.NBUCKETS
        for _ in range(rnd.choice((1, 2, 9, 10, 11, 50, 400))):
            h[min(int(rnd.expovariate(1 / rnd.choice((3, 15, 40)))), figures.NBUCKETS - 1)] += 1
        hists.append(h)
    assert [figures.p90_minutes(h) for h in hists] == [rule(h) for h in hists]
    assert figures.p90_minutes(hists[1]) == 240.0 and figures.p90_minutes(hists[2]) == 1.0


def test_followup_pages_walk_the_whole_list_in_order(city, central_dsn):
    """The follow-up list pages by cursor (keyset): walking every page gives each follow-up exactly once, in
    the list's order; the counts agree with the rows; a forged cursor is refused."""
    from datetime import UTC

    from hallq.central.web import data

    conn, records = city
    Shipper("north").send(conn, records["north"])
    Shipper("south").send(conn, records["south"])
    # a follow-up for every rating (due 0-8 days after it; ties of due day and of rating time too), every third
    # closed a day after, one closed time shared by several
    conn.execute("DELETE FROM followups")
    conn.execute("INSERT INTO followups (hall, day, id, rating_id, ticket, window_no, level, rated_at, opened_at, due,"
                 " staff_id, staff_name, closed_at, called_back_by, action, src_stream, src_seq)"
                 " SELECT hall, day, id, id, ticket, window_no, 'dissatisfied', date_trunc('hour', at), at,"
                 " day + (id % 9)::int, staff_id, staff_name,"
                 " CASE WHEN id % 3 = 0 THEN date_trunc('day', at) + interval '1 day' END,"
                 " CASE WHEN id % 3 = 0 THEN '回访员' END, CASE WHEN id % 3 = 0 THEN '已回访' END, 't', id FROM ratings")
    now = datetime(2026, 11, 8, 10, 0, tzinfo=UTC)
    today = date(2026, 11, 8)
    reader = data.Reader(central_dsn).open()
    try:
        for status, where, order in (
                ("open", "closed_at IS NULL", "due, rated_at, hall, id"),
                ("overdue", f"closed_at IS NULL AND due < '{today}'", "due, rated_at, hall, id"),
                ("closed", "closed_at IS NOT NULL", "closed_at DESC, hall DESC, id DESC")):
            for hall in (None, "south"):
                cond = where + (f" AND hall = '{hall}'" if hall else "")
                want = [tuple(r) for r in conn.execute(f"SELECT hall, id FROM followups WHERE {cond} ORDER BY {order}")]
                assert len(want) > 7, (status, hall, len(want))  # more than one page
                got, after, pages = [], None, 0
                while True:
                    page = reader.run(lambda a=after, h=hall, s=status: reader.followups(now, hall=h, status=s, limit=7, after=a))
                    got += [(r.hall, r.id) for r in page.rows]
                    pages += 1
                    assert len(page.rows) <= 7
                    if page.next is None:
                        break
                    after = page.next
                assert got == want, (status, hall)
                assert pages == -(-len(want) // 7) or (len(want) % 7 == 0 and pages == len(want) // 7 + 1)
        counts = reader.run(lambda: reader.followup_counts(now))
        assert counts["open"] == conn.execute("SELECT count(*) FROM followups WHERE closed_at IS NULL").fetchone()[0]
        assert counts["overdue"] == conn.execute(
            "SELECT count(*) FROM followups WHERE closed_at IS NULL AND due < %s", (today,)).fetchone()[0]
        assert counts["due_today"] == conn.execute(
            "SELECT count(*) FROM followups WHERE closed_at IS NULL AND due = %s", (today,)).fetchone()[0]
        south = reader.run(lambda: reader.followup_counts(now, "south"))
        assert south["open"] == conn.execute(
            "SELECT count(*) FROM followups WHERE closed_at IS NULL AND hall = 'south'").fetchone()[0]
        for bad in ("x", "2026-11-01~nope~north~1", "2026-11-01~2026-11-01T10:00:00+00:00~north~1; DROP TABLE halls"):
            with pytest.raises(ValueError):
                reader.run(lambda b=bad: reader.followups(now, status="open", after=b))
    finally:
        reader.close()
