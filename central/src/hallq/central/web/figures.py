"""The city's figures: a daily roll-up of every hall's record, and the cross-hall reports read from it.

Why a roll-up: a month of a 300-hall city is ~9 million calls; summing them for every report page would
take seconds. :func:`rollup` condenses one day (all halls, or some) into ``city_figures``: one row per hall,
day, slice (``hall``, ``category``, ``item``, ``clerk``, ``half_hour``) and key, ≈76 rows a hall-day, plus
the city's own lines (hall ``'*'``) of the slices that span halls (items and half hours: ≈60 rows a day for
the whole city). It then rebuilds the spans of that day (``city_spans``): the same rows summed per calendar
month and per seven-day block of a month (days 1-7, 8-14, 15-21, 22-28, 29-end). A report
(:func:`report`) reads whole months and blocks from the spans and only the days at its edges from the days:
90 days of 300 halls by clerk read ≈ 9,000 month rows and a few days, not 270,000 day rows.

Everything is a sum of counts, of whole seconds' sums and of histogram buckets, so a span equals the days it
sums, and a report equals the same report summed from the raw rows (``tests/central/test_city_rollup.py``
checks it against the raw rows, also after a hall sends an old day late).

What each figure counts is what the hall's own report counts (``hallq.controller.stats``): the same slices,
the same rules (issued by the time of taking; the hall's ``called`` = tickets called, a slice's = calls;
waits to the first call for the hall and the half hours (by the time of taking), to each call for the
other slices; service = call to finish of served and transferred calls; satisfaction = (very satisfied +
satisfied) / rated). Half hours are the hall's local ones (``halls.timezone``).

One difference, said on every report page: the 90th percentile of a wait is read from a histogram
(:data:`EDGES`: 1-minute steps up to an hour, 5-minute steps to two hours, 30-minute steps to four), as the
upper edge of the bucket that holds the nearest-rank value: a day of one hall reads at most one step above
the hall's own report, never below it. Means and counts are exact.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import accumulate
from typing import Any

from hallq.shared.schemas import LEVELS, Figures

#: Slices of a report, in the order of the page.
KINDS = ("hall", "category", "item", "clerk", "half_hour")

#: Upper edges (seconds) of the wait histogram's buckets; the last bucket is open (4 hours and more).
EDGES: tuple[float, ...] = (
    *(60.0 * m for m in range(1, 61)),
    *(3600.0 + 300.0 * k for k in range(1, 13)),
    *(7200.0 + 1800.0 * k for k in range(1, 5)),
    math.inf,
)
NBUCKETS = len(EDGES)
HIST = [f"w{i:02d}" for i in range(NBUCKETS)]
LEVEL_COLS = [f"r_{lv}" for lv in LEVELS]
COUNT_COLS = ["issued", "called", "served", "noshow", "transferred", "wait_n", "wait_sum", "service_n",
              "service_sum", *LEVEL_COLS, *HIST]

#: The schema version (``hallq.central.db``) that has the city's tables (0002_city.sql, 0005_city_spans.sql, 0006_city_by_hall.sql).
SCHEMA_VERSION = 6
#: The hall of the city's own lines in ``city_figures`` / ``city_spans`` (not a hall id: hallq.central.halls).
CITY = "*"
#: The slices whose report lines span halls: the city keeps its own lines of them.
CITY_KINDS = ("item", "half_hour")


def _bucket_sql(w: str) -> str:
    """The histogram bucket (0-based) of a wait of ``w`` seconds, as SQL (matches :data:`EDGES`)."""
    return (f"(CASE WHEN {w} IS NULL THEN NULL WHEN {w} < 3600 THEN floor({w} / 60) WHEN {w} < 7200 THEN 60 + floor(({w} - 3600) / 300)"
            f" WHEN {w} < 14400 THEN 72 + floor(({w} - 7200) / 1800) ELSE 76 END)::int")


def bucket_of(seconds: float) -> int:
    """The bucket of a wait (Python twin of the SQL, for tests)."""
    for i, edge in enumerate(EDGES):
        if seconds < edge:
            return i
    return NBUCKETS - 1


def _half_hour_sql(ts: str) -> str:
    return (f"to_char(({ts}) AT TIME ZONE h.timezone, 'HH24:') ||"
            f" CASE WHEN extract(minute FROM ({ts}) AT TIME ZONE h.timezone) >= 30 THEN '30' ELSE '00' END")


# One pass over a day's tickets, calls and ratings: every record adds one fact row to each slice it counts
# in; the facts are then summed per hall, slice and key.
_ROLLUP = f"""
WITH t AS (
    SELECT t.hall, t.number, t.category, {_half_hour_sql("t.issued_at")} AS slot
    FROM tickets t JOIN halls h ON h.id = t.hall
    WHERE t.day = %(day)s AND (%(halls)s::text[] IS NULL OR t.hall = ANY(%(halls)s))
), c AS (
    SELECT c.hall, c.number, c.queue, c.staff_id, c.staff_name, c.item_code, c.item_name, c.first, c.outcome,
           c.wait_s::double precision AS wait, {_half_hour_sql("c.called_at")} AS slot,
           CASE WHEN c.ended_at IS NOT NULL AND c.outcome IN ('done', 'transferred')
                THEN extract(epoch FROM c.ended_at - c.called_at)::double precision END AS service
    FROM calls c JOIN halls h ON h.id = c.hall
    WHERE c.day = %(day)s AND (%(halls)s::text[] IS NULL OR c.hall = ANY(%(halls)s))
), r AS (
    SELECT r.hall, r.level, r.staff_id, r.staff_name, r.item_code, c.queue, {_half_hour_sql("r.at")} AS slot
    FROM ratings r JOIN halls h ON h.id = r.hall
    LEFT JOIN calls c ON c.day = r.day AND c.hall = r.hall AND c.id = r.call_id
        AND (%(halls)s::text[] IS NULL OR c.hall = ANY(%(halls)s))
    WHERE r.day = %(day)s AND (%(halls)s::text[] IS NULL OR r.hall = ANY(%(halls)s))
), f (hall, kind, key, name, issued, called, outcome, wait, service, level) AS (
    SELECT hall, 'hall', '', NULL, 1, 0, NULL, NULL::double precision, NULL::double precision, NULL FROM t
    UNION ALL SELECT hall, 'category', category, NULL, 1, 0, NULL, NULL, NULL, NULL FROM t
    UNION ALL SELECT hall, 'half_hour', slot, NULL, 1, 0, NULL, NULL, NULL, NULL FROM t
    UNION ALL SELECT hall, 'hall', '', NULL, 0, first::int, outcome, CASE WHEN first THEN wait END, service, NULL FROM c
    UNION ALL SELECT hall, 'category', queue, NULL, 0, 1, outcome, wait, service, NULL FROM c
    UNION ALL SELECT hall, 'clerk', staff_id, staff_name, 0, 1, outcome, wait, service, NULL FROM c
        WHERE staff_id IS NOT NULL
    UNION ALL SELECT hall, 'item', item_code, item_name, 0, 1, outcome, wait, service, NULL FROM c
        WHERE item_code IS NOT NULL
    UNION ALL SELECT hall, 'half_hour', slot, NULL, 0, 1, outcome, NULL, service, NULL FROM c
    UNION ALL SELECT c.hall, 'half_hour', t.slot, NULL, 0, 0, NULL, c.wait, NULL, NULL
        FROM c JOIN t ON t.hall = c.hall AND t.number = c.number WHERE c.first
    UNION ALL SELECT hall, 'hall', '', NULL, 0, 0, NULL, NULL, NULL, level FROM r
    UNION ALL SELECT hall, 'category', queue, NULL, 0, 0, NULL, NULL, NULL, level FROM r WHERE queue IS NOT NULL
    UNION ALL SELECT hall, 'clerk', staff_id, staff_name, 0, 0, NULL, NULL, NULL, level FROM r
        WHERE staff_id IS NOT NULL
    UNION ALL SELECT hall, 'item', item_code, NULL, 0, 0, NULL, NULL, NULL, level FROM r WHERE item_code IS NOT NULL
    UNION ALL SELECT hall, 'half_hour', slot, NULL, 0, 0, NULL, NULL, NULL, level FROM r
), m AS (
    SELECT hall, kind, key, max(name) AS name, sum(issued) AS issued, sum(called) AS called,
           count(*) FILTER (WHERE outcome = 'done') AS served, count(*) FILTER (WHERE outcome = 'noshow') AS noshow,
           count(*) FILTER (WHERE outcome = 'transferred') AS transferred, count(wait) AS wait_n,
           coalesce(sum(wait), 0) AS wait_sum, count(service) AS service_n, coalesce(sum(service), 0) AS service_sum,
           {", ".join(f"count(*) FILTER (WHERE level = '{lv}') AS r_{lv}" for lv in LEVELS)}
    FROM f GROUP BY hall, kind, key
), hb AS (  -- the histogram: first count per bucket (few rows), then spread the buckets into columns
    SELECT hall, kind, key, {_bucket_sql("wait")} AS b, count(*) AS n FROM f WHERE wait IS NOT NULL
    GROUP BY 1, 2, 3, 4
), hc AS (
    SELECT hall, kind, key, {", ".join(f"sum(n) FILTER (WHERE b = {i}) AS w{i:02d}" for i in range(NBUCKETS))}
    FROM hb GROUP BY hall, kind, key
)
INSERT INTO city_figures (day, kind, hall, key, name, {", ".join(COUNT_COLS)})
SELECT %(day)s, m.kind, m.hall, m.key, m.name, m.issued, m.called, m.served, m.noshow, m.transferred, m.wait_n,
       m.wait_sum, m.service_n, m.service_sum, {", ".join(f"m.r_{lv}" for lv in LEVELS)},
       {", ".join(f"coalesce(hc.w{i:02d}, 0)" for i in range(NBUCKETS))}
FROM m LEFT JOIN hc ON hc.hall = m.hall AND hc.kind = m.kind AND hc.key = m.key
ORDER BY m.kind, m.hall, m.key
"""

_COLS = ", ".join(COUNT_COLS)
_SUMS = ", ".join(f"sum({c})" for c in COUNT_COLS)

# The city's own lines of a day: the halls' lines of the slices that span halls, summed.
_CITY_LINES = f"""
INSERT INTO city_figures (day, kind, hall, key, name, {_COLS})
SELECT day, kind, '{CITY}', key, max(name), {_SUMS}
FROM city_figures WHERE day = %(day)s AND kind = ANY(%(kinds)s) AND hall <> '{CITY}'
GROUP BY day, kind, key ORDER BY kind, key
"""

# The spans (the month and the seven-day block) that hold a day, rebuilt from the days for some halls.
_BLOCK = "date_trunc('month', day)::date + (extract(day FROM day)::int - 1) / 7 * 7"
_SPANS = f"""
INSERT INTO city_spans (span, day, kind, hall, key, name, {_COLS})
SELECT 'month', %(month)s::date, kind, hall, key, max(name), {_SUMS}
FROM city_figures WHERE day >= %(month)s AND day < %(next_month)s AND hall = ANY(%(halls)s)
GROUP BY kind, hall, key
UNION ALL
SELECT 'week', %(block)s::date, kind, hall, key, max(name), {_SUMS}
FROM city_figures WHERE day >= %(block)s AND day <= %(block_end)s AND hall = ANY(%(halls)s)
GROUP BY kind, hall, key
ORDER BY 1, 3, 4, 5
"""


def month_of(d: date) -> date:
    return d.replace(day=1)


def next_month(d: date) -> date:
    return (d.replace(day=28) + timedelta(days=4)).replace(day=1)


def block_of(d: date) -> tuple[date, date]:
    """The seven-day block of a month that holds ``d`` (first and last day; the last block ends the month)."""
    first = d.replace(day=1 + (d.day - 1) // 7 * 7)
    return first, min(first + timedelta(days=6), next_month(d) - timedelta(days=1))


def respan_all(conn: Any) -> None:
    """Rebuild every city line and span from ``city_figures`` (after rows were written there some other way
    than by :func:`rollup`, as the benchmark does); migration 0005_city_spans does the same once."""
    with conn.transaction():
        conn.execute(f"DELETE FROM city_figures WHERE hall = '{CITY}'")
        conn.execute("DELETE FROM city_spans")
        conn.execute(f"INSERT INTO city_figures (day, kind, hall, key, name, {_COLS})"
                     f" SELECT day, kind, '{CITY}', key, max(name), {_SUMS} FROM city_figures"
                     f" WHERE kind = ANY(%s) GROUP BY day, kind, key", (list(CITY_KINDS),))
        conn.execute(f"INSERT INTO city_spans (span, day, kind, hall, key, name, {_COLS})"
                     f" SELECT 'month', date_trunc('month', day)::date, kind, hall, key, max(name), {_SUMS}"
                     f" FROM city_figures GROUP BY 2, kind, hall, key"
                     f" UNION ALL SELECT 'week', {_BLOCK}, kind, hall, key, max(name), {_SUMS}"
                     f" FROM city_figures GROUP BY 2, kind, hall, key")


def _rebuild(conn: Any, day: date, halls: list[str] | None) -> None:
    """The city's lines of ``day`` and the spans holding it, for ``halls`` (all when None) and the city."""
    conn.execute(f"DELETE FROM city_figures WHERE day = %s AND hall = '{CITY}'", (day,))
    conn.execute(_CITY_LINES, {"day": day, "kinds": list(CITY_KINDS)})
    if halls is None:
        halls = [h for (h,) in conn.execute("SELECT id FROM halls")]
    targets = [*halls, CITY]
    month, (b0, b1) = month_of(day), block_of(day)
    conn.execute("DELETE FROM city_spans WHERE ((span = 'month' AND day = %s) OR (span = 'week' AND day = %s))"
                 " AND hall = ANY(%s)", (month, b0, targets))
    conn.execute(_SPANS, {"month": month, "next_month": next_month(day), "block": b0, "block_end": b1,
                          "halls": targets})


#: Up to this many halls are rolled up by index, and at most this many in one transaction by :func:`catch_up`.
FEW_HALLS = 50


def rollup(conn: Any, day: date, halls: Sequence[str] | None = None, *, now: Any = None) -> int:
    """Recompute the figures of ``day`` for ``halls`` (every hall when None) in one transaction; returns
    the rows written. Run again whenever more of that day's record arrives: it replaces, never adds."""
    hl = list(halls) if halls is not None else None
    with conn.transaction():
        if hl is None or len(hl) > FEW_HALLS:
            # one pass of hash joins and a hash aggregate, whatever the planner believes of a day's rows that
            # autovacuum has not analysed yet (a nested loop over 300 halls' calls takes minutes, not seconds);
            # a few halls' day is read by index (≈ 0.1 s a hall-day, against ≈ 2 s a hall by hash joins)
            conn.execute("SET LOCAL enable_nestloop = off")
        conn.execute("SET LOCAL work_mem = '256MB'")
        if hl is None:
            conn.execute("DELETE FROM city_figures WHERE day = %s", (day,))
        else:
            conn.execute("DELETE FROM city_figures WHERE day = %s AND hall = ANY(%s)", (day, hl))
        # one roll-up of a day at a time (the city's lines and the spans sum the halls' rows of the day)
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_KEY & 0x7FFFFFFF, day.toordinal()))
        cur = conn.execute(_ROLLUP, {"day": day, "halls": hl})
        n = cur.rowcount
        _rebuild(conn, day, hl)
        conn.execute(
            "INSERT INTO city_rollups (day, hall, rolled_at) SELECT %(day)s, h.id, coalesce(%(now)s, now())"
            " FROM halls h WHERE %(halls)s::text[] IS NULL OR h.id = ANY(%(halls)s)"
            " ON CONFLICT (day, hall) DO UPDATE SET rolled_at = excluded.rolled_at",
            {"day": day, "halls": hl, "now": now})
    return n


# -- reading ---------------------------------------------------------------------------------------------
@dataclass
class Row:
    """One line of a report: what it is (``hall``, ``key``, ``name``), its figures and its histogram."""

    kind: str
    hall: str | None
    key: str
    name: str
    counts: dict[str, float] = field(default_factory=dict)
    hist: list[int] = field(default_factory=lambda: [0] * NBUCKETS)

    def add(self, counts: dict[str, float], hist: Iterable[int]) -> None:
        for k, v in counts.items():
            self.counts[k] = self.counts.get(k, 0) + v
        self.hist = [a + b for a, b in zip(self.hist, hist, strict=True)]

    @property
    def figures(self) -> Figures:
        c = self.counts
        ratings = {lv: int(n) for lv, col in _LEVEL_COLS if (n := c.get(col, 0))}
        rated = sum(ratings.values())
        good = ratings.get("very_satisfied", 0) + ratings.get("satisfied", 0)
        wn, sn = int(c.get("wait_n", 0)), int(c.get("service_n", 0))
        return Figures(
            issued=int(c.get("issued", 0)), called=int(c.get("called", 0)), served=int(c.get("served", 0)),
            noshow=int(c.get("noshow", 0)), transferred=int(c.get("transferred", 0)),
            wait_mean_min=round(c["wait_sum"] / wn / 60, 1) if wn else None,
            wait_p90_min=p90_minutes(self.hist),
            service_mean_min=round(c["service_sum"] / sn / 60, 1) if sn else None,
            ratings=ratings,  # type: ignore[arg-type]
            satisfaction=round(good / rated, 4) if rated else None,
        )


def p90_minutes(hist: Sequence[int]) -> float | None:
    """The nearest-rank 90th percentile from a histogram: the upper edge (minutes) of the bucket holding it;
    the open last bucket reads as its lower edge (4 hours)."""
    running = list(accumulate(hist))
    n = running[-1] if running else 0
    if n == 0:
        return None
    # the first bucket whose running count reaches the rank
    return _P90_MIN[bisect_left(running, max(math.ceil(0.9 * n), 1))]


#: Each bucket's P90 reading in minutes: its upper edge; the open last bucket's lower edge.
_P90_MIN = tuple(round((e if math.isfinite(e) else EDGES[i - 1]) / 60, 1) for i, e in enumerate(EDGES))
_LEVEL_COLS = tuple(zip(LEVELS, LEVEL_COLS, strict=True))


def pieces(start: date, end: date, last: date | None) -> tuple[list[date], list[date], list[date]]:
    """What to read for the days ``start``..``end`` when ``last`` is the latest day rolled up: (days of
    ``city_figures``, months and blocks of ``city_spans``). A span is read when the range holds every day of it
    that can have rows (up to ``last``); otherwise its days in the range are read one by one."""
    days: list[date] = []
    months: list[date] = []
    blocks: list[date] = []
    if last is None:
        return days, months, blocks
    end = min(end, last)
    m = month_of(start)
    while m <= end:
        m_end = min(next_month(m) - timedelta(days=1), last)
        if start <= m and end >= m_end:
            months.append(m)
        else:
            b = max(m, start)
            b = block_of(b)[0]
            while b <= min(end, m_end):
                b0, b1 = block_of(b)
                b1 = min(b1, last)
                if start <= b0 and end >= b1:
                    blocks.append(b0)
                else:
                    d = max(b0, start)
                    while d <= min(b1, end):
                        days.append(d)
                        d += timedelta(days=1)
                b = block_of(b)[1] + timedelta(days=1)
        m = next_month(m)
    return days, months, blocks


def report(conn: Any, kind: str, start: date, end: date, halls: Sequence[str] | None = None,
           names: dict[tuple[str, str], str] | None = None) -> list[Row]:
    """The report of ``kind`` over the days ``start``..``end`` (inclusive) for ``halls`` (all when None).

    Lines: ``hall`` one per hall; ``category`` one per category (code and name: halls that give the same
    code the same name share a line); ``item`` one per service item code (items are province codes);
    ``clerk`` one per clerk of a hall; ``half_hour`` one per half hour of the day. ``names``: (hall, code)
    -> category name from the halls' configs.

    Reads whole months and seven-day blocks from ``city_spans`` and the other days from ``city_figures``, in
    one snapshot (a roll-up committing meanwhile changes neither half)."""
    return _read(conn, kind, start, end, halls, names, whole=False)


def whole(conn: Any, start: date, end: date, halls: Sequence[str] | None = None) -> Row | None:
    """The total line of a report over ``start``..``end`` for ``halls`` (all when None): the hall lines
    summed in PostgreSQL (one row comes back, not one per hall); None when those days hold no record."""
    rows = _read(conn, "hall", start, end, halls, None, whole=True)
    return rows[0] if rows else None


def _read(conn: Any, kind: str, start: date, end: date, halls: Sequence[str] | None,
          names: dict[tuple[str, str], str] | None, *, whole: bool) -> list[Row]:
    if kind not in KINDS:
        raise ValueError(f"a report is by one of {', '.join(KINDS)}, not {kind!r}")
    if end < start:
        raise ValueError("the report's last day is before its first")
    hl = list(halls) if halls is not None else None
    # lines that span halls (items, half hours) are the city's own lines when every hall is asked for
    by_hall = kind in ("hall", "category", "clerk")
    if hl is None and kind in CITY_KINDS:
        where_hall, hall_arg = "hall = %(city)s", None
    elif hl is None:
        where_hall, hall_arg = "hall <> %(city)s", None
    else:
        where_hall, hall_arg = "hall = ANY(%(halls)s)", hl
    cols = f"hall, key, name, {_COLS}"
    # every line comes summed out of PostgreSQL (a report by category over 300 halls: 5 rows, not 1,500), its
    # histogram as one array (3,000 clerks' lines: 3,000 arrays, not 231,000 values to convert one by one)
    if whole:
        line, group, join = "NULL, '', NULL", "", ""
    elif kind == "category":  # halls that give a code the same name share a line
        line, group = "NULL, x.key, coalesce(n.name, x.key)", " GROUP BY x.key, coalesce(n.name, x.key)"
        join = (" LEFT JOIN unnest(%(nh)s::text[], %(nk)s::text[], %(nn)s::text[]) AS n (hall, key, name)"
                " ON n.hall = x.hall AND n.key = x.key")
    else:
        line = f"{'x.hall' if by_hall else 'NULL'}, x.key, max(x.name)"
        group, join = f" GROUP BY {'x.hall, ' if by_hall else ''}x.key", ""
    sums = ", ".join(f"sum(x.{c})" for c in COUNT_COLS[:-NBUCKETS])
    hist = "ARRAY[" + ", ".join(f"sum(x.{c})" for c in HIST) + "]::bigint[]"
    sql = (f"SELECT {line}, count(*), {sums}, {hist} FROM ("
           f" SELECT {cols} FROM city_figures WHERE kind = %(kind)s AND day = ANY(%(days)s) AND {where_hall}"
           f" UNION ALL SELECT {cols} FROM city_spans WHERE kind = %(kind)s AND span = 'month'"
           f" AND day = ANY(%(months)s) AND {where_hall}"
           f" UNION ALL SELECT {cols} FROM city_spans WHERE kind = %(kind)s AND span = 'week'"
           f" AND day = ANY(%(blocks)s) AND {where_hall}"
           f") x{join}{group}")
    known = sorted((names or {}).items())
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        # a few thousand to ~50,000 rows read by index: starting parallel workers or compiling the 92 sums
        # (JIT, chosen once the planner's cost passes jit_above_cost) costs more than it saves. Measured on 300
        # halls x 90 days, 2 loaded cores: report by hall 90 d 121-259 ms with 2 workers, 32-43 ms without;
        # the whole city's clerks over a mid-month range (~50,000 rows) 600-735 ms with workers and JIT,
        # 414-535 without JIT, 273-531 without either (central/README.md, Sizing)
        conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
        conn.execute("SET LOCAL jit = off")
        last = conn.execute("SELECT max(day) FROM city_figures").fetchone()[0]
        days, months, blocks = pieces(start, end, last)
        rows = conn.execute(sql, {"kind": kind, "days": days, "months": months, "blocks": blocks,
                                  "halls": hall_arg, "city": CITY, "nh": [h for (h, _), _ in known],
                                  "nk": [k for (_, k), _ in known], "nn": [v for _, v in known]},
                            binary=True).fetchall()  # (the histograms' arrays come back ~10 % sooner in binary)
    out: list[Row] = []
    names_ = COUNT_COLS[:-NBUCKETS]
    for hall, key, name, n, *vals in rows:
        if not n:  # (a total over days without any record)
            continue
        counts = dict(zip(names_, vals[:-1], strict=True))
        if whole:
            row = Row("total", None, "", "", counts, vals[-1])
        elif kind == "hall":
            row = Row(kind, hall, hall, hall, counts, vals[-1])
        elif kind == "category":
            row = Row(kind, None, key, name, counts, vals[-1])
        elif kind in ("item", "clerk"):
            row = Row(kind, hall, key, name or key, counts, vals[-1])
        else:
            row = Row(kind, None, key, key, counts, vals[-1])
        out.append(row)
    out.sort(key=lambda r: (r.hall or "", r.key, r.name))
    return out


def total(rows: Iterable[Row], kind: str) -> Row | None:
    """The whole city's line (a report by hall or half hour adds up to it; by category, item or clerk a
    call counts once per line, so those add up to the hall lines too, and ratings without a category,
    item or clerk are left out of them)."""
    t = Row("total", None, "", "")
    any_ = False
    for r in rows:
        t.add(r.counts, r.hist)
        any_ = True
    return t if any_ else None


#: Records received this long before the last roll-up's mark are looked at again (a batch committed after
#: the mark was taken may carry an earlier ``received_at``); rolling a hall-day up twice changes nothing.
OVERLAP = "2 minutes"


def changed_days(conn: Any, since: Any) -> dict[date, set[str]]:
    """The hall-days whose record changed since ``since`` (None: every hall-day there is).

    Exactly those, found from the ingest log: every record row carries the outbox stream and sequence number
    of its latest version (``src_stream``, ``src_seq``), and ``batches`` says which sequence numbers arrived
    when. A hall-day changed when one of its rows' latest versions came in a batch received since then (the
    rows are looked for on the days between the batches' oldest and newest queueing time, a day either side
    for the time zones). So a refresh of today rolls up only the halls that sent something of today, and a
    hall that sends an old day late gets that day — and only that day — rolled up again."""
    out: dict[date, set[str]] = defaultdict(set)
    if since is None:
        for table in ("tickets", "calls", "ratings"):
            for day, hall in conn.execute(f"SELECT DISTINCT day, hall FROM {table}").fetchall():
                out[day].add(hall)
        return dict(out)
    parts = " UNION ".join(
        f"SELECT r.day, r.hall FROM b JOIN {t} r ON r.hall = b.hall AND r.day BETWEEN b.d0 AND b.d1"
        f" AND r.src_stream = b.stream AND r.src_seq BETWEEN b.lo AND b.hi" for t in ("tickets", "calls", "ratings"))
    rows = conn.execute(
        f"WITH b AS MATERIALIZED (SELECT hall, stream, min(first_seq) AS lo, max(last_seq) AS hi,"
        f" min(queued_first)::date - 1 AS d0, max(queued_last)::date + 1 AS d1 FROM batches"
        f" WHERE received_at > %s::timestamptz - interval '{OVERLAP}' GROUP BY hall, stream) {parts}",
        (since,)).fetchall()
    for day, hall in rows:
        out[day].add(hall)
    return dict(out)


#: Only one roll-up runs at a time in the whole city (several web servers may share one database).
LOCK_KEY = 0x6861_6C6C_7163  # "hallqc"


def catch_up(conn: Any) -> dict[date, int]:
    """Roll up every hall-day whose record grew since the last time (all of them the first time); returns
    the rows written per day, or {} when another process holds the roll-up lock. ``conn``: the primary."""
    if not conn.execute("SELECT pg_try_advisory_lock(%s)", (LOCK_KEY,)).fetchone()[0]:
        return {}
    try:
        mark_row = conn.execute("SELECT received FROM city_rollup_mark").fetchone()
        started = conn.execute("SELECT now()").fetchone()[0]
        known = {h for (h,) in conn.execute("SELECT id FROM halls")}
        done: dict[date, int] = {}
        for day, halls in sorted(changed_days(conn, mark_row[0] if mark_row else None).items()):
            ordered = sorted(halls)
            # a refresh of today rolls up the halls that sent something since the last one, a few at a time
            # (short transactions; a few halls' day is read by index); a whole city-day in one pass
            chunks = ([ordered] if len(ordered) == len(known) and len(ordered) > FEW_HALLS else
                      [ordered[i:i + FEW_HALLS] for i in range(0, len(ordered), FEW_HALLS)])
            done[day] = sum(rollup(conn, day, chunk) for chunk in chunks)
        with conn.transaction():
            conn.execute("INSERT INTO city_rollup_mark (one, received) VALUES (true, %s)"
                         " ON CONFLICT (one) DO UPDATE SET received = excluded.received", (started,))
        return done
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
