"""The wait wording the kiosk and the hall screen share: never "nobody waiting, about 2 minutes"."""

from __future__ import annotations

import pytest
from hallq.shared.wording import wait_line, wait_phrase


@pytest.mark.parametrize("waiting,est,zh,en", [
    (0, 0, "即到即办", "served at once"),
    (0, 2, "约2分钟后有空窗口", "a window frees in about 2 min"),
    (3, 0, "即将叫号", "called soon"),
    (3, 9, "约9分钟", "about 9 min"),
])
def test_wait_phrase(waiting, est, zh, en):
    assert wait_phrase(waiting, est) == (zh, en)


def test_wait_line_says_who_waits_and_how_long():
    assert wait_line(0, 0, "zh") == "无人等候 · 即到即办"
    assert wait_line(0, 2, "en") == "Nobody waiting · a window frees in about 2 min"
    assert wait_line(12, 18, "zh") == "等候 12 人 · 约18分钟"
    assert wait_line(12, 18, "en") == "12 waiting · about 18 min"


def test_a_range_reads_as_a_range():
    assert wait_phrase(4, 20, (15, 25)) == ("约15–25分钟", "about 15–25 min")
    assert wait_phrase(0, 3, (2, 5)) == ("约2–5分钟后有空窗口", "a window frees in about 2–5 min")
    assert wait_phrase(0, 0, (0, 3)) == ("即到即办", "served at once")
    assert wait_line(4, 20, "zh", (20, 20)) == "等候 4 人 · 约20分钟"  # a range of one value is that value
    # a range from 0 reads "within": not "in about 0–5 minutes a window frees"
    assert wait_phrase(0, 2, (0, 5)) == ("约5分钟内有空窗口", "a window frees within about 5 min")
    assert wait_phrase(3, 4, (0, 10)) == ("约10分钟内", "within about 10 min")


def test_a_category_no_open_window_serves_says_so_instead_of_a_wait():
    """Before the clerks sign in (or with every window of the category paused) nobody is called: never
    即到即办, never a wait."""
    assert wait_line(0, 0, "zh", serving=False) == "无人等候 · 暂无窗口"
    assert wait_line(3, 9, "zh", serving=False) == "等候 3 人 · 暂无窗口"
    assert wait_line(0, 0, "en", serving=False) == "Nobody waiting · no window open"
    assert wait_line(0, 0, "zh") == "无人等候 · 即到即办"
