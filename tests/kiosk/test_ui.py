"""Every screen drawn headless in landscape and portrait: nothing outside the screen, targets big enough
and apart, Chinese and English. The PNGs stay in tmp_path."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hallq.kiosk import core
from hallq.kiosk.core import (
    CardRead,
    ConfigChanged,
    ControllerStatus,
    Press,
    PrinterChecked,
    QueueChanged,
    QuietChanged,
)
from hallq.kiosk.idcard import CardIdentity
from hallq.kiosk.ui import KioskUI
from hallq.shared.schemas import CategoryInfo, CategoryQueue, HallConfig, QueueState, Ticket
from hallq.shared.screen import open_screen

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 30, tzinfo=TZ)
NAMES = [("A", "社保医保", "Social & Medical Insurance"), ("B", "不动产登记", "Real Estate Registration"),
         ("C", "户籍办理", "Household Registration"), ("D", "市场监管", "Business Registration"),
         ("E", "税务", "Taxation"), ("F", "住房公积金提取与贷款", "Housing Provident Fund Withdrawals and Loans")]
HALL = HallConfig(hall="demo", name="示范县政务服务中心", name_en="Demo County Government Service Center",
                  timezone="Asia/Shanghai", windows=[], hours=[("09:00", "12:00"), ("14:00", "18:00")],
                  notices=["请携带本人身份证原件办理业务", "老年人、残疾人、孕妇、军人优先办理，过号请重新取号"],
                  categories=[CategoryInfo(code=c, name=n, prefix=c, name_en=e) for c, n, e in NAMES])
QUEUE = QueueState(at=T0, categories={c: CategoryQueue(waiting=i * 7, est_wait_min=i * 11) for i, (c, _, _) in enumerate(NAMES)})
CARD = CardIdentity("ab" * 32, "320***********7715", date(1950, 6, 1), "ga467")


def states() -> dict[str, core.State]:
    s = core.initial(core.Settings(device="k", req_prefix="k"), T0)
    for ev in (ConfigChanged(HALL), QueueChanged(QUEUE), ControllerStatus("online"), QuietChanged(("11:30", "16:30"))):
        s, _ = core.handle(s, ev, T0)
    out = {"home": s}
    out["home_card"] = core.handle(s, CardRead(CARD), T0)[0]
    a = core.handle(s, Press("appointment"), T0)[0]
    for k in "2026":
        a = core.handle(a, Press("key", k), T0)[0]
    out["appointment"] = a
    out["home_appointment"] = core.handle(a, Press("confirm"), T0)[0]
    taking = core.handle(out["home_card"], Press("category", "F"), T0)[0]
    out["taking"] = taking
    sent = core.handle(taking, PrinterChecked(True, "ok"), T0)[0]
    tk = Ticket(number="F123", category="F", priority="elderly", issued_at=T0, ahead=17, est_wait_min=45,
                est_wait_range=(35, 55))
    shown = core.handle(sent, core.TakeAnswered(sent.pending.request.req, tk), T0)[0]
    out["ticket"] = core.handle(shown, core.TicketPrinted("F123", True), T0)[0]
    out["ticket_failed"] = core.handle(shown, core.TicketPrinted("F123", False, "jam"), T0)[0]
    for kind in ("closed", "quota_full", "duplicate", "unreachable", "printer_out", "invalid_card", "expired", "busy",
                 "too_many", "staff_locked"):
        out[f"error_{kind}"] = core._fail(s, T0, kind)
    out["attract"] = core.handle(s, core.Tick(), T0 + timedelta(seconds=61))[0]
    # a kiosk where the floor guide confirms priorities
    g = replace(s, settings=replace(s.settings, staff_priorities=("elderly", "disabled", "pregnant", "military")))
    out["home_staff_button"] = g
    g = core.handle(g, Press("staff"), T0)[0]
    out["staff"] = g
    g = core.handle(g, Press("priority", "military"), T0)[0]
    for k in "2468":
        g = core.handle(g, Press("key", k), T0)[0]
    out["staff_typed"] = g
    g = core.handle(g, Press("confirm"), T0)[0]
    out["staff_checking"] = g
    out["staff_wrong"] = core.handle(g, core.StaffChecked(None), T0)[0]
    out["home_staff_confirmed"] = core.handle(g, core.StaffChecked("g1"), T0)[0]
    lunch = T0.replace(hour=12, minute=30)
    out["closed"] = core.handle(s, core.Tick(lunch), lunch)[0]
    evening = T0.replace(hour=19)
    out["closed_evening"] = core.handle(s, core.Tick(evening), evening)[0]
    return out


@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)])
def test_every_screen_fits(size, tmp_path):
    screen = open_screen(size, "headless")
    ui = KioskUI(screen)
    try:
        for name, s in states().items():
            for lang in ("zh", "en"):
                st = replace(s, lang=lang)
                ui.draw(st, T0, "09:30")
                w, h = size
                for r in ui.drawn:
                    assert r.left >= 0 and r.top >= 0 and r.right <= w and r.bottom <= h, f"{name}/{lang}: text clipped {r}"
                rects = [h_.rect for h_ in ui.hits if h_.press.action != "wake"]
                for r in ui.drawn:  # a text is inside a target or clear of it, never across its edge
                    for (x, y, rw, rh) in rects:
                        inside = x <= r.left and r.right <= x + rw and y <= r.top and r.bottom <= y + rh
                        apart = r.right <= x or x + rw <= r.left or r.bottom <= y or y + rh <= r.top
                        assert inside or apart, f"{name}/{lang}: a text runs across a touch target"
                for i, (x, y, rw, rh) in enumerate(rects):
                    assert rw >= 120 and rh >= 100, f"{name}: a touch target is too small"
                    assert x >= 0 and y >= 0 and x + rw <= w and y + rh <= h
                    for (x2, y2, w2, h2) in rects[i + 1 :]:
                        assert x + rw <= x2 or x2 + w2 <= x or y + rh <= y2 or y2 + h2 <= y, f"{name}: targets overlap"
                if name.startswith("home") and lang == "zh":
                    assert ui.hit(ui.find("category", "A")) == Press("category", "A")
                screen.screenshot(tmp_path / f"{size[0]}x{size[1]}-{name}-{lang}.png")
        assert len(list(tmp_path.glob("*.png"))) == 2 * len(states())
    finally:
        screen.close()


@pytest.mark.parametrize("count", [1, 2, 12, 16])
@pytest.mark.parametrize("size", [(1920, 1080), (1080, 1920)])
def test_home_with_few_or_many_categories(size, count, tmp_path):
    cats = [CategoryInfo(code=f"K{i}", name=f"业务类别{i}", prefix=f"K{i % 10}") for i in range(count)]
    hall = HallConfig(hall="demo", name="示范中心", timezone="Asia/Shanghai", windows=[], categories=cats)
    s = core.initial(core.Settings(device="k", req_prefix="k"), T0)
    s = core.handle(s, ConfigChanged(hall), T0)[0]
    screen = open_screen(size, "headless")
    try:
        ui = KioskUI(screen)
        ui.draw(s, T0, "09:30")
        targets = [h.rect for h in ui.hits if h.press.action == "category"]
        assert len(targets) == count
        for x, y, w, h in targets:
            assert w >= 200 and h >= 100 and x + w <= size[0] and y + h <= size[1]
        for r in ui.drawn:
            for x, y, w, h in targets:
                inside = x <= r.left and r.right <= x + w and y <= r.top and r.bottom <= y + h
                apart = r.right <= x or x + w <= r.left or r.bottom <= y or y + h <= r.top
                assert inside or apart, "a label runs out of its card"
        for i in range(count):
            assert ui.hit(ui.find("category", f"K{i}")) == Press("category", f"K{i}")
        screen.screenshot(tmp_path / f"home-{count}.png")
    finally:
        screen.close()


def test_the_closed_screen_says_when_numbers_are_issued_again(tmp_path):
    """The kiosk once looked open at lunch time and said "closed" only after a tap."""
    from hallq.kiosk.ui import opening_text

    st = states()
    assert st["closed"].screen == "closed" and st["closed_evening"].screen == "closed"
    assert opening_text(st["closed"], T0) == "今天 14:00 开始取号"
    assert opening_text(replace(st["closed_evening"], lang="en"), T0) == "Numbers again tomorrow from 09:00"
    screen = open_screen((1920, 1080), "headless")
    try:
        ui = KioskUI(screen)
        ui.draw(st["closed"], T0, "12:30")
        assert [h.press.action for h in ui.hits] == ["language"]  # no category to tap while closed
        screen.screenshot(tmp_path / "closed.png")
    finally:
        screen.close()


def test_nobody_waiting_never_reads_as_a_wait(tmp_path):
    """"0人 约2分钟": with nobody waiting the card says one is served at once, or when a window frees."""
    from hallq.shared.wording import wait_line

    q = QueueState(at=T0, categories={"A": CategoryQueue(waiting=0, est_wait_min=0),
                                      "B": CategoryQueue(waiting=0, est_wait_min=2),
                                      "C": CategoryQueue(waiting=3, est_wait_min=9)})
    s = core.initial(core.Settings(device="k", req_prefix="k"), T0)
    for ev in (ConfigChanged(HALL), QueueChanged(q), ControllerStatus("online")):
        s, _ = core.handle(s, ev, T0)
    screen = open_screen((1920, 1080), "headless")
    try:
        ui = KioskUI(screen)
        shown: list[str] = []
        real = ui.text

        def spy(text, *a, **kw):
            shown.append(text)
            return real(text, *a, **kw)

        ui.text = spy
        ui.draw(s, T0, "09:30")
    finally:
        screen.close()
    assert wait_line(0, 0, "zh") in shown and wait_line(0, 2, "zh") in shown and wait_line(3, 9, "zh") in shown
    assert not any("0 人" in x or "0人" in x for x in shown)


def test_a_category_no_window_serves_reads_no_window_open(tmp_path):
    """Within the hours but before the clerks sign in (the queue's ``serving`` False), the card says 暂无窗口,
    never 即到即办."""
    q = QueueState(at=T0, categories={"A": CategoryQueue(waiting=0, est_wait_min=0, serving=False),
                                      "B": CategoryQueue(waiting=2, est_wait_min=0, serving=False),
                                      "C": CategoryQueue(waiting=0, est_wait_min=0)})
    s = core.initial(core.Settings(device="k", req_prefix="k"), T0)
    for ev in (ConfigChanged(HALL), QueueChanged(q), ControllerStatus("online")):
        s, _ = core.handle(s, ev, T0)
    screen = open_screen((1920, 1080), "headless")
    try:
        ui = KioskUI(screen)
        shown: list[str] = []
        real = ui.text

        def spy(text, *a, **kw):
            shown.append(text)
            return real(text, *a, **kw)

        ui.text = spy
        ui.draw(s, T0, "09:30")
        screen.screenshot(tmp_path / "no-window.png")
    finally:
        screen.close()
    assert "无人等候 · 暂无窗口" in shown and "等候 2 人 · 暂无窗口" in shown
    assert [x for x in shown if "即到即办" in x] == ["无人等候 · 即到即办"]  # only C, which a window serves


def test_a_hall_no_controller_publishes_is_named_on_the_home_screen(tmp_path):
    from hallq.kiosk.core import NO_HALL_AFTER, Link

    s = core.initial(core.Settings(device="k", req_prefix="k", hall="demo2"), T0)
    s, _ = core.handle(s, Link(True), T0)
    screen = open_screen((1920, 1080), "headless")
    try:
        ui = KioskUI(screen)
        shown: list[str] = []
        real = ui.text

        def spy(text, *a, **kw):
            shown.append(text)
            return real(text, *a, **kw)

        ui.text = spy
        ui.draw(s, T0, "09:30")
        assert any("正在连接" in x for x in shown) and not any("demo2" in x for x in shown)
        shown.clear()
        ui.draw(s, T0 + NO_HALL_AFTER, "09:30")
        screen.screenshot(tmp_path / "no-hall.png")
    finally:
        screen.close()
    assert any("找不到大厅 demo2" in x for x in shown) and any("hall demo2 is not on this broker" in x for x in shown)
    assert not any("正在连接" in x for x in shown)
