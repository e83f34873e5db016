"""What the city's pages read from the central record (PostgreSQL), through a small connection pool on the
report database (the hot standby when there is one; the primary otherwise). Nothing here writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

FOLLOWUP_STATUSES = ("open", "overdue", "closed")
#: The halls' list is read again at most this often (seconds).
HALLS_TTL = 30.0
T = TypeVar("T")


@dataclass(frozen=True)
class HallInfo:
    id: str
    name: str
    name_en: str
    timezone: str

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass
class FollowUpRow:
    hall: str
    hall_name: str
    id: int
    ticket: str
    window: int
    level: str
    rated_at: datetime
    due: date
    staff: str | None
    case_id: str | None
    item_code: str | None
    closed_at: datetime | None
    called_back_by: str | None
    action: str | None
    days_left: int  # days until the due date (negative: overdue by that many days)

    @property
    def overdue(self) -> bool:
        return self.closed_at is None and self.days_left < 0


class Unavailable(RuntimeError):
    """The report database cannot be reached (the pages say so; the live pages go on without it)."""


class Reader:
    def __init__(self, dsn: str, *, pool_size: int = 4):
        self.dsn = dsn
        self.pool = ConnectionPool(dsn, min_size=1, max_size=pool_size, open=False,
                                   kwargs={"autocommit": True, "application_name": "hallq-city-web"})
        self._local = threading.local()
        self._halls: dict[str, HallInfo] = {}
        self._halls_at = -1e9
        self._lock = threading.Lock()

    def open(self, wait: bool = True, timeout: float = 30.0) -> Reader:
        self.pool.open(wait=wait, timeout=timeout)
        return self

    def close(self) -> None:
        self.pool.close()

    def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` with one pooled connection (its helpers reach it through :meth:`conn_for_reports`)."""
        try:
            with self.pool.connection(timeout=10) as conn:
                self._local.conn = conn
                try:
                    return fn()
                finally:
                    self._local.conn = None
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise Unavailable(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__) from None

    def conn_for_reports(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            raise RuntimeError("conn_for_reports() outside Reader.run()")
        return conn

    # -- halls ---------------------------------------------------------------------------------------
    def halls(self) -> dict[str, HallInfo]:
        """The halls registered centrally (cached for :data:`HALLS_TTL`)."""
        with self._lock:
            if time.monotonic() - self._halls_at < HALLS_TTL:
                return self._halls
        try:
            with self.pool.connection(timeout=5) as conn:
                rows = conn.execute("SELECT id, name, coalesce(name_en, name), timezone FROM halls ORDER BY id").fetchall()
        except (psycopg.OperationalError, PoolTimeout):
            with self._lock:  # the last list known; asked again at the next page
                return self._halls
        found = {r[0]: HallInfo(*r) for r in rows}
        with self._lock:
            self._halls, self._halls_at = found, time.monotonic()
        return found

    def category_names(self, live: Any) -> dict[tuple[str, str], str]:
        """(hall, category code) -> the category's name: from each hall's live config, else from the one the
        city kept (``city_hall_configs``) while the hall is not heard from."""
        out: dict[tuple[str, str], str] = {}
        for hall, config in self.conn_for_reports().execute("SELECT hall, config FROM city_hall_configs"):
            for c in (config or {}).get("categories", []):
                if isinstance(c, dict) and isinstance(c.get("code"), str) and isinstance(c.get("name"), str):
                    out[(hall, c["code"])] = c["name"]
        for hall in live.halls():
            snap = live.snapshot(hall)
            if snap is not None and snap.config is not None:
                for c in snap.config.categories:
                    out[(hall, c.code)] = c.name
        return out

    def rolled_at(self, start: date, end: date) -> datetime | None:
        """When the oldest roll-up of the days ``start``..``end`` was made (None: not rolled up yet)."""
        row = self.conn_for_reports().execute(
            "SELECT min(rolled_at) FROM city_rollups WHERE day BETWEEN %s AND %s", (start, end)).fetchone()
        return row[0] if row else None

    # -- follow-ups ------------------------------------------------------------------------------------
    def followups(self, now: datetime, *, hall: str | None = None, status: str = "open",
                  limit: int = 500) -> list[FollowUpRow]:
        """Follow-ups across halls: ``open`` (due first), ``overdue`` (open past their due day, in the hall's
        own time zone) or ``closed`` (the latest first)."""
        if status not in FOLLOWUP_STATUSES:
            raise ValueError(status)
        halls = self.halls()
        where = "f.closed_at IS NULL" if status in ("open", "overdue") else "f.closed_at IS NOT NULL"
        if status == "overdue":
            where += " AND f.due < h.today"
        order = "f.due, f.rated_at" if status != "closed" else "f.closed_at DESC"
        # each hall's "today" once (its own time zone), not once per follow-up
        sql = (f"WITH h AS MATERIALIZED (SELECT id, (%(now)s AT TIME ZONE timezone)::date AS today FROM halls)"
               f" SELECT f.hall, f.id, f.ticket, f.window_no, f.level, f.rated_at, f.due, f.staff_name, f.case_id,"
               f" f.item_code, f.closed_at, f.called_back_by, f.action, f.due - h.today"
               f" FROM followups f JOIN h ON h.id = f.hall"
               f" WHERE {where} AND (%(hall)s::text IS NULL OR f.hall = %(hall)s)"
               f" ORDER BY {order} LIMIT %(limit)s")
        rows = self.conn_for_reports().execute(sql, {"now": now, "hall": hall, "limit": limit}).fetchall()
        out = []
        for r in rows:
            info = halls.get(r[0])
            tz = info.tz if info else None
            local = [v.astimezone(tz) if isinstance(v, datetime) and tz else v for v in r[1:]]
            out.append(FollowUpRow(r[0], info.name if info else r[0], *local))
        return out

    def followup_counts(self, now: datetime) -> dict[str, int]:
        row = self.conn_for_reports().execute(
            "WITH h AS MATERIALIZED (SELECT id, (%(now)s AT TIME ZONE timezone)::date AS today FROM halls)"
            " SELECT count(*), count(*) FILTER (WHERE f.due < h.today), count(*) FILTER (WHERE f.due = h.today)"
            " FROM followups f JOIN h ON h.id = f.hall WHERE f.closed_at IS NULL", {"now": now}).fetchone()
        return {"open": row[0], "overdue": row[1], "due_today": row[2]}
