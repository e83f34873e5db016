"""The live view: fed the hall's retained topics, it shows windows, queues, calls and the day's figures."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallq.controller import config
from hallq.demo.view import HallPicture, render
from hallq.shared.mqtt import Message
from hallq.shared.schemas import (
    Board,
    Call,
    CalledTicket,
    CategoryQueue,
    Figures,
    QueueState,
    Staff,
    Stats,
    WindowState,
    encode,
)
from hallq.shared.topics import HallTopics
from rich.console import Console

SAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "hall.toml"


TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2024, 6, 3, 10, 12, tzinfo=TZ)


def text(picture: HallPicture, now: datetime = NOW) -> str:
    console = Console(record=True, width=140, color_system=None)
    console.print(render(picture, now, footer="x270 · seed 1"))
    return console.export_text()


def test_view_shows_what_the_retained_topics_say():
    t = HallTopics("demo")
    p = HallPicture(t)
    cfg = config.load(SAMPLE)
    msgs = [
        (t.config, encode(cfg.public())),
        (t.controller_status, b"online"),
        (t.queue, encode(QueueState(at=NOW, categories={
            "A": CategoryQueue(waiting=12, est_wait_min=18), "B": CategoryQueue(waiting=0, est_wait_min=0)}))),
        (t.window_state(1), encode(WindowState(
            window=1, status="serving", staff=Staff(id="s1", name="王丽"),
            ticket=CalledTicket(number="A017", category="A", called_at=datetime(2024, 6, 3, 10, 9, tzinfo=TZ),
                                recalls=1)))),
        (t.window_state(3), encode(WindowState(window=3, status="idle", staff=Staff(id="s3", name="张伟")))),
        (t.board, encode(Board(calls=[
            Call(ticket="A017", category="A", window=1, window_name="1号窗口", recall=1, at=NOW),
            Call(ticket="C005", category="C", window=5, window_name="5号窗口", at=NOW)]))),
        (t.stats, encode(Stats(date="2024-06-03", at=NOW, hall=Figures(
            issued=40, called=30, served=27, noshow=1, wait_mean_min=6.5, wait_p90_min=14.0,
            ratings={"very_satisfied": 20, "satisfied": 1, "dissatisfied": 1}, satisfaction=21 / 22)))),
    ]
    for topic, payload in msgs:
        p.feed(Message(topic, payload, True))
    out = text(p)
    assert "示范县政务服务中心" in out and "10:12" in out and "online" in out
    assert "王丽" in out and "A017 (重呼1)" in out and "3 分" in out  # called three minutes ago
    assert "张伟" in out and "空闲" in out
    assert "未开放" in out  # windows nobody has opened
    assert "A 社保医保" in out and "约18分钟" in out
    assert "C005" in out and "5号窗口" in out
    assert "满意率 95.45%" in out and "取号 40" in out
    # one term each, the report's and the hall screen's (the view once said 转办, 未开, 等待, 满意度)
    import re

    from hallq.controller.report import COLUMN_NAMES

    assert not re.search(r"转办|未开(?!放)|等待|满意度|办理中", out)
    assert {"转号", "过号", "办结", "取号"} <= set(COLUMN_NAMES) and "等候(平均/P90)" in out
    assert "x270 · seed 1" in out
    # at 18:30 the hall has closed: the queues say so, as the hall screen does, not 即到即办
    evening = text(p, NOW.replace(hour=18, minute=30))
    assert "停止取号" in evening and "即到即办" not in evening and "约18分钟" not in evening


def test_view_ignores_what_does_not_decode_and_starts_empty():
    t = HallTopics("demo")
    p = HallPicture(t)
    assert "demo" in text(p)  # nothing yet: the hall id, empty tables
    p.feed(Message(t.queue, b"{not json", True))
    p.feed(Message(t.stats, b'{"date": "x"}', True))
    p.feed(Message("hallq/demo/window/zero/state", b"{}", True))
    assert p.queue is None and p.stats is None and p.windows == {}
    p.feed(Message(t.queue, encode(QueueState(at=NOW, categories={"A": CategoryQueue(waiting=3, est_wait_min=4)})),
                   True))
    assert p.queue is not None and p.queue.categories["A"].waiting == 3
