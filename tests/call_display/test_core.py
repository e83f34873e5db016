"""The pure display core: retained topics to a picture, flashing, the offline mark (explicit times, no sleeps)."""

from __future__ import annotations

from datetime import datetime

import pytest
from call_display import samples
from hallq.call_display import core
from hallq.shared.schemas import PayloadError, encode
from hallq.shared.topics import HallTopics, TopicError

T = HallTopics("demo")
WALL = datetime(2026, 11, 23, 9, 41, 7)


def fed(mode="hall", window=None, *, at=0.0, **settings):
    s = core.initial(core.Settings(mode=mode, window=window, **settings))
    msgs = [
        (T.controller_status, b"online"),
        (T.config, encode(samples.hall_config())),
        (T.queue, encode(samples.queue())),
        (T.board, encode(samples.board())),
        (T.stats, encode(samples.stats())),
        *((T.window_state(w.window), encode(w)) for w in samples.window_states()),
    ]
    s, _ = core.handle(s, core.LinkChanged(True), at)
    for topic, payload in msgs:
        s, effects = core.handle(s, core.event_from_message(T, topic, payload), at)
        assert effects == []  # retained state never speaks or flashes
    return s


def test_retained_topics_alone_give_the_whole_hall_picture():
    v = core.hall_view(fed(), 100.0, WALL)
    assert v.ready and not v.offline and not v.flashing
    assert v.title == samples.hall_config().name
    assert v.newest.ticket == "A023" and v.newest.window == 1
    assert [c.ticket for c in v.recent] == ["B022", "C021", "D020", "A019", "B018", "C017", "D016", "A015"]
    assert [(w.no, w.status, w.ticket) for w in v.windows] == [
        (1, "serving", "A023"), (2, "serving", "B022"), (3, "paused", None), (4, "idle", None),
        (5, "closed", None), (6, "serving", "D020")]
    assert [(c.code, c.waiting, c.est_wait_min) for c in v.waiting] == [
        ("A", 12, 18), ("B", 3, 9), ("C", 0, 0), ("D", 27, 41)]
    assert "11:30、16:30" in v.ticker and "请携带本人有效身份证件" in v.ticker and "09:00–12:00" in v.ticker
    assert v.clock == "09:41:07" and v.date == "2026-11-23 星期一"


def test_recent_calls_count_is_configurable():
    assert len(core.hall_view(fed(recent_calls=3), 0, WALL).recent) == 3


def test_a_call_flashes_for_the_configured_time_and_is_announced():
    s = fed(flash_seconds=8.0)
    call = samples.call("A024", 2, minutes=1)
    s, effects = core.handle(s, core.CallMsg(call), 10.0)
    assert effects == [core.Announce(call)]
    v = core.hall_view(s, 10.0, WALL)
    assert v.newest.ticket == "A024" and v.flashing and v.flash_on
    assert core.hall_view(s, 10.0 + core.FLASH_PERIOD, WALL).flash_on is False  # the dark phase
    assert core.hall_view(s, 10.0 + 2 * core.FLASH_PERIOD, WALL).flash_on is True
    assert core.animating(s, 17.9)
    later = core.hall_view(s, 18.0, WALL)
    assert later.newest.ticket == "A024" and not later.flashing and not core.animating(s, 18.0)
    # the call shows in the windows list before the controller's window state arrives
    assert next(w for w in later.windows if w.no == 2).ticket == "A024"


def test_a_recall_flashes_again_and_moves_the_ticket_to_the_top_once():
    s = fed()
    s, _ = core.handle(s, core.CallMsg(samples.call("C021", 3)), 0.0)
    s, effects = core.handle(s, core.CallMsg(samples.call("C021", 3, recall=1, minutes=2)), 50.0)
    assert [type(e) for e in effects] == [core.Announce] and effects[0].call.recall == 1
    v = core.hall_view(s, 50.1, WALL)
    assert v.newest.ticket == "C021" and v.flashing
    assert "C021" not in [c.ticket for c in v.recent]


def test_window_screen_shows_its_own_window_and_flashes_on_its_calls_only():
    s = fed("window", 2)
    v = core.window_view(s, 0.0, WALL)
    assert (v.no, v.status, v.ticket, v.staff, v.status_zh) == (2, "serving", "B022", "司马相如", "正在办理")
    assert v.name == samples.window_name(2) and not v.flashing
    s, effects = core.handle(s, core.CallMsg(samples.call("A030", 5)), 1.0)
    assert effects == [] and not core.window_view(s, 1.0, WALL).flashing  # another window's call
    s, effects = core.handle(s, core.CallMsg(samples.call("B022", 2, recall=1)), 2.0)
    assert effects and core.window_view(s, 2.0, WALL).flashing  # a recall at this window flashes again


def test_window_status_paused_and_idle():
    s = fed("window", 3)
    v = core.window_view(s, 0, WALL)
    assert (v.status, v.status_zh, v.ticket) == ("paused", "暂停服务", None)
    s = fed("window", 4)
    assert core.window_view(s, 0, WALL).status_zh == "空闲"


def test_caller_notice_shows_for_a_while_and_beeps_on_errors():
    s = fed("window", 2, error_seconds=5.0)
    s, effects = core.handle(s, core.CallerNotice("无人等候", "Nobody is waiting"), 100.0)
    assert effects == [core.Beep()]
    assert core.window_view(s, 104.9, WALL).notice.zh == "无人等候"
    assert core.window_view(s, 105.0, WALL).notice is None
    s, effects = core.handle(s, core.CallerNotice("过号需按住确认", "Hold", error=False), 200.0)
    assert effects == []


def test_offline_mark_keeps_the_last_picture():
    s = fed()
    before = core.hall_view(s, 0, WALL)
    s, _ = core.handle(s, core.event_from_message(T, T.controller_status, b"offline"), 1.0)
    after = core.hall_view(s, 1.0, WALL)
    assert after.offline and not before.offline
    assert (after.newest, after.windows, after.waiting) == (before.newest, before.windows, before.waiting)
    s, _ = core.handle(s, core.event_from_message(T, T.controller_status, b"online"), 2.0)
    assert not core.hall_view(s, 2.0, WALL).offline
    s, _ = core.handle(s, core.LinkChanged(False), 3.0)
    assert core.hall_view(s, 3.0, WALL).offline


def test_nothing_heard_yet_is_not_ready_and_offline():
    s = core.initial(core.Settings())
    v = core.hall_view(s, 0, WALL)
    assert not v.ready and v.offline and v.newest is None
    w = core.window_view(core.initial(core.Settings(mode="window", window=7)), 0, WALL)
    assert not w.ready and w.status == "unknown" and w.name == "7号窗口"


@pytest.mark.parametrize("topic,payload,error", [
    (T.queue, b"{not json", PayloadError),
    (T.queue, b'{"at": "2026-11-23T09:41:07+08:00", "categories": {"A": {"waiting": -1, "est_wait_min": 0}}}',
     PayloadError),
    (T.board, b'{"calls": [], "extra": 1}', PayloadError),
    (T.controller_status, b"sleeping", PayloadError),
    (T.controller_status, b"\xff\xfe", PayloadError),
    (T.window_state(3), encode(samples.window_state(4)), PayloadError),  # window 4's state on window 3's topic
    ("hallq/demo/something/else", b"{}", TopicError),
])
def test_bad_messages_are_refused_clearly(topic, payload, error):
    with pytest.raises(error):
        core.event_from_message(T, topic, payload)


def test_voice_off_means_no_announcements():
    s = fed(voice=False)
    _, effects = core.handle(s, core.CallMsg(samples.call("A024", 2)), 0)
    assert effects == []


def test_window_mode_needs_a_window():
    with pytest.raises(ValueError):
        core.initial(core.Settings(mode="window"))


def test_a_window_the_hall_does_not_have_is_named_on_the_screen():
    """It once showed 正在连接… forever: the hall's config says which windows exist."""
    s = core.initial(core.Settings(mode="window", window=99, hall="demo"))
    s, _ = core.handle(s, core.LinkChanged(True), 0.0)
    assert core.window_view(s, 0.5, WALL).problem is None  # the config has not come yet: still connecting
    s, _ = core.handle(s, core.ConfigMsg(samples.hall_config()), 0.1)
    v = core.window_view(s, 0.2, WALL)
    assert v.problem is not None and v.problem[1] == "hall demo has no window 99 (its windows: 1, 2, 3, 4, 5, 6)"
    assert "没有 99 号窗口" in v.problem[0]
    ok = core.initial(core.Settings(mode="window", window=3, hall="demo"))
    ok, _ = core.handle(ok, core.ConfigMsg(samples.hall_config()), 0.0)
    assert core.window_view(ok, 60, WALL).problem is None


@pytest.mark.parametrize("mode,window", [("hall", None), ("window", 3)])
def test_a_hall_nobody_publishes_is_named_after_a_grace_period(mode, window):
    s = core.initial(core.Settings(mode=mode, window=window, hall="demo2"))
    view = core.hall_view if mode == "hall" else core.window_view
    assert view(s, 100.0, WALL).problem is None  # not connected: that is the offline mark's business
    s, _ = core.handle(s, core.LinkChanged(True), 10.0)
    assert view(s, 10.0 + core.NO_HALL_AFTER - 0.1, WALL).problem is None
    p = view(s, 10.0 + core.NO_HALL_AFTER, WALL).problem
    assert p is not None and p[1].startswith("hall demo2 is not on this broker") and "找不到大厅 demo2" in p[0]
    late, _ = core.handle(s, core.ControllerStatus("stopped"), 20.0)  # a controller that ran it once: known
    assert view(late, 30.0, WALL).problem is None


def test_nobody_served_now_is_said_instead_of_a_wait():
    """Issue 13 ("0人 约2分钟"): the hall screen once read 即到即办 (served at once) at 18:20 with every
    window closed. Outside the hours, or with no window of a category open, it says so instead."""
    s = fed()
    assert [c.not_serving for c in core.hall_view(s, 1.0, WALL).waiting] == [None] * 4  # 09:41, windows open
    lunch = core.hall_view(s, 1.0, WALL.replace(hour=12, minute=30))
    assert {c.not_serving for c in lunch.waiting} == {("14:00 取号", "from 14:00")}
    evening = core.hall_view(s, 1.0, WALL.replace(hour=18, minute=20))
    assert {c.not_serving for c in evening.waiting} == {("停止取号", "closed today")}
    early = core.hall_view(s, 1.0, WALL.replace(hour=8, minute=50))
    assert {c.not_serving for c in early.waiting} == {("09:00 取号", "from 09:00")}
    # B is served at windows 3 (paused) and 6, C at 4 (idle) and 6, D at 5 (closed) and 6: with 4 closed
    # and 6 paused nobody serves B, C or D; A keeps its windows 1 and 2
    for no, status in ((4, "closed"), (6, "paused")):
        s, _ = core.handle(s, core.WindowMsg(samples.window_state(no, status, None)), 2.0)
    by_code = {c.code: c.not_serving for c in core.hall_view(s, 3.0, WALL).waiting}
    nobody = ("暂无窗口", "no window open")
    assert by_code == {"A": None, "B": nobody, "C": nobody, "D": nobody}
