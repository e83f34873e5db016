"""How another member adds pages to the dashboard's server (the seam; e.g. the citizens' phone pages).

A member declares an entry point in the group ``hallq.dashboard.pages``::

    [project.entry-points."hallq.dashboard.pages"]
    phone = "hallq.sms.pages:pages"

The entry point is a function ``pages(ctx: PageContext) -> Pages``. ``Pages.public`` routes (Starlette
``Route``/``Mount``) are served WITHOUT a session (citizens' pages: keep them free of personal data and
rate-limit them yourself); their paths must start with ``Pages.prefix`` (e.g. ``/m``), which is then the
only thing the session guard lets through for them. ``Pages.private`` routes need a signed-in account
(``request.state.session.user`` has ``name`` and ``role``); for unsafe methods call
``await ctx.form(request)`` to get the CSRF-checked form. ``ctx.templates`` renders with the dashboard's
layout (``{% extends "base.html" %}``, ``tr(zh, en)``); a member's own templates folder is added with
``Pages.templates``; ``Pages.nav`` adds links to the menu. ``ctx.live`` is the hall mirror (:class:`~hallq.dashboard.live.LiveHall`: call
``snapshot()``; ``ctx.hub`` wakes SSE streams on every change: ``await ctx.hub.wait_newer(seen)``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.routing import BaseRoute

GROUP = "hallq.dashboard.pages"


@dataclass
class Pages:
    prefix: str = ""
    public: list[BaseRoute] = field(default_factory=list)
    private: list[BaseRoute] = field(default_factory=list)
    templates: Path | None = None
    #: links for the dashboard's menu, shown to those who see the dashboard: (path, 中文, English)
    nav: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class PageContext:
    cfg: Any  # hallq.controller.config.HallFile
    live: Any  # hallq.dashboard.live.LiveHall
    hub: Any  # hallq.dashboard.app.Hub
    templates: Any  # starlette.templating.Jinja2Templates
    clock: Any  # hallq.shared.clock.Clock
    broker: Any  # hallq.shared.config.BrokerURL
    db_path: Path | None
    form: Callable[[Any], Awaitable[Any]]
    #: client id -> BrokerURL (with its credential) of the other identities the dashboard was given (the
    #: scan-to-take page's kiosk identity); a page that publishes as such a client logs in with this one
    identities: dict[str, Any] = field(default_factory=dict)
