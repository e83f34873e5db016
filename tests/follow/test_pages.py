"""The citizens' phone pages on the dashboard's server, in Debian's chromium against the real controller."""

from __future__ import annotations

import json
import re

from dashkit import SCREENSHOTS, wait_until
from hallq.shared.mqtt import HallClient
from hallq.shared.schemas import Staff, TakeRequest, WindowRequest


def clerk(hall, window: int = 1) -> HallClient:
    c = HallClient(hall.broker.url, "web", f"web-caller-{window}").start()
    assert c.wait_connected(10)
    c.request("window", WindowRequest(req=c.new_req(), window=window, op="open", staff=Staff(id="s1", name="王芳")),
              timeout=10)
    return c


def test_scan_to_take_then_the_page_follows_the_call(phone_hall, phone_browser):
    b = phone_browser
    first = phone_hall.take("A")  # someone is ahead
    b.get(phone_hall.url + "/m/q")
    assert "扫码取号" in b.text("h1") and "社保医保" in b.text(".cats")
    b.find("input[name=phone]").send_keys("138 0013 8000")
    b.click("button.cat[value=A]")
    b.wait(lambda: "/m/f/" in b.driver.current_url, what="the follow page")
    number = b.text("#number")
    assert re.fullmatch(r"A\d{3}", number) and number != first
    assert "前面还有 1 人" in b.text("#state") and "1 ahead of you" in b.text("#state")
    assert "13800138000" not in b.driver.page_source and "138****" not in b.driver.page_source
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    b.screenshot(SCREENSHOTS / "phone-follow-waiting.png")
    c = clerk(phone_hall)
    c.request("window", WindowRequest(req=c.new_req(), window=1, op="next"), timeout=10)  # the first ticket
    b.wait(lambda: "前面还有 0 人" in b.text("#state"), what="the page to count down")
    c.request("window", WindowRequest(req=c.new_req(), window=1, op="next"), timeout=10)  # ours
    b.wait(lambda: b.find("#ticket").get_attribute("data-status") == "called", what="the call on the page")
    assert "请到 1号窗口 办理" in b.text("#state") and "Please go to Window 1" in b.text("#state")
    b.screenshot(SCREENSHOTS / "phone-follow-called.png")
    c.request("window", WindowRequest(req=c.new_req(), window=1, op="done"), timeout=10)
    b.wait(lambda: b.find("#ticket").get_attribute("data-status") == "gone", what="the end of the service")
    c.stop()


def test_one_ticket_per_category_per_phone_and_forged_forms(phone_hall, phone_browser):
    b = phone_browser
    b.get(phone_hall.url + "/m/q")
    b.click("button.cat[value=B]")
    b.wait(lambda: "/m/f/" in b.driver.current_url, what="the follow page")
    b.get(phone_hall.url + "/m/q")
    b.click("button.cat[value=B]")  # the same browser again
    b.wait(lambda: b.finds(".error"), what="the refusal")
    assert "您已取过这项业务的号" in b.text(".error")
    with phone_hall.http() as h:
        form = re.search(r'name="form" value="([^"]+)"', h.get("/m/q").text).group(1)
        r = h.post("/m/q", data={"category": "A", "form": form, "phone": "12345"})
        assert r.status_code == 400 and "手机号码不正确" in r.text
        r = h.post("/m/q", data={"category": "Z", "form": form})
        assert r.status_code == 400 and "请选择业务" in r.text
        for _ in range(2):  # the same phone twice in one category: the person key says no
            r = h.post("/m/q", data={"category": "A", "form": form, "phone": "+86 139 0013 9000"})
        assert r.status_code == 409 and "您已取过" in r.text
    with phone_hall.http() as h:  # a form posted from elsewhere: no cookie, no form token
        r = h.post("/m/q", data={"category": "A", "form": "x" * 32})
        assert r.status_code == 400 and "页面已过期" in r.text


def test_a_paper_tickets_token_opens_its_page_and_others_do_not(phone_hall):
    kiosk = phone_hall.kiosk
    r = kiosk.request("take", TakeRequest(req=kiosk.new_req(), category="B"), timeout=10)
    tok = r.ticket.follow
    assert tok and r.ticket.number not in tok
    with phone_hall.http() as h:
        page = h.get(f"/m/f/{tok}")
        assert page.status_code == 200 and r.ticket.number in page.text and "不动产登记" in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert '<meta name="referrer" content="no-referrer">' in page.text  # the token never leaves in a Referer
        assert h.get("/m/f/AAAAAAAAAAAAAAAA").status_code == 404
        assert h.get("/m/f/" + tok[::-1]).status_code == 404
        assert h.get("/m/static/follow.js").status_code == 200
        # the live stream sends the ticket at once
        with h.stream("GET", f"/m/f/{tok}/events") as s:
            for line in s.iter_lines():
                if line.startswith("data:"):
                    got = json.loads(line[len("data:"):])
                    assert got["number"] == r.ticket.number and got["status"] == "waiting"
                    break
    wait_until(lambda: True)


def test_the_door_poster_prints_the_scan_to_take_address(phone_hall, phone_browser):
    """Signed in, the dashboard's menu has the door's poster: an A4 page whose QR code is the scan-to-take
    page's address on the hall's Wi-Fi (the host of [follow] url). Without a session: the login."""
    from hallq.follow.pages import qr_svg

    with phone_hall.http() as h:
        r = h.get("/door-qr")
        assert r.status_code in (303, 401) and "/door-qr" not in r.headers.get("location", "/login")
    c = phone_hall.http("viewer")
    page = c.get("/door-qr", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert 'href="/door-qr"' in page.text  # in the menu
    assert "http://hall.lan/m/q" in page.text and "扫码取号" in page.text and "Scan to take a number" in page.text
    # the code on the page is the address's code, and nothing else
    assert qr_svg("http://hall.lan/m/q") in page.text
    assert qr_svg("http://hall.lan/m/q") != qr_svg("http://hall.lan/m/q2")
    b = phone_browser
    b.driver.set_window_size(1366, 900)
    b.login(phone_hall.url, "viewer", "viewer-password-1")
    b.get(phone_hall.url + "/door-qr")
    assert b.find("#door-qr svg").size["width"] > 300
    b.driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    b.driver.set_window_size(794, 1123)  # A4 at 96 dpi
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    b.screenshot(SCREENSHOTS / "door-qr-print.png")
    b.pdf(SCREENSHOTS / "door-qr.pdf")
