"""The kiosk's pure core, with explicit times and no sleeps."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hallq.kiosk import core
from hallq.kiosk.core import (
    CardRead,
    CheckPrinter,
    ConfigChanged,
    ControllerStatus,
    Press,
    PrinterChecked,
    PrintTicket,
    PublishHealth,
    QueueChanged,
    ReaderStatus,
    SendTake,
    Settings,
    TakeAnswered,
    TakeRefused,
    TakeUnanswered,
    Tick,
    TicketPrinted,
)
from hallq.kiosk.idcard import CardIdentity
from hallq.shared.schemas import CategoryInfo, CategoryQueue, HallConfig, QueueState, Ticket

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 30, tzinfo=TZ)
HALL = HallConfig(hall="demo", name="示范中心", name_en="Demo Hall", timezone="Asia/Shanghai", windows=[],
                  categories=[CategoryInfo(code="A", name="社保医保", prefix="A", name_en="Insurance"),
                              CategoryInfo(code="B", name="不动产登记", prefix="B")])
SENIOR = CardIdentity("ab" * 32, "110***********1234", date(1950, 1, 1), "ga467")
YOUNG = CardIdentity("cd" * 32, "110***********5678", date(1990, 1, 1), "wedge")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def ticket(number: str = "A007", category: str = "A", priority: str | None = None) -> Ticket:
    return Ticket(number=number, category=category, priority=priority, issued_at=T0, ahead=2, est_wait_min=9)


def ready() -> core.State:
    s = core.initial(Settings(device="kiosk-1", req_prefix="k1"), T0)
    for ev in (ConfigChanged(HALL), ControllerStatus("online")):
        s, _ = core.handle(s, ev, T0)
    return s


def run(s: core.State, *steps):
    """Feed (seconds, event) pairs; return the final state and every effect."""
    effects = []
    for t, ev in steps:
        s, eff = core.handle(s, ev, at(t))
        effects += eff
    return s, effects


def test_tap_checks_the_printer_then_sends_then_shows_and_prints():
    s, eff = core.handle(ready(), Press("category", "A"), at(1))
    assert s.screen == "taking" and eff == [CheckPrinter()]
    s, eff = core.handle(s, PrinterChecked(True, "ok"), at(1.01))
    sends = [e for e in eff if isinstance(e, SendTake)]
    assert len(sends) == 1
    req = sends[0].request
    assert (req.req, req.category, req.channel, req.priority, req.person) == ("k1-1", "A", "touch", None, None)
    assert any(isinstance(e, PublishHealth) for e in eff)  # the printer's state became known
    s, eff = core.handle(s, TakeAnswered("k1-1", ticket()), at(1.05))
    assert s.screen == "ticket" and s.shown.ticket.number == "A007" and s.shown.category_name == "社保医保"
    assert eff == [PrintTicket(ticket(), "示范中心", "社保医保", None, "zh")]
    s, eff = core.handle(s, TicketPrinted("A007", True), at(2))
    assert s.shown.printed is True and eff == []
    s, _ = core.handle(s, Tick(), at(1.05 + 7.9))  # counted from when the number appeared
    assert s.screen == "ticket"
    s, _ = core.handle(s, Tick(), at(1.05 + 8.1))
    assert s.screen == "home" and s.shown is None


def test_no_number_is_shown_or_printed_without_the_controllers_answer_to_this_request():
    s, _ = run(ready(), (1, Press("category", "A")), (1, PrinterChecked(True, "ok")))
    for ev in (TakeAnswered("someone-else-1", ticket()), TakeAnswered("k1-0", ticket())):
        s2, eff = core.handle(s, ev, at(2))
        assert s2 is s and eff == []
    # an answer that comes after the kiosk gave up is not shown either
    s3, _ = core.handle(s, TakeUnanswered("k1-1"), at(6))
    s4, eff = core.handle(s3, TakeAnswered("k1-1", ticket()), at(7))
    assert s4.screen == "error" and s4.failure.kind == "unreachable" and eff == []
    # nor an answer before the printer was asked
    s5, _ = core.handle(ready(), Press("category", "A"), at(1))
    s6, eff = core.handle(s5, TakeAnswered("k1-1", ticket()), at(1.1))
    assert s6.screen == "taking" and eff == []


@pytest.mark.parametrize(("online", "paper", "kind"), [(True, "out", "printer_out"), (False, "unknown", "printer_offline")])
def test_a_printer_that_cannot_print_stops_the_request(online, paper, kind):
    s, eff = run(ready(), (1, Press("category", "A")), (1.01, PrinterChecked(online, paper)))
    assert s.screen == "error" and s.failure.kind == kind
    assert not any(isinstance(e, SendTake) for e in eff)
    # known bad: the next tap fails at once and asks again
    s, _ = core.handle(s, Press("home"), at(2))
    s, eff = core.handle(s, Press("category", "A"), at(3))
    assert s.screen == "error" and s.failure.kind == kind and eff == [CheckPrinter()]


@pytest.mark.parametrize("paper", ["unknown", "near_end"])
def test_unknown_or_near_end_paper_still_prints(paper):
    _s, eff = run(ready(), (1, Press("category", "A")), (1.01, PrinterChecked(None if paper == "unknown" else True, paper)))
    assert any(isinstance(e, SendTake) for e in eff)


def test_a_printer_failure_after_issue_keeps_the_number_on_screen_with_a_note():
    s, _ = run(ready(), (1, Press("category", "A")), (1, PrinterChecked(True, "ok")), (1, TakeAnswered("k1-1", ticket())))
    s, eff = core.handle(s, TicketPrinted("A007", False, "printing failed: OSError"), at(2))
    assert s.screen == "ticket" and s.shown.printed is False and s.shown.problem
    assert eff == [CheckPrinter()]
    s, _ = core.handle(s, Tick(), at(2 + 20))
    assert s.screen == "ticket" and s.shown.ticket.number == "A007"
    s, _ = core.handle(s, Tick(), at(2 + 30))
    assert s.screen == "home"


@pytest.mark.parametrize(("code", "kind"), [("closed", "closed"), ("quota_full", "quota_full"), ("duplicate", "duplicate"),
                                            ("not_allowed", "not_allowed"), ("bad_request", "refused"),
                                            ("bad_reply", "refused")])
def test_refusals_become_clear_screens(code, kind):
    s, _ = run(ready(), (1, Press("category", "A")), (1, PrinterChecked(True, "ok")), (2, TakeRefused("k1-1", code, "why")))
    assert s.screen == "error" and s.failure == core.Failure(kind, "why") and s.pending is None
    s, _ = core.handle(s, Tick(), at(2 + 8))
    assert s.screen == "home"


def test_controller_offline_fails_at_once_and_a_lost_answer_times_out():
    s, _ = core.handle(ready(), ControllerStatus("offline"), at(0))
    s, eff = core.handle(s, Press("category", "A"), at(1))
    assert s.failure.kind == "unreachable" and eff == []
    s, _ = run(ready(), (1, Press("category", "A")), (1, PrinterChecked(True, "ok")))
    s, _ = core.handle(s, Tick(), at(1 + 7.9))
    assert s.screen == "taking"
    s, _ = core.handle(s, Tick(), at(1 + 8.1))
    assert s.screen == "error" and s.failure.kind == "unreachable"


def test_card_first_then_category_sends_the_person_key_and_elderly_priority():
    s, _ = run(ready(), (1, CardRead(SENIOR)))
    assert s.screen == "home" and s.card == SENIOR
    s, eff = run(s, (2, Press("category", "B")), (2, PrinterChecked(True, "ok")))
    req = next(e.request for e in eff if isinstance(e, SendTake))
    assert (req.channel, req.priority, req.person, req.category) == ("idcard", "elderly", "ab" * 32, "B")
    s, eff = core.handle(s, TakeAnswered(req.req, ticket("B001", "B", "elderly")), at(3))
    assert eff[0].masked_id == "110***********1234" and s.card is None  # forgotten once answered


@pytest.mark.parametrize(("age_birth", "priority"), [(date(1961, 11, 23), "elderly"), (date(1961, 11, 24), None)])
def test_elderly_from_the_configured_age_on_the_day(age_birth, priority):
    card = CardIdentity("ef" * 32, "x", age_birth, "ga467")
    _s, eff = run(ready(), (1, CardRead(card)), (2, Press("category", "A")), (2, PrinterChecked(True, "ok")))
    assert next(e.request for e in eff if isinstance(e, SendTake)).priority == priority


def test_an_invalid_card_gets_a_clear_screen_and_changes_nothing_else():
    s, _ = run(ready(), (1, CardRead(None, "the check digit of the ID number is wrong")))
    assert s.screen == "error" and s.failure.kind == "invalid_card" and s.card is None and s.seq == 0


def test_appointment_with_the_keypad():
    s, _ = run(ready(), (1, Press("appointment")))
    assert s.screen == "appointment"
    s, _ = run(s, (2, Press("key", "2")), (2, Press("key", "0")), (2, Press("key", "1")), (2, Press("confirm")))
    assert s.screen == "appointment"  # 3 characters are not a code
    s, _ = run(s, (3, Press("key", "7")), (3, Press("backspace")), (3, Press("key", "9")), (3, Press("confirm")))
    assert s.screen == "home" and s.appointment == "2019" and s.appointment_mode
    s, eff = run(s, (4, Press("category", "A")), (4, PrinterChecked(True, "ok")))
    req = next(e.request for e in eff if isinstance(e, SendTake))
    assert (req.channel, req.priority, req.appointment, req.person) == ("appointment", "appointment", "2019", None)


def test_appointment_with_the_id_card():
    s, _ = run(ready(), (1, Press("appointment")), (2, CardRead(YOUNG)))
    assert s.screen == "home" and s.appointment_mode and s.card == YOUNG
    s, eff = run(s, (3, Press("category", "A")), (3, PrinterChecked(True, "ok")))
    req = next(e.request for e in eff if isinstance(e, SendTake))
    assert (req.channel, req.priority, req.person, req.appointment) == ("appointment", "appointment", "cd" * 32, None)


def test_idle_goes_home_forgetting_the_card_then_attract():
    s, _ = run(ready(), (1, CardRead(SENIOR)))
    s, _ = core.handle(s, Tick(), at(30))
    assert s.card == SENIOR
    s, _ = core.handle(s, Tick(), at(31))
    assert s.screen == "home" and s.card is None
    s, _ = core.handle(s, Tick(), at(31 + 59))
    assert s.screen == "home"
    s, _ = core.handle(s, Tick(), at(31 + 61))
    assert s.screen == "attract"
    s, _ = core.handle(s, Press("wake"), at(100))
    assert s.screen == "home"


def test_language_toggle_and_english_names():
    s, _ = run(ready(), (1, Press("language")))
    assert s.lang == "en"
    s, eff = run(s, (2, Press("category", "A")), (2, PrinterChecked(True, "ok")), (2, TakeAnswered("k1-1", ticket())))
    assert eff[-1].category_name == "Insurance" and eff[-1].hall_name == "Demo Hall" and eff[-1].lang == "en"


def test_events_that_do_not_fit_change_nothing():
    s = ready()
    for ev in (Press("category", "Z"), Press("key", "1"), Press("confirm"), TicketPrinted("A001", True),
               TakeRefused("k1-1", "closed", "x"), Press("home")):
        s2, eff = core.handle(s, ev, at(1))
        assert (s2.screen, s2.seq, s2.pending, eff) == (s.screen, s.seq, None, [])
    taking, _ = core.handle(s, Press("category", "A"), at(1))
    s3, eff = core.handle(taking, CardRead(SENIOR), at(1.1))
    assert s3 is taking and eff == []
    no_hall = core.initial(Settings(device="k", req_prefix="k"), T0)
    assert core.handle(no_hall, Press("category", "A"), at(1))[0].screen == "home"


def test_queue_and_reader_health():
    q = QueueState(at=T0, categories={"A": CategoryQueue(waiting=4, est_wait_min=6)})
    s, _ = core.handle(ready(), QueueChanged(q), at(1))
    assert s.queue["A"].waiting == 4
    s, eff = core.handle(s, ReaderStatus("GA 467 /dev/ttyUSB0", True), at(1))
    assert eff == [PublishHealth(s.printer, s.readers)] and s.readers[0].online
    _s2, eff = core.handle(s, ReaderStatus("GA 467 /dev/ttyUSB0", True), at(2))
    assert eff == []


def test_request_ids_are_unique():
    s = ready()
    reqs = []
    for i in range(3):
        s, eff = run(s, (i * 20, Press("category", "A")), (i * 20, PrinterChecked(True, "ok")))
        req = next(e.request for e in eff if isinstance(e, SendTake))
        reqs.append(req.req)
        s, _ = run(s, (i * 20 + 1, TakeAnswered(req.req, ticket(f"A00{i}"))), (i * 20 + 1, Press("home")))
    assert len(set(reqs)) == 3


def test_the_default_language_comes_back_for_the_next_citizen():
    s, _ = run(ready(), (1, Press("language")), (2, Press("category", "A")), (2, PrinterChecked(True, "ok")),
               (2, TakeAnswered("k1-1", ticket())), (3, TicketPrinted("A007", True)))
    assert s.lang == "en"
    s, _ = core.handle(s, Tick(), at(11))
    assert s.screen == "home" and s.lang == "zh"
    s, _ = run(s, (12, Press("language")), (12 + 61, Tick()))
    assert s.screen == "attract" and s.lang == "zh"


def test_a_printer_that_never_reports_stops_the_request_without_a_number():
    s, eff = core.handle(ready(), Press("category", "A"), at(1))
    s, _ = core.handle(s, Tick(), at(1 + 5.9))
    assert s.screen == "taking"
    s, _ = core.handle(s, Tick(), at(1 + 6.1))
    assert s.screen == "error" and s.failure.kind == "printer_offline" and s.pending is None
    _, eff = core.handle(s, PrinterChecked(True, "ok"), at(8))  # late: nothing is sent
    assert not any(isinstance(e, SendTake) for e in eff)


LUNCH_HALL = HallConfig(hall="demo", name="示范中心", timezone="Asia/Shanghai", windows=[],
                        hours=[("09:00", "12:00"), ("14:00", "18:00")], categories=HALL.categories)


def test_closed_screen_follows_the_hall_clock():
    """Outside the hours the idle kiosk shows the closed screen with the next opening, and home again at it."""
    s = core.initial(Settings(device="k", req_prefix="k"), T0)
    s, _ = core.handle(s, ConfigChanged(LUNCH_HALL), T0)
    s, _ = core.handle(s, Tick(T0), T0)
    assert s.screen == "home"
    noon = T0.replace(hour=12, minute=0)
    s, _ = core.handle(s, Tick(noon), noon)
    assert s.screen == "closed" and s.opens_at == T0.replace(hour=14, minute=0) and s.opens_in_days == 0
    s, fx = core.handle(s, Press("category", "A"), noon)
    assert s.screen == "closed" and fx == []  # nothing to take
    s, _ = core.handle(s, Press("language"), noon)
    assert s.lang == "en" and s.screen == "closed"
    two = T0.replace(hour=14, minute=0)
    s, _ = core.handle(s, Tick(two), two)
    assert s.screen == "home" and s.lang == "zh"
    late = datetime(2026, 11, 23, 10, 30, tzinfo=ZoneInfo("UTC"))  # 18:30 in the hall's time zone
    s, _ = core.handle(s, Tick(late), two)
    assert s.screen == "closed" and s.opens_at.hour == 9 and s.opens_in_days == 1


def test_a_screen_that_times_out_in_the_break_lands_on_the_closed_screen():
    """In the demo a ticket screen from 11:59 timed out at 12:33 into the open home screen (即到即办 and all)
    for a tick before the closed screen came: the timers now run before the hours in the same tick."""
    s = core.initial(Settings(device="k", req_prefix="k"), T0)
    s, _ = core.handle(s, ConfigChanged(LUNCH_HALL), T0)
    before = T0.replace(hour=11, minute=59)
    s, _ = core.handle(s, Tick(before), before)
    s = replace(s, screen="error", since=before, failure=core.Failure("unreachable", None))
    after = before + s.settings.error_time
    lunch = T0.replace(hour=12, minute=33)
    s, _ = core.handle(s, Tick(lunch), after)
    assert s.screen == "closed" and s.opens_at == T0.replace(hour=14, minute=0)


def test_closing_time_does_not_cut_off_a_citizen_in_the_middle():
    s = core.initial(Settings(device="k", req_prefix="k"), T0)
    s, _ = core.handle(s, ConfigChanged(LUNCH_HALL), T0)
    s, _ = core.handle(s, CardRead(YOUNG), T0)
    noon = T0.replace(hour=12, minute=0)
    s, _ = core.handle(s, Tick(noon), T0)
    assert s.screen == "home" and s.card is YOUNG  # the controller's answer will say closed, if it comes to that
    s, _ = core.handle(s, Tick(noon), T0 + timedelta(seconds=31))  # idle: the card is forgotten, then closed
    s, _ = core.handle(s, Tick(noon), T0 + timedelta(seconds=31.2))
    assert s.screen == "closed" and s.card is None


def test_without_the_hall_clock_or_hours_nothing_closes():
    s = core.initial(Settings(device="k", req_prefix="k"), T0)
    s, _ = core.handle(s, ConfigChanged(HALL), T0)  # no hours: always open
    midnight = T0.replace(hour=0)
    s, _ = core.handle(s, Tick(midnight), T0)
    assert s.screen == "home"


def test_a_hall_no_controller_publishes_is_named_after_a_grace_period():
    """Issue 13: a kiosk set up for a hall that is not on its broker (hall = "demo2") said 正在连接服务中心…
    forever. Connected for NO_HALL_AFTER without the hall's config or controller status, it names the hall."""
    s = core.initial(core.Settings(device="k", req_prefix="k", hall="demo2"), T0)
    assert core.no_hall(s, T0 + timedelta(minutes=5)) is None  # not connected: that is "unreachable"
    s, _ = core.handle(s, core.Link(True), T0)
    assert core.no_hall(s, T0 + core.NO_HALL_AFTER - timedelta(seconds=0.1)) is None
    p = core.no_hall(s, T0 + core.NO_HALL_AFTER)
    assert p is not None and p[1].startswith("hall demo2 is not on this broker") and "找不到大厅 demo2" in p[0]
    again, _ = core.handle(s, core.Link(True), T0 + timedelta(seconds=30))  # a second "up" keeps the first time
    assert core.no_hall(again, T0 + timedelta(seconds=30)) is not None
    down, _ = core.handle(s, core.Link(False), T0 + timedelta(seconds=30))
    assert core.no_hall(down, T0 + timedelta(minutes=5)) is None
    heard, _ = core.handle(s, core.ControllerStatus("stopped"), T0 + timedelta(seconds=6))  # ran it once: known
    assert core.no_hall(heard, T0 + timedelta(seconds=7)) is None
    configured, _ = core.handle(s, core.ConfigChanged(HALL), T0 + timedelta(seconds=6))
    assert core.no_hall(configured, T0 + timedelta(seconds=7)) is None
