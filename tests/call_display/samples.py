"""Payloads of a sample hall with long Chinese names, built from the shared schemas."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hallq.shared.schemas import (
    Board,
    Call,
    CalledTicket,
    CategoryInfo,
    CategoryQueue,
    Figures,
    HallConfig,
    QueueState,
    Staff,
    Stats,
    WindowInfo,
    WindowState,
)

TZ = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 23, 9, 41, 7, tzinfo=TZ)

CATEGORIES = [
    ("A", "社会保障与医疗保险综合业务", "Social insurance and medical insurance"),
    ("B", "不动产登记及税费缴纳", "Real estate registration and taxes"),
    ("C", "企业开办与工商登记一窗通办", "Starting a business"),
    ("D", "公安户籍与出入境证件办理", "Household registration and travel documents"),
]

WINDOWS = [
    (1, "1号窗口 社会保障综合受理", "Window 1 Social insurance", ["A"]),
    (2, "2号窗口 医疗保险异地就医备案与报销", "Window 2 Medical insurance", ["A"]),
    (3, "3号窗口 不动产登记与税费综合受理", "Window 3 Real estate and taxes", ["B"]),
    (4, "4号窗口 企业开办一窗通办", "Window 4 Starting a business", ["C"]),
    (5, "5号窗口 公安户籍与出入境证件", "Window 5 Police services", ["D"]),
    (6, "6号窗口 综合受理（老年人、残疾人优先）", "Window 6 General, priority service", ["A", "B", "C", "D"]),
]


def hall_config(**over) -> HallConfig:
    kw = dict(
        hall="demo",
        name="江苏省某某市某某区政务服务中心便民服务大厅",
        name_en="Government Service Center, Service Hall",
        timezone="Asia/Shanghai",
        hours=[("09:00", "12:00"), ("14:00", "18:00")],
        categories=[CategoryInfo(code=c, name=n, prefix=c, name_en=e) for c, n, e in CATEGORIES],
        windows=[WindowInfo(no=no, name=n, name_en=e, categories=cats) for no, n, e, cats in WINDOWS],
        notices=["请携带本人有效身份证件，过号请重新取号", "Please bring your ID card; a missed number needs a new ticket"],
    )
    kw.update(over)
    return HallConfig(**kw)


def window_name(no: int) -> str:
    return next((n for w, n, _, _ in WINDOWS if w == no), f"{no}号窗口")


def call(ticket: str, window: int, *, recall: int = 0, minutes: int = 0) -> Call:
    return Call(ticket=ticket, category=ticket[0], window=window, window_name=window_name(window), recall=recall,
                at=AT + timedelta(minutes=minutes))


def board(n: int = 10) -> Board:
    calls = [call(f"{'ABCD'[i % 4]}{23 - i:03d}", (i % 6) + 1, minutes=-i) for i in range(n)]
    return Board(calls=calls)


def queue() -> QueueState:
    return QueueState(at=AT, categories={"A": CategoryQueue(waiting=12, est_wait_min=18),
                                         "B": CategoryQueue(waiting=3, est_wait_min=9),
                                         "C": CategoryQueue(waiting=0, est_wait_min=0),
                                         "D": CategoryQueue(waiting=27, est_wait_min=41)})


def window_state(no: int, status: str = "serving", ticket: str | None = "A019",
                 staff: str | None = "欧阳娜娜") -> WindowState:
    return WindowState(
        window=no, status=status,
        ticket=CalledTicket(number=ticket, category=ticket[0], called_at=AT) if ticket else None,
        staff=Staff(id=f"s{no:02d}", name=staff) if staff else None,
    )


def window_states() -> list[WindowState]:
    return [
        window_state(1, ticket="A023"),
        window_state(2, ticket="B022", staff="司马相如"),
        window_state(3, "paused", None, staff="诸葛孔明"),
        window_state(4, "idle", None, staff="李娜"),
        window_state(5, "closed", None, staff=None),
        window_state(6, ticket="D020", staff="上官婉儿"),
    ]


def stats() -> Stats:
    return Stats(date="2026-11-23", at=AT, hall=Figures(issued=120, called=98, served=90),
                 quiet_half_hours=["11:30", "16:30"])
