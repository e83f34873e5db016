"""The pure parts of the 好差评 link: the satisfaction code schemes both ways, the record, and the
working-day deadline of a follow-up."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from hallq.controller import config
from hallq.controller.config import HaocpSection
from hallq.controller.core.workdays import LAST_KNOWN_YEAR, Calendar
from hallq.controller.haocp.record import assess_time, level_of, record, satisfaction_code
from hallq.shared.config import ConfigError
from hallq.shared.schemas import LEVELS

CST = timezone(timedelta(hours=8))

GBT = [("very_satisfied", "1"), ("satisfied", "2"), ("basic", "3"), ("dissatisfied", "4"), ("very_dissatisfied", "5")]
REVERSE = [("very_satisfied", "5"), ("satisfied", "4"), ("basic", "3"), ("dissatisfied", "2"),
           ("very_dissatisfied", "1")]


@pytest.mark.parametrize(("scheme", "table"), [("gbt39046", GBT), ("reverse", REVERSE)])
def test_codes_both_ways(scheme, table):
    for level, code in table:
        assert satisfaction_code(level, scheme) == code
        assert level_of(code, scheme) == level
    assert sorted(satisfaction_code(lv, scheme) for lv in LEVELS) == ["1", "2", "3", "4", "5"]


def test_the_default_scheme_is_the_national_data_set():
    assert satisfaction_code("very_satisfied") == "1"
    assert HaocpSection(area_code="320312").scheme == "gbt39046"


@pytest.mark.parametrize(("call", "arg"), [(satisfaction_code, "great"), (level_of, "6"), (level_of, "0")])
def test_unknown_levels_and_codes_are_refused(call, arg):
    with pytest.raises(ValueError):
        call(arg, "gbt39046")
    with pytest.raises(ValueError):
        satisfaction_code("satisfied", "upside-down")


def test_the_record_follows_the_provincial_interface():
    cfg = HaocpSection(area_code="320312", scheme="reverse")
    at = datetime(2026, 11, 23, 9, 5, 7, tzinfo=CST)
    rec = record(hall="demo", day="2026-11-23", ticket="A019", window=3, level="dissatisfied", at=at,
                 case_id="3203122026112300017", item_code="000101001000", item_name="城乡居民养老保险参保登记", cfg=cfg)
    assert rec == {
        "idempotencyKey": "hallq-demo-20261123-A019",
        "projectNo": "3203122026112300017",
        "taskCode": "000101001000",
        "taskName": "城乡居民养老保险参保登记",
        "satisfaction": "2",
        "assessTime": "20261123T090507",
        "pf": "5",
        "areaCode": "320312",
        "assessNumber": 1,
        "windowNo": "3",
        "ticket": "A019",
    }
    assert assess_time(datetime(2026, 1, 2, 3, 4, 5, tzinfo=CST)) == "20260102T030405"


# -- the deadline ---------------------------------------------------------------------------------------------
D = date.fromisoformat


@pytest.mark.parametrize(
    ("start", "days", "holidays", "workdays", "due"),
    [
        ("2026-11-23", 5, [], [], "2026-11-30"),  # Monday + 5 working days = next Monday
        ("2026-11-27", 1, [], [], "2026-11-30"),  # Friday + 1 = Monday
        ("2026-11-28", 1, [], [], "2026-11-30"),  # rated on a Saturday: Monday is the first working day
        ("2026-11-23", 5, ["2026-11-25"], [], "2026-12-01"),  # a holiday in between
        # National Day week: 10-01..10-07 off, Sunday 09-27 and Saturday 10-10 worked (调休)
        ("2026-09-25", 5, [f"2026-10-0{i}" for i in range(1, 8)], ["2026-09-27", "2026-10-10"], "2026-10-08"),
        ("2026-09-30", 2, [f"2026-10-0{i}" for i in range(1, 8)], ["2026-10-10"], "2026-10-09"),
        ("2026-11-23", 15, [], [], "2026-12-14"),
    ],
)
def test_due_date_skips_weekends_and_holidays(start, days, holidays, workdays, due):
    assert Calendar.of(holidays, workdays).due_date(D(start), days) == D(due)


@pytest.mark.parametrize(
    ("start", "days", "due"),
    [
        # the national calendar alone (chinesecalendar): National Day 2026-10-01..07 off, Saturday 10-10 worked
        ("2026-09-30", 2, "2026-10-09"),
        ("2026-10-09", 1, "2026-10-10"),
        # Spring Festival 2026: Saturdays 02-14 and 02-28 worked, 02-15..02-23 off
        ("2026-02-13", 3, "2026-02-25"),
    ],
)
def test_due_date_knows_chinas_public_holidays(start, days, due):
    assert Calendar().due_date(D(start), days) == D(due)


def test_past_the_calendars_last_year_weekdays_count_unless_the_hall_says_otherwise():
    year = LAST_KNOWN_YEAR + 1
    new_year = date(year, 1, 1)
    monday_before = new_year - timedelta(days=new_year.weekday())
    # not known: New Year's Day counts as a working day if it is a weekday ...
    assert Calendar().is_working_day(new_year) == (new_year.weekday() < 5)
    # ... until the hall lists it
    assert not Calendar.of([new_year]).is_working_day(new_year)
    assert Calendar.of(workdays=[monday_before + timedelta(days=5)]).is_working_day(monday_before + timedelta(days=5))


def test_working_days():
    assert Calendar().is_working_day(D("2026-11-27"))  # Friday
    assert not Calendar().is_working_day(D("2026-11-28"))  # Saturday
    assert Calendar.of(workdays=[D("2026-11-28")]).is_working_day(D("2026-11-28"))
    assert not Calendar().is_working_day(D("2026-10-01"))  # National Day, from the library
    assert not Calendar.of(holidays=[D("2026-11-27")]).is_working_day(D("2026-11-27"))  # the hall's own
    with pytest.raises(ValueError):
        Calendar().due_date(D("2026-11-23"), 0)


# -- config -----------------------------------------------------------------------------------------------------
BASE = '[hall]\nid = "t"\nname = "测试"\n[[categories]]\ncode = "A"\nname = "甲"\n[[windows]]\nno = 1\nname = "1号"\ncategories = ["A"]\n'


def test_the_haocp_section():
    cfg = config.parse(BASE + '[haocp]\nurl = "https://haocp.example/api"\narea_code = "320312"\nscheme = "reverse"\n'
                       'followup_days = 10\nholidays = ["2026-10-01"]\n')
    assert cfg.haocp.scheme == "reverse" and cfg.haocp.followup_days == 10 and cfg.haocp.holidays == ["2026-10-01"]
    assert config.parse(BASE).haocp is None


@pytest.mark.parametrize(
    ("section", "names"),
    [
        ('area_code = "320312"\nscheme = "upside-down"\n', "haocp.scheme"),
        ('url = "ftp://x"\narea_code = "320312"\n', "haocp.url"),
        ('area_code = "32"\n', "haocp.area_code"),
        ('area_code = "320312"\nholidays = ["2026-02-30"]\n', "haocp.holidays"),
        ('area_code = "320312"\nfollowup_days = 0\n', "haocp.followup_days"),
        ('area_code = "320312"\nuri = "https://x"\n', "uri"),
        ('scheme = "reverse"\n', "area_code"),
    ],
)
def test_bad_haocp_config_is_refused_naming_the_key(section, names):
    with pytest.raises(ConfigError, match=names):
        config.parse(BASE + "[haocp]\n" + section)


# -- the publisher --------------------------------------------------------------------------------------------
class _Client:
    def __init__(self):
        from hallq.shared.topics import HallTopics

        self.topics = HallTopics("t")
        self.connected = True
        self.sent: list = []

    def publish(self, topic, payload, retain=False):
        self.sent.append((topic, payload, retain))


class _Clock:
    def __init__(self, now):
        self.t = now

    def now(self):
        return self.t


def test_the_publisher_republishes_on_changes_and_on_a_new_day(tmp_path):
    import sqlite3

    from hallq.controller import followups, schema

    conn = sqlite3.connect(tmp_path / "f.db", isolation_level=None)
    schema.migrate(conn)
    clock = _Clock(datetime(2026, 11, 27, 17, 0, tzinfo=CST))
    client = _Client()
    pub = followups.Publisher(conn, client, clock)
    pub.POLL_EVERY = 0
    pub.publish()
    pub.poll()
    assert len(client.sent) == 1 and client.sent[0][0] == "hallq/t/followups" and client.sent[0][2]
    conn.execute("INSERT INTO followups (rating_id, day, ticket, window, level, rated_at, opened_at, due)"
                 " VALUES (1, '2026-11-27', 'A001', 1, 'dissatisfied', '2026-11-27T16:00:00+08:00',"
                 " '2026-11-27T16:00:01+08:00', '2026-11-30')")
    pub.poll()
    assert len(client.sent) == 2 and [f.ticket for f in client.sent[1][1].open] == ["A001"]
    assert not client.sent[1][1].open[0].overdue
    pub.poll()
    assert len(client.sent) == 2  # nothing changed
    clock.t = datetime(2026, 12, 1, 9, 0, tzinfo=CST)
    pub.poll()
    assert len(client.sent) == 3 and client.sent[2][1].open[0].overdue
