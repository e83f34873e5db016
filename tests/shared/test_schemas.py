"""Every schema refuses bad payloads with a message naming the field; the protocol doc is current."""

from pathlib import Path

import msgspec
import pytest
from hallq.shared import schemas as s
from hallq.shared.protocol_doc import _entries, render
from hallq.shared.schemas import PayloadError, decode, encode

ROOT = Path(__file__).resolve().parents[2]

# One valid payload per schema that appears on a topic, from the documented examples.
EXAMPLES = [ex for e in _entries() for ex in e.examples if not isinstance(ex, str)]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_examples_round_trip(example):
    assert decode(encode(example), type(example)) == example


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_unknown_field_is_refused_by_name(example):
    data = msgspec.json.decode(encode(example))
    data["sneaky"] = 1
    with pytest.raises(PayloadError, match="sneaky"):
        decode(msgspec.json.encode(data), type(example))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_required_field_is_required_by_name(example):
    cls = type(example)
    data = msgspec.json.decode(encode(example))
    required = [f.encode_name for f in msgspec.structs.fields(cls) if f.required]
    assert required, cls
    for name in required:
        broken = {k: v for k, v in data.items() if k != name}
        with pytest.raises(PayloadError, match=f"`{name}`"):
            decode(msgspec.json.encode(broken), cls)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda e: type(e).__name__)
def test_mistyped_field_is_refused_by_name(example):
    cls = type(example)
    data = msgspec.json.decode(encode(example))
    for name, value in data.items():
        wrong = [1.5] if not isinstance(value, list) else {"x": 1}
        broken = {**data, name: wrong}
        with pytest.raises(PayloadError, match=rf"\$\.{name}"):
            decode(msgspec.json.encode(broken), cls)


@pytest.mark.parametrize(
    ("payload", "type_", "needle"),
    [
        (b"not json", s.TakeRequest, "not valid JSON"),
        (b"[1, 2]", s.TakeRequest, "Expected `object`"),
        (b'{"req": "", "category": "A"}', s.TakeRequest, "$.req"),
        (b'{"req": "' + b"x" * 65 + b'", "category": "A"}', s.TakeRequest, "$.req"),
        (b'{"req": "1", "category": "A", "priority": "vip"}', s.TakeRequest, "$.priority"),
        (b'{"req": "1", "category": "A", "person": "110101199003078515"}', s.TakeRequest, "$.person"),
        (b'{"req": "1", "window": 0, "op": "next"}', s.WindowRequest, "$.window"),
        (b'{"req": "1", "window": 1, "op": "dance"}', s.WindowRequest, "$.op"),
        (b'{"req": "1", "window": 1, "op": "open"}', s.WindowRequest, "staff"),
        (b'{"req": "1", "window": 1, "op": "transfer"}', s.WindowRequest, "to"),
        (b'{"req": "1", "window": 1, "op": "transfer", "to": {}}', s.WindowRequest, "exactly one"),
        (b'{"req": "1", "window": 1, "op": "transfer", "to": {"category": "A", "window": 2}}', s.WindowRequest,
         "exactly one"),
        (b'{"req": "1", "window": 1, "op": "next", "case": {"id": "1", "item_code": "2"}}', s.WindowRequest,
         "`case` is only for `done`"),
        (b'{"req": "1", "window": 1, "ticket": "a001", "level": "satisfied"}', s.RateRequest, "$.ticket"),
        (b'{"req": "1", "window": 1, "ticket": "A001", "level": "meh"}', s.RateRequest, "$.level"),
    ],
)
def test_bad_payloads_get_clear_messages(payload, type_, needle):
    with pytest.raises(PayloadError) as info:
        decode(payload, type_)
    assert needle in str(info.value)


def test_a_raw_id_number_cannot_pass_as_a_person_key():
    with pytest.raises(PayloadError, match="person"):
        decode(b'{"req": "1", "category": "A", "person": "11010119900307851X"}', s.TakeRequest)


def test_peek_req_reads_what_it_can():
    assert s.peek_req(b'{"req": "abc", "junk": 1}') == "abc"
    assert s.peek_req(b'{"req": 5}') is None
    assert s.peek_req(b"\xff\xfe") is None
    assert s.peek_req(b'"req"') is None


def test_protocol_doc_is_current():
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    assert text == render(), "docs/protocol.md is stale: run `make protocol-doc`"


def test_protocol_doc_covers_every_topic():
    text = render()
    for topic in ["req/{client}/take", "req/{client}/window", "req/{client}/rate", "reply/{client}",
                  "controller/status", "/config", "/queue", "window/{n}/state", "/calls", "/board", "/stats",
                  "device/{client}/status", "device/{client}/health"]:
        assert f"hallq/{{hall}}{'' if topic.startswith('/') else '/'}{topic}`" in text, topic


@pytest.mark.parametrize(
    "reply",
    [e for e in EXAMPLES if type(e).__name__.endswith("Reply")],
    ids=lambda e: type(e).__name__,
)
def test_every_answer_carries_ok_on_the_wire(reply):
    data = msgspec.json.decode(encode(reply))
    assert data["ok"] is (type(reply).__name__ != "ErrorReply")
    assert decode(encode(reply), type(reply)) == reply
