"""The demo's stand-in for the province's 好差评 interface: it checks records like a province, keeps one per
key, and is busy once or refuses for a few keys chosen from the seed (the same ones every run)."""

from __future__ import annotations

import json

import httpx
from hallq.demo.province import Province


def body(key: str, **over) -> bytes:
    rec = {"idempotencyKey": key, "projectNo": "20261130-01-A001", "taskCode": "X", "satisfaction": "1",
           "assessTime": "20261130T093000", "pf": "5", "areaCode": "320312", "assessNumber": 1, "windowNo": "1",
           "ticket": "A001"}
    rec.update(over)
    return json.dumps(rec).encode()


def test_accepts_once_and_answers_a_repeat_as_a_duplicate():
    p = Province(seed=1)
    keys = [f"hallq-demo-20261130-A{i:03d}" for i in range(200)]
    answers = {k: p.answer(k, body(k)) for k in keys}
    busy = [k for k, (st, _) in answers.items() if st == 503]
    refused = [k for k, (st, _) in answers.items() if st == 400]
    assert 0 < len(busy) < 30 and 0 < len(refused) < 20
    for k in busy:  # busy once: the retry is taken
        assert p.answer(k, body(k)) == (200, {"code": 0, "msg": "成功 / ok", "duplicate": False})
    for k in refused:
        assert "办件编号不存在" in p.answer(k, body(k))[1]["msg"]
    ok = next(k for k, (st, _) in answers.items() if st == 200)
    assert p.answer(ok, body(ok))[1]["duplicate"] is True
    again = Province(seed=1)
    assert [k for k in keys if again.answer(k, body(k))[0] == 503] == busy  # the same seed, the same ones


def test_refuses_what_a_province_would():
    p = Province(seed=1)
    k = "hallq-demo-20261130-B001"
    assert p.answer("other-key", body(k))[0] == 400
    assert "projectNo" in p.answer(k, body(k, projectNo=""))[1]["msg"]
    assert "satisfaction" in p.answer(k, body(k, satisfaction="9"))[1]["msg"]
    assert "assessTime" in p.answer(k, body(k, assessTime="2026-11-30 09:30"))[1]["msg"]
    assert p.answer(k, b"{not json")[0] == 400


def test_over_http():
    p = Province(seed=3).start()
    try:
        k = "hallq-demo-20261130-C001"
        r = httpx.post(p.url, content=body(k), headers={"Idempotency-Key": k})
        assert r.status_code in (200, 400, 503) and "code" in r.json()
        assert httpx.post(p.url.replace("evaluation", "nothing"), content=b"{}").status_code == 404
    finally:
        p.stop()
