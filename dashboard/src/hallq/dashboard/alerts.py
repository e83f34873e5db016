"""The manager's alerts, decided from what the hall's topics say and the time (pure: no IO, no clock).

:func:`alerts` returns, for a :class:`~hallq.dashboard.live.Snapshot` at ``now``, every condition that needs
a manager now, each with a stable ``key`` (the browser rings and notifies once per new key):

- ``controller``: the controller is offline (numbering and calling stop);
- ``wait``: the longest-waiting ticket of a category has waited over the category's threshold;
- ``idle`` / ``paused``: a window with a clerk is idle or paused longer than allowed while people wait for
  one of its categories;
- ``device``: a device is offline (a clean ``stopped`` is not an alert), its printer is out of paper, or one
  of its readers has failed;
- ``followup``: a follow-up of a bad review is overdue, due today or due tomorrow.

The thresholds are the hall's (:class:`Rules`, from ``[alerts]`` in ``hall.toml``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .live import Snapshot


@dataclass(frozen=True)
class Rules:
    wait_min: int = 30
    wait_min_by_category: dict[str, int] = field(default_factory=dict)
    idle_min: int = 5
    paused_min: int = 15
    followup_warn_days: int = 1  # warn this many days before the due date

    def wait_threshold(self, category: str) -> int:
        return self.wait_min_by_category.get(category, self.wait_min)

    @classmethod
    def of(cls, section: Any) -> Rules:
        """The rules of an ``[alerts]`` section (the defaults without one)."""
        if section is None:
            return cls()
        return cls(wait_min=section.wait_min, wait_min_by_category=dict(section.wait_min_by_category),
                   idle_min=section.idle_min, paused_min=section.paused_min,
                   followup_warn_days=section.followup_warn_days)


@dataclass(frozen=True)
class Alert:
    kind: str  # controller | wait | idle | paused | device | followup
    key: str
    level: str  # "crit" or "warn"
    params: dict[str, Any]


def _minutes(d: timedelta) -> int:
    return max(int(d.total_seconds() // 60), 0)


def alerts(snap: Snapshot, rules: Rules, now: datetime) -> list[Alert]:
    out: list[Alert] = []
    if snap.controller == "offline":
        out.append(Alert("controller", "controller", "crit", {}))

    waiting: dict[str, int] = {}
    if snap.queue is not None:
        for code, q in snap.queue.categories.items():
            waiting[code] = q.waiting
            if q.waiting and q.oldest_at is not None:
                mins = _minutes(now - q.oldest_at)
                limit = rules.wait_threshold(code)
                if mins > limit:
                    out.append(Alert("wait", f"wait:{code}:{q.oldest_at.isoformat()}", "warn",
                                     {"category": code, "minutes": mins, "limit": limit, "waiting": q.waiting}))

    cats_of: dict[int, list[str]] = {}
    if snap.config is not None:
        cats_of = {w.no: list(w.categories) for w in snap.config.windows}
    for no, st in sorted(snap.windows.items()):
        if st.staff is None or st.status not in ("idle", "paused"):
            continue
        people = sum(waiting.get(c, 0) for c in cats_of.get(no, []))
        since = snap.since.get(no)
        if not people or since is None:
            continue
        mins = _minutes(now - since)
        limit = rules.idle_min if st.status == "idle" else rules.paused_min
        if mins > limit:
            out.append(Alert(st.status, f"{st.status}:{no}:{since.isoformat()}", "warn",
                             {"window": no, "minutes": mins, "limit": limit, "waiting": people,
                              "staff": st.staff.name}))

    for dev, status in sorted(snap.device_status.items()):
        if status == "offline":
            out.append(Alert("device", f"device:{dev}:offline", "crit", {"device": dev, "what": "offline"}))
    for dev, h in sorted(snap.device_health.items()):
        if snap.device_status.get(dev) in ("offline", "stopped"):
            continue
        if h.printer is not None and h.printer.paper == "out":
            out.append(Alert("device", f"device:{dev}:paper", "crit", {"device": dev, "what": "paper_out"}))
        elif h.printer is not None and h.printer.paper == "near_end":
            out.append(Alert("device", f"device:{dev}:paper_low", "warn", {"device": dev, "what": "paper_low"}))
        for r in h.readers:
            if not r.online:
                out.append(Alert("device", f"device:{dev}:reader:{r.name}", "warn",
                                 {"device": dev, "what": "reader", "reader": r.name, "detail": r.detail or ""}))

    if snap.followups is not None:
        today = now.date()
        warn_until = (today + timedelta(days=rules.followup_warn_days)).isoformat()
        for f in snap.followups.open:
            if f.due < today.isoformat():
                out.append(Alert("followup", f"followup:{f.id}:overdue", "crit",
                                 {"id": f.id, "ticket": f.ticket, "due": f.due, "when": "overdue"}))
            elif f.due <= warn_until:
                when = "today" if f.due == today.isoformat() else "soon"
                out.append(Alert("followup", f"followup:{f.id}:{when}", "warn",
                                 {"id": f.id, "ticket": f.ticket, "due": f.due, "when": when}))
    return out
