"""What a follow page shows, from the hall's retained state alone. Pure: no IO, no clock.

A ticket is *waiting* while its number is in a queue's ``order`` (its index is how many go first),
*called* while a window's state shows it, and *gone* otherwise (served, missed, cancelled or expired: the
retained state does not say which, and the page need not). Nothing personal is in a view.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from hallq.shared.schemas import HallConfig, QueueState, WindowState


@dataclass(frozen=True, slots=True)
class TicketView:
    number: str
    status: str  # waiting | called | gone | unknown (the hall's state has not arrived)
    category: str = ""
    category_en: str = ""
    ahead: int | None = None
    waiting: int | None = None  # in its queue
    est_low: int | None = None  # minutes: the queue's range for a new ticket, scaled to this one's place
    est_high: int | None = None
    window: int | None = None
    window_name: str = ""
    window_name_en: str = ""
    recalls: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


def ticket_view(number: str, config: HallConfig | None, queue: QueueState | None,
                windows: dict[int, WindowState]) -> TicketView:
    if config is None or queue is None:
        return TicketView(number, "unknown")
    cats = {c.prefix: c for c in config.categories}
    prefix = number.rstrip("0123456789")
    cat = cats.get(prefix)
    names = {"category": cat.name if cat else "", "category_en": (cat.name_en or "") if cat else ""}
    for w in sorted(windows.values(), key=lambda w: w.window):
        if w.ticket is not None and w.ticket.number == number and w.status in ("serving", "paused"):
            info = next((x for x in config.windows if x.no == w.window), None)
            return TicketView(number, "called", **names, window=w.window,
                              window_name=info.name if info else f"{w.window}号窗口",
                              window_name_en=(info.name_en or f"Window {w.window}") if info else f"Window {w.window}",
                              recalls=w.ticket.recalls)
    for code, q in queue.categories.items():
        if number in q.order:
            c = next((x for x in config.categories if x.code == code), cat)
            ahead = q.order.index(number)
            f = (ahead + 1) / (len(q.order) + 1)  # the queue's estimate is for a ticket behind them all
            rng = q.est_wait_range or (q.est_wait_min, q.est_wait_min)
            return TicketView(number, "waiting", category=c.name if c else "", category_en=(c.name_en or "") if c else "",
                              ahead=ahead, waiting=q.waiting, est_low=math.floor(rng[0] * f),
                              est_high=math.ceil(rng[1] * f))
    return TicketView(number, "gone", **names)


def all_views(config: HallConfig | None, queue: QueueState | None,
              windows: dict[int, WindowState]) -> dict[str, TicketView]:
    """The view of every ticket that waits or is called, in one pass (the others are *gone*): what 500 open
    follow pages share after each change, instead of each working it out again."""
    if config is None or queue is None:
        return {}
    out: dict[str, TicketView] = {}
    for w in windows.values():
        if w.ticket is not None and w.status in ("serving", "paused"):
            out[w.ticket.number] = ticket_view(w.ticket.number, config, queue, {w.window: w})
    cats = {c.code: c for c in config.categories}
    for code, q in queue.categories.items():
        c = cats.get(code)
        rng = q.est_wait_range or (q.est_wait_min, q.est_wait_min)
        n = len(q.order)
        for ahead, number in enumerate(q.order):
            if number in out:
                continue
            f = (ahead + 1) / (n + 1)
            out[number] = TicketView(number, "waiting", category=c.name if c else "",
                                     category_en=(c.name_en or "") if c else "", ahead=ahead, waiting=q.waiting,
                                     est_low=math.floor(rng[0] * f), est_high=math.ceil(rng[1] * f))
    return out
