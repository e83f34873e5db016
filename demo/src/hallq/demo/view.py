"""The demo's live terminal view (rich), drawn from the hall's retained topics.

:class:`HallPicture` keeps the latest ``config``, ``queue``, ``window/{n}/state``, ``board`` and ``stats``
payloads and the controller's availability (fed by :meth:`HallPicture.feed`, which refuses nothing and
ignores what does not decode); :func:`render` turns a picture into a rich renderable. A display that
connects late gets the whole picture at once from the retained topics, as every hall screen does.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from hallq.shared.mqtt import Message
from hallq.shared.schemas import (
    LEVEL_NAMES_ZH,
    LEVELS,
    Board,
    HallConfig,
    PayloadError,
    QueueState,
    Stats,
    WindowState,
    decode,
)
from hallq.shared.topics import HallTopics, TopicError
from hallq.shared.wording import nobody_serves, wait_phrase
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

STATUS_STYLE = {"idle": "green", "serving": "bold yellow", "paused": "magenta", "closed": "dim"}
#: The words of the hall screen and the report (one term each: 正在办理, 暂停服务, 未开放, 等候, 转号).
STATUS_ZH = {"idle": "空闲", "serving": "正在办理", "paused": "暂停服务", "closed": "未开放"}


@dataclass
class HallPicture:
    """What the hall's retained topics say right now."""

    topics: HallTopics
    config: HallConfig | None = None
    queue: QueueState | None = None
    windows: dict[int, WindowState] = field(default_factory=dict)
    board: Board | None = None
    stats: Stats | None = None
    controller: str = "?"
    stats_seen: int = 0  # how many stats messages have come
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, msg: Message) -> None:
        """Take in one message of the hall (any topic; unknown or broken payloads are ignored)."""
        t = self.topics
        try:
            with self.lock:
                if msg.topic == t.config:
                    self.config = decode(msg.payload, HallConfig)
                elif msg.topic == t.queue:
                    self.queue = decode(msg.payload, QueueState)
                elif msg.topic == t.board:
                    self.board = decode(msg.payload, Board)
                elif msg.topic == t.stats:
                    self.stats = decode(msg.payload, Stats)
                    self.stats_seen += 1
                elif msg.topic == t.controller_status:
                    self.controller = msg.payload.decode("utf-8", "replace")
                elif msg.topic.endswith("/state") and "/window/" in msg.topic:
                    self.windows[t.parse_window_state(msg.topic)] = decode(msg.payload, WindowState)
        except (PayloadError, TopicError):
            pass


def _minutes_since(at: datetime, now: datetime) -> str:
    return f"{max(0.0, (now - at).total_seconds() / 60):.0f} 分"


def render(p: HallPicture, now: datetime, footer: str = "") -> RenderableType:
    """The whole view: header, windows, queues, latest calls, today's figures."""
    with p.lock:
        cfg, queue, windows, board, stats = p.config, p.queue, dict(p.windows), p.board, p.stats
        controller = p.controller
    title = cfg.name if cfg else p.topics.hall
    head = Text.assemble((f"{title}  ", "bold"), (now.strftime("%H:%M"), "bold cyan"),
                         ("  controller: ", "dim"), (controller, "green" if controller == "online" else "red"))
    names = {c.code: c.name for c in cfg.categories} if cfg else {}

    wt = Table(title="窗口 Windows", expand=True, title_justify="left")
    wt.add_column("窗口", no_wrap=True)
    wt.add_column("业务", overflow="fold")
    wt.add_column("状态", no_wrap=True)
    wt.add_column("号码", no_wrap=True)
    wt.add_column("工作人员", no_wrap=True)
    infos = {w.no: w for w in cfg.windows} if cfg else {}
    for no in sorted(set(infos) | set(windows)):
        info, st = infos.get(no), windows.get(no)
        status = st.status if st else "closed"
        ticket = ""
        if st and st.ticket:
            ticket = st.ticket.number + (f" (重呼{st.ticket.recalls})" if st.ticket.recalls else "")
            ticket += f"  {_minutes_since(st.ticket.called_at, now)}"
        wt.add_row(
            info.name if info else f"{no}号窗口",
            "全部" if info and cfg and len(info.categories) == len(cfg.categories) > 2 else
            "、".join(info.categories) if info else "",
            Text(STATUS_ZH.get(status, status), style=STATUS_STYLE.get(status, "")),
            ticket,
            st.staff.name if st and st.staff else "",
        )

    qt = Table(title="排队 Queues", expand=True, title_justify="left")
    qt.add_column("业务")
    qt.add_column("等候", justify="right")
    qt.add_column("预计等候", justify="right")
    if queue:
        statuses = {no: st.status for no, st in windows.items()}
        wins = [(w.no, w.categories) for w in cfg.windows] if cfg else []
        for code, q in queue.categories.items():
            # as the hall screen says it: not 即到即办 outside the hours or with no window of it open
            quiet = nobody_serves(cfg.hours, wins, statuses, code, now) if cfg else None
            est = quiet[0] if quiet else wait_phrase(q.waiting, q.est_wait_min,
                                                     tuple(q.est_wait_range) if q.est_wait_range else None)[0]
            qt.add_row(f"{code} {names.get(code, '')}", str(q.waiting), est,
                       style="bold" if q.waiting >= 10 else "")

    ct = Table(title="最近叫号 Latest calls", expand=True, title_justify="left")
    ct.add_column("时间", no_wrap=True)
    ct.add_column("号码", no_wrap=True)
    ct.add_column("窗口")
    if board:
        for c in board.calls[:8]:
            ct.add_row(c.at.strftime("%H:%M"), c.ticket + (" 重呼" if c.recall else ""), c.window_name)

    parts: list[RenderableType] = [head, wt, Table.grid(expand=True)]
    grid = parts[-1]
    assert isinstance(grid, Table)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(qt, ct)
    if stats:
        h = stats.hall
        sat = f"{h.satisfaction * 100:.2f}%" if h.satisfaction is not None else "-"
        levels = "  ".join(f"{LEVEL_NAMES_ZH[lv]} {h.ratings.get(lv, 0)}" for lv in LEVELS)  # type: ignore[call-overload]
        wait = f"{h.wait_mean_min:.1f}/{h.wait_p90_min:.1f} 分" if h.wait_mean_min is not None and h.wait_p90_min is not None else "-"
        parts.append(Panel(
            f"取号 {h.issued}  叫号 {h.called}  办结 {h.served}  过号 {h.noshow}  转号 {h.transferred}  "
            f"等候(平均/P90) {wait}\n满意率 {sat}   {levels}",
            title=f"今日统计 ({stats.at.strftime('%H:%M')})", title_align="left"))
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)
