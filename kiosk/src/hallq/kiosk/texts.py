"""What the kiosk says, in Chinese and English."""

from __future__ import annotations

TEXTS: dict[str, tuple[str, str]] = {
    "hall": ("政务服务中心", "Government Service Hall"),
    "welcome": ("请选择办理的业务，或刷身份证", "Choose a service, or swipe your ID card"),
    "swipe_hint": ("刷身份证取号，老年人自动优先", "Swipe your ID card: seniors are served first"),
    "choose_now": ("请选择要办理的业务", "Now choose the service"),
    "card_read": ("身份证", "ID card"),
    "cancel": ("取消", "Cancel"),
    "appointment": ("预约签到", "Appointment check-in"),
    "appointment_hint": ("请输入预约码，或直接刷身份证", "Type your appointment code, or swipe your ID card"),
    "or_swipe": ("也可以刷身份证签到", "Or swipe your ID card"),
    "code_placeholder": ("预约码", "code"),
    "backspace": ("删除", "Delete"),
    "confirm": ("确认", "OK"),
    "back_home": ("返回首页", "Back"),
    "lang_toggle": ("English", "中文"),
    "no_queue": ("暂无排队信息", "No queue information"),
    "waiting_config": ("正在连接服务中心…", "Connecting to the hall…"),
    "taking": ("正在为您取号…", "Getting your number…"),
    "taking_sub": ("请稍候", "Please wait"),
    "your_number": ("您的号码", "Your number"),
    "ahead_line": ("前面还有 {ahead} 人，预计等候约 {minutes} 分钟", "{ahead} ahead of you, about {minutes} min"),
    "ahead_range_line": ("前面还有 {ahead} 人，预计等候约 {low}–{high} 分钟", "{ahead} ahead of you, about {low}–{high} min"),
    "ahead_within_line": ("前面还有 {ahead} 人，预计约 {high} 分钟内叫号", "{ahead} ahead of you, called within about {high} min"),
    "printing": ("正在打印小票…", "Printing your ticket…"),
    "printed": ("请取走小票，留意大厅叫号", "Please take your ticket and watch the screens"),
    "print_failed": ("小票打印失败，请记住您的号码，或到导服台求助",
                     "The ticket could not be printed: remember your number, or ask at the help desk"),
    "done": ("完成", "Done"),
    "prio_elderly": ("老年人优先", "Priority: senior"),
    "prio_appointment": ("预约优先", "Priority: appointment"),
    "prio_disabled": ("优先", "Priority"),
    "prio_pregnant": ("优先", "Priority"),
    "prio_military": ("优先", "Priority"),
    "hours": ("办公时间", "Opening hours"),
    "quiet": ("错峰办事：这些时段人少", "Quieter times to come"),
    "touch_to_start": ("请触摸屏幕取号", "Touch the screen to take a number"),
    "offline_mark": ("● 未连接", "● offline"),
    "closed_title": ("现在不是办公时间", "The hall is closed"),
    "closed_body": ("现在不能取号，请在办公时间内前来。", "No numbers are issued now. Please come during opening hours."),
    "opens_today": ("今天 {time} 开始取号", "Numbers again today from {time}"),
    "opens_tomorrow": ("明天 {time} 开始取号", "Numbers again tomorrow from {time}"),
    "opens_on": ("{date} {time} 开始取号", "Numbers again on {date} from {time}"),
}

# (title zh, title en), (body zh, body en)
ERRORS: dict[str, tuple[tuple[str, str], tuple[str, str]]] = {
    "closed": (("现在不是办公时间", "The hall is closed"),
               ("请在办公时间内取号。", "Please take a number during opening hours.")),
    "quota_full": (("今日号码已发完", "No more numbers today"),
                   ("该业务今天的号码已经发完，请改日办理或咨询导服台。",
                    "Today's numbers for this service are all taken. Please come another day or ask at the help desk.")),
    "duplicate": (("您已在排队", "You are already waiting"),
                  ("您已领取该业务的号码，请留意大厅叫号。",
                   "You already hold a number for this service. Please watch the screens.")),
    "unreachable": (("暂时无法取号", "Numbers cannot be issued right now"),
                    ("无法连接服务中心系统，请稍后再试或到导服台求助。",
                     "The hall's system cannot be reached. Please try again shortly or ask at the help desk.")),
    "printer_out": (("打印机缺纸", "The printer is out of paper"),
                    ("暂时无法出票，请到导服台求助。", "No ticket can be printed. Please ask at the help desk.")),
    "printer_offline": (("打印机故障", "The printer is not working"),
                        ("暂时无法出票，请到导服台求助。", "No ticket can be printed. Please ask at the help desk.")),
    "invalid_card": (("无法识别身份证", "This ID card cannot be used"),
                     ("请重新刷卡，或直接选择业务取号。", "Please swipe it again, or choose a service to take a number.")),
    "unknown_category": (("该业务暂不可取号", "This service is not available"),
                         ("请选择其他业务或咨询导服台。", "Please choose another service or ask at the help desk.")),
    "not_allowed": (("本机暂不可取号", "This kiosk cannot issue numbers"),
                    ("请使用其他取号机或到导服台求助。", "Please use another kiosk or ask at the help desk.")),
    "refused": (("取号未成功", "No number was issued"),
                ("请稍后再试或到导服台求助。", "Please try again or ask at the help desk.")),
}


def t(key: str, lang: str) -> str:
    zh, en = TEXTS[key]
    return en if lang == "en" else zh
