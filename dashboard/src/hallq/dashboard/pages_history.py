"""The history pages: today, reports (page and CSV), staffing advice, follow-ups, one ticket's story.

Every figure comes from :mod:`.history` (the controller's own report functions on its record).
"""

from __future__ import annotations

import asyncio
import io
import re
from datetime import date, timedelta
from typing import Any

from hallq.controller import followups as fu_mod
from hallq.controller import report as day_report
from hallq.shared.redact import redact
from hallq.shared.schemas import LEVEL_NAMES_ZH, LEVELS
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from . import charts

MAX_RANGE_DAYS = 92
NUMBER_RE = re.compile(r"^[A-Z0-9]{1,3}[0-9]{3}$")
LEVEL_NAMES_EN = {"very_satisfied": "Very satisfied", "satisfied": "Satisfied", "basic": "Fair",
                  "dissatisfied": "Dissatisfied", "very_dissatisfied": "Very dissatisfied"}


def _date(value: str | None, default: date, field: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise HTTPException(400, f"{field}: {value[:20]!r} is not a date (YYYY-MM-DD) (日期格式应为 YYYY-MM-DD)") from None


def day_context(history: Any, d: date) -> dict[str, Any]:
    """Everything the day sections show (shared by Today and the day report)."""
    with history.reading() as conn:
        s, rows = day_report.rows(conn, d, history.now())
    flow = history.flow(d)
    chart = charts.bars(flow.slots, [("issued", flow.issued), ("called", flow.called), ("served", flow.served)],
                        ("avg", flow.avg_issued), label=f"flow {d}")
    names = {c.code: (c.name, c.name_en or c.name) for c in history.cfg.categories}
    return {"day": d, "stats": s, "rows": rows, "flow": flow, "chart": chart, "levels": LEVELS,
            "level_zh": LEVEL_NAMES_ZH, "level_en": LEVEL_NAMES_EN, "cat_names": names}


def history_routes(D: Any, require: Any) -> list[BaseRoute]:
    H = D.history

    @require("manager", "viewer")
    async def today(request: Request) -> Response:
        ctx = await asyncio.to_thread(day_context, H, H.today())
        return D.render(request, "today.html", **ctx)

    @require("manager", "viewer")
    async def reports(request: Request) -> Response:
        today_ = H.today()
        start = _date(request.query_params.get("from"), today_, "from")
        end = _date(request.query_params.get("to"), start, "to")
        if end < start:
            raise HTTPException(400, "the end date is before the start date (结束日期早于开始日期)")
        if (end - start).days >= MAX_RANGE_DAYS:
            raise HTTPException(400, f"at most {MAX_RANGE_DAYS} days at a time (一次最多 {MAX_RANGE_DAYS} 天)")
        if start == end:
            ctx = await asyncio.to_thread(day_context, H, start)
            return D.render(request, "report_day.html", start=start, end=end, **ctx)

        def days() -> list[tuple[date, Any]]:
            out = []
            with H.reading() as conn:
                for k in range((end - start).days + 1):
                    d = start + timedelta(days=k)
                    s, _ = day_report.rows(conn, d, H.now())
                    out.append((d, s))
            return out

        found = await asyncio.to_thread(days)
        return D.render(request, "report_range.html", start=start, end=end, days=found, levels=LEVELS)

    @require("manager", "viewer")
    async def reports_csv(request: Request) -> Response:
        today_ = H.today()
        start = _date(request.query_params.get("date") or request.query_params.get("from"), today_, "date")
        end = _date(request.query_params.get("to"), start, "to")
        if end < start or (end - start).days >= MAX_RANGE_DAYS:
            raise HTTPException(400, "bad date range (日期范围有误)")

        def make() -> str:
            buf = io.StringIO()
            with H.reading() as conn:
                for k in range((end - start).days + 1):
                    day_report.write_csv(buf, conn, start + timedelta(days=k), H.now(), header=k == 0)
            return buf.getvalue()

        text = await asyncio.to_thread(make)
        name = f"hallq-{start}" + (f"-{end}" if end != start else "") + ".csv"
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"content-disposition": f'attachment; filename="{name}"'})

    @require("manager", "viewer")
    async def staffing_page(request: Request) -> Response:
        today_ = H.today()
        d = _date(request.query_params.get("date"), today_, "date")
        from_slot = None
        if d == today_:
            from hallq.controller.stats import half_hour

            from_slot = half_hour(H.now())
        advice, quiet = await asyncio.to_thread(H.staffing, d, from_slot=from_slot)
        names = {c.code: c for c in D.cfg.categories}
        serving = {c.code: [w.no for w in D.cfg.windows if c.code in w.categories] for c in D.cfg.categories}
        return D.render(request, "staffing.html", day=d, advice=advice, quiet=quiet, names=names, serving=serving,
                        target=D.cfg.staffing.target_p90_min, weeks=D.cfg.staffing.weeks,
                        windows=len(D.cfg.windows), today=today_)

    @require("manager", "viewer")
    async def followups_page(request: Request) -> Response:
        rows = await asyncio.to_thread(H.followups, True)
        notes = D.accounts.notes()
        today_ = H.today().isoformat()
        rows.sort(key=lambda r: (r["closed_at"] is not None, r["due"], r["id"]))
        return D.render(request, "followups.html", rows=rows, notes=notes, today=today_,
                        level_zh=LEVEL_NAMES_ZH, level_en=LEVEL_NAMES_EN,
                        flash=request.query_params.get("done"), error=request.query_params.get("error"))

    def _fid(request: Request) -> int:
        try:
            return int(request.path_params["fid"])
        except ValueError:
            raise HTTPException(404, "no such follow-up") from None

    @require("manager")
    async def followup_note(request: Request) -> Response:
        fid = _fid(request)
        form = await D.form(request)
        note = redact(str(form.get("note") or "").strip())  # kept and audited masked (hallq.shared.redact)
        if not note or len(note) > 1000:
            return RedirectResponse("/followups?error=note", status_code=303)
        known = {r["id"] for r in await asyncio.to_thread(H.followups, True)}
        if fid not in known:
            raise HTTPException(404, f"there is no follow-up {fid} (没有这条回访)")
        user = request.state.session.user
        D.accounts.add_note(fid, user, note, _utc())
        D.audit(request, "followup.note", id=fid, note=note)
        return RedirectResponse(f"/followups?done=note#fu-{fid}", status_code=303)

    @require("manager")
    async def followup_close(request: Request) -> Response:
        fid = _fid(request)
        form = await D.form(request)
        action = redact(str(form.get("action") or "").strip())  # kept and audited masked
        if not action or len(action) > 1000:
            return RedirectResponse(f"/followups?error=action#fu-{fid}", status_code=303)
        user = request.state.session.user
        try:
            await asyncio.to_thread(H.close_followup, fid, user.display_name, action)
        except fu_mod.FollowupError as exc:
            raise HTTPException(409, str(exc)) from None
        D.audit(request, "followup.close", id=fid, action=action)
        return RedirectResponse(f"/followups?done=close#fu-{fid}", status_code=303)

    @require("manager", "viewer")
    async def ticket(request: Request) -> Response:
        number = (request.query_params.get("number") or "").strip().upper()
        d = _date(request.query_params.get("date"), H.today(), "date")
        story = None
        error = None
        if number:
            if not NUMBER_RE.fullmatch(number):
                error = "format"
            else:
                story = await asyncio.to_thread(H.ticket, d, number)
                if story is None:
                    error = "unknown"
        return D.render(request, "ticket.html", number=number, day=d, story=story, error=error,
                        level_zh=LEVEL_NAMES_ZH, level_en=LEVEL_NAMES_EN)

    return [
        Route("/today", today, methods=["GET"]),
        Route("/reports", reports, methods=["GET"]),
        Route("/reports.csv", reports_csv, methods=["GET"]),
        Route("/staffing", staffing_page, methods=["GET"]),
        Route("/followups", followups_page, methods=["GET"]),
        Route("/followups/{fid}/note", followup_note, methods=["POST"]),
        Route("/followups/{fid}/close", followup_close, methods=["POST"]),
        Route("/ticket", ticket, methods=["GET"]),
    ]


def _utc():
    from datetime import UTC, datetime

    return datetime.now(UTC)
