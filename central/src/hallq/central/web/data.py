"""What the city's pages read from the central record (PostgreSQL), through a small connection pool on the
report database (the hot standby when there is one; the primary otherwise). Nothing here writes."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

FOLLOWUP_STATUSES = ("open", "overdue", "closed")
#: Follow-ups a page shows.
PAGE = 100
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
    days_left: int  # days until the due date in the hall's own today (negative: overdue by that many days)
    #: the hall dashboard's call-back notes on it, oldest first: (when, in the hall's time; who; the note)
    notes: list[tuple[datetime, str, str]] = field(default_factory=list)

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

    def category_names(self, live: Any, halls: list[str] | None = None) -> dict[tuple[str, str], str]:
        """(hall, category code) -> the category's name: from each hall's live config, else from the one the
        city kept (``city_hall_configs``) while the hall is not heard from. ``halls``: only these (all when
        None)."""
        out: dict[tuple[str, str], str] = {}
        for hall, config in self.conn_for_reports().execute(
                "SELECT hall, config FROM city_hall_configs WHERE %(h)s::text[] IS NULL OR hall = ANY(%(h)s)",
                {"h": halls}):
            for c in (config or {}).get("categories", []):
                if isinstance(c, dict) and isinstance(c.get("code"), str) and isinstance(c.get("name"), str):
                    out[(hall, c["code"])] = c["name"]
        for hall in live.halls():
            if halls is not None and hall not in halls:
                continue
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
    def _todays(self, now: datetime, hall: str | None) -> dict[date, list[str]]:
        """Each hall's "today" (its own time zone) -> the halls whose today it is (one or two groups in
        practice: a city's halls share a time zone)."""
        out: dict[date, list[str]] = {}
        for h, info in self.halls().items():
            if hall is None or h == hall:
                out.setdefault(now.astimezone(info.tz).date(), []).append(h)
        return out

    def _due_cond(self, op: str, todays: dict[date, list[str]], args: dict[str, Any], every: bool) -> str:
        """SQL: the follow-up's due day ``op`` its hall's today. ``every``: the groups cover every hall asked
        for (then one group needs no hall test)."""
        if not todays:
            return "false"
        if len(todays) == 1 and every:
            args["t0"] = next(iter(todays))
            return f"f.due {op} %(t0)s"
        parts = []
        for i, (today, halls) in enumerate(sorted(todays.items())):
            args[f"t{i}"], args[f"h{i}"] = today, halls
            parts.append(f"(f.hall = ANY(%(h{i})s) AND f.due {op} %(t{i})s)")
        return "(" + " OR ".join(parts) + ")"

    def followups(self, now: datetime, *, hall: str | None = None, status: str = "open",
                  limit: int = PAGE, after: str | None = None) -> FollowUpPage:
        """One page of follow-ups across halls: ``open`` (due first), ``overdue`` (open past their due day, in
        the hall's own time zone) or ``closed`` (the latest first). ``after``: the page's cursor (the last
        line of the previous page, :attr:`FollowUpPage.next`); pages read by index, however deep."""
        if status not in FOLLOWUP_STATUSES:
            raise ValueError(status)
        halls = self.halls()
        todays = self._todays(now, hall)
        args: dict[str, Any] = {"hall": hall, "limit": limit + 1}
        where = ["f.closed_at IS NULL" if status in ("open", "overdue") else "f.closed_at IS NOT NULL"]
        if hall is not None:
            where.append("f.hall = %(hall)s")
        if status == "overdue":
            where.append(self._due_cond("<", todays, args, every=True))
        if status == "closed":
            order = "f.closed_at DESC, f.hall DESC, f.id DESC"
            keyset = "(f.closed_at, f.hall, f.id) < (%(k0)s, %(k1)s, %(k2)s)"
        else:
            order = "f.due, f.rated_at, f.hall, f.id"
            keyset = "(f.due, f.rated_at, f.hall, f.id) > (%(k0)s, %(k1)s, %(k2)s, %(k3)s)"
        if after:
            for i, v in enumerate(_cursor(after, status)):
                args[f"k{i}"] = v
            where.append(keyset)
        sql = (f"SELECT f.hall, f.id, f.ticket, f.window_no, f.level, f.rated_at, f.due, f.staff_name, f.case_id,"
               f" f.item_code, f.closed_at, f.called_back_by, f.action FROM followups f"
               f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT %(limit)s")
        rows = self.conn_for_reports().execute(sql, args).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        out = []
        for r in rows:
            info = halls.get(r[0])
            tz = info.tz if info else None
            today = now.astimezone(tz).date() if tz else now.date()
            local = [v.astimezone(tz) if isinstance(v, datetime) and tz else v for v in r[1:]]
            out.append(FollowUpRow(r[0], info.name if info else r[0], *local, days_left=(r[6] - today).days))
        self._attach_notes(out)
        nxt = None
        if more and rows:
            last = rows[-1]
            keys = ([last[10].isoformat(), last[0], str(last[1])] if status == "closed"
                    else [last[6].isoformat(), last[5].isoformat(), last[0], str(last[1])])
            nxt = "~".join(keys)
        return FollowUpPage(out, nxt)

    def _attach_notes(self, rows: list[FollowUpRow]) -> None:
        """Each follow-up's notes (one query for the page, by the index on (hall, followup_id))."""
        if not rows:
            return
        found = self.conn_for_reports().execute(
            'SELECT n.hall, n.followup_id, n.at, n."user", n.note FROM followup_notes n'
            " JOIN unnest(%s::text[], %s::bigint[]) AS k(hall, id) ON n.hall = k.hall AND n.followup_id = k.id"
            " ORDER BY n.at, n.id", ([r.hall for r in rows], [r.id for r in rows])).fetchall()
        by = {(r.hall, r.id): r for r in rows}
        halls = self.halls()
        for hall, fid, at, user, note in found:
            info = halls.get(hall)
            by[(hall, fid)].notes.append((at.astimezone(info.tz) if info else at, user, note))

    def device_events(self, now: datetime, hall: str) -> list[DeviceDay]:
        """A hall's devices that went offline or had a hardware problem today (its own time zone), as its
        controller recorded them (``device_events``): per device, how often it went offline, and its last event."""
        info = self.halls().get(hall)
        tz = info.tz if info else None
        today = now.astimezone(tz).date() if tz else now.date()
        rows = self.conn_for_reports().execute(
            "SELECT device, role, window_no, count(*) FILTER (WHERE status = 'offline' AND change = 'status'),"
            " (array_agg(status ORDER BY at DESC, id DESC))[1], (array_agg(problems ORDER BY at DESC, id DESC))[1],"
            " max(at) FROM device_events WHERE hall = %s AND day = %s GROUP BY device, role, window_no"
            " HAVING count(*) FILTER (WHERE status = 'offline' OR problems <> '[]'::jsonb) > 0 ORDER BY device",
            (hall, today)).fetchall()
        return [DeviceDay(d, role, w, int(n), st, list(pr), at.astimezone(tz) if tz else at)
                for d, role, w, n, st, pr, at in rows]

    def followup_counts(self, now: datetime, hall: str | None = None) -> dict[str, int]:
        """Open, overdue and due-today follow-ups (all halls or one): one pass over the open ones' index."""
        todays = self._todays(now, hall)
        args: dict[str, Any] = {"hall": hall}
        over = self._due_cond("<", todays, args, every=True)
        due_today = self._due_cond("=", todays, args, every=True)
        row = self.conn_for_reports().execute(
            f"SELECT count(*), count(*) FILTER (WHERE {over}), count(*) FILTER (WHERE {due_today})"
            f" FROM followups f WHERE f.closed_at IS NULL AND (%(hall)s::text IS NULL OR f.hall = %(hall)s)",
            args).fetchone()
        return {"open": row[0], "overdue": row[1], "due_today": row[2]}


@dataclass(frozen=True)
class DeviceDay:
    """One device's day as its controller recorded it: times it went offline, and how it is since its last event."""

    device: str
    role: str
    window: int | None
    offline_times: int
    status: str  # after its last event today
    problems: list[str]
    last_at: datetime


@dataclass
class FollowUpPage:
    rows: list[FollowUpRow]
    next: str | None  # the cursor of the next page (None: this is the last)


def _cursor(text: str, status: str) -> list[Any]:
    """The keys of a page cursor (``after``), checked: a forged or stale one is refused, never run."""
    parts = text.split("~")
    try:
        if status == "closed" and len(parts) == 3:
            return [datetime.fromisoformat(parts[0]), parts[1], int(parts[2])]
        if status != "closed" and len(parts) == 4:
            return [date.fromisoformat(parts[0]), datetime.fromisoformat(parts[1]), parts[2], int(parts[3])]
    except ValueError:
        pass
    raise ValueError(f"{text[:60]!r} is not a page of this list")
