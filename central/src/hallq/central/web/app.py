"""The city dashboard's web server (Starlette): every hall live, one hall in detail, cross-hall reports and
follow-ups across halls.

It is the hall dashboard's stack and reuses its code by import, not by copy: accounts, sessions, lockout
and the audit log (:class:`hallq.dashboard.accounts.Accounts`), the session guard, CSRF check, role check,
security headers, sign-in routes, error page and live lifespan (:mod:`hallq.dashboard.app`), the live mirror and live view of a hall
(:mod:`hallq.dashboard.live`, :mod:`hallq.dashboard.views`), its templates (sign-in, error, the live
fragment, the figures' table macros, the page frame ``_page.html``) and static files (CSS, htmx). What is the city's own:

- :mod:`.live`: every hall's retained topics through one MQTT connection;
- :mod:`.figures`: the daily roll-up and the cross-hall reports (PostgreSQL);
- :mod:`.data`: the follow-ups and halls, read from the central record;
- this module: the routes (every page needs a session of a manager or a viewer).

Reads go to ``report_dsn`` (a hot standby when there is one); the roll-up writes to the primary.
"""

from __future__ import annotations

import asyncio
import csv
import io
import logging
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from hallq.dashboard import app as hall_app
from hallq.dashboard.accounts import Accounts, Session
from hallq.dashboard.app import (
    LANG_COOKIE,
    LANGS,
    Hub,
    SecurityHeaders,
    SessionGuard,
    account_routes,
    error_handler,
    live_lifespan,
    require,
    tr_for,
)
from hallq.dashboard.views import now_view
from hallq.shared.schemas import LEVEL_NAMES_ZH, LEVELS
from markupsafe import Markup
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from . import data, figures
from .live import CityLive

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
HALL_DASH = Path(hall_app.__file__).parent
#: The longest range a report may cover (a year and a bit: a yearly report, never a whole history).
MAX_DAYS = 400
#: A report by clerk shows the clerks of this many halls a page (≈10 clerks a hall: a few hundred lines, read by
#: those halls' index, whatever the city's size); its total line and its CSV are the whole selection's.
CLERK_HALLS_PAGE = 25
KIND_NAMES = {"hall": ("按大厅", "By hall"), "category": ("按业务类别", "By category"),
              "item": ("按事项", "By service item"), "clerk": ("按工作人员", "By clerk"),
              "half_hour": ("按半小时", "By half hour")}
LEVEL_NAMES_EN = {"very_satisfied": "Very satisfied", "satisfied": "Satisfied", "basic": "Basic",
                  "dissatisfied": "Dissatisfied", "very_dissatisfied": "Very dissatisfied"}
CSV_HEADER = ["from", "to", "slice", "hall", "key", "name", "issued", "called", "served", "noshow", "transferred",
              "wait_mean_min", "wait_p90_min", "service_mean_min", *LEVELS, "satisfaction"]


class City:
    """Everything a request needs; it offers what :class:`~hallq.dashboard.app.SessionGuard`,
    :func:`~hallq.dashboard.app.require` and :func:`~hallq.dashboard.app.account_routes` use of the hall
    dashboard (``accounts``, ``render``, ``lang``, ``form``, ``is_public``, ``home_for``, ``clock``,
    ``secure_cookies``)."""

    def __init__(self, *, name: str, name_en: str, live: CityLive, accounts: Accounts, reader: data.Reader,
                 clock: Any, secure_cookies: bool = False):
        self.name = name
        self.name_en = name_en
        self.live = live
        self.accounts = accounts
        self.reader = reader
        self.clock = clock
        self.secure_cookies = secure_cookies
        self.hub = Hub()
        self.public_prefixes: list[str] = []
        self._cache: dict[tuple, tuple[int, Any]] = {}
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(HERE / "templates")),
                                        jinja2.FileSystemLoader(str(HALL_DASH / "templates"))]),
            autoescape=jinja2.select_autoescape(["html"]), trim_blocks=True, lstrip_blocks=True)
        env.globals["levels"] = LEVELS
        env.globals["level_zh"] = LEVEL_NAMES_ZH
        env.globals["level_en"] = LEVEL_NAMES_EN
        self.templates = Jinja2Templates(env=env, context_processors=[self._context])
        live.add_listener(self.hub.notify)

    # -- what the hall dashboard's shared code asks of us -------------------------------------------------
    def lang(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "zh")
        return lang if lang in LANGS else "zh"

    def _context(self, request: Request) -> dict[str, Any]:
        lang = self.lang(request)
        session: Session | None = getattr(request.state, "session", None)
        return {"lang": lang, "tr": tr_for(lang), "session": session, "user": session.user if session else None,
                "csrf": session.csrf if session else "", "path": request.url.path, "history": False,
                "hall_name": self.name_en if lang == "en" else self.name, "city": True, "bi": bi_for(lang)}

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, ctx, status_code=status)

    def fragment(self, name: str, lang: str, **ctx: Any) -> str:
        return self.templates.env.get_template(name).render(lang=lang, tr=tr_for(lang), bi=bi_for(lang), **ctx)

    def cached(self, key: tuple, version: int, make: Callable[[], Any]) -> Any:
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = make()
        self._cache[key] = (version, value)
        return value

    def is_public(self, path: str) -> bool:
        return path in ("/login", "/favicon.ico") or path.startswith("/static/")

    def home_for(self, user: Any) -> str:
        return "/halls"

    async def form(self, request: Request) -> FormData:
        session: Session | None = getattr(request.state, "session", None)
        form = await request.form()
        sent = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
        if session is None or not secrets.compare_digest(sent.encode(), session.csrf.encode()):
            raise HTTPException(403, "the form is out of date or forged (CSRF check failed): reload the page")
        return form

    def audit(self, request: Request, action: str, /, **detail: Any) -> None:
        session: Session = request.state.session
        if session.user.role == "manager":
            self.accounts.audit(session.user, action, detail, request.client.host if request.client else "?",
                                datetime.now(UTC))

    # -- the live pages ------------------------------------------------------------------------------
    def halls_view(self, now: datetime) -> dict[str, Any]:
        known = self.reader.halls()  # the halls registered centrally
        ids = sorted(set(known) | set(self.live.halls()))
        rows = []
        for h in ids:
            info = known.get(h)
            tz_now = now.astimezone(info.tz) if info is not None else now
            rows.append(self.live.overview(h, info.name if info else h, info.name_en if info else h, tz_now))
        heard = [r for r in rows if r.heard_min is not None]
        total = {
            "halls": len(rows), "live": sum(1 for r in rows if r.controller == "online"),
            "waiting": sum(r.waiting or 0 for r in rows),
            "longest": max((r.longest_min or 0 for r in rows), default=0),
            "windows_open": sum(r.windows_open or 0 for r in rows),
            "devices_offline": sum(r.devices_offline for r in rows),
            "rated": sum(r.rated for r in rows),
        }
        good = sum((r.satisfaction or 0) * r.rated for r in rows)
        total["satisfaction"] = good / total["rated"] if total["rated"] else None
        return {"rows": rows, "total": total, "now": now, "heard": len(heard)}

    def halls_fragment(self, lang: str, version: int, sort: str) -> str:
        def make() -> str:
            now = self.clock.now()
            v = self.halls_view(now)
            v["rows"] = sort_rows(v["rows"], sort)
            return self.fragment("_halls.html", lang, v=v, sort=sort)
        return self.cached(("halls", lang, sort), version, make)

    def hall_fragment(self, lang: str, version: int, hall: str) -> str:
        def make() -> str:
            snap = self.live.snapshot(hall)
            info = self.reader.halls().get(hall)
            now = self.clock.now().astimezone(info.tz) if info else self.clock.now()
            if snap is None or (snap.controller is None and snap.queue is None and not snap.windows):
                return self.fragment("_no_live.html", lang, hall=hall)
            return self.fragment("_now.html", lang, v=now_view(snap, now), now=now)
        return self.cached(("hall", lang, hall), version, make)


SORTS = {
    "waiting": lambda r: (-(r.waiting or 0), r.hall),
    "longest": lambda r: (-(r.longest_min or 0), r.hall),
    "satisfaction": lambda r: (r.satisfaction if r.satisfaction is not None else 2.0, r.hall),
    "offline": lambda r: (-r.devices_offline, r.hall),
    "hall": lambda r: (r.hall,),
}


def sort_rows(rows: list, sort: str) -> list:
    return sorted(rows, key=SORTS.get(sort, SORTS["longest"]))


def _day(value: str | None, default: date) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{value[:20]!r} is not a date (YYYY-MM-DD) (日期格式应为 YYYY-MM-DD)") from None


def create_app(city: City) -> Starlette:
    C = city

    @require()
    async def home(request: Request) -> Response:
        return RedirectResponse("/halls", status_code=303)

    def _sort(request: Request) -> str:
        s = request.query_params.get("sort", "longest")
        return s if s in SORTS else "longest"

    @require("manager", "viewer")
    async def halls_page(request: Request) -> Response:
        sort = _sort(request)
        html = await asyncio.to_thread(C.halls_fragment, C.lang(request), C.hub.version, sort)
        return C.render(request, "halls.html", halls_html=html, sort=sort)

    @require("manager", "viewer")
    async def halls_events(request: Request) -> Response:
        lang, sort = C.lang(request), _sort(request)

        async def stream() -> Any:
            seen = -1
            while True:
                v = await C.hub.wait_newer(seen, timeout=30)
                if v == seen:
                    continue
                seen = v
                yield {"event": "halls", "data": await asyncio.to_thread(C.halls_fragment, lang, v, sort),
                       "id": str(v)}

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    def _hall_of(request: Request) -> str:
        hall = request.path_params["hall"]
        if hall not in C.reader.halls() and hall not in C.live.halls():
            raise HTTPException(404, f"there is no hall {hall[:40]!r} (没有这个大厅)")
        return hall

    @require("manager", "viewer")
    async def hall_page(request: Request) -> Response:
        hall = _hall_of(request)
        lang = C.lang(request)
        info = C.reader.halls().get(hall)
        today = C.clock.now().astimezone(info.tz).date() if info else C.clock.now().date()

        def load() -> tuple:
            live_html = C.hall_fragment(lang, C.hub.version, hall)
            cats = figures.report(C.reader.conn_for_reports(), "category", today, today, [hall],
                                  C.reader.category_names(C.live, [hall]))
            whole = figures.whole(C.reader.conn_for_reports(), today, today, [hall])
            fus = C.reader.followups(C.clock.now(), hall=hall, status="open")
            devices = C.reader.device_events(C.clock.now(), hall)
            return live_html, cats, whole, fus, devices
        live_html, cats, whole, fus, devices = await asyncio.to_thread(C.reader.run, load)
        return C.render(request, "hall.html", hall=hall, info=info, live_html=live_html, today=today, cats=cats,
                        whole=whole, followups=fus.rows, more=fus.next is not None,
                        now=C.clock.now(), heard=C.live.heard(hall), devices=devices)

    @require("manager", "viewer")
    async def hall_events(request: Request) -> Response:
        hall = _hall_of(request)
        lang = C.lang(request)

        async def stream() -> Any:
            seen = -1
            while True:
                v = await C.hub.wait_newer(seen, timeout=30)
                if v == seen:
                    continue
                seen = v
                yield {"event": "now", "data": C.hall_fragment(lang, v, hall), "id": str(v)}

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    # -- reports -----------------------------------------------------------------------------------------
    def _report_args(request: Request) -> tuple[str, date, date, list[str] | None]:
        q = request.query_params
        today = C.clock.now().date()
        kind = q.get("by", "hall")
        if kind not in figures.KINDS:
            raise HTTPException(400, f"a report is by one of {', '.join(figures.KINDS)} (报表维度不正确)")
        start = _day(q.get("from"), today)
        end = _day(q.get("to"), start)
        if end < start:
            raise HTTPException(400, "the last day is before the first (结束日期早于开始日期)")
        if (end - start).days >= MAX_DAYS:
            raise HTTPException(400, f"a report covers at most {MAX_DAYS} days (报表最长 {MAX_DAYS} 天)")
        halls = [h for h in q.getlist("hall") if h] or None
        if halls is not None:
            known = C.reader.halls()
            bad = [h for h in halls if h not in known]
            if bad:
                raise HTTPException(400, f"no such hall: {bad[0][:40]!r} (没有这个大厅)")
        return kind, start, end, halls

    def _report(kind: str, start: date, end: date, halls: list[str] | None,
                lines_of: list[str] | None = None, *, rolled: bool = True) -> tuple[list, Any, Any]:
        """The report's lines (of the halls ``lines_of`` when given: one page of them), the total line of
        the whole selection ``halls`` and (``rolled``: the page says it) when its days were rolled up."""
        conn = C.reader.conn_for_reports()
        of = lines_of if lines_of is not None else halls
        rows = figures.report(conn, kind, start, end, of,
                              C.reader.category_names(C.live, of) if kind == "category" else None)
        total = figures.whole(conn, start, end, halls)
        return rows, total, C.reader.rolled_at(start, end) if rolled else None

    @require("manager", "viewer")
    async def reports_page(request: Request) -> Response:
        kind, start, end, halls = _report_args(request)
        pager = None
        lines_of = None
        if kind == "clerk":  # the clerks of a page of halls (their index order); the CSV has every line
            chosen = sorted(halls) if halls is not None else sorted(C.reader.halls())
            pages = max(1, -(-len(chosen) // CLERK_HALLS_PAGE))
            try:
                page = int(request.query_params.get("page") or 1)
            except ValueError:
                page = 0
            if not 1 <= page <= pages:
                raise HTTPException(400, f"page is 1 to {pages} (页码不正确)")
            lines_of = chosen[(page - 1) * CLERK_HALLS_PAGE:page * CLERK_HALLS_PAGE]
            if pages > 1:
                keep = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])
                pager = {"page": page, "pages": pages, "first": (page - 1) * CLERK_HALLS_PAGE + 1,
                         "last": (page - 1) * CLERK_HALLS_PAGE + len(lines_of), "halls": len(chosen),
                         "base": f"/reports?{keep}&page="}
        rows, total, rolled = await asyncio.to_thread(C.reader.run,
                                                      lambda: _report(kind, start, end, halls, lines_of))
        return C.render(request, "reports.html", kind=kind, kinds=KIND_NAMES, start=start, end=end, rows=rows,
                        total=total, halls=C.reader.halls(), chosen=halls or [], rolled=rolled,
                        query=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"]),
                        pager=pager)

    @require("manager", "viewer")
    async def reports_csv(request: Request) -> Response:
        kind, start, end, halls = _report_args(request)

        def make() -> bytes:  # (read and written off the event loop: the live pages go on meanwhile)
            rows, total, _ = _report(kind, start, end, halls, rolled=False)
            names = C.reader.halls()
            out = io.StringIO()
            w = csv.writer(out)
            w.writerow(CSV_HEADER)
            first, last = str(start), str(end)
            for r in [*rows, *([total] if total is not None else [])]:
                f = r.figures
                hall = r.hall or ""
                name = (names[hall].name if hall in names else hall) if r.kind == "hall" else r.name
                w.writerow([first, last, r.kind, hall, r.key, name, f.issued, f.called, f.served, f.noshow,
                            f.transferred, _blank(f.wait_mean_min), _blank(f.wait_p90_min),
                            _blank(f.service_mean_min), *[f.ratings.get(lv, 0) for lv in LEVELS],
                            _blank(f.satisfaction)])
            return out.getvalue().encode("utf-8-sig")
        body = await asyncio.to_thread(C.reader.run, make)
        fname = f"city-{kind}-{start}-{end}.csv"
        C.audit(request, "report.csv", kind=kind, start=str(start), end=str(end))
        return Response(body, media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{fname}"'})

    # -- follow-ups --------------------------------------------------------------------------------------
    @require("manager", "viewer")
    async def followups_page(request: Request) -> Response:
        status = request.query_params.get("status", "open")
        if status not in data.FOLLOWUP_STATUSES:
            raise HTTPException(400, "status is open, overdue or closed (状态不正确)")
        hall = request.query_params.get("hall") or None
        if hall is not None and hall not in C.reader.halls():
            raise HTTPException(400, f"no such hall: {hall[:40]!r} (没有这个大厅)")
        after = request.query_params.get("after") or None
        now = C.clock.now()

        def load() -> tuple:
            try:
                page = C.reader.followups(now, hall=hall, status=status, after=after)
            except ValueError as exc:
                raise HTTPException(400, f"{exc} (翻页参数不正确，请从第一页开始)") from None
            return page, C.reader.followup_counts(now, hall)
        page, counts = await asyncio.to_thread(C.reader.run, load)
        return C.render(request, "followups_city.html", rows=page.rows, next=page.next, after=after,
                        fu_status=status, hall=hall, halls=C.reader.halls(), counts=counts, now=now,
                        page_size=data.PAGE)

    @require("manager")
    async def audit_page(request: Request) -> Response:
        return C.render(request, "audit.html", entries=C.accounts.audit_log())

    routes: list[BaseRoute] = [
        *account_routes(C),
        Route("/", home, methods=["GET"]),
        Route("/halls", halls_page, methods=["GET"]),
        Route("/events/halls", halls_events, methods=["GET"]),
        Route("/halls/{hall}", hall_page, methods=["GET"]),
        Route("/events/halls/{hall}", hall_events, methods=["GET"]),
        Route("/reports", reports_page, methods=["GET"]),
        Route("/reports.csv", reports_csv, methods=["GET"]),
        Route("/followups", followups_page, methods=["GET"]),
        Route("/audit", audit_page, methods=["GET"]),
        Mount("/static/city", app=StaticFiles(directory=str(HERE / "static")), name="city-static"),
        Mount("/static", app=StaticFiles(directory=str(HALL_DASH / "static")), name="static"),
    ]

    on_error = error_handler(C)

    async def on_unavailable(request: Request, exc: Exception) -> Response:
        log.warning("the report database is unreachable: %s", exc)
        return await on_error(request, HTTPException(503, "the report database cannot be reached; the live page "
                                                          "works without it (报表数据库暂时无法连接，实时页面不受影响)"))

    app = Starlette(routes=routes, exception_handlers={HTTPException: on_error, data.Unavailable: on_unavailable},
                    lifespan=live_lifespan(city))
    app.add_middleware(SessionGuard, dash=city)
    app.add_middleware(SecurityHeaders)
    return app


def bi_for(lang: str) -> Callable[[str, str], Markup]:
    """Chinese first with English beside it (one language only when the reader chose English)."""
    if lang == "en":
        return lambda zh, en: Markup.escape(en)
    return lambda zh, en: Markup('{} <span class="en">{}</span>').format(zh, en)


def _blank(v: Any) -> Any:
    return "" if v is None else v

