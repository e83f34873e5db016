"""The clerk's web caller in Debian's chromium: sign in, call, recall, transfer, done with a case; the
window's state, the hall screen's board and the record change as for a hardware caller."""

from __future__ import annotations

import json
import sqlite3

import pytest
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select


def _state(web, no: int) -> dict:
    msgs = web.monitor.on(f"hallq/web/window/{no}/state")
    return json.loads(msgs[-1].payload) if msgs else {}


@pytest.mark.timeout(600)  # a browser and a whole hall: slow on a loaded machine
def test_clerk_calls_recalls_transfers_and_closes_with_a_case(web, browser):
    a1, a2, b1 = web.take("A"), web.take("A"), web.take("B")
    browser.login(web.url, "clerk", "clerk-password-1")
    assert browser.driver.current_url.endswith("/caller/3")  # her only window
    browser.click(".op-open")
    web.monitor.wait_for("hallq/web/window/3/state", lambda m: json.loads(m.payload).get("staff", {}).get("name") == "李娜")
    browser.wait(lambda: "已签到" in browser.text("#result"), what="signed in")
    # 叫号 by the keyboard, like a hardware caller's F1
    browser.find("body").send_keys(Keys.F1)
    web.monitor.wait_for("hallq/web/window/3/state", lambda m: (json.loads(m.payload).get("ticket") or {}).get("number") == a1)
    web.monitor.wait_for("hallq/web/board", lambda m: any(c["ticket"] == a1 for c in json.loads(m.payload)["calls"][:1]))
    browser.wait(lambda: browser.text("#current-ticket") == a1, what="the current ticket")
    # the request went out under the window's own device identity
    reqs = web.monitor.on("hallq/web/req/+/window")
    assert reqs and all(m.topic == "hallq/web/req/web-caller-3/window" for m in reqs)
    # 重呼
    browser.click(".op-recall")
    web.monitor.wait_for("hallq/web/calls", lambda m: json.loads(m.payload)["ticket"] == a1 and json.loads(m.payload).get("recall", 0) == 1)
    browser.wait(lambda: "已重呼" in browser.text("#result"), what="recalled")
    # 转号 to category B
    browser.click(".op-transfer")
    Select(browser.find("#transfer-dialog select[name=to_category]")).select_by_value("B")
    browser.click("#transfer-dialog button[type=submit]")
    browser.wait(lambda: "已转号" in browser.text("#result"), what="transferred")
    web.monitor.wait_for("hallq/web/window/3/state", lambda m: json.loads(m.payload)["status"] == "idle")
    # next: a2 (A before the transferred one? the controller decides) — then done with a case
    browser.click(".op-next")
    browser.wait(lambda: browser.text("#current-ticket") not in ("", "—"), what="a ticket called")
    current = browser.text("#current-ticket")
    assert current in (a2, b1, a1)
    browser.click(".op-done")
    browser.find("#done-dialog input[name=case_id]").send_keys("BJ2026-0001")
    # a wrong form stays in the dialog with its message, and sends nothing
    browser.click("#done-dialog button[type=submit]")
    browser.wait(lambda: "事项编码" in browser.text("#done-dialog .form-result"), what="the form's error")
    browser.find("#done-dialog input[name=item_code]").send_keys("11320312MB0001")
    browser.find("#done-dialog input[name=item_name]").send_keys("不动产登记")
    Select(browser.find("#done-dialog select[name=case_kind]")).select_by_value("promised")
    browser.click("#done-dialog button[type=submit]")
    browser.wait(lambda: "已办结" in browser.text("#result"), what="done")
    assert not browser.driver.execute_script("return document.getElementById('done-dialog').open")
    web.monitor.wait_for("hallq/web/window/3/state",
                         lambda m: (json.loads(m.payload).get("last") or {}).get("outcome") == "done")
    db = sqlite3.connect(f"file:{web.controller.db}?mode=ro", uri=True)
    row = db.execute("SELECT number, window, staff_name, case_id, item_code, item_name, case_kind FROM calls "
                     "WHERE outcome = 'done'").fetchone()
    assert row == (current, 3, "李娜", "BJ2026-0001", "11320312MB0001", "不动产登记", "promised")
    # nothing waits for a moment? then 叫号 says so in words
    while True:
        browser.click(".op-next")
        browser.wait(lambda: browser.finds("#result [data-ok]"), what="an answer")
        if "现在没有等候的号" in browser.text("#result"):
            break
        browser.driver.execute_script("document.getElementById('result').innerHTML = ''")
    # F6 pauses, and 叫号 on a paused window says so
    browser.find("body").send_keys(Keys.F6)
    web.monitor.wait_for("hallq/web/window/3/state", lambda m: json.loads(m.payload)["status"] == "paused")
    browser.driver.execute_script("document.getElementById('result').innerHTML = ''")
    browser.click(".op-next")
    browser.wait(lambda: "窗口已暂停" in browser.text("#result"), what="the paused message")
    browser.find("body").send_keys(Keys.F6)
    web.monitor.wait_for("hallq/web/window/3/state", lambda m: json.loads(m.payload)["status"] == "idle")
