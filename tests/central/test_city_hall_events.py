"""What halls ship besides their record, on the city's pages: the hall dashboard's call-back notes under each
follow-up (全市差评回访 and the hall page), and the devices that went offline or reported a fault today (the hall
page), from rows the centre took through its own ingest; ``hallq central web`` as its own process."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
import pytest
from city_kit import CityWeb, register
from hallq.shared import central as contract
from harness import Mosquitto

TZ = ZoneInfo("Asia/Shanghai")


def _batch(hall: str, records: list) -> contract.Batch:
    now = datetime.now(UTC)
    raw = contract.Batch(hall=hall, stream="b" * 32, first=1, records=records, queued_first=now, queued_last=now)
    return msgspec.json.decode(msgspec.json.encode(raw), type=contract.Batch)  # as the endpoint decodes it


@pytest.mark.timeout(300)
def test_notes_under_follow_ups_and_devices_offline_today(central_dsn, tmp_path):
    from hallq.central import db, ingest

    now = datetime.now(TZ).replace(microsecond=0)
    today = now.date()
    at = now - timedelta(hours=1)
    fu = contract.FollowUpRow(id=5, rating_id=9, day=today, ticket="A017", window=3, level="dissatisfied",
                              rated_at=at, opened_at=at, due=today + timedelta(days=3), staff_name="李娜")
    other = msgspec.structs.replace(fu, id=6, rating_id=10, ticket="A018")
    notes = [contract.FollowUpNoteRow(id=1, day=at.astimezone(UTC).date(), followup_id=5,
                                      at=at.astimezone(UTC) + timedelta(minutes=5), user="张主任",
                                      note="已电话联系市民 138****8000，解释办理流程"),
             contract.FollowUpNoteRow(id=2, day=at.astimezone(UTC).date(), followup_id=5,
                                      at=at.astimezone(UTC) + timedelta(minutes=9), user="张主任",
                                      note="市民表示理解<b>")]

    def ev(i: int, device: str, status: str, problems: list[str], change: str, minutes: int):
        return contract.DeviceEventRow(id=i, day=today, at=at + timedelta(minutes=minutes), device=device,
                                       role="kiosk" if device.startswith("kiosk") else "pad",
                                       window=None if device.startswith("kiosk") else 3, status=status,
                                       problems=problems, change=change)

    events = [ev(1, "kiosk-1", "online", [], "status", 0), ev(2, "kiosk-1", "offline", [], "status", 1),
              ev(3, "kiosk-1", "online", [], "status", 2), ev(4, "kiosk-1", "offline", [], "status", 3),
              ev(5, "pad-3", "online", ["paper_out"], "health", 4), ev(6, "kiosk-2", "online", [], "status", 5)]
    with db.connect(central_dsn, autocommit=True) as conn:
        register(conn, "H1", "一号大厅", "Hall One")
        out = ingest.apply(conn, "H1", _batch("H1", [fu, other, *notes, *events]))
        assert out.status == 200, out
    broker = Mosquitto(tmp_path / "broker").start()
    web = CityWeb(tmp_path / "web", central_dsn, broker.url)
    try:
        web.user("boss", "manager")
        web.start()
        c = web.http("boss")
        for path in ("/followups", "/halls/H1"):
            page = c.get(path, headers={"accept": "text/html"})
            assert page.status_code == 200, page.text[-500:]
            row = re.search(r'<tr data-followup="H1/5".*?</tr>', page.text, re.S)
            assert row, page.text[-1500:]
            text = html.unescape(row.group(0))
            first, second = text.index("已电话联系市民 138****8000"), text.index("市民表示理解<b>")
            assert first < second  # oldest first, the note's own text escaped (not markup)
            assert "&lt;b&gt;" in row.group(0) and "张主任" in text
            assert (at + timedelta(minutes=5)).strftime("%m-%d %H:%M") in text  # in the hall's time
            other_row = re.search(r'<tr data-followup="H1/6".*?</tr>', page.text, re.S)
            assert other_row and "张主任" not in other_row.group(0)
        page = c.get("/halls/H1", headers={"accept": "text/html"}).text
        table = re.search(r'<table class="data" id="device-events">.*?</table>', page, re.S).group(0)
        rows = {m.group(1): re.sub(r"<[^>]+>", " ", m.group(2)) for m in
                re.finditer(r'<tr data-device="([^"]+)">(.*?)</tr>', table, re.S)}
        assert set(rows) == {"kiosk-1", "pad-3"}  # kiosk-2 was only ever online today
        assert re.search(r"\b2\b", rows["kiosk-1"]) and "离线" in rows["kiosk-1"]
        assert "paper_out" in rows["pad-3"] and re.search(r"\b0\b", rows["pad-3"])
    finally:
        web.stop()
        broker.stop()
