"""The citizens' phone pages, a module of the dashboard's server (its ``hallq.dashboard.pages`` seam).

Public (no sign-in, no personal data on any page), under ``/m``:

- ``GET /m/f/{token}``: a ticket's follow page: its number, how many are ahead and the estimated range, the
  window when it is called (with a sound and a vibration where the phone allows), live by Server-Sent
  Events (``/m/f/{token}/events``). The token is the ticket's unguessable follow token
  (:mod:`hallq.shared.follow`); an unknown or old one gets a plain "not found".
- ``GET /door-qr`` (signed in, in the dashboard's menu): the poster for the hall's door, an A4 page with the
  QR code of the scan-to-take page, to print.
- ``GET /m/q`` / ``POST /m/q``: scan-to-take, the page the QR code at the hall's door opens: choose a
  category, get a ticket with no paper, go on to its follow page. One ticket per category per phone: a
  cookie, and the person key of the phone number when the citizen gives one (the same key the SMS gateway
  uses when the hall's kiosk key is configured, so a phone is one person by text and by page). At most
  ``PER_ADDRESS`` takes per address per ``WINDOW_S`` and ``PER_PHONE`` per phone and day; refused
  outside hours (the controller's own rule: its answer is shown). The form carries a token bound to the
  browser's cookie, so a form posted from elsewhere is refused.

Everything the pages need is served by the dashboard itself (``/m/static``): they work on a hall Wi-Fi
without internet. Configured by ``[follow]`` in hall.toml (``url``, ``key_file``; ``take_client`` turns on
scan-to-take, ``kiosk_key_file`` shares the SMS gateway's phone keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import deque
from pathlib import Path
from typing import Any

from hallq.dashboard.extend import PageContext, Pages
from hallq.shared import follow, hallkey
from hallq.shared.mqtt import HallClient, RequestError, RequestTimeout
from hallq.shared.personkey import person_key
from hallq.shared.phone import InvalidPhoneNumber, PhoneNumber
from hallq.shared.schemas import TakeRequest, encode
from sse_starlette.sse import EventSourceResponse
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .view import TicketView, all_views, ticket_view

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
PREFIX = "/m"
DOOR = "/door-qr"  # the printable poster with the scan-to-take QR code, for the hall's door
COOKIE = "hallq_m"
PER_ADDRESS = 6  # takes per address per WINDOW_S
WINDOW_S = 600.0
PER_PHONE = 3  # takes per phone per day


class RateLimit:
    """At most ``limit`` events per key within ``window`` seconds (in memory: a restart forgets, which only
    ever lets a citizen take sooner; the controller's one-ticket-per-category rule still holds)."""

    def __init__(self, limit: int, window: float):
        self.limit, self.window = limit, window
        self._seen: dict[str, deque[float]] = {}

    def allow(self, key: str, now: float) -> bool:
        q = self._seen.setdefault(key, deque())
        while q and now - q[0] > self.window:
            q.popleft()
        if len(q) >= self.limit:
            return False
        q.append(now)
        if len(self._seen) > 10_000:  # forget the quiet ones
            for k in [k for k, v in self._seen.items() if not v or now - v[-1] > self.window]:
                del self._seen[k]
        return True


class PhonePages:
    def __init__(self, ctx: PageContext):
        self.ctx = ctx
        fcfg = ctx.cfg.follow
        self.hall_id = ctx.cfg.hall.id
        self.key = hallkey.load(fcfg.key_file)
        self.book = follow.FollowBook(self.key, self.hall_id)
        self.kiosk_key = hallkey.load(fcfg.kiosk_key_file) if fcfg.kiosk_key_file else None
        self.take_client_id = fcfg.take_client
        self._client: HallClient | None = None
        self.per_address = RateLimit(PER_ADDRESS, WINDOW_S)
        self.per_phone = RateLimit(PER_PHONE, 86400.0)
        # the follow pages' shared state: every waiting or called ticket's update as JSON, worked out once
        # per change of what a view shows (config, queue, window states), not per page nor per hall change
        self._inputs: tuple[Any, Any, dict[int, Any]] | None = None
        self._views: dict[str, str] = {}
        self._views_version = 0
        self._views_changed: asyncio.Event | None = None
        self._watcher: asyncio.Task | None = None
        if self.take_client_id:  # connected before the first citizen comes
            self.client()

    # -- helpers -------------------------------------------------------------------------------------
    def today(self):
        return self.ctx.clock.now().date()

    def number_of(self, token: str) -> str | None:
        snap = self.ctx.live.snapshot()
        prefixes = [c.prefix for c in snap.config.categories] if snap.config else [
            c.ticket_prefix for c in self.ctx.cfg.categories]
        return self.book.number(token, self.today(), prefixes)

    def view(self, number: str) -> TicketView:
        s = self.ctx.live.snapshot()
        return ticket_view(number, s.config, s.queue, s.windows)

    def _refresh(self) -> bool:
        """Work the views out again if what they show changed since the last time; whether it did."""
        s = self.ctx.live.snapshot()
        old = self._inputs
        if (old is not None and old[0] is s.config and old[1] is s.queue and old[2].keys() == s.windows.keys()
                and all(old[2][k] is w for k, w in s.windows.items())):
            return False  # stats, board, devices...: nothing a follow page shows
        self._inputs = (s.config, s.queue, dict(s.windows))
        views = all_views(s.config, s.queue, s.windows)
        self._views = {n: _json(v) for n, v in views.items()}
        self._views_version += 1
        if self._views_changed is not None:
            ev, self._views_changed = self._views_changed, asyncio.Event()
            ev.set()
        return True

    def _start_watching(self) -> None:
        """One task follows the hall's changes for every open follow page (started with the first page)."""
        if self._watcher is not None and not self._watcher.done():
            return
        self._views_changed = asyncio.Event()
        self._refresh()
        hub = self.ctx.hub

        async def watch() -> None:
            seen = hub.version
            while True:
                seen = await hub.wait_newer(seen, timeout=30)
                try:
                    self._refresh()
                except Exception:  # a view that cannot be made must not stop every page's updates
                    log.exception("follow pages: the views could not be worked out")

        self._watcher = asyncio.get_running_loop().create_task(watch())

    async def _views_newer(self, seen: int, timeout: float) -> int:
        if self._views_version > seen:
            return self._views_version
        ev = self._views_changed
        assert ev is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)
        return self._views_version

    def view_json(self, number: str) -> str:
        """The page's update as JSON, from the views shared by every open page."""
        got = self._views.get(number)
        if got is None:
            got = _json(self.view(number))  # gone (or not known yet)
            self._views[number] = got
        return got

    def render(self, request: Request, name: str, status: int = 200, **kw: Any) -> HTMLResponse:
        snap = self.ctx.live.snapshot()
        hall = snap.config.name if snap.config else self.ctx.cfg.hall.name
        hall_en = (snap.config.name_en if snap.config else self.ctx.cfg.hall.name_en) or ""
        resp = self.ctx.templates.TemplateResponse(request, name, {"hall_name": hall, "hall_name_en": hall_en, **kw},
                                                   status_code=status)
        resp.headers["Cache-Control"] = "no-store"
        return resp

    def _cookie(self, request: Request) -> tuple[str, bool]:
        c = request.cookies.get(COOKIE, "")
        if len(c) == 32 and all(ch in "0123456789abcdef" for ch in c):
            return c, False
        return secrets.token_hex(16), True

    def _form_token(self, cookie: str) -> str:
        return hmac.new(self.key, b"hallq m form|" + cookie.encode(), hashlib.sha256).hexdigest()[:32]

    def _person(self, cookie: str, phone: PhoneNumber | None) -> str:
        day = self.today()
        if phone is not None:
            if self.kiosk_key is not None:
                return phone.person_key(self.kiosk_key, day)
            return person_key(self.key, day, "tel:+86" + phone.reveal())
        return person_key(self.key, day, "web:" + cookie)

    def client(self) -> HallClient:
        if self._client is None:
            # its own identity when the dashboard was given one (a broker with logins), else the dashboard's broker
            broker = getattr(self.ctx, "identities", {}).get(self.take_client_id, self.ctx.broker)
            self._client = HallClient(broker, self.hall_id, self.take_client_id).start()
        return self._client

    # -- the follow page -----------------------------------------------------------------------------
    async def follow_page(self, request: Request) -> Response:
        number = self.number_of(request.path_params["token"])
        if number is None:
            return self.render(request, "m_notfound.html", status=404)
        return self.render(request, "m_follow.html", t=self.view(number), token=request.path_params["token"],
                           data=json.dumps(self.view(number).as_dict(), ensure_ascii=False))

    async def follow_events(self, request: Request) -> Response:
        number = self.number_of(request.path_params["token"])
        if number is None:
            return Response("not found", status_code=404)
        self._start_watching()

        async def stream() -> Any:
            seen, last = -1, None
            while True:
                seen = await self._views_newer(seen, timeout=30)
                data = self.view_json(number)
                if data != last:
                    last = data
                    yield {"event": "ticket", "data": data, "id": str(seen)}

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    # -- the door's poster (signed in: the dashboard's menu) ------------------------------------------
    def take_url(self, request: Request) -> str:
        """The scan-to-take page's address as phones on the hall Wi-Fi reach it: the host of ``[follow] url``
        (the address printed on every ticket), else the one this request came to."""
        url = self.ctx.cfg.follow.url or ""
        if "/m/f/" in url:
            return url.split("/m/f/", 1)[0] + PREFIX + "/q"
        return str(request.base_url).rstrip("/") + PREFIX + "/q"

    async def door_page(self, request: Request) -> Response:
        if not self.take_client_id:
            return self.ctx.templates.TemplateResponse(request, "m_door.html", {"url": None, "svg": None})
        url = self.take_url(request)
        snap = self.ctx.live.snapshot()
        cats = list(snap.config.categories) if snap.config else []
        return self.ctx.templates.TemplateResponse(request, "m_door.html", {
            "url": url, "svg": qr_svg(url), "categories": cats, "hours": self.ctx.cfg.hall.hours})

    # -- scan to take --------------------------------------------------------------------------------
    def _categories(self) -> list[Any]:
        snap = self.ctx.live.snapshot()
        return list(snap.config.categories) if snap.config else []

    async def take_page(self, request: Request) -> Response:
        if not self.take_client_id:
            return self.render(request, "m_notfound.html", status=404)
        cookie, new = self._cookie(request)
        snap = self.ctx.live.snapshot()
        queue = snap.queue.categories if snap.queue else {}
        resp = self.render(request, "m_take.html", categories=self._categories(), queue=queue,
                           form=self._form_token(cookie), error=None)
        if new:
            resp.set_cookie(COOKIE, cookie, max_age=86400, httponly=True, samesite="strict")
        return resp

    async def take(self, request: Request) -> Response:
        if not self.take_client_id:
            return self.render(request, "m_notfound.html", status=404)
        cookie, new = self._cookie(request)
        form = await request.form()

        def again(error: tuple[str, str], status: int) -> Response:
            snap = self.ctx.live.snapshot()
            resp = self.render(request, "m_take.html", status=status, categories=self._categories(),
                               queue=snap.queue.categories if snap.queue else {}, form=self._form_token(cookie),
                               error=error)
            if new:
                resp.set_cookie(COOKIE, cookie, max_age=86400, httponly=True, samesite="strict")
            return resp

        if new or not hmac.compare_digest(str(form.get("form", "")), self._form_token(cookie)):
            return again(("页面已过期，请重新选择。", "This page has expired; please choose again."), 400)
        category = str(form.get("category", ""))
        if category not in {c.code for c in self._categories()}:
            return again(("请选择业务。", "Please choose a service."), 400)
        phone = None
        raw_phone = str(form.get("phone", "")).strip()
        if raw_phone:
            try:
                phone = PhoneNumber(raw_phone)
            except InvalidPhoneNumber:
                return again(("手机号码不正确。", "That is not a mobile number."), 400)
        now = time.monotonic()
        address = request.client.host if request.client else "?"
        if not self.per_address.allow(address, now):
            return again(("取号太频繁，请稍后再试。", "Too many numbers from here; please wait a while."), 429)
        person = self._person(cookie, phone)
        if phone is not None and not self.per_phone.allow(person, now):
            return again(("这个手机号今天取号次数已达上限。", "This phone has taken enough numbers today."), 429)
        client = self.client()
        req = TakeRequest(req=client.new_req(), category=category, channel="qr", person=person)
        try:
            reply = await asyncio.to_thread(self._take, client, req)
        except RequestError as exc:
            msg = {
                "closed": ("现在不是取号时间。", "Numbers are not issued now."),
                "quota_full": ("今天这项业务的号已取完。", "Today's numbers for this service are all taken."),
                "duplicate": ("您已取过这项业务的号。", "You already hold a number for this service."),
            }.get(exc.code, ("取号未成功，请到取号机取号。", "Could not take a number; please use the kiosk."))
            if exc.code == "closed" and self.ctx.cfg.hall.hours:
                hours = "、".join(f"{a}–{b}" for a, b in self.ctx.cfg.hall.hours)
                msg = (msg[0] + f"取号时间：{hours}。", msg[1] + f" Hours: {hours}.")
            return again(msg, 409)
        except RequestTimeout:
            return again(("系统繁忙，请稍后再试。", "The system is busy; please try again."), 503)
        ticket = reply.ticket  # type: ignore[attr-defined]
        if not ticket.follow:
            return again(("已取号 " + ticket.number + "，请留意大厅叫号屏。", "Your number: " + ticket.number), 200)
        log.info("scan-to-take: %s (%s)", ticket.number, "with a phone" if phone else "no phone")
        resp = RedirectResponse(f"{PREFIX}/f/{ticket.follow}", status_code=303)
        return resp

    @staticmethod
    def _take(client: HallClient, req: TakeRequest) -> Any:
        client.wait_connected(5.0)
        return client.request("take", req, timeout=5.0, resend_every=1.0)

    def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        if self._client is not None:
            self._client.stop()


def qr_svg(text: str) -> str:
    """``text`` as a QR code in SVG (drawn on the server: the poster prints as it shows, with no script)."""
    import qrcode
    import qrcode.image.svg

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=2,
                       image_factory=qrcode.image.svg.SvgPathImage)
    qr.add_data(text)
    qr.make(fit=True)
    svg = qr.make_image().to_string(encoding="unicode")
    return svg[svg.index("<svg"):]


def _json(view: TicketView) -> str:
    """A view as the page's JSON (msgspec: the same keys in the same order as ``as_dict``, many times faster
    than ``json.dumps(asdict(...))`` when 500 pages wait for it)."""
    return encode(view).decode("utf-8")


def pages(ctx: PageContext) -> Pages:
    """The entry point (``hallq.dashboard.pages``): nothing when the hall has no ``[follow]``."""
    if getattr(ctx.cfg, "follow", None) is None:
        log.info("no [follow] in the hall's config: no follow or scan-to-take pages")
        return Pages()
    p = PhonePages(ctx)
    routes = [
        Route(PREFIX + "/f/{token}", p.follow_page, methods=["GET"]),
        Route(PREFIX + "/f/{token}/events", p.follow_events, methods=["GET"]),
        Route(PREFIX + "/q", p.take_page, methods=["GET"]),
        Route(PREFIX + "/q", p.take, methods=["POST"]),
        Mount(PREFIX + "/static", app=StaticFiles(directory=str(HERE / "static")), name="m-static"),
    ]
    door = [Route(DOOR, p.door_page, methods=["GET"])]  # signed in: it is the dashboard's page
    return Pages(prefix=PREFIX, public=routes, private=door, templates=HERE / "templates",
                 nav=[(DOOR, "取号二维码", "Door QR code")])
