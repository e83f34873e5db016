"""The city dashboard against real parts: a throwaway PostgreSQL with the central schema, halls' records
shipped through the centre's ingest, a real hall (Mosquitto + controller) bridging its state topics to the
city's Mosquitto, ``hallq central web`` as its own process, and Debian's chromium through Selenium.

What it shows: every hall live (waiting, longest wait, windows open, satisfaction, devices offline) and
updating without a reload; the drill-down into a hall with the hall's own live page; cross-hall reports that
equal each hall's own figures (``hallq.controller.stats``) by hall, category, clerk and half hour, as A4
print and CSV; follow-ups across halls with their deadlines; sign-in, roles and bad input."""

from __future__ import annotations

import csv
import io
import re
import sqlite3
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from browser import Browser, available
from city_kit import SCREENSHOTS, CityWeb, Shipper, bridge, hall_records, register, wait_until
from dashkit import CLOCK, HALL_TOML
from harness import ControllerProcess, Monitor, Mosquitto
from seed import seed

HISTORY = [date(2026, 11, 16) + timedelta(days=k) for k in range(5)]  # the week before: Mon..Fri
TODAY = date(2026, 11, 23)


def _toml(hall: str, name: str) -> str:
    return HALL_TOML.replace('id = "web"', f'id = "{hall}"').replace("测试政务服务中心", name)


@pytest.fixture(scope="module")
def city(pg_cluster, tmp_path_factory):
    from hallq.central import db
    from hallq.controller import config

    work = tmp_path_factory.mktemp("city")
    db.forget_partitions()
    dsn = pg_cluster.create_database()
    conn = db.connect(dsn, autocommit=True)
    db.migrate(conn, today=TODAY)
    register(conn, "web", "测试政务服务中心", "Test Service Center")
    register(conn, "east", "东区政务服务中心", "East District Service Center")
    register(conn, "north", "北区便民服务中心", "North Service Centre")

    # east: a record only (its link to the city carries records, its state is not bridged)
    east_db = work / "east" / "hall.db"
    east_db.parent.mkdir()
    seed(east_db, config.parse(_toml("east", "东区政务服务中心")), HISTORY[0], 5, 150, seed=7)
    Shipper("east").send(conn, hall_records(east_db))

    # web: a whole hall whose broker bridges its state to the city's broker
    city_broker = Mosquitto(work / "city-broker").start()
    hall_broker = Mosquitto(work / "hall-broker")
    bridge(hall_broker.conf, "web", city_broker.port)
    hall_broker.start()
    ctl = ControllerProcess(work / "web", hall_broker.url, HALL_TOML, clock=CLOCK, hall="web")
    seed(ctl.db, config.parse(HALL_TOML), HISTORY[0], 5, 200, seed=3)
    ctl.start(wait_online=True)
    web_ship = Shipper("web")
    web_ship.send(conn, hall_records(ctl.db))

    web = CityWeb(work / "city-web", dsn, city_broker.url, env={"HALLQ_CLOCK": ctl.env["HALLQ_CLOCK"]})
    web.user("boss", "manager")
    web.user("viewer", "viewer")
    web.user("clerk", "clerk", "--windows", "1")
    web.start()
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import encode

    # east was online once: its retained config reached the city (the city keeps it for the category names)
    city_mon = Monitor(city_broker.url, "hallq/#")
    city_mon.publish("hallq/east/config", encode(config.parse(_toml("east", "东区政务服务中心")).public()), retain=True)
    wait_until(lambda: conn.execute("SELECT 1 FROM city_hall_configs WHERE hall = 'east'").fetchone(), 30,
               "the city keeping east's config")
    city_mon.publish("hallq/east/config", b"", retain=True)  # and it is gone from the broker since

    kiosk = HallClient(hall_broker.url, "web", "kiosk-1").start()
    assert kiosk.wait_connected(10)
    hall_mon = Monitor(hall_broker.url, "hallq/web/#")

    class City:
        pass

    c = City()
    c.dsn, c.conn, c.web, c.ctl, c.kiosk, c.hall_mon, c.east_db, c.work = dsn, conn, web, ctl, kiosk, hall_mon, east_db, work
    c.city_broker, c.hall_broker, c.web_ship = city_broker, hall_broker, web_ship
    yield c
    kiosk.stop()
    hall_mon.close()
    city_mon.close()
    web.stop()
    ctl.stop()
    hall_broker.stop()
    city_broker.stop()
    conn.close()


@pytest.fixture
def browser():
    why = available()
    if why:
        pytest.fail(why)
    b = Browser()
    yield b
    b.close()


def _take(city, category: str) -> str:
    from hallq.shared.schemas import TakeRequest

    r = city.kiosk.request("take", TakeRequest(req=city.kiosk.new_req(), category=category), timeout=10,
                           resend_every=1)
    return r.ticket.number


def _rolled(city, day: date, hall: str) -> None:
    wait_until(lambda: city.conn.execute("SELECT 1 FROM city_rollups WHERE day = %s AND hall = %s",
                                         (day, hall)).fetchone(), 60, f"the roll-up of {hall} {day}")


# -- the live page -------------------------------------------------------------------------------------
def test_all_halls_live_and_updating(city, browser):
    b = browser
    b.login(city.web.url, "viewer", "viewer-password-1")
    assert b.driver.current_url.endswith("/halls")
    row = lambda h: b.find(f"tr[data-hall='{h}']")  # noqa: E731
    b.wait(lambda: "在线" in row("web").text, what="hall web online through the bridge")
    assert "无实时数据" in row("east").text and "无实时数据" in row("north").text
    # (read through wait: the live page may swap the row between finding it and reading it)
    before = int(b.wait(lambda: row("web").find_element("css selector", "td.waiting").text or "0",
                        what="the waiting count"))
    numbers = [_take(city, "A"), _take(city, "A"), _take(city, "B")]
    assert len(set(numbers)) == 3
    # the page changes by itself (SSE), no reload
    b.wait(lambda: row("web").find_element("css selector", "td.waiting").text == str(before + 3),
           what="the three new tickets on the city page")
    assert int(b.text("#city-waiting")) == before + 3
    longest = b.wait(lambda: row("web").find_element("css selector", "td.longest").text, what="the longest wait")
    assert longest != "" and int(longest) >= 0
    # a device of the hall goes offline: the city sees it
    city.hall_mon.publish("hallq/web/device/pad-3/status", "offline", retain=True)
    b.wait(lambda: row("web").find_element("css selector", "td.offline").text.startswith("1"),
           what="the offline pad counted")
    assert b.text("#city-offline") == "1"
    b.screenshot(SCREENSHOTS / "city-halls-zh.png")
    b.get(city.web.url + "/lang/en?next=/halls")
    b.wait(lambda: "online" in row("web").text, what="the English page")
    assert "All halls" in b.text("header") and "no live data" in row("east").text
    b.screenshot(SCREENSHOTS / "city-halls-en.png")
    b.get(city.web.url + "/lang/zh?next=/halls")
    city.hall_mon.publish("hallq/web/device/pad-3/status", "online", retain=True)


def test_drill_into_a_hall_shows_the_halls_own_page(city, browser):
    b = browser
    b.login(city.web.url, "boss", "boss-password-1")
    b.wait(lambda: b.finds("tr[data-hall='web'] a"), what="the hall list")
    b.click("tr[data-hall='web'] a")
    b.wait(lambda: b.driver.current_url.endswith("/halls/web"), what="the hall page")
    # the hall dashboard's own live fragment: its windows and categories tables
    b.wait(lambda: b.finds("#windows tr[data-window='3']"), what="the hall's windows")
    assert "3号综合窗口" in b.text("#windows")
    waiting_a = b.wait(lambda: b.text("#categories tr[data-category='A'] td.waiting"), what="category A")
    n = int(waiting_a)
    _take(city, "A")
    b.wait(lambda: b.text("#categories tr[data-category='A'] td.waiting") == str(n + 1), what="a take, live")
    assert "测试政务服务中心" in b.text("#hall-title")
    assert "中心尚未收到今天的记录" in b.text("#today")
    # today's record reaches the centre (the next batch): the roll-up picks it up by itself
    city.web_ship.send(city.conn, [r for r in hall_records(city.ctl.db) if getattr(r, "day", None) == TODAY])
    _rolled(city, TODAY, "web")
    b.driver.refresh()
    b.wait(lambda: b.finds("#today tr[data-category='A']"), what="today's figures from the central record")
    issued_today = city.conn.execute("SELECT count(*) FROM tickets WHERE hall = 'web' AND day = %s",
                                     (TODAY,)).fetchone()[0]
    assert b.text("#today tr.total td:nth-child(2)") == str(issued_today)
    b.screenshot(SCREENSHOTS / "city-hall-web-zh.png")
    # a hall without live state says so, and still has its record's pages
    b.get(city.web.url + "/halls/east")
    assert "尚未收到" in b.text("#now")
    b.get(city.web.url + "/halls/nowhere")
    assert "没有这个大厅" in b.text("main")


# -- reports ---------------------------------------------------------------------------------------------
def _hall_stats(db_path: Path, day: date):
    from hallq.controller import stats

    conn = sqlite3.connect(db_path)
    try:
        return stats.compute(conn, day, datetime.now(UTC))
    finally:
        conn.close()


def _close(mine: float | None, theirs: float | None) -> bool:
    """The city's P90 is the histogram bucket's upper edge: never below the hall's, at most a step above."""
    if theirs is None:
        return mine is None
    return mine is not None and theirs <= mine <= theirs + 1.0 + 1e-9


def test_reports_equal_each_halls_own_figures(city):
    from hallq.central.web import figures

    day = HISTORY[2]
    _rolled(city, day, "web")
    _rolled(city, day, "east")
    c = city.web.http("viewer")
    for hall, db_path in (("web", city.ctl.db), ("east", city.east_db)):
        theirs = _hall_stats(db_path, day)
        for kind, ref in (("hall", {hall: theirs.hall}), ("category", theirs.categories),
                          ("clerk", theirs.staff), ("half_hour", theirs.half_hours)):
            r = c.get("/reports.csv", params={"by": kind, "from": str(day), "hall": hall})
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
            rows = [x for x in csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))) if x["slice"] == kind]
            got = {(x["hall"] if kind == "hall" else x["key"]): x for x in rows}
            assert set(got) == set(ref), (hall, kind)
            for key, f in ref.items():
                x = got[key]
                for col in ("issued", "called", "served", "noshow", "transferred"):
                    assert int(x[col]) == getattr(f, col), (hall, kind, key, col)
                for col in ("wait_mean_min", "service_mean_min"):
                    want = getattr(f, col)
                    assert (x[col] == "" and want is None) or float(x[col]) == want, (hall, kind, key, col)
                assert _close(float(x["wait_p90_min"]) if x["wait_p90_min"] else None, f.wait_p90_min)
                assert (x["satisfaction"] == "" and f.satisfaction is None) or float(x["satisfaction"]) == f.satisfaction
    # the city line of a week by hall adds up both halls' days
    total_issued = sum(_hall_stats(p, d).hall.issued for p in (city.ctl.db, city.east_db) for d in HISTORY)
    r = c.get("/reports.csv", params={"by": "hall", "from": str(HISTORY[0]), "to": str(HISTORY[-1])})
    lines = list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [x["slice"] for x in lines] == ["hall", "hall", "total"]
    assert int(lines[-1]["issued"]) == total_issued
    # the P90 of the figures module reads a histogram: check the edges directly too
    assert figures.p90_minutes([0] * figures.NBUCKETS) is None
    h = [0] * figures.NBUCKETS
    h[4] = 9
    h[70] = 1
    assert figures.p90_minutes(h) == 5.0  # 9 of 10 waited at most 5 minutes
    assert figures.bucket_of(59.9) == 0 and figures.bucket_of(3600) == 60 and figures.bucket_of(99999) == 76


def test_report_pages_print_and_csv(city, browser):
    b = browser
    day = HISTORY[1]
    _rolled(city, day, "web")
    b.login(city.web.url, "boss", "boss-password-1")
    for kind in ("hall", "category", "clerk", "half_hour", "item"):
        b.get(f"{city.web.url}/reports?by={kind}&from={HISTORY[0]}&to={HISTORY[-1]}")
        b.wait(lambda: b.finds("#report"), what=f"the {kind} report")
        if kind != "item":  # the seeded halls record no service items: the page says so
            assert b.finds("#report-total"), kind
        else:
            assert "这段时间没有记录" in b.text("#report")
    b.get(f"{city.web.url}/reports?by=category&from={HISTORY[0]}&to={HISTORY[-1]}")
    text = b.text("#report")
    # both halls name A and B alike: one line each (east's names from the config the city kept)
    assert [r.get_attribute("data-key") for r in b.finds("#report tbody tr[data-key]")] == ["/A", "/B"]
    assert "社保医保" in text and "不动产登记" in text
    b.screenshot(SCREENSHOTS / "city-report-category-zh.png")
    pdf = b.pdf(SCREENSHOTS / "city-report-category.pdf")
    assert pdf.read_bytes().startswith(b"%PDF")
    b.get(f"{city.web.url}/reports?by=hall&from={HISTORY[0]}&to={HISTORY[-1]}")
    assert "东区政务服务中心" in b.text("#report") and "测试政务服务中心" in b.text("#report")
    b.screenshot(SCREENSHOTS / "city-report-hall-zh.png")
    # bad input: a clear answer, nothing else
    c = city.web.http("viewer")
    for params in ({"by": "weather"}, {"from": "2026-02-30"}, {"from": "2026-11-20", "to": "2026-11-01"},
                   {"from": "2024-01-01", "to": "2026-01-01"}, {"hall": "nowhere"}):
        r = c.get("/reports", params=params, headers={"accept": "text/html"})
        assert r.status_code == 400, params


# -- follow-ups ------------------------------------------------------------------------------------------
def test_followups_across_halls_with_deadlines(city, browser):
    expected = city.conn.execute("SELECT count(*) FROM followups WHERE closed_at IS NULL").fetchone()[0]
    assert expected > 0, "the seeded days hold bad reviews"
    overdue = city.conn.execute(
        "SELECT count(*) FROM followups WHERE closed_at IS NULL AND due < %s", (TODAY,)).fetchone()[0]
    b = browser
    b.login(city.web.url, "viewer", "viewer-password-1")
    b.get(city.web.url + "/followups")
    assert int(b.text("#fu-open")) == expected
    assert int(b.text("#fu-overdue")) == overdue
    rows = b.finds("#followups tbody tr[data-followup]")
    assert len(rows) == expected
    halls = {r.get_attribute("data-followup").split("/")[0] for r in rows}
    assert halls == {"web", "east"}
    dues = [r.find_element("css selector", "td.due").text[:10] for r in rows]
    assert dues == sorted(dues)  # the nearest deadline first
    if overdue:
        assert "逾期" in b.text("#followups")
    b.screenshot(SCREENSHOTS / "city-followups-zh.png")
    b.get(city.web.url + "/followups?status=overdue&hall=east")
    east_overdue = city.conn.execute("SELECT count(*) FROM followups WHERE closed_at IS NULL AND due < %s"
                                     " AND hall = 'east'", (TODAY,)).fetchone()[0]
    assert len(b.finds("#followups tbody tr[data-followup]")) == east_overdue
    # a follow-up closed at the hall reaches the city with the next batch
    (fid,) = city.conn.execute("SELECT id FROM followups WHERE hall = 'web' AND closed_at IS NULL"
                                 " ORDER BY id LIMIT 1").fetchone()
    hc = sqlite3.connect(city.ctl.db)  # as the hall's dashboard closes it (the controller's record)
    hc.execute("UPDATE followups SET closed_at = ?, called_back_by = ?, action = ? WHERE id = ?",
               ("2026-11-23T10:05:00+08:00", "李娜", "已电话回访并致歉", fid))
    hc.commit()
    row = next(r for r in hall_records(city.ctl.db) if type(r).__name__ == "FollowUpRow" and r.id == fid)
    hc.close()
    city.web_ship.send(city.conn, [row])
    b.get(city.web.url + "/followups?status=closed")
    b.wait(lambda: f"web/{fid}" in [r.get_attribute("data-followup") for r in b.finds("#followups tbody tr")],
           what="the closed follow-up")
    assert "已电话回访并致歉" in b.text("#followups")
    b.screenshot(SCREENSHOTS / "city-followups-closed-zh.png")


# -- accounts and roles ---------------------------------------------------------------------------------
def test_session_guard_roles_and_csrf(city):
    c = city.web.http()
    for path in ("/", "/halls", "/halls/web", "/reports", "/reports.csv", "/followups", "/audit"):
        r = c.get(path, headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for path in ("/events/halls", "/events/halls/web"):
        assert c.get(path).status_code == 401
    assert c.post("/logout", data={"csrf": "x"}).status_code == 401
    viewer = city.web.http("viewer")
    assert viewer.get("/audit", headers={"accept": "text/html"}).status_code == 403
    assert viewer.get("/halls", headers={"accept": "text/html"}).status_code == 200
    # a clerk account has no city pages
    c2 = city.web.http()
    page = c2.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
    r = c2.post("/login", data={"name": "clerk", "password": "clerk-password-1", "login_csrf": token})
    assert r.status_code == 303
    assert c2.get("/halls", headers={"accept": "text/html"}).status_code == 403
    # signing out needs the CSRF token
    assert viewer.post("/logout").status_code == 403
    assert viewer.post("/logout", headers={"x-csrf-token": viewer.csrf}).status_code == 303
    assert viewer.get("/halls", headers={"accept": "text/html"}).status_code == 303
    # the manager's CSV downloads are in the audit log
    boss = city.web.http("boss")
    boss.get("/reports.csv", params={"by": "hall", "from": str(HISTORY[0])})
    assert "report.csv" in boss.get("/audit", headers={"accept": "text/html"}).text
