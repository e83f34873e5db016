"""Arbitrary payloads on every request topic (hypothesis): the controller stays up, and answers
``bad_request`` wherever a ``req`` can be read from a payload that does not fit the contract."""

from __future__ import annotations

import itertools
import json

import pytest
from controller_kit import HALL_TOML, ControllerProc, Requester
from hallq.shared.schemas import REQUEST_TYPES, PayloadError, decode, peek_req
from harness import Mosquitto
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ACTIONS = ("take", "window", "rate")
_clients = itertools.count()


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    broker = Mosquitto(d / "mosquitto").start()
    r = Requester(broker.port)
    c = ControllerProc(d / "controller", broker.url, HALL_TOML).start()
    r.mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=15)
    yield c, r
    c.kill()
    r.close()
    broker.stop()


def check(running, action: str, payload: bytes) -> None:
    _, r = running
    client = f"fuzz-{next(_clients)}"  # a fresh client: no earlier answer to the same req
    req = peek_req(payload)
    if req is None:
        r.mon.publish(f"hallq/test/req/{client}/{action}", payload)
        return
    before = len(r.mon.messages)
    r.mon.publish(f"hallq/test/req/{client}/{action}", payload)
    answer = json.loads(r.wait_reply(client, req, timeout=5, after=before).payload)
    assert answer["req"] == req
    try:
        decode(payload, REQUEST_TYPES[action])
    except PayloadError:
        assert answer["ok"] is False and answer["error"]["code"] == "bad_request", answer
    else:
        assert isinstance(answer["ok"], bool)  # a fitting request gets a real answer, whatever it is


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
reqs = st.text(min_size=1, max_size=64).filter(lambda s: "\x00" not in s)
valid = {
    "take": st.fixed_dictionaries(
        {"req": reqs, "category": st.sampled_from(["A", "B", "C", "Z", "a-1"])},
        optional={"priority": st.sampled_from(["elderly", "disabled", "vip", ""]),
                  "channel": st.sampled_from(["touch", "idcard", "fax"]),
                  "person": st.sampled_from(["ab" * 16, "XYZ", "0" * 200]),
                  "appointment": st.sampled_from(["YY-2026-0001", "!"])},
    ),
    "window": st.fixed_dictionaries(
        {"req": reqs, "window": st.sampled_from([1, 2, 3, 0, 9, 1000, "1"]),
         "op": st.sampled_from(["next", "recall", "noshow", "transfer", "done", "pause", "resume", "open", "close",
                                "jump"])},
        optional={"staff": st.sampled_from([{"id": "s", "name": "甲"}, {"id": ""}, "x"]),
                  "to": st.sampled_from([{"category": "B"}, {"window": 2}, {"category": "B", "window": 2}, {}]),
                  "case": st.sampled_from([{"id": "c", "item_code": "i"}, {"id": "c"}, None])},
    ),
    "rate": st.fixed_dictionaries(
        {"req": reqs, "window": st.sampled_from([1, 2, -1]), "ticket": st.sampled_from(["A001", "a001", "A1", ""]),
         "level": st.sampled_from(["very_satisfied", "basic", "meh"])},
        optional={"at": st.sampled_from(["2026-03-02T09:00:00+08:00", "yesterday", 5])},
    ),
}


def near_valid(action: str):
    """Valid-looking objects with one thing broken: a field dropped, added, or of the wrong type."""

    def mutate(obj: dict, data) -> dict:
        obj = dict(obj)
        how = data.draw(st.sampled_from(["drop", "add", "retype", "keep"]))
        keys = sorted(obj)
        if how == "drop" and len(keys) > 1:
            obj.pop(data.draw(st.sampled_from([k for k in keys if k != "req"])))
        elif how == "add":
            obj[data.draw(st.text(min_size=1, max_size=8))] = data.draw(json_values)
        elif how == "retype":
            obj[data.draw(st.sampled_from(keys))] = data.draw(json_values)
        return obj

    return st.tuples(valid[action], st.data()).map(lambda t: mutate(t[0], t[1]))


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@SETTINGS
@given(action=st.sampled_from(ACTIONS), payload=st.binary(max_size=200))
def test_random_bytes(running, action, payload):
    check(running, action, payload)


@SETTINGS
@given(action=st.sampled_from(ACTIONS), value=json_values, req=st.one_of(reqs, json_values))
def test_random_json(running, action, value, req):
    obj = value if not isinstance(value, dict) else {**value, "req": req}
    check(running, action, json.dumps(obj).encode())


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_near_valid_objects(running, data):
    action = data.draw(st.sampled_from(ACTIONS))
    check(running, action, json.dumps(data.draw(near_valid(action))).encode())


def test_still_up_and_answering(running):
    c, r = running
    assert c.alive()
    rep = r.send("kiosk-9", "take", {"req": "last", "category": "B"})
    assert rep["ok"] is True
