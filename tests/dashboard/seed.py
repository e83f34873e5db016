"""A hall's history written by the controller's own core and storage (no MQTT, no clock): days of takes,
calls, services and ratings, for the history pages' tests and the report benchmark.

Citizens arrive as a Poisson stream over the opening hours (their category by ``shares``); every window
has a clerk who calls the next ticket as soon as it is free and serves it for an exponential time; four
in five citizens rate. Each day's records are written in one transaction, as the controller would have
written them over the day.
"""

from __future__ import annotations

import heapq
import random
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hallq.controller import core
from hallq.controller.config import HallFile
from hallq.controller.storage import Storage
from hallq.shared.schemas import RateRequest, Staff, TakeRequest, WindowRequest

LEVELS = ["very_satisfied"] * 6 + ["satisfied"] * 3 + ["basic", "dissatisfied"]


def seed(db: Path, cfg: HallFile, first: date, days: int, per_day: int, *, service_min: float = 3.0,
         shares: dict[str, float] | None = None, seed: int = 1, weekdays_only: bool = False) -> int:
    """Write ``days`` days from ``first`` (``per_day`` takes each, on average); returns the tickets issued."""
    tz = ZoneInfo(cfg.hall.timezone)
    rng = random.Random(seed)
    storage = Storage(db, cfg)
    codes = [c.code for c in cfg.categories]
    weights = [(shares or {}).get(c, 1.0) for c in codes]
    hours = cfg.open_intervals() or [(datetime.min.time(), None)]
    state = core.new_state(cfg, datetime.combine(first, hours[0][0], tz))
    devices = cfg.devices or []

    def device(role: str, window: int | None, default: str) -> str | None:
        if not devices:
            return default
        return next((d.id for d in devices if d.role == role and d.window == window), None)

    kiosk = device("kiosk", None, "kiosk-1")
    caller = {w.no: device("window", w.no, f"win-{w.no}") for w in cfg.windows}
    pad = {w.no: device("pad", w.no, f"pad-{w.no}") for w in cfg.windows}
    staffed = [w for w in cfg.windows if caller[w.no] is not None]
    issued = 0
    n = 0

    def req() -> str:
        nonlocal n
        n += 1
        return f"seed-{n}"

    records: list = []
    events: list[tuple[datetime, int, str, object]] = []
    seq = 0

    def run(event: core.Event, t: datetime) -> core.Effects:
        nonlocal state
        state, fx = core.handle(state, event, t)
        records.extend(fx.records)
        return fx

    def push(t: datetime, kind: str, data: object) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (t, seq, kind, data))

    for k in range(days):
        day = first + timedelta(days=k)
        if weekdays_only and day.weekday() >= 5:
            continue
        records.clear()

        spans = [(datetime.combine(day, a, tz), datetime.combine(day, b, tz) if b else
                  datetime.combine(day + timedelta(days=1), datetime.min.time(), tz)) for a, b in hours]
        open_s = sum((b - a).total_seconds() for a, b in spans)
        rate = per_day / open_s
        for a, b in spans:
            t = a
            while True:
                t += timedelta(seconds=rng.expovariate(rate))
                if t >= b:
                    break
                push(t, "take", rng.choices(codes, weights)[0])
        start = spans[0][0]
        for w in staffed:
            run(core.Request(caller[w.no], WindowRequest(req=req(), window=w.no, op="open",
                                                           staff=Staff(id=f"clerk{w.no}", name=f"工作人员{w.no}"))),
                start)
        idle = {w.no for w in staffed}
        end = spans[-1][1]
        while events:
            t, _, kind, data = heapq.heappop(events)
            if kind == "take":
                fx = run(core.Request(kiosk, TakeRequest(req=req(), category=str(data))), t)
                if fx.reply and b'"ok":true' in fx.reply[1]:
                    issued += 1
                for w in sorted(idle):
                    push(t, "free", w)
                idle.clear()
            elif kind == "free":
                w = int(data)  # type: ignore[arg-type]
                if t >= end:
                    continue
                fx = run(core.Request(caller[w], WindowRequest(req=req(), window=w, op="next")), t)
                cur = state.windows[w].current
                if cur is None:
                    idle.add(w)
                    continue
                push(t + timedelta(seconds=rng.expovariate(1 / (service_min * 60))), "done", (w, cur))
            elif kind == "done":
                w, number = data  # type: ignore[misc]
                run(core.Request(caller[w], WindowRequest(req=req(), window=w, op="done")), t)
                if pad[w] is not None and rng.random() < 0.8:
                    run(core.Request(pad[w], RateRequest(req=req(), window=w, ticket=number,
                                                             level=rng.choice(LEVELS))), t)
                push(t + timedelta(seconds=30), "free", w)
        for w in staffed:
            run(core.Request(caller[w.no], WindowRequest(req=req(), window=w.no, op="close")), end)
        storage.write(records)
    storage.close()
    return issued
