"""Accounts and security against the running dashboard: the session guard, sign-in, lockout, CSRF, roles,
bad forms. Every refusal changes nothing (checked on the hall's topics and record)."""

from __future__ import annotations

import re

import pytest

PAGES = ["/", "/now", "/caller", "/caller/3", "/audit", "/today", "/reports", "/reports.csv?date=2026-11-23",
         "/followups", "/ticket", "/lang/en"]
DATA = ["/events/now", "/events/caller/3"]
ACTIONS = ["/caller/3/next", "/caller/3/open", "/logout", "/followups/1/close", "/followups/1/note"]


def test_without_a_session_pages_redirect_and_data_answers_401(web):
    c = web.http()
    for path in PAGES:
        r = c.get(path, headers={"accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path
    for path in DATA + PAGES:
        r = c.get(path, headers={"accept": "text/event-stream"})
        assert r.status_code in (303, 401), path
        if path in DATA:
            assert r.status_code == 401, path
    for path in ACTIONS:
        assert c.post(path, data={"csrf": "x"}).status_code == 401, path
    # a forged session cookie is no session
    c.cookies.set("hallq_session", "forged-token")
    assert c.get("/events/now").status_code == 401
    # the login page and the static files need none
    assert c.get("/login").status_code == 200
    assert c.get("/static/vendor/htmx.min.js").status_code == 200


def _login(c, name, password):
    page = c.get("/login")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
    return c.post("/login", data={"name": name, "password": password, "login_csrf": token})


def test_wrong_password_and_lockout(web):
    c = web.http()
    r = _login(c, "boss", "not-the-password")
    assert r.status_code == 401 and "用户名或密码错误" in r.text
    for _ in range(4):
        assert _login(c, "boss", "still-wrong").status_code == 401
    # the account is locked now: even the right password is refused, with when to try again
    r = _login(c, "boss", "boss-password-1")
    assert r.status_code == 429 and "登录失败次数过多" in r.text
    assert "hallq_session" not in c.cookies
    # another account from the same address is not locked (the address limit is higher)
    assert _login(web.http(), "viewer", "viewer-password-1").status_code == 303
    # a login form without its token is refused
    assert c.post("/login", data={"name": "viewer", "password": "viewer-password-1"}).status_code == 400


def test_session_cookie_is_httponly_and_samesite(web):
    c = web.http()
    r = _login(c, "viewer", "viewer-password-1")
    cookie = r.headers["set-cookie"]
    assert "hallq_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert r.headers["content-security-policy"].startswith("default-src 'self'")


def test_roles(web):
    viewer = web.http("viewer")
    assert viewer.get("/now", headers={"accept": "text/html"}).status_code == 200
    assert viewer.get("/caller/3", headers={"accept": "text/html"}).status_code == 403
    r = viewer.post("/caller/3/next", headers={"x-csrf-token": viewer.csrf})
    assert r.status_code == 403
    clerk = web.http("clerk")
    assert clerk.get("/now", headers={"accept": "text/html"}).status_code == 403
    assert clerk.get("/caller/1", headers={"accept": "text/html"}).status_code == 403  # not one of hers
    assert clerk.get("/caller/3", headers={"accept": "text/html"}).status_code == 200
    assert clerk.get("/caller/99", headers={"accept": "text/html"}).status_code == 404
    assert clerk.get("/audit", headers={"accept": "text/html"}).status_code == 403
    # nothing of this reached the controller
    assert not web.monitor.on("hallq/web/req/+/window")


def test_csrf_and_bad_forms_change_nothing(web):
    clerk = web.http("clerk")
    # no token, a wrong token
    assert clerk.post("/caller/3/open").status_code == 403
    assert clerk.post("/caller/3/open", headers={"x-csrf-token": "wrong"}).status_code == 403
    assert not web.monitor.on("hallq/web/req/+/window")
    h = {"x-csrf-token": clerk.csrf}
    assert clerk.post("/caller/3/open", headers=h).status_code == 200
    web.monitor.wait_for("hallq/web/window/3/state", lambda m: b'"status":"idle"' in m.payload)
    sent = len(web.monitor.on("hallq/web/req/+/window"))
    # malformed or contradictory forms are refused before anything is sent
    for op, form in (("transfer", {}), ("transfer", {"to_category": "A", "to_window": "1"}),
                     ("transfer", {"to_category": "Z"}), ("transfer", {"to_window": "x"}),
                     ("transfer", {"to_window": "3"}), ("done", {"case_id": "BJ-1"}),
                     ("done", {"case_id": "BJ-1", "item_code": "X 1"}), ("done", {"case_id": "A", "item_code": "B",
                                                                                    "case_kind": "nonsense"}),
                     ("fly", {})):
        r = clerk.post(f"/caller/3/{op}", data=form, headers=h)
        assert r.status_code == 422, (op, form, r.status_code)
        assert "表单有误" in r.text
    assert len(web.monitor.on("hallq/web/req/+/window")) == sent
    # an operation the controller refuses comes back in words
    r = clerk.post("/caller/3/next", headers=h)
    assert r.status_code == 409 and "现在没有等候的号" in r.text


@pytest.mark.parametrize("nxt", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_no_open_redirect(web, nxt):
    c = web.http()
    page = c.get(f"/login?next={nxt}")
    token = re.search(r'name="login_csrf" value="([^"]+)"', page.text).group(1)
    r = c.post("/login", data={"name": "viewer", "password": "viewer-password-1", "login_csrf": token, "next": nxt})
    assert r.status_code == 303 and r.headers["location"].startswith("/") and not r.headers["location"].startswith("//")
