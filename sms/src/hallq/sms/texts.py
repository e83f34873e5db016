"""What the gateway texts citizens: short, Chinese first, with English when the hall asks for it.

One UCS-2 SMS holds 70 characters (67 per part of a longer one), and every part costs the hall money, so
the texts are terse. With ``english = true`` in ``sms.toml`` each text has a short English line after it.
"""

from __future__ import annotations

from collections.abc import Sequence


def wait_range(est_min: int, rng: tuple[int, int] | None = None) -> tuple[str, str]:
    """The estimated wait as a range (Chinese, English): the controller's range when it gives one."""
    if rng is not None:
        lo, hi = rng
        if hi <= 2:
            return "即将叫号", "soon"
        return f"约{lo}–{hi}分钟", f"{lo}-{hi} min"
    if est_min <= 2:
        return "即将叫号", "soon"
    lo = max(1, round(est_min * 0.7))
    hi = max(lo + 2, round(est_min * 1.3))
    return f"约{lo}–{hi}分钟", f"{lo}-{hi} min"


def _join(zh: str, en: str, english: bool) -> str:
    return f"{zh}\n{en}" if english else zh


def _hall(name: str) -> str:
    return f"【{name}】"


def follow_line(url: str | None) -> tuple[str, str]:
    if not url:
        return "", ""
    return f"进度：{url}", f" Live: {url}"


def ticket(hall: str, number: str, category: str, ahead: int, est_min: int, est_range: tuple[int, int] | None,
           notify_ahead: int, follow_url: str | None, english: bool) -> str:
    zh_wait, en_wait = wait_range(est_min, est_range)
    f_zh, f_en = follow_line(follow_url)
    notice = f"前面剩{notify_ahead}人时和叫号时短信通知您。" if ahead > notify_ahead else "叫号时短信通知您。"
    zh = (f"{_hall(hall)}您的号码{number}（{category}），前面{ahead}人，{zh_wait}。{notice}"
          f"回复“查”看进度，“取消”取消。{f_zh}")
    en = f"Your number {number}: {ahead} ahead, {en_wait}. Reply CX for status, QX to cancel.{f_en}"
    return _join(zh, en, english)


def help_text(hall: str, categories: Sequence[tuple[str, str]], english: bool) -> str:
    cats = "，".join(f"{code} {name}" for code, name in categories)
    zh = f"{_hall(hall)}回复业务代码取号：{cats}。回复“查”看进度，“取消”取消排号。"
    en = "Text a code above to take a number; CX: status; QX: cancel."
    return _join(zh, en, english)


def closed(hall: str, hours: Sequence[tuple[str, str]], english: bool) -> str:
    h = "、".join(f"{a}–{b}" for a, b in hours) if hours else ""
    zh = f"{_hall(hall)}现在不能取号。" + (f"取号时间：{h}。" if h else "")
    en = "Numbers are not issued now." + (f" Hours: {', '.join(f'{a}-{b}' for a, b in hours)}." if h else "")
    return _join(zh, en, english)


def quota_full(hall: str, category: str, hours: Sequence[tuple[str, str]], english: bool) -> str:
    h = "、".join(f"{a}–{b}" for a, b in hours)
    zh = f"{_hall(hall)}今天{category}的号已取完，请改日办理。" + (f"取号时间：{h}。" if h else "")
    en = "Today's numbers for this service are all taken."
    return _join(zh, en, english)


def duplicate(hall: str, category: str, number: str | None, ahead: int | None, english: bool) -> str:
    held = f"：{number}" + (f"，前面{ahead}人" if ahead is not None else "") if number else ""
    zh = f"{_hall(hall)}您已有{category}的号码{held}。每个手机号每项业务只能取一个号。"
    en = f"You already hold a number for this service{' (' + number + ')' if number else ''}."
    return _join(zh, en, english)


def refused(hall: str, message: str, english: bool) -> str:
    zh = f"{_hall(hall)}取号未成功，请到大厅取号机取号。"
    en = "Could not take a number; please use the kiosk in the hall."
    return _join(zh, en, english)


def busy(hall: str, english: bool) -> str:
    zh = f"{_hall(hall)}系统繁忙，取号未成功，请稍后再试。"
    en = "The system is busy; please try again later."
    return _join(zh, en, english)


def status(hall: str, lines: Sequence[tuple[str, str]], english: bool) -> str:
    """``lines``: (Chinese, English) per ticket."""
    zh = _hall(hall) + "；".join(z for z, _ in lines) + "。"
    en = "; ".join(e for _, e in lines) + "."
    return _join(zh, en, english)


def status_waiting(number: str, ahead: int) -> tuple[str, str]:
    return f"{number}前面还有{ahead}人", f"{number}: {ahead} ahead"


def status_called(number: str, window: str) -> tuple[str, str]:
    return f"{number}正在{window}叫号，请前往", f"{number} is called at {window}"


def status_unknown(number: str) -> tuple[str, str]:
    return f"{number}已不在等候", f"{number} is no longer waiting"


def no_ticket(hall: str, english: bool) -> str:
    zh = f"{_hall(hall)}您今天没有等候中的号码。回复业务代码即可取号。"
    en = "You hold no waiting number today."
    return _join(zh, en, english)


def cancelled(hall: str, numbers: Sequence[str], english: bool) -> str:
    zh = f"{_hall(hall)}已取消号码{'、'.join(numbers)}。"
    en = f"Cancelled: {', '.join(numbers)}."
    return _join(zh, en, english)


def ahead_notice(hall: str, number: str, ahead: int, english: bool) -> str:
    zh = f"{_hall(hall)}您的号码{number}前面还有{ahead}人，请回到等候区留意叫号。"
    en = f"{number}: {ahead} ahead of you; please come back to the waiting area."
    return _join(zh, en, english)


def called_notice(hall: str, number: str, window: str, english: bool) -> str:
    zh = f"{_hall(hall)}请{number}号到{window}办理。过号需重新取号。"
    en = f"{number}, please go to {window}."
    return _join(zh, en, english)
