"""What the live pages show, built from a :class:`~hallq.dashboard.live.Snapshot` and the time (pure).

The templates only lay these out; every rule of what a window, a category or a device shows lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from hallq.shared.schemas import DeviceHealth, HallConfig

from .live import Snapshot


def minutes_since(t: datetime | None, now: datetime) -> int | None:
    if t is None:
        return None
    return max(int((now - t).total_seconds() // 60), 0)


@dataclass
class WindowRow:
    no: int
    name: str
    name_en: str
    categories: list[str]
    status: str  # idle | serving | paused | closed | unknown
    ticket: str | None = None
    recalls: int = 0
    staff: str | None = None
    serving_min: int | None = None  # minutes since the ticket was called
    since_min: int | None = None  # minutes in this status (when the dashboard saw it begin)


@dataclass
class CategoryRow:
    code: str
    name: str
    name_en: str
    waiting: int
    est_wait_min: int | None
    longest_min: int | None
    windows: list[int] = field(default_factory=list)  # open windows that serve it


@dataclass
class DeviceRow:
    id: str
    status: str  # online | stopped | offline | never_seen | unknown
    role: str | None = None
    paper: str | None = None
    problems: list[str] = field(default_factory=list)
    window: int | None = None
    version: str | None = None
    last_seen: str | None = None  # HH:MM (or the date when not today), the hall's time
    listed: bool | None = None  # in hall.toml's [[devices]] (None: no registry to say)


@dataclass
class NowView:
    controller: str
    windows: list[WindowRow]
    categories: list[CategoryRow]
    calls: list[dict]
    devices: list[DeviceRow]
    waiting_total: int
    serving: int
    open_windows: int


def _window_rows(cfg: HallConfig | None, snap: Snapshot, now: datetime) -> list[WindowRow]:
    rows: dict[int, WindowRow] = {}
    if cfg is not None:
        for w in cfg.windows:
            rows[w.no] = WindowRow(w.no, w.name, w.name_en or w.name, list(w.categories), "unknown")
    for no, st in snap.windows.items():
        r = rows.setdefault(no, WindowRow(no, str(no), str(no), [], "unknown"))
        r.status = st.status
        r.staff = st.staff.name if st.staff else None
        if st.ticket is not None:
            r.ticket = st.ticket.number
            r.recalls = st.ticket.recalls
            r.serving_min = minutes_since(st.ticket.called_at, now)
        r.since_min = minutes_since(snap.since.get(no), now)
    return [rows[k] for k in sorted(rows)]


def _seen(t: datetime | None, now: datetime) -> str | None:
    if t is None:
        return None
    local = t.astimezone(now.tzinfo)
    return local.strftime("%H:%M") if local.date() == now.date() else local.strftime("%Y-%m-%d %H:%M")


def _device_rows(snap: Snapshot, now: datetime) -> list[DeviceRow]:
    """The devices: the controller's ``devices`` registry when it has published one (every listed device
    with its role, window, software version and when it was last seen, also those never seen), with what
    the devices' own ``status`` and ``health`` messages said since (the dashboard hears those directly, so
    a device going offline shows even while the controller is down); without a registry, the devices that
    spoke up."""
    rows: dict[str, DeviceRow] = {}
    if snap.registry is not None:
        for d in snap.registry.devices:
            r = rows[d.id] = DeviceRow(d.id, d.status, role=d.role, window=d.window, version=d.version,
                                       last_seen=_seen(d.last_seen, now), listed=d.listed)
            if d.health is not None and d.id not in snap.device_health:
                _health(r, d.health)
    for dev, status in snap.device_status.items():
        rows.setdefault(dev, DeviceRow(dev, status)).status = status
    for dev, h in snap.device_health.items():
        r = rows.setdefault(dev, DeviceRow(dev, "unknown"))
        r.paper, r.problems = None, []
        _health(r, h)
        if r.status in ("unknown", "never_seen") and dev not in snap.device_status:
            r.status = "online"  # it speaks
    # a steady order (the registry's: listed first, by role and window), so rows do not jump as they change
    return sorted(rows.values(), key=lambda r: (r.listed is False, r.role or "~", r.window or 0, r.id))


def _health(r: DeviceRow, h: DeviceHealth) -> None:
    r.role = r.role or h.role
    if h.version:
        r.version = h.version
    if h.printer is not None:
        r.paper = h.printer.paper
        if h.printer.online is False:
            r.problems.append("printer offline")
    for rd in h.readers:
        if not rd.online:
            r.problems.append(f"{rd.name}: {rd.detail or 'offline'}")
    r.problems.extend(h.errors)


def now_view(snap: Snapshot, now: datetime) -> NowView:
    cfg = snap.config
    windows = _window_rows(cfg, snap, now)
    open_by_cat: dict[str, list[int]] = {}
    for w in windows:
        if w.status in ("idle", "serving"):
            for c in w.categories:
                open_by_cat.setdefault(c, []).append(w.no)
    cats: list[CategoryRow] = []
    names = {c.code: c for c in cfg.categories} if cfg else {}
    codes = list(names) or sorted(snap.queue.categories) if snap.queue else list(names)
    for code in codes:
        q = snap.queue.categories.get(code) if snap.queue else None
        info = names.get(code)
        cats.append(CategoryRow(
            code=code, name=info.name if info else code, name_en=(info.name_en or info.name) if info else code,
            waiting=q.waiting if q else 0, est_wait_min=q.est_wait_min if q else None,
            longest_min=minutes_since(q.oldest_at, now) if q and q.waiting else None,
            windows=open_by_cat.get(code, []),
        ))
    calls = []
    if snap.board is not None:
        wname = {w.no: (w.name, w.name_en or w.name) for w in cfg.windows} if cfg else {}
        for c in snap.board.calls:
            zh, en = wname.get(c.window, (c.window_name, c.window_name))
            calls.append({"ticket": c.ticket, "window": c.window, "window_name": zh, "window_name_en": en,
                          "recall": c.recall, "at": c.at.astimezone(now.tzinfo).strftime("%H:%M:%S")})
    devices = _device_rows(snap, now)
    return NowView(
        controller=snap.controller or "unknown",
        windows=windows,
        categories=cats,
        calls=calls,
        devices=devices,
        waiting_total=sum(c.waiting for c in cats),
        serving=sum(1 for w in windows if w.status == "serving"),
        open_windows=sum(1 for w in windows if w.status in ("idle", "serving", "paused")),
    )
