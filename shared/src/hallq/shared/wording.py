"""How the kiosk and the hall screen word a category's wait, in Chinese and English, in one place.

The ``queue`` topic gives, per category, how many wait and ``est_wait_min``: the minutes until a ticket
taken now would be called. With nobody waiting that is 0 when a window is free, or the time until a busy
window frees, so "0人 约2分钟" (nobody waiting, about 2 minutes) would read as a contradiction: with nobody
waiting the words say that one is served at once, or when a window frees. And that holds only while a
window is there to serve: outside the opening hours, or with no window of the category open, a screen
says that instead (:func:`not_serving_phrase`), never "served at once".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from .hours import is_open, next_opening


def wait_phrase(waiting: int, est_min: int, est_range: tuple[int, int] | None = None) -> tuple[str, str]:
    """The estimated wait alone, short (the hall screen's column): (Chinese, English). ``est_range`` (the
    queue's ``est_wait_range``, when the controller sends one) is shown as "约 15–25 分钟"."""
    within = est_range is not None and est_range[0] == 0 < est_range[1]  # "0–5 min" reads "within 5 min"
    if est_range is not None and est_range[0] < est_range[1]:
        zh_m, en_m = f"{est_range[0]}–{est_range[1]}", f"{est_range[0]}–{est_range[1]}"
    else:
        zh_m = en_m = str(est_min)
    if waiting == 0:
        if est_min <= 0:
            return "即到即办", "served at once"
        if within:
            return f"约{est_range[1]}分钟内有空窗口", f"a window frees within about {est_range[1]} min"
        return f"约{zh_m}分钟后有空窗口", f"a window frees in about {en_m} min"
    if est_min <= 0 and (est_range is None or est_range[1] <= 0):
        return "即将叫号", "called soon"
    if within:
        return f"约{est_range[1]}分钟内", f"within about {est_range[1]} min"
    return f"约{zh_m}分钟", f"about {en_m} min"


def wait_line(waiting: int, est_min: int, lang: str, est_range: tuple[int, int] | None = None,
              serving: bool = True) -> str:
    """The whole line a category shows on the kiosk: how many wait, and how long, in ``lang`` (zh or en).
    ``serving`` False (the queue's ``serving``: no window of the category open) says so instead of a wait."""
    zh, en = wait_phrase(waiting, est_min, est_range) if serving else not_serving_phrase(None, hall_open=True)
    if waiting == 0:
        return f"无人等候 · {zh}" if lang != "en" else f"Nobody waiting · {en}"
    if lang == "en":
        return f"{waiting} waiting · {en}"
    return f"等候 {waiting} 人 · {zh}"


def not_serving_phrase(opens_today: str | None, *, hall_open: bool) -> tuple[str, str]:
    """What a category's wait reads when nobody can be served now: (Chinese, English).

    ``hall_open`` False: outside the opening hours; ``opens_today`` is the ``HH:MM`` when numbers are
    issued again today (None: not again today). ``hall_open`` True: within the hours, but no window of the
    category is open (before the clerks sign in, all of them paused or closed)."""
    if hall_open:
        return "暂无窗口", "no window open"
    if opens_today:
        return f"{opens_today} 取号", f"from {opens_today}"
    return "停止取号", "closed today"


def nobody_serves(hours: Sequence[tuple[str, str]], windows: Sequence[tuple[int, Sequence[str]]],
                  statuses: Mapping[int, str], code: str, local: datetime) -> tuple[str, str] | None:
    """:func:`not_serving_phrase` for category ``code`` at ``local`` (the hall's wall-clock time), or None while
    a window serves it: ``hours`` are the hall's opening hours, ``windows`` (number, categories; ``"*"`` for
    all) its windows, ``statuses`` each window's ``WindowState.status`` (idle and serving ones serve)."""
    if not is_open(hours, local):
        opens = next_opening(hours, local)
        today = f"{opens:%H:%M}" if opens is not None and opens.date() == local.date() else None
        return not_serving_phrase(today, hall_open=False)
    if any(statuses.get(no) in ("idle", "serving") and ("*" in cats or code in cats) for no, cats in windows):
        return None
    return not_serving_phrase(None, hall_open=True)
