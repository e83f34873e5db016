"""A day's report as rows: what ``hallq controller report`` prints and the dashboard shows and exports.

One definition of the report's slices and columns, so the command's ``--csv`` and the dashboard's CSV are
the same bytes for the same day.
"""

from __future__ import annotations

import csv
import sqlite3
from datetime import date, datetime
from typing import IO

from hallq.shared.schemas import LEVELS, Figures, Stats

from . import stats

COLUMNS = ["issued", "called", "served", "noshow", "transferred", "wait_mean_min", "wait_p90_min",
           "service_mean_min", "idle_waiting_min"]
COLUMN_NAMES = ["取号", "叫号", "办结", "过号", "转号", "平均等候", "P90等候", "平均办理", "有人等候时空闲"]
#: The columns only windows and clerks have (empty for the hall and the half hours).
WINDOW_ONLY = {"idle_waiting_min"}
CSV_HEADER = ["date", "slice", "name", *COLUMNS, *LEVELS, "satisfaction"]


def meta(conn: sqlite3.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT key, value FROM meta").fetchall())


def rows(conn: sqlite3.Connection, d: date, now: datetime) -> tuple[Stats, list[tuple[str, str, Figures]]]:
    """The day's figures and its report rows: (slice, name, figures) for the hall, each window, each clerk
    and each half hour, in that order."""
    m = meta(conn)
    s = stats.compute(conn, d, now)
    staff = stats.staff_names(conn, d)
    wnames = stats.window_names(conn)
    out: list[tuple[str, str, Figures]] = [("hall", m.get("name", m.get("hall", "")), s.hall)]
    out += [("window", wnames.get(k, k), f) for k, f in s.windows.items()]
    out += [("clerk", f"{staff.get(k, '')} ({k})", f) for k, f in s.staff.items()]
    out += [("half_hour", k, f) for k, f in s.half_hours.items()]
    return s, out


def values(f: Figures) -> list[object]:
    return [f.issued, f.called, f.served, f.noshow, f.transferred,
            "" if f.wait_mean_min is None else f.wait_mean_min,
            "" if f.wait_p90_min is None else f.wait_p90_min,
            "" if f.service_mean_min is None else f.service_mean_min,
            "" if f.idle_waiting_min is None else f.idle_waiting_min]


def write_csv(out: IO[str], conn: sqlite3.Connection, d: date, now: datetime, *, header: bool = True) -> None:
    """The day's report as CSV (``hallq controller report --csv``)."""
    s, found = rows(conn, d, now)
    w = csv.writer(out)
    if header:
        w.writerow(CSV_HEADER)
    for kind, name, f in found:
        cells = values(f)
        if kind in ("window", "clerk"):
            cells[0] = ""  # issued: numbers are taken at a kiosk, not at a window
        w.writerow([s.date, kind, name, *cells, *(f.ratings.get(lv, 0) for lv in LEVELS),
                    "" if f.satisfaction is None else f.satisfaction])
