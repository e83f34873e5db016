"""The SMS core with explicit times: no IO, no sleeps."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hallq.shared.schemas import (
    CalledTicket,
    CategoryInfo,
    CategoryQueue,
    Error,
    ErrorReply,
    HallConfig,
    QueueState,
    TakeReply,
    Ticket,
    WindowInfo,
    WindowState,
)
from hallq.sms import core

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
P1, P2 = "a" * 64, "b" * 64

CONFIG = HallConfig(
    hall="h", name="测试中心", timezone="Asia/Shanghai", hours=[("09:00", "12:00")],
    categories=[CategoryInfo(code="A", name="社保医保", prefix="A"), CategoryInfo(code="B", name="不动产登记", prefix="B"),
                CategoryInfo(code="C", name="医保报销", prefix="C")],
    windows=[WindowInfo(no=1, name="1号窗口", categories=["A"]), WindowInfo(no=2, name="2号窗口", categories=["A", "B"])],
)


def ready(**kw):
    st = core.new_state(T0.date(), core.Settings(**kw))
    st, _ = core.handle(st, core.HallChanged(CONFIG), T0)
    return st


def sends(fx):
    return [e for e in fx if isinstance(e, core.Send)]


def take_reply(number, ahead, req="r"):
    return TakeReply(req=req, ticket=Ticket(number=number, category=number[0], issued_at=T0, ahead=ahead, est_wait_min=ahead * 5))


@pytest.mark.parametrize("text,code", [("A", "A"), ("a", "A"), ("ａ", "A"), (" 社保医保 ", "A"), ("社保", "A"),
                                       ("不动产", "B"), ("B", "B"), ("报销", "C")])
def test_a_category_by_code_or_name(text, code):
    st = ready()
    st, fx = core.handle(st, core.Text("m1", P1, text), T0)
    assert core.Ask("m1", P1, code) in fx
    assert core.Counted(P1, 1) in fx


def test_an_ambiguous_or_unknown_text_gets_the_help():
    st = ready()
    for text in ("医保", "hello", "", "123"):  # 医保 is in two names
        st, fx = core.handle(st, core.Text(f"m-{text}", P1, text), T0)
        [s] = sends(fx)
        assert "A 社保医保" in s.text and s.msg == f"m-{text}"
        assert not [e for e in fx if isinstance(e, core.Ask)]


def test_no_config_yet_raises_not_ready_and_changes_nothing():
    st = core.new_state(T0.date(), core.Settings())
    with pytest.raises(core.NotReady):
        core.handle(st, core.Text("m1", P1, "A"), T0)
    assert st.counts == {}


def test_the_answer_to_a_take_and_its_tracking():
    st = ready()
    st, fx = core.handle(st, core.Answer("m1", P1, "take", "A", take_reply("A007", 6)), T0)
    [s] = sends(fx)
    assert s.key == "re:m1" and "A007" in s.text and "前面6人" in s.text and "前面剩3人时" in s.text
    assert st.tracked["A007"] == core.Tracked("A007", "A", P1, 6)


def queue(order):
    return QueueState(at=T0, categories={"A": CategoryQueue(waiting=len(order), est_wait_min=3, order=order),
                                          "B": CategoryQueue(waiting=0, est_wait_min=0)})


def test_k_ahead_notice_once_and_only_if_it_had_more_ahead():
    st = ready()
    st, _ = core.handle(st, core.Answer("m1", P1, "take", "A", take_reply("A007", 6)), T0)
    st, _ = core.handle(st, core.Answer("m2", P2, "take", "A", take_reply("A008", 2)), T0)
    st, fx = core.handle(st, core.QueueChanged(queue(["A003", "A004", "A005", "A006", "A007", "A008"])), T0)
    assert sends(fx) == []
    st, fx = core.handle(st, core.QueueChanged(queue(["A004", "A005", "A006", "A007", "A008"])), T0)
    [s] = sends(fx)
    assert s.key == "ahead:2026-11-30:A007" and s.person == P1 and "A007前面还有3人" in s.text
    st, fx = core.handle(st, core.QueueChanged(queue(["A005", "A006", "A007", "A008"])), T0)
    assert sends(fx) == []  # once; A008 had only 2 ahead when issued: its answer said so


def test_a_controller_without_the_order_sends_no_k_ahead_notice():
    st = ready()
    st, _ = core.handle(st, core.Answer("m1", P1, "take", "A", take_reply("A007", 6)), T0)
    q = QueueState(at=T0, categories={"A": CategoryQueue(waiting=2, est_wait_min=3)})
    st, fx = core.handle(st, core.QueueChanged(q), T0)
    assert sends(fx) == [] and not st.has_order


def window(no, number, status="serving"):
    return WindowState(window=no, status=status, ticket=CalledTicket(number=number, category=number[0], called_at=T0))


def test_called_notice_once_per_window():
    st = ready()
    st, _ = core.handle(st, core.Answer("m1", P1, "take", "A", take_reply("A007", 6)), T0)
    st, fx = core.handle(st, core.WindowChanged(window(2, "A007")), T0)
    [s] = sends(fx)
    assert s.text == "【测试中心】请A007号到2号窗口办理。过号需重新取号。"
    st, fx = core.handle(st, core.WindowChanged(window(2, "A007")), T0)  # the same state again (a reconnect)
    assert sends(fx) == []
    st, fx = core.handle(st, core.WindowChanged(window(1, "A007")), T0)  # transferred to window 1
    assert [s.key for s in sends(fx)] == ["called:2026-11-30:A007:1"]


def test_errors_become_texts():
    st = ready()
    for code, want in [("closed", "取号时间：09:00–12:00"), ("quota_full", "号已取完"), ("duplicate", "您已有"),
                       ("bad_request", "取号机")]:
        st, fx = core.handle(st, core.Answer("m" + code, P1, "take", "A",
                                             ErrorReply(req="r", error=Error(code=code, message="x"))), T0)
        [s] = sends(fx)
        assert want in s.text, (code, s.text)
    st, fx = core.handle(st, core.Answer("mt", P1, "take", "A", None), T0)
    assert "稍后再试" in sends(fx)[0].text


def test_cancel_asks_for_each_waiting_ticket_of_the_person():
    st = ready()
    st, _ = core.handle(st, core.Answer("m1", P1, "take", "A", take_reply("A007", 6)), T0)
    st, _ = core.handle(st, core.Answer("m2", P1, "take", "B", take_reply("B002", 1)), T0)
    st, _ = core.handle(st, core.Answer("m3", P2, "take", "A", take_reply("A008", 6)), T0)
    st, fx = core.handle(st, core.Text("m4", P1, "取消"), T0)
    assert {e.number for e in fx if isinstance(e, core.AskCancel)} == {"A007", "B002"}
    st, fx = core.handle(st, core.Text("m5", P2, "QX"), T0)
    assert [e.number for e in fx if isinstance(e, core.AskCancel)] == ["A008"]


def test_cancel_with_nothing_waiting():
    st = ready()
    st, fx = core.handle(st, core.Text("m1", P1, "取消"), T0)
    assert "没有等候中的号码" in sends(fx)[0].text


def test_the_daily_limit_and_a_new_day():
    st = ready(max_texts_per_day=2)
    st, _ = core.handle(st, core.Text("m1", P1, "x"), T0)
    st, _ = core.handle(st, core.Text("m2", P1, "x"), T0)
    st, fx = core.handle(st, core.Text("m3", P1, "x"), T0)
    assert fx == [core.Handled("m3", "over 2 texts today")]
    st, fx = core.handle(st, core.Text("m4", P1, "x"), T0 + timedelta(days=1))
    assert fx[0] == core.NewDay(T0.date(), T0.date() + timedelta(days=1))
    assert sends(fx)


def test_the_answer_links_the_follow_page_when_the_hall_has_them():
    cfg = HallConfig(**{**{f: getattr(CONFIG, f) for f in CONFIG.__struct_fields__}, "follow_url": "http://h/f/{token}"})
    st = core.new_state(T0.date(), core.Settings())
    st, _ = core.handle(st, core.HallChanged(cfg), T0)
    r = TakeReply(req="r", ticket=Ticket(number="A001", category="A", issued_at=T0, ahead=0, est_wait_min=0,
                                         follow="abcdefghijklmnop"))
    st, fx = core.handle(st, core.Answer("m1", P1, "take", "A", r), T0)
    assert "进度：http://h/f/abcdefghijklmnop" in sends(fx)[0].text
