"""The follow page's view of a ticket, from the retained state alone (pure)."""

from datetime import datetime, timedelta, timezone

from hallq.follow.view import ticket_view
from hallq.shared.schemas import (
    CalledTicket,
    CategoryInfo,
    CategoryQueue,
    HallConfig,
    QueueState,
    WindowInfo,
    WindowState,
)

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=timezone(timedelta(hours=8)))
CFG = HallConfig(hall="h", name="测试中心", timezone="Asia/Shanghai",
                 categories=[CategoryInfo(code="A", name="社保医保", prefix="A", name_en="Social Insurance"),
                             CategoryInfo(code="C", name="户籍", prefix="H")],
                 windows=[WindowInfo(no=3, name="3号窗口", categories=["A"], name_en="Window 3")])
Q = QueueState(at=T0, categories={"A": CategoryQueue(waiting=3, est_wait_min=12, est_wait_range=(9, 16),
                                                     order=["A004", "A005", "A006"]),
                                  "C": CategoryQueue(waiting=0, est_wait_min=0)})


def test_waiting_with_its_place_and_a_scaled_range():
    v = ticket_view("A005", CFG, Q, {})
    assert (v.status, v.ahead, v.waiting, v.category, v.category_en) == ("waiting", 1, 3, "社保医保", "Social Insurance")
    assert (v.est_low, v.est_high) == (4, 8)  # two of four places: half the range for a new ticket


def test_called_at_a_window_and_gone_after():
    ws = {3: WindowState(window=3, status="serving", ticket=CalledTicket(number="A003", category="A", called_at=T0,
                                                                       recalls=1))}
    v = ticket_view("A003", CFG, Q, ws)
    assert (v.status, v.window, v.window_name, v.window_name_en, v.recalls) == ("called", 3, "3号窗口", "Window 3", 1)
    assert ticket_view("A002", CFG, Q, ws).status == "gone"
    assert ticket_view("H001", CFG, Q, ws).category == "户籍"
    assert ticket_view("A002", None, None, {}).status == "unknown"


def test_all_views_agree_with_one_view_each():
    from hallq.follow.view import all_views

    ws = {3: WindowState(window=3, status="serving", ticket=CalledTicket(number="A003", category="A", called_at=T0))}
    every = all_views(CFG, Q, ws)
    assert set(every) == {"A003", "A004", "A005", "A006"}
    for n, v in every.items():
        assert v == ticket_view(n, CFG, Q, ws)
