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
from harness import ControllerProcess

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
        if kw.get("priority") is not None and "channel" not in kw:
            kw["channel"] = "staff"  # a priority needs a voucher (core/limits.py): staff confirm it here
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




class StoredHall(Hall):
    """A :class:`Hall` whose every effect is committed to a real SQLite record, like the app does."""

    def __init__(self, db, toml: str = HALL_TOML, now: datetime | None = None):
        from hallq.controller.storage import Storage

        super().__init__(toml, now)
        self.db = db
        self.storage = Storage(db, self.cfg)
        self.state = self.storage.load(self.now)

    def send(self, client: str, payload) -> dict:
        r = super().send(client, payload)
        self.storage.write(self.last.records)
        return r

    def tick(self) -> core.Effects:
        fx = super().tick()
        self.storage.write(fx.records)
        return fx

    def restart(self) -> StoredHall:
        """A new process on the same database: close, open again, load."""
        self.storage.close()
        again = StoredHall(self.db, now=self.now)
        again._req = self._req
        return again


# -- system tests: the real controller process on a real broker ------------------------------------------------
SYSTEM_DEVICES = """
[[devices]]
id = "kiosk-1"
role = "kiosk"

[[devices]]
id = "kiosk-2"
role = "kiosk"

[[devices]]
id = "caller-1"
role = "window"
window = 1

[[devices]]
id = "caller-2"
role = "window"
window = 2

[[devices]]
id = "caller-3"
role = "window"
window = 3

[[devices]]
id = "pad-1"
role = "pad"
window = 1
"""


class ControllerProc(ControllerProcess):
    """``.venv/bin/hallq controller`` as a subprocess, on a scaled clock that starts at ``start``."""

    def __init__(self, workdir, broker_url: str, toml: str = HALL_TOML, start: str = "2026-03-02T09:00:00+08:00",
                 speed: float = 1.0):
        super().__init__(workdir, broker_url, toml, clock=start, speed=speed, hall="test")


class Requester:
    """A plain paho client that sends requests as one client id and waits for the matching answer."""

    def __init__(self, port: int, hall: str = "test"):
        from harness import Monitor

        self.hall = hall
        self.mon = Monitor(port, f"hallq/{hall}/#")

    def send(self, client: str, action: str, payload, timeout: float = 5.0) -> dict:
        import json

        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        req = json.loads(data)["req"]
        n = len(self.mon.messages)
        self.mon.publish(f"hallq/{self.hall}/req/{client}/{action}", data)
        msg = self.wait_reply(client, req, timeout, after=n)
        return json.loads(msg.payload)

    def wait_reply(self, client: str, req: str, timeout: float = 5.0, after: int = 0):
        import json

        topic = f"hallq/{self.hall}/reply/{client}"

        def fits(m) -> bool:
            try:
                return json.loads(m.payload).get("req") == req
            except ValueError:
                return False

        return self.mon.wait_for(topic, lambda m: m in self.mon.messages[after:] and fits(m), timeout)

    def close(self) -> None:
        self.mon.close()
