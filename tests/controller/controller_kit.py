"""Controller test helpers: a small hall config and a pure-core driver with explicit times.

Imported by the controller tests as ``controller_kit`` (tests/controller/conftest.py puts it on the path)."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from hallq.controller import config, core
from hallq.shared.schemas import (
    RateRequest,
    Staff,
    TakeRequest,
    TransferTo,
    WindowRequest,
)

TZ = ZoneInfo("Asia/Shanghai")

HALL_TOML = """
[hall]
id = "test"
name = "测试政务服务中心"
hours = [["09:00", "12:00"], ["14:00", "18:00"]]

[[categories]]
code = "A"
name = "社保医保"
daily_quota = 5

[[categories]]
code = "B"
name = "不动产登记"

[[categories]]
code = "C"
name = "户籍"
prefix = "H"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A"]

[[windows]]
no = 2
name = "2号窗口"
categories = ["A", "B"]

[[windows]]
no = 3
name = "3号综合窗口"
categories = ["*"]

[dispatch]
priority_lead_min = 15
"""


def at(hhmm: str, day: int = 2) -> datetime:
    """A time on 2026-03-0{day} in the hall's time zone."""
    h, m = hhmm.split(":")[:2]
    s = hhmm.split(":")[2] if hhmm.count(":") == 2 else "0"
    return datetime(2026, 3, day, int(h), int(m), int(s), tzinfo=TZ)


class Hall:
    """Drives the pure core like the app does, keeping every effect for assertions."""

    def __init__(self, toml: str = HALL_TOML, now: datetime | None = None):
        self.cfg = config.parse(toml)
        self.now = now or at("08:00")
        self.state = core.new_state(self.cfg, self.now)
        self.effects: list[core.Effects] = []
        self._req = 0

    def at(self, when: datetime | str) -> Hall:
        self.now = at(when) if isinstance(when, str) else when
        return self

    def later(self, minutes: float) -> Hall:
        self.now += timedelta(minutes=minutes)
        return self

    def send(self, client: str, payload) -> dict:
        self.state, fx = core.handle(self.state, core.Request(client, payload), self.now)
        self.effects.append(fx)
        assert fx.reply is not None and fx.reply[0] == client
        return msgspec.json.decode(fx.reply[1])

    def req(self) -> str:
        self._req += 1
        return f"r{self._req}"

    def take(self, category: str = "A", client: str = "kiosk-1", **kw) -> dict:
        return self.send(client, TakeRequest(req=self.req(), category=category, **kw))

    def op(self, window: int, op: str, client: str = "caller-1", **kw) -> dict:
        if "to" in kw and isinstance(kw["to"], dict):
            kw["to"] = TransferTo(**kw["to"])
        if op == "open" and "staff" not in kw:
            kw["staff"] = Staff(id=f"s{window}", name=f"clerk {window}")
        return self.send(client, WindowRequest(req=self.req(), window=window, op=op, **kw))

    def rate(self, window: int, ticket: str, level: str = "very_satisfied", client: str = "pad-1") -> dict:
        return self.send(client, RateRequest(req=self.req(), window=window, ticket=ticket, level=level))

    def tick(self) -> core.Effects:
        self.state, fx = core.handle(self.state, core.Tick(), self.now)
        self.effects.append(fx)
        return fx

    @property
    def last(self) -> core.Effects:
        return self.effects[-1]


def number(reply: dict) -> str:
    assert reply["ok"], reply
    return reply["ticket"]["number"]


def code(reply: dict) -> str:
    assert not reply["ok"], reply
    return reply["error"]["code"]


