"""``hallq demo``'s finger on the real pad (``--demo-presses``): a simulated citizen's press is made on the
mock pins only while the pad invites that citizen's case, never on the next citizen's invitation; and a
press the pad ignores says so in its log.

The finger once pressed after a fixed 0.45 s from the invitation, from a thread of its own: at demo speeds
the next service can end sooner, and the press then rated the next case at the first citizen's level (the
next citizen's own press fell on the thank-you and was lost)."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

from gpiozero.pins.mock import MockFactory, MockPWMPin
from hallq.rating_pad import app as pad_app
from hallq.rating_pad.app import PadApp
from hallq.rating_pad.config import load
from hallq.shared.mqtt import Message
from hallq.shared.schemas import Case, DemoPress, Staff, TakeRequest, encode
from padkit import pad_toml, wait_until


def ws(ticket: str | None, called_at: str = "2026-11-23T09:00:00+08:00") -> dict:
    state: dict = {"window": 1, "status": "serving" if ticket else "idle", "staff": {"id": "s07", "name": "李娜"}}
    if ticket:
        state["ticket"] = {"number": ticket, "category": "A", "called_at": called_at}
    return state


def told(app: PadApp, ticket: str, level: str) -> None:
    app._on_demo_press(Message("hallq/padtest/demo/pad/1/press", encode(DemoPress(ticket=ticket, level=level)), False))


def test_the_finger_presses_only_while_its_case_is_invited(tmp_path, caplog):
    """Step by step on the pad loop's own calls: the next service ends before the first citizen has read
    the invitation; the first citizen's press is then not made (and the log says so), the second's is."""
    caplog.set_level(logging.INFO, logger="hallq.rating_pad.app")
    app = PadApp(load(pad_toml(tmp_path)), broker="mqtt://127.0.0.1:1", demo_presses=True,
                 pin_factory=MockFactory(pin_class=MockPWMPin))
    try:
        told(app, "A001", "very_satisfied")
        told(app, "A002", "dissatisfied")
        app.step(["state", ws("A001")])
        app.step(["state", ws("A002", "2026-11-23T09:05:00+08:00")])  # A001's service ended: invited
        app._demo_finger()
        assert app.journal.pending == []  # still reading
        app.step(["state", ws("A003", "2026-11-23T09:06:00+08:00")])  # A002's ended first: A002 invited
        time.sleep(pad_app.DEMO_READ_S + 0.05)
        app._demo_finger()
        assert [(r["ticket"], r["level"]) for r in app.journal.pending] == [("A002", "dissatisfied")]
        assert app.state["mode"] == "thanks"
        time.sleep(pad_app.DEMO_HOLD_S + 0.05)
        app._demo_finger()  # lets go
        assert not app.gpio.buttons[3].is_pressed
        assert "the citizen of A001 did not press very_satisfied in time: the pad invites A002 now" in caplog.text
        told(app, "A001", "satisfied")  # too late: A001's invitation is over, nothing is kept to press
        assert "the citizen of A001 was told to press satisfied after the pad's invitation for it ended" in caplog.text
        assert app._presses == {}
        # a press during the thank-you: ignored, and the log says so (not a warning: citizens do this)
        caplog.clear()
        app.gpio.factory.pin(app.cfg.gpio.buttons[0]).drive_low()
        while not app.events.empty():
            app.step(app.events.get_nowait())
        ignored = [r for r in caplog.records if "pad ignored" in r.getMessage()]
        assert [r.levelname for r in ignored] == ["INFO"], caplog.text
        assert "the thank-you for A002 shows" in ignored[0].getMessage()
        assert len(app.journal.pending) == 1
    finally:
        app.stop()


def test_quick_services_on_the_real_pad_are_each_rated_at_their_own_level(mosquitto, controller, clerk, tmp_path,
                                                                          caplog):
    """The real pad loop, controller and Mosquitto: three citizens told their choices as the demo tells
    them (before `done`, on the clerk's connection), the first two services ending milliseconds apart. Every
    rating stored is at the level its own citizen chose; the second and third are stored; the first is
    either stored at its own level or, when the next invitation came before it was read, logged as not
    pressed. (The old finger rated A002 at A001's level and lost A002's own press.)"""
    caplog.set_level(logging.INFO, logger="hallq.rating_pad.app")
    cfg = load(pad_toml(tmp_path))
    app = PadApp(cfg, broker=mosquitto.url, demo_presses=True, pin_factory=MockFactory(pin_class=MockPWMPin))
    app.start()
    assert app.client.wait_connected(10)
    loop = threading.Thread(target=app.run, daemon=True)
    loop.start()
    try:
        c = clerk.caller
        clerk.op("open", staff=Staff(id="s07", name="李娜"))
        for _ in range(3):
            clerk.kiosk.request("take", TakeRequest(req=clerk.kiosk.new_req(), category="A"), timeout=10)
        wait_until(lambda: app.state["clerk"] == "李娜", timeout=15, what="the pad to see the window open")
        chosen = {}

        def serve(level: str, then_wait: float) -> None:
            number = clerk.op("next").ticket.number
            chosen[number] = level
            time.sleep(then_wait)
            c.publish(c.topics.demo_press(1), DemoPress(ticket=number, level=level))
            clerk.op("done", case=Case(id=f"c-{number}", item_code="000101001000", item_name="参保登记",
                                       kind="instant"))

        serve("very_satisfied", 0.3)
        serve("dissatisfied", 0.0)  # ends right after the first: its invitation replaces the first's at once
        serve("basic", 1.0)
        clerk.op("close")
        db = tmp_path / "hall.db"

        def stored() -> dict[str, str]:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return dict(conn.execute("SELECT ticket, level FROM ratings"))

        a, b, d = chosen
        wait_until(lambda: {b, d} <= set(stored()) and not app.pending, timeout=15, what="the ratings of the last two")
        time.sleep(0.5)
        got = stored()
        assert {t: lv for t, lv in got.items() if lv != chosen[t]} == {}, (got, chosen)
        assert got[b] == "dissatisfied" and got[d] == "basic"
        if a not in got:
            assert f"the citizen of {a} did not press very_satisfied in time" in caplog.text
    finally:
        app.stop()
        loop.join(5)
