"""The city's follow-up list, page by page, in Debian's chromium: "Next page" (下一页) walks every follow-up
once, in the list's order, also where many share a due day and a rating time (the cursor's ties are broken
by hall and id), and the last page has no such link; the closed list pages the same way, the latest first.

The follow-ups reach the centre through its own ingest (two halls' streams); ``hallq central web`` runs as its
own process."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from city_kit import PASSWORDS, CityWeb, Shipper, register
from hallq.shared import central as contract
from harness import Mosquitto

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))

from browser import Browser, available

TZ = ZoneInfo("Asia/Shanghai")
OPEN, CLOSED = 230, 130  # follow-ups of the two halls together; a page shows 100


def _followups(hall: str, today, n_open: int, n_closed: int) -> list:
    """``n_open`` open follow-ups (due from 3 days ago on, many sharing a due day and a rating time) and
    ``n_closed`` closed ones (several closed in the same second)."""
    out = []
    base = datetime.combine(today, datetime.min.time(), TZ).replace(hour=9) - timedelta(days=8)
    for i in range(1, n_open + n_closed + 1):
        rated = base + timedelta(minutes=(i % 7) * 10)  # seven rating times: ties on (due, rated_at)
        closed = i > n_open
        out.append(contract.FollowUpRow(
            id=i, rating_id=1000 + i, day=rated.date(), ticket=f"A{i:03d}", window=1 + i % 9,
            level="dissatisfied" if i % 3 else "very_dissatisfied", rated_at=rated, opened_at=rated,
            due=today - timedelta(days=3) + timedelta(days=i % 6), staff_name="李娜",
            closed_at=(base + timedelta(days=1, seconds=(i // 4))).astimezone(UTC) if closed else None,
            called_back_by="王强" if closed else None, action="已回访" if closed else None))
    return out


def _walk(b: Browser, url: str) -> list[list[str]]:
    """Every page of the list from ``url``, following "Next page": each page's follow-ups (hall/id)."""
    b.get(url)
    pages = []
    while True:
        rows = [r.get_attribute("data-followup") for r in b.finds("#followups tbody tr[data-followup]")]
        pages.append(rows)
        nxt = b.finds("#next-page")
        if not nxt:
            return pages
        assert "下一页" in nxt[0].text and "Next page" in nxt[0].text
        assert len(pages) < 10, "the pages go on for ever"
        first = rows[0]
        nxt[0].click()
        b.wait(lambda was=first: b.finds("#first-page") and
               (b.finds("#followups tbody tr[data-followup]")[0].get_attribute("data-followup") != was),
               what="the next page")


@contextmanager
def _city_signed_in(tmp_path, dsn: str):
    """The city web on its own broker with a viewer signed in in chromium; everything stopped afterwards."""
    broker = Mosquitto(tmp_path / "broker").start()
    web = CityWeb(tmp_path / "web", dsn, broker.url)
    b = None
    try:
        web.user("viewer", "viewer")
        web.start()
        b = Browser()
        b.login(web.url, "viewer", PASSWORDS["viewer"])
        yield web, b
    finally:
        if b is not None:
            b.close()
        web.stop()
        broker.stop()


@pytest.mark.timeout(300)
def test_next_page_walks_every_follow_up_once_in_order(central_dsn, tmp_path):
    from hallq.central import db

    why = available()
    if why:
        pytest.fail(why)
    today = datetime.now(TZ).date()
    with db.connect(central_dsn, autocommit=True) as conn:
        register(conn, "H1", "一号大厅", "Hall One")
        register(conn, "H2", "二号大厅", "Hall Two")
        # the same ids, due days and rating times in both halls: only the hall tells two lines apart
        Shipper("H1").send(conn, _followups("H1", today, 130, 70))
        Shipper("H2").send(conn, _followups("H2", today, OPEN - 130, CLOSED - 70))
        open_order = [f"{h}/{i}" for h, i in conn.execute(
            "SELECT hall, id FROM followups WHERE closed_at IS NULL ORDER BY due, rated_at, hall, id")]
        closed_order = [f"{h}/{i}" for h, i in conn.execute(
            "SELECT hall, id FROM followups WHERE closed_at IS NOT NULL ORDER BY closed_at DESC, hall DESC, id DESC")]
        overdue = conn.execute("SELECT count(*) FROM followups WHERE closed_at IS NULL AND due < %s",
                               (today,)).fetchone()[0]
    assert len(open_order) == OPEN and len(closed_order) == CLOSED and 100 < overdue < OPEN
    with _city_signed_in(tmp_path, central_dsn) as (web, b):
        pages = _walk(b, web.url + "/followups")
        assert [len(p) for p in pages] == [100, 100, 30]
        assert [r for p in pages for r in p] == open_order  # every open one once, nearest deadline first
        assert int(b.text("#fu-open")) == OPEN  # the counts are the whole list's on every page
        b.click("#first-page")
        b.wait(lambda: not b.finds("#first-page"), what="the first page again")
        assert [r.get_attribute("data-followup") for r in b.finds("#followups tbody tr[data-followup]")] == pages[0]

        pages = _walk(b, web.url + "/followups?status=closed")
        assert [len(p) for p in pages] == [100, 30]
        assert [r for p in pages for r in p] == closed_order  # the latest closed first

        pages = _walk(b, web.url + "/followups?status=overdue")
        assert [len(p) for p in pages] == [100, overdue - 100]
        assert [r for p in pages for r in p] == open_order[:overdue]  # overdue = the open ones due before today

        pages = _walk(b, web.url + "/followups?status=open&hall=H2")  # one hall's list keeps its hall
        assert [r for p in pages for r in p] == [r for r in open_order if r.startswith("H2/")]
        assert [len(p) for p in pages] == [100]


@pytest.mark.timeout(420)
def test_report_by_clerk_pages_by_hall_and_keeps_the_whole_total(central_dsn, tmp_path):
    """A city's report by clerk has a line per clerk of every hall (3,000 in a 300-hall city): the page shows
    the clerks of 25 halls at a time, read by those halls' index; the total line and the CSV are every hall's."""
    from datetime import date

    from dashkit import HALL_TOML
    from hallq.central import db
    from hallq.controller import config
    from seed import seed

    day = date(2026, 11, 16)
    with db.connect(central_dsn, autocommit=True) as conn:
        for i in range(1, 31):  # 30 halls: two pages; records at the first and the 27th
            register(conn, f"h{i:02d}", f"第{i}大厅", f"Hall {i}")
        db.ensure_months(conn, [day])
        for hall, s in (("h01", 5), ("h27", 6)):
            path = tmp_path / hall / "hall.db"
            path.parent.mkdir()
            seed(path, config.parse(HALL_TOML.replace('id = "web"', f'id = "{hall}"')), day, 1, 60, seed=s)
            from city_kit import hall_records
            Shipper(hall).send(conn, hall_records(path))
    with _city_signed_in(tmp_path, central_dsn) as (web, b):
        c = web.http("viewer")
        from city_kit import wait_until
        wait_until(lambda: "h27" in c.get(f"/reports?by=hall&from={day}&to={day}").text, 60, "the roll-up")
        b.get(f"{web.url}/reports?by=clerk&from={day}&to={day}")
        first = [r.get_attribute("data-key") for r in b.finds("#report tbody tr[data-key]")]
        assert first and all(k.startswith("h01/") for k in first)
        assert "1–25" in b.text("#page-halls") and "30" in b.text("#page-halls")
        total = b.text("#report-total")
        assert not b.finds("#prev-page")
        b.click("#next-page")
        b.wait(lambda: b.finds("#prev-page"), what="the second page")
        second = [r.get_attribute("data-key") for r in b.finds("#report tbody tr[data-key]")]
        assert second and all(k.startswith("h27/") for k in second)
        assert "26–30" in b.text("#page-halls") and not b.finds("#next-page")
        assert b.text("#report-total") == total  # the whole city's total on every page
        csv_text = c.get(f"/reports.csv?by=clerk&from={day}&to={day}").content.decode("utf-8-sig")
        keys = {tuple(r.split(",")[3:5]) for r in csv_text.splitlines()[1:] if ",clerk," in r}
        assert keys == {tuple(k.split("/")) for k in first + second}  # the CSV: every hall's clerks
        assert c.get(f"/reports?by=clerk&from={day}&to={day}&page=3").status_code == 400
        assert c.get(f"/reports?by=clerk&from={day}&to={day}&page=x").status_code == 400
