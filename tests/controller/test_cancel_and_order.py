"""Cancelling a ticket by its holder (the SMS gateway's 取消) and the queue's call order (its 三人 notice)."""

from __future__ import annotations

from controller_kit import HALL_TOML, Hall, code, number
from hallq.controller import core
from hallq.shared.schemas import CancelRequest

P1, P2 = "a" * 64, "b" * 64


def cancel(hall: Hall, ticket: str, person: str, client: str = "sms-1") -> dict:
    return hall.send(client, CancelRequest(req=hall.req(), ticket=ticket, person=person))


def order(hall: Hall, category: str = "A") -> list[str]:
    return core.queue_state(hall.state, hall.now).categories[category].order


def test_the_holder_cancels_a_waiting_ticket(hall):
    a1 = number(hall.take("A", client="sms-1", channel="sms", person=P1))
    a2 = number(hall.take("A"))
    r = cancel(hall, a1, P1)
    assert r["ok"] and r["ticket"]["number"] == a1 and r["ticket"]["status"] == "cancelled"
    assert "queue" in hall.last.changed and order(hall) == [a2]
    assert hall.state.tickets[a1].status == "cancelled"
    # the same phone may take again, and nobody calls the cancelled ticket
    assert number(hall.take("A", person=P1)) == "A003"
    hall.op(1, "open")
    assert hall.op(1, "next")["ticket"]["number"] == a2


def test_only_the_holder_and_only_while_it_waits(hall):
    a1 = number(hall.take("A", person=P1))
    before = order(hall)
    assert code(cancel(hall, a1, P2)) == "no_ticket"  # someone else's
    assert code(cancel(hall, "A999", P1)) == "no_ticket"  # no such ticket
    a2 = number(hall.take("A"))
    assert code(cancel(hall, a2, P1)) == "no_ticket"  # a ticket without a person key
    assert order(hall) == [*before, a2]
    hall.op(1, "open")
    hall.op(1, "next")  # a1 is called
    assert code(cancel(hall, a1, P1)) == "no_ticket"
    assert hall.state.tickets[a1].status == "called"


def test_a_repeated_cancel_gets_its_first_answer(hall):
    a1 = number(hall.take("A", person=P1))
    req = CancelRequest(req="c1", ticket=a1, person=P1)
    first = hall.send("sms-1", req)
    assert hall.send("sms-1", req) == first and first["ok"]


def test_only_kiosks_and_the_sms_gateway_may_cancel():
    toml = HALL_TOML + """
[[devices]]
id = "sms-1"
role = "sms"

[[devices]]
id = "window-1"
role = "window"
window = 1
"""
    hall = Hall(toml).at("09:00")
    a1 = number(hall.take("A", client="sms-1", person=P1))
    assert code(cancel(hall, a1, P1, client="window-1")) == "not_allowed"
    assert cancel(hall, a1, P1, client="sms-1")["ok"]


def test_the_order_is_the_call_order_and_each_index_is_ahead(hall):
    takes = [hall.take("A"), hall.take("A", priority="elderly"), hall.take("A"), hall.take("B"),
             hall.take("A", priority="disabled")]
    o = order(hall)
    assert sorted(o) == sorted(number(t) for t in takes if t["ticket"]["category"] == "A")
    assert o[:2] == ["A002", "A004"]  # priority tickets taken within the lead go first
    for n in o:  # each index is how many go before it by the rules, as things stand
        assert o.index(n) == core.ahead_of(hall.state, hall.state.tickets[n]), (o, n)
    hall.op(1, "open")
    called = []
    while order(hall):
        called.append(order(hall)[0])
        assert hall.op(1, "next")["ticket"]["number"] == called[-1]
    assert sorted(called) == sorted(o)


def test_with_follow_pages_every_ticket_carries_its_token():
    from hallq.controller import config
    from hallq.shared.follow import token

    toml = HALL_TOML + '\n[follow]\nurl = "http://10.0.0.2:8080/f/{token}"\nkey_file = "/etc/hallq/follow.key"\n'
    hall = Hall(toml).at("09:00")
    hall.state.follow_key = b"k" * 32  # the app loads it from key_file
    t = hall.take("A")["ticket"]
    assert t["follow"] == token(b"k" * 32, "test", hall.now.date(), t["number"])
    assert config.parse(toml).public().follow_url == "http://10.0.0.2:8080/f/{token}"
    assert "follow" not in Hall().at("09:00").take("A")["ticket"]  # no [follow]: no token
