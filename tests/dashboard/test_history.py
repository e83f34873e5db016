"""History pages against the controller's record: the CSV of a day is the controller's report, a manager
closes a follow-up with a note (recorded with who and when), a ticket's story, screenshots of every page."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time

import pytest
from dashkit import SCREENSHOTS, wait_until
from hallq.shared.mqtt import HallClient
from hallq.shared.schemas import RateRequest, WindowRequest
from harness import HALLQ

DAY = "2026-11-23"


def _serve_and_rate(web, level: str) -> str:
    """Window 3 (through its web caller identity? no: the pad and a window client of the test) serves one."""
    number = web.take("A")
    win = HallClient(web.broker.url, "web", "web-caller-3").start()
    pad = HallClient(web.broker.url, "web", "pad-3").start()
    try:
        assert win.wait_connected(10) and pad.wait_connected(10)
        from hallq.shared.schemas import Staff

        win.request("window", WindowRequest(req=win.new_req(), window=3, op="open", staff=Staff(id="clerk", name="李娜")))
        r = win.request("window", WindowRequest(req=win.new_req(), window=3, op="next"))
        assert r.ticket.number == number
        win.request("window", WindowRequest(req=win.new_req(), window=3, op="done"))
        pad.request("rate", RateRequest(req=pad.new_req(), window=3, ticket=number, level=level))
    finally:
        win.stop()
        pad.stop()
    return number


def test_csv_of_a_day_equals_the_controllers_report(web):
    _serve_and_rate(web, "satisfied")
    web.take("B")
    # window 3 signs out: its idle time with B001 waiting stops growing, so the two reports, made a moment
    # apart, count the same minutes
    win = HallClient(web.broker.url, "web", "web-caller-3").start()
    try:
        assert win.wait_connected(10)
        win.request("window", WindowRequest(req=win.new_req(), window=3, op="close"))
    finally:
        win.stop()
    c = web.http("viewer")
    r = c.get(f"/reports.csv?date={DAY}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    cli = subprocess.run([HALLQ, "controller", "report", "--db", str(web.controller.db), "--date", DAY, "--csv"],
                         capture_output=True, env=web.controller.env, timeout=60)
    assert cli.returncode == 0, cli.stderr
    assert r.content == cli.stdout  # the same bytes
    assert "hall," in r.text and ",1," in r.text
    # bad dates are refused in words
    assert c.get("/reports.csv?date=2026-13-01").status_code == 400
    assert c.get("/reports?from=2026-11-23&to=2026-11-01", headers={"accept": "text/html"}).status_code == 400


@pytest.mark.timeout(600)  # a browser and a whole hall: slow on a loaded machine
def test_manager_closes_a_follow_up_with_a_note(web, browser):
    number = _serve_and_rate(web, "dissatisfied")
    web.monitor.wait_for("hallq/web/followups", lambda m: len(json.loads(m.payload)["open"]) == 1)
    browser.login(web.url, "boss", "boss-password-1")
    browser.get(web.url + "/followups")
    row = browser.find("tr[data-followup]")
    fid = row.get_attribute("data-followup")
    assert number in row.text
    browser.find(f"form[action='/followups/{fid}/note'] input[name=note]").send_keys("已电话联系市民，解释办理流程")
    browser.click(f"form[action='/followups/{fid}/note'] button")
    browser.wait(lambda: "已电话联系市民" in browser.text(".fu-detail"), what="the note")
    browser.find(f"form[action='/followups/{fid}/close'] input[name=action]").send_keys("窗口人员已整改，市民表示满意")
    browser.click(f"form[action='/followups/{fid}/close'] button")
    try:
        browser.wait(lambda: "已办结该回访" in browser.text(".result"), what="closed")
    except AssertionError:
        raise AssertionError(browser.driver.current_url + browser.driver.page_source[-3000:]) from None
    db = sqlite3.connect(f"file:{web.controller.db}?mode=ro", uri=True)
    closed = db.execute("SELECT closed_at, called_back_by, action FROM followups WHERE id = ?", (int(fid),)).fetchone()
    assert closed[0] and closed[1] == "boss" and closed[2] == "窗口人员已整改，市民表示满意"
    # the controller saw it: nothing open any more
    web.monitor.wait_for("hallq/web/followups", lambda m: json.loads(m.payload)["open"] == [], timeout=10)
    # both actions are in the audit log, with who
    browser.get(web.url + "/audit")
    text = browser.text("table")
    assert "followup.close" in text and "followup.note" in text and "boss" in text
    # the ticket's whole story
    browser.get(web.url + f"/ticket?number={number}&date={DAY}")
    story = browser.text("#story")
    assert number in story and "李娜" in story and "不满意" in story and "已办结" in story
    # a closed follow-up cannot be closed again
    c = web.http("boss")
    assert c.post(f"/followups/{fid}/close", data={"action": "again"}, headers={"x-csrf-token": c.csrf}).status_code == 409
    # a viewer cannot close one
    v = web.http("viewer")
    assert v.post(f"/followups/{fid}/close", data={"action": "x"}, headers={"x-csrf-token": v.csrf}).status_code == 403


@pytest.mark.timeout(600)  # a browser and a whole hall: slow on a loaded machine
def test_screenshots_zh_and_en(web, browser):
    """The pages as a manager and a clerk see them, in Chinese and English, for a person to look at."""
    _serve_and_rate(web, "very_satisfied")
    _serve_and_rate(web, "dissatisfied")
    for cat in "AABBB":
        web.take(cat)
    c = web.http("boss")
    for page in ("/now", "/today", "/followups", "/reports", f"/reports?from=2026-11-01&to={DAY}", "/ticket",
                 "/ticket?number=A001", "/ticket?number=Z999", "/ticket?number=bad", "/caller", "/caller/3", "/audit"):
        assert c.get(page, headers={"accept": "text/html"}).status_code == 200, page
    browser.login(web.url, "boss", "boss-password-1")
    for lang in ("zh", "en"):
        browser.get(web.url + f"/lang/{lang}?next=/now")
        browser.wait(lambda: browser.finds("#categories"), what="the dashboard")
        browser.screenshot(SCREENSHOTS / f"now-{lang}.png")
        for page in ("today", "followups"):
            browser.get(web.url + f"/{page}")
            browser.screenshot(SCREENSHOTS / f"{page}-{lang}.png")
        browser.get(web.url + f"/reports?from={DAY}")
        browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
        browser.driver.set_window_size(794, 1123)  # A4 at 96 dpi
        browser.screenshot(SCREENSHOTS / f"report-print-{lang}.png")
        browser.pdf(SCREENSHOTS / f"report-{lang}.pdf")
        browser.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
        browser.driver.set_window_size(1366, 900)
        browser.get(web.url + "/caller/3")
        browser.wait(lambda: browser.finds("#current-ticket"), what="the caller")
        browser.screenshot(SCREENSHOTS / f"caller-{lang}.png")
        # nothing on these pages is wider than the window (no clipped tables)
        for page in ("/now", "/today", "/followups", "/caller/3"):
            browser.get(web.url + page)
            wide = browser.driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1")
            assert not wide, f"{page} ({lang}) is wider than the window"
    assert wait_until(lambda: (SCREENSHOTS / "caller-en.png").exists())


@pytest.mark.timeout(600)  # a browser and a whole hall: slow on a loaded machine
def test_history_of_four_weeks_staffing_flow_and_reports(tmp_path, browser):
    """Four weeks of weekdays written by the controller's own core, then the pages that learn from them."""
    from datetime import date

    from dashkit import WebHall
    from seed import seed

    web = WebHall(tmp_path, history=lambda db, cfg: seed(db, cfg, date(2026, 10, 26), 28, 240, weekdays_only=True))
    try:
        c = web.http("viewer")
        # a past day's CSV is the controller's report of that day
        cli = subprocess.run([HALLQ, "controller", "report", "--db", str(web.controller.db), "--date", "2026-11-16",
                              "--csv"], capture_output=True, env=web.controller.env, timeout=60)
        r = c.get("/reports.csv?date=2026-11-16")
        assert r.content == cli.stdout and cli.stdout.count(b"\n") > 10
        # a range: one header, every day
        r = c.get("/reports.csv?from=2026-11-16&to=2026-11-20")
        assert r.text.count("date,slice") == 1 and all(f"2026-11-{d}," in r.text for d in range(16, 21))
        browser.login(web.url, "boss", "boss-password-1")
        browser.get(web.url + "/staffing")
        table = browser.find("#staffing")
        cells = [int(b.text) for b in table.find_elements("css selector", "td b") if b.text.isdigit()]
        assert cells and max(cells) >= 1
        assert "4" in browser.text("main")  # days with data
        browser.screenshot(SCREENSHOTS / "staffing-zh.png")
        browser.get(web.url + "/today")
        assert browser.finds("svg.chart polyline.line-avg")  # the same weekday's average
        browser.get(web.url + "/reports?from=2026-11-02&to=2026-11-20")
        assert len(browser.finds("#range tbody tr")) == 19
        browser.screenshot(SCREENSHOTS / "report-range-zh.png")
        browser.get(web.url + "/lang/en?next=/staffing")
        browser.screenshot(SCREENSHOTS / "staffing-en.png")
        wide = browser.driver.execute_script("return document.documentElement.scrollWidth > window.innerWidth + 1")
        assert not wide
    finally:
        web.close()


@pytest.mark.timeout(600)  # a browser and a whole hall: slow on a loaded machine
def test_today_shows_idle_time_with_people_waiting_per_window_and_clerk(tmp_path, browser):
    """Window 1 is open and idle while A001 waits, then calls it: the Today page and the report show the
    idle minutes for the window and its clerk, the same figure as `hallq controller report`."""
    import csv
    import io

    from dashkit import WebHall
    from hallq.shared.schemas import Staff

    web = WebHall(tmp_path, speed=60.0)  # a minute of the hall's clock per second
    win = HallClient(web.broker.url, "web", "web-caller-1").start()
    try:
        assert win.wait_connected(10)
        win.request("window", WindowRequest(req=win.new_req(), window=1, op="open",
                                            staff=Staff(id="c7", name="周敏")))
        web.take("A")
        time.sleep(3.0)  # about three minutes of the hall's clock
        r = win.request("window", WindowRequest(req=win.new_req(), window=1, op="next"))
        assert r.ticket.number == "A001"
        cli = subprocess.run([HALLQ, "controller", "report", "--db", str(web.controller.db), "--date", DAY, "--csv"],
                             capture_output=True, env=web.controller.env, timeout=60, text=True)
        assert cli.returncode == 0, cli.stderr
        rows = {r["slice"]: r for r in csv.DictReader(io.StringIO(cli.stdout)) if r["slice"] in ("window", "clerk")}
        idle = rows["window"]["idle_waiting_min"]
        assert float(idle) >= 2.5 and rows["clerk"]["idle_waiting_min"] == idle
        browser.login(web.url, "boss", "boss-password-1")
        for lang, head in (("zh", "有人等候时空闲"), ("en", "Idle while people waited")):
            browser.get(web.url + f"/lang/{lang}?next=/today")
            for table in ("#day-windows", "#day-clerks"):
                assert head in browser.text(f"{table} thead")
                cells = [c.text for c in browser.finds(f"{table} tbody td.idle-waiting")]
                assert cells == [idle], (table, cells)
            assert not browser.finds("#day-halves td.idle-waiting")  # not a half hour's figure
            browser.screenshot(SCREENSHOTS / f"today-idle-{lang}.png")
        browser.get(web.url + f"/reports?from={DAY}")
        assert [c.text for c in browser.finds("#day-windows tbody td.idle-waiting")] == [idle]
    finally:
        win.stop()
        web.close()
