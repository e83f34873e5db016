"""The dashboard's web server (Starlette): the manager's pages, the clerk's web caller, accounts.

Structure (one hop to any rule):

- :mod:`.live` mirrors the hall's retained topics; :class:`Hub` turns its changes into wake-ups for the
  Server-Sent-Event streams (one rendering per change and language, shared by every open page);
- :mod:`.views` and :mod:`.alerts` decide what the live pages show; :mod:`.history` reads the
  controller's record through the controller's own report functions; :mod:`.caller` sends the window
  operations; :mod:`.accounts` keeps accounts, sessions, lockouts and the audit log;
- this module: routes, the session guard (every path but ``/login``, ``/static`` and the public pages of
  extensions needs a session: pages redirect to the login, data endpoints answer 401), CSRF checks,
  role checks, and the language (Chinese by default, English by the toggle);
- other members add pages through :mod:`.extend` (entry point group ``hallq.dashboard.pages``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from hallq.shared.schemas import CASE_KIND_NAMES_ZH, Staff
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from . import alerts as alerts_mod
from . import views
from .accounts import AccountError, Accounts, LockedOut, Session
from .caller import CallerError, Callers, FormError, build_request
from .extend import GROUP, PageContext, Pages
from .live import LiveHall

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SESSION_COOKIE = "hallq_session"
LOGIN_CSRF_COOKIE = "hallq_login_csrf"
LANG_COOKIE = "hallq_lang"
LANGS = ("zh", "en")
#: Pages re-render at least this often without any message (minutes serving, alerts by time).
TICK_S = 10.0
#: A burst of messages (a take changes queue and stats) is drawn once: wait this long after the first.
COALESCE_S = 0.02

ERRORS = {
    "empty": ("现在没有等候的号", "Nobody is waiting for this window"),
    "paused": ("窗口已暂停：请先恢复再叫号", "The window is paused: resume before calling"),
    "no_ticket": ("当前没有在办的号", "No ticket is being served at this window"),
    "not_allowed": ("此操作不被允许", "This operation is not allowed"),
    "unknown_window": ("没有这个窗口", "There is no such window"),
    "unknown_category": ("没有这个业务类别", "There is no such category"),
    "bad_request": ("请求有误", "The request is not valid"),
    "timeout": ("控制器没有应答，请稍后再试", "The controller did not answer; try again"),
    "no_identity": ("这个窗口没有网页叫号器的设备身份，请联系技术人员", "This window has no web caller identity: ask the technician"),
}
OP_DONE = {
    "open": ("已签到", "Signed in"),
    "close": ("已签退", "Signed out"),
    "next": ("已叫号", "Called"),
    "recall": ("已重呼", "Called again"),
    "noshow": ("已过号", "Marked as no-show"),
    "transfer": ("已转号", "Transferred"),
    "done": ("已办结", "Done"),
    "pause": ("已暂停", "Paused"),
    "resume": ("已恢复", "Resumed"),
}


def tr_for(lang: str) -> Callable[[str, str], str]:
    return (lambda zh, en: en) if lang == "en" else (lambda zh, en: zh)


class Hub:
    """Wakes every live stream when the hall changes (thread-safe ``notify``; awaited in the event loop)."""

    def __init__(self) -> None:
        self.version = 0
        self.loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None
        self._pending = False

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self._event = asyncio.Event()

    def notify(self, *_: Any) -> None:
        """From any thread: something changed."""
        loop = self.loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self._pending:
            return
        self._pending = True
        assert self.loop is not None
        self.loop.call_later(COALESCE_S, self._bump)

    def _bump(self) -> None:
        self._pending = False
        self.version += 1
        ev, self._event = self._event, asyncio.Event()
        if ev is not None:
            ev.set()

    def bump_now(self) -> None:
        self._bump()

    async def wait_newer(self, seen: int, timeout: float | None = None) -> int:
        """The version once it is newer than ``seen`` (or the same one after ``timeout``)."""
        if self.version > seen:
            return self.version
        ev = self._event
        assert ev is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(ev.wait(), timeout)
        return self.version


class SessionGuard:
    """ASGI middleware: every path needs a live session except the login, static files and public pages."""

    def __init__(self, app: ASGIApp, dash: Dashboard):
        self.app = app
        self.dash = dash

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if self.dash.is_public(path):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = request.cookies.get(SESSION_COOKIE)
        session = await asyncio.to_thread(self.dash.accounts.session, token, _utcnow())
        if session is None:
            if scope["method"] in ("GET", "HEAD") and _wants_page(request):
                nxt = quote(path + (f"?{scope['query_string'].decode()}" if scope.get("query_string") else ""))
                response: Response = RedirectResponse(f"/login?next={nxt}", status_code=303)
            else:
                response = PlainTextResponse("401 sign in first (登录后才能使用)", status_code=401)
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["session"] = session
        await self.app(scope, receive, send)


def _wants_page(request: Request) -> bool:
    if request.headers.get("hx-request") or request.url.path.startswith("/events/"):
        return False
    return "text/html" in request.headers.get("accept", "") or request.url.path in ("/", "")


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Dashboard:
    """Everything a request needs: the hall, the live mirror, accounts, the callers, the record."""

    def __init__(self, *, hall: Any, live: LiveHall, accounts: Accounts, callers: Callers, clock: Any,
                 rules: alerts_mod.Rules, broker: Any, db_path: Path | None = None,
                 secure_cookies: bool = False, history: Any = None, identities: dict[str, Any] | None = None):
        self.cfg = hall
        self.identities = dict(identities or {})  # client id -> BrokerURL: the other identities it acts under
        self.live = live
        self.accounts = accounts
        self.callers = callers
        self.clock = clock
        self.rules = rules
        self.broker = broker
        self.db_path = db_path
        self.history = history
        self.secure_cookies = secure_cookies
        self.hub = Hub()
        self.public_prefixes: list[str] = []
        self.extra_nav: list[tuple[str, str, str]] = []  # menu links of the extensions (path, zh, en)
        self._cache: dict[tuple, tuple[int, Any]] = {}
        env = jinja2.Environment(
            loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(HERE / "templates"))]),
            autoescape=jinja2.select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.globals["case_kinds"] = CASE_KIND_NAMES_ZH
        self.templates = Jinja2Templates(env=env, context_processors=[self._context])
        live.add_listener(self.hub.notify)

    # -- rendering -------------------------------------------------------------------------------------
    def lang(self, request: Request) -> str:
        lang = request.cookies.get(LANG_COOKIE, "zh")
        return lang if lang in LANGS else "zh"

    def _context(self, request: Request) -> dict[str, Any]:
        lang = self.lang(request)
        session: Session | None = getattr(request.state, "session", None)
        hall = self.cfg.hall if self.cfg is not None else None
        return {
            "lang": lang,
            "tr": tr_for(lang),
            "session": session,
            "user": session.user if session else None,
            "csrf": session.csrf if session else "",
            "hall_name": (hall.name_en or hall.name if lang == "en" else hall.name) if hall else "hallq",
            "path": request.url.path,
            "history": self.history is not None,
            "extra_nav": self.extra_nav,
        }

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return self.templates.TemplateResponse(request, name, ctx, status_code=status)

    def fragment(self, name: str, lang: str, **ctx: Any) -> str:
        return self.templates.env.get_template(name).render(lang=lang, tr=tr_for(lang), **ctx)

    def cached(self, key: tuple, version: int, make: Callable[[], Any]) -> Any:
        """One rendering per key and version, shared by every stream."""
        hit = self._cache.get(key)
        if hit is not None and hit[0] == version:
            return hit[1]
        value = make()
        self._cache[key] = (version, value)
        return value

    def now_fragments(self, lang: str, version: int) -> tuple[str, str]:
        def make() -> tuple[str, str]:
            snap = self.live.snapshot()
            now = self.clock.now()
            view = views.now_view(snap, now)
            found = alerts_mod.alerts(snap, self.rules, now)
            return (self.fragment("_now.html", lang, v=view, now=now),
                    self.fragment("_alerts.html", lang, alerts=found, now=now))
        return self.cached(("now", lang), version, make)

    def caller_fragment(self, lang: str, version: int, window: int) -> str:
        def make() -> str:
            snap = self.live.snapshot()
            return self.fragment("_caller_panel.html", lang, **self.caller_view(snap, window))
        return self.cached(("caller", lang, window), version, make)

    def caller_view(self, snap: Any, window: int) -> dict[str, Any]:
        now = self.clock.now()
        st = snap.windows.get(window)
        info = next((w for w in snap.config.windows if w.no == window), None) if snap.config else None
        cats = list(info.categories) if info else []
        queue = []
        names = {c.code: c for c in snap.config.categories} if snap.config else {}
        for code in cats:
            q = snap.queue.categories.get(code) if snap.queue else None
            c = names.get(code)
            queue.append({"code": code, "name": c.name if c else code, "name_en": (c.name_en or c.name) if c else code,
                          "waiting": q.waiting if q else 0, "est": q.est_wait_min if q else None,
                          "longest": views.minutes_since(q.oldest_at, now) if q and q.waiting else None})
        return {"window": window, "info": info, "state": st, "queue": queue, "now": now,
                "controller": snap.controller or "unknown"}

    def home_for(self, user: Any) -> str:
        """Where a signed-in user starts: the live page for managers and viewers, the caller for clerks."""
        return "/now" if user.sees_dashboard else "/caller"

    # -- requests --------------------------------------------------------------------------------------
    def is_public(self, path: str) -> bool:
        if path in ("/login", "/favicon.ico") or path.startswith("/static/"):
            return True
        return any(path == p or path.startswith(p + "/") for p in self.public_prefixes)

    async def form(self, request: Request) -> FormData:
        """The posted form, after checking its CSRF token (a form field or the ``X-CSRF-Token`` header)."""
        session: Session | None = getattr(request.state, "session", None)
        form = await request.form()
        sent = request.headers.get("x-csrf-token") or str(form.get("csrf") or "")
        if session is None or not secrets.compare_digest(sent.encode(), session.csrf.encode()):
            raise HTTPException(403, "the form is out of date or forged (CSRF check failed): reload the page")
        return form

    def audit(self, request: Request, action: str, /, **detail: Any) -> None:
        session: Session = request.state.session
        if session.user.role == "manager":
            self.accounts.audit(session.user, action, detail, _address(request), _utcnow())


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


def _local_next(nxt: str | None) -> str:
    """Only a path of this server (never another site) to go back to."""
    if not nxt:
        return "/"
    parts = urlsplit(nxt)
    if parts.scheme or parts.netloc or not nxt.startswith("/") or nxt.startswith("//") or "\\" in nxt:
        return "/"
    return nxt


def require(*roles: str) -> Callable[[Callable[..., Awaitable[Response]]], Callable[[Request], Awaitable[Response]]]:
    """The route needs one of ``roles`` (the session guard has already asked for a session)."""

    def wrap(fn: Callable[..., Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            session: Session | None = getattr(request.state, "session", None)
            if session is None:
                raise HTTPException(401, "sign in first")
            if roles and session.user.role not in roles:
                raise HTTPException(403, "your account may not use this page (此账号无权使用此页面)")
            return await fn(request)

        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        return endpoint

    return wrap


def account_routes(D: Any) -> list[BaseRoute]:
    """Signing in and out and the language toggle: the routes every hallq web server with accounts has
    (the hall dashboard and the city dashboard). ``D`` gives ``render``, ``lang``, ``accounts``,
    ``clock`` (``.tz``), ``secure_cookies``, ``form`` and ``home_for(user)`` (where a sign-in lands)."""

    # -- signing in and out ------------------------------------------------------------------------------
    async def login_page(request: Request) -> Response:
        return _login_form(request, "", 200)

    def _login_form(request: Request, error: str, status: int) -> Response:
        token = secrets.token_urlsafe(16)
        resp = D.render(request, "login.html", status=status, error=error, login_csrf=token,
                        next=_local_next(request.query_params.get("next")))
        resp.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=D.secure_cookies,
                        path="/login")
        return resp

    async def login_post(request: Request) -> Response:
        form = await request.form()
        tr = tr_for(D.lang(request))
        sent = str(form.get("login_csrf") or "")
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not sent or not cookie or not secrets.compare_digest(sent.encode(), cookie.encode()):
            return _login_form(request, tr("登录表单已过期，请重试", "The sign-in form expired; try again"), 400)
        name = str(form.get("name") or "")[:64]
        password = str(form.get("password") or "")[:1024]
        try:
            token, session = await asyncio.to_thread(D.accounts.login, name, password, _address(request), _utcnow())
        except LockedOut as exc:
            return _login_form(request, tr(f"登录失败次数过多，请于 {exc.until.astimezone(D.clock.tz):%H:%M} 后再试",
                                           f"Too many failed sign-ins; try again after "
                                           f"{exc.until.astimezone(D.clock.tz):%H:%M}"), 429)
        except AccountError:
            return _login_form(request, tr("用户名或密码错误", "Wrong user name or password"), 401)
        default = D.home_for(session.user)
        nxt = _local_next(str(form.get("next") or "")) if form.get("next") not in (None, "", "/") else default
        resp = RedirectResponse(nxt, status_code=303)
        resp.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=D.secure_cookies, path="/")
        resp.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return resp

    @require()
    async def logout(request: Request) -> Response:
        await D.form(request)
        D.accounts.logout(request.state.session)
        resp = RedirectResponse("/login", status_code=303)
        resp.delete_cookie(SESSION_COOKIE, path="/")
        return resp

    @require()
    async def set_lang(request: Request) -> Response:
        lang = request.path_params["lang"]
        if lang not in LANGS:
            raise HTTPException(404)
        resp = RedirectResponse(_local_next(request.query_params.get("next")), status_code=303)
        resp.set_cookie(LANG_COOKIE, lang, samesite="strict", secure=D.secure_cookies, max_age=365 * 86400, path="/")
        return resp

    return [
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login_post, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{lang}", set_lang, methods=["GET"]),
    ]


def create_app(dash: Dashboard, *, extensions: list[Pages] | None = None, load_entry_points: bool = True) -> Starlette:
    D = dash

    @require()
    async def home(request: Request) -> Response:
        user = request.state.session.user
        return RedirectResponse(D.home_for(user), status_code=303)

    # -- the live dashboard ------------------------------------------------------------------------------
    @require("manager", "viewer")
    async def now_page(request: Request) -> Response:
        lang = D.lang(request)
        now_html, alerts_html = D.now_fragments(lang, D.hub.version)
        return D.render(request, "now.html", now_html=now_html, alerts_html=alerts_html)

    @require("manager", "viewer")
    async def now_events(request: Request) -> Response:
        lang = D.lang(request)

        async def stream() -> Any:
            seen = -1
            while True:
                v = await D.hub.wait_newer(seen, timeout=30)
                if v == seen:
                    continue  # keep-alive pings come from sse-starlette
                seen = v
                now_html, alerts_html = D.now_fragments(lang, v)
                yield {"event": "now", "data": now_html, "id": str(v)}
                yield {"event": "alerts", "data": alerts_html, "id": str(v)}

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    # -- the clerk's web caller ------------------------------------------------------------------------
    def _window_of(request: Request) -> int:
        try:
            no = int(request.path_params["window"])
        except (KeyError, ValueError):
            raise HTTPException(404, "no such window") from None
        if D.cfg is None or D.cfg.window(no) is None:
            raise HTTPException(404, f"there is no window {no} in this hall (没有这个窗口)")
        user = request.state.session.user
        if not user.may_use_window(no):
            raise HTTPException(403, f"your account may not use window {no} (此账号不能使用 {no} 号窗口)")
        return no

    @require("manager", "clerk")
    async def caller_choose(request: Request) -> Response:
        user = request.state.session.user
        windows = [w for w in D.cfg.windows if user.may_use_window(w.no)]
        if len(windows) == 1 and user.role == "clerk":
            return RedirectResponse(f"/caller/{windows[0].no}", status_code=303)
        snap = D.live.snapshot()
        return D.render(request, "caller_choose.html", windows=windows, states=snap.windows)

    @require("manager", "clerk")
    async def caller_page(request: Request) -> Response:
        no = _window_of(request)
        lang = D.lang(request)
        panel = D.caller_fragment(lang, D.hub.version, no)
        snap = D.live.snapshot()
        cats = snap.config.categories if snap.config else []
        others = [w for w in D.cfg.windows if w.no != no]
        return D.render(request, "caller.html", window=no, info=D.cfg.window(no), panel=panel,
                        categories=cats, others=others, keys=CALLER_KEYS)

    @require("manager", "clerk")
    async def caller_events(request: Request) -> Response:
        no = _window_of(request)
        lang = D.lang(request)

        async def stream() -> Any:
            seen = -1
            while True:
                v = await D.hub.wait_newer(seen, timeout=30)
                if v == seen:
                    continue
                seen = v
                yield {"event": "panel", "data": D.caller_fragment(lang, v, no), "id": str(v)}

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    @require("manager", "clerk")
    async def caller_op(request: Request) -> Response:
        no = _window_of(request)
        op = request.path_params["op"]
        form = await D.form(request)
        if op == "pause-toggle":  # F6: one key, like a hardware caller's pause key
            st = D.live.snapshot().windows.get(no)
            op = "resume" if st is not None and st.status == "paused" else "pause"
        lang = D.lang(request)
        tr = tr_for(lang)
        user = request.state.session.user
        staff = Staff(id=user.name, name=user.display_name)
        fields = {k: str(v) for k, v in form.items() if isinstance(v, str)}
        snap = D.live.snapshot()
        try:
            build_request("check", no, op, fields, staff, snap.config)  # refuse a bad form before sending
        except FormError as exc:
            return D.render(request, "_caller_result.html", status=422, ok=False,
                            message=tr("表单有误：" + exc.zh, "Please correct the form: " + exc.en), field=exc.field)
        try:
            reply = await asyncio.to_thread(
                D.callers.operate, no, lambda req: build_request(req, no, op, fields, staff, snap.config))
        except CallerError as exc:
            zh, en = ERRORS.get(exc.code, (exc.message, exc.message))
            return D.render(request, "_caller_result.html", status=409, ok=False, message=tr(zh, en),
                            detail=exc.message, code=exc.code)
        if user.role == "manager":
            D.audit(request, f"caller.{op}", window=no, ticket=reply.ticket.number if reply.ticket else None)
        zh, en = OP_DONE[op]
        return D.render(request, "_caller_result.html", ok=True, message=tr(zh, en),
                        ticket=reply.ticket.number if reply.ticket else None, op=op)

    # -- the audit log ---------------------------------------------------------------------------------
    @require("manager")
    async def audit_page(request: Request) -> Response:
        return D.render(request, "audit.html", entries=D.accounts.audit_log())

    routes: list[BaseRoute] = [
        *account_routes(D),
        Route("/", home, methods=["GET"]),
        Route("/now", now_page, methods=["GET"]),
        Route("/events/now", now_events, methods=["GET"]),
        Route("/caller", caller_choose, methods=["GET"]),
        Route("/caller/{window}", caller_page, methods=["GET"]),
        Route("/events/caller/{window}", caller_events, methods=["GET"]),
        Route("/caller/{window}/{op}", caller_op, methods=["POST"]),
        Route("/audit", audit_page, methods=["GET"]),
    ]
    if dash.history is not None:
        from .pages_history import history_routes

        routes += history_routes(dash, require)

    pages = list(extensions or [])
    if load_entry_points:
        pages += _load_extensions(dash)
    for p in pages:
        if p.public:
            if not p.prefix.startswith("/") or p.prefix in ("/", "") or dash.is_public(p.prefix) or any(
                    p.prefix == r.path for r in routes if isinstance(r, Route)):
                raise ValueError(f"an extension's public prefix {p.prefix!r} must be a path of its own")
            dash.public_prefixes.append(p.prefix.rstrip("/"))
        routes += p.public + p.private
        dash.extra_nav += p.nav
        if p.templates is not None:
            loader = dash.templates.env.loader
            assert isinstance(loader, jinja2.ChoiceLoader)
            loader.loaders = [*loader.loaders, jinja2.FileSystemLoader(str(p.templates))]
    routes.append(Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"))

    app = Starlette(routes=routes, exception_handlers={HTTPException: error_handler(D)},
                    lifespan=live_lifespan(dash))
    app.add_middleware(SessionGuard, dash=dash)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so the guard's answers carry them too
    return app


def error_handler(D: Any) -> Callable[[Request, Exception], Awaitable[Response]]:
    """The answer to an :class:`HTTPException` of a dashboard ``D`` (anything with ``lang`` and ``render``, like
    the city dashboard): the message as plain text to htmx and to event streams, else the error page."""

    async def on_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        tr = tr_for(D.lang(request))
        if request.headers.get("hx-request") or request.url.path.startswith("/events/"):
            return PlainTextResponse(exc.detail, status_code=exc.status_code)
        return D.render(request, "error.html", status=exc.status_code, code=exc.status_code, detail=exc.detail,
                        title=tr("出错了", "Something is wrong"))

    return on_error


def live_lifespan(D: Any, every: float = TICK_S) -> Callable[[Starlette], contextlib.AbstractAsyncContextManager]:
    """The lifespan of a dashboard's app whose pages live on ``D.hub`` (a :class:`Hub`): the hub wakes its
    waiters on the app's event loop, and every ``every`` seconds once anyway (clocks and "waited N min" move
    on when no message comes)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> Any:
        D.hub.attach(asyncio.get_running_loop())
        ticker = asyncio.create_task(_tick(D.hub, every))
        try:
            yield
        finally:
            ticker.cancel()

    return lifespan


async def _tick(hub: Hub, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        hub.bump_now()


class SecurityHeaders:
    """Headers every answer carries: no framing, no sniffing, scripts only from this server."""

    CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
           "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'")

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"same-origin"),
                            (b"content-security-policy", self.CSP.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: The caller's keys, like a hardware caller's (F1-F6), and what they do.
CALLER_KEYS = [
    ("F1", "next", "叫号", "Next"),
    ("F2", "recall", "重呼", "Recall"),
    ("F3", "noshow", "过号", "No-show"),
    ("F4", "transfer", "转号", "Transfer"),
    ("F5", "done", "办结", "Done"),
    ("F6", "pause", "暂停/恢复", "Pause/Resume"),
]


def _load_extensions(dash: Dashboard) -> list[Pages]:
    ctx = PageContext(cfg=dash.cfg, live=dash.live, hub=dash.hub, templates=dash.templates, clock=dash.clock,
                      broker=dash.broker, db_path=dash.db_path, form=dash.form, identities=dash.identities)
    out = []
    for ep in entry_points(group=GROUP):
        try:
            pages = ep.load()(ctx)
        except Exception:
            log.exception("the dashboard pages %r cannot load; serving without them", ep.name)
            continue
        if not isinstance(pages, Pages):
            log.error("the dashboard pages %r did not return a Pages; serving without them", ep.name)
            continue
        out.append(pages)
    return out
