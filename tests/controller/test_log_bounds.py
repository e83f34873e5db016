"""Issue 9 §5: error messages and logs never copy unbounded input: a flood of bad requests from many client ids
leaves a log of bounded lines, with repeated warnings held back; answers truncate what they echo."""

from __future__ import annotations

import json
import time

from controller_kit import HALL_TOML, ControllerProc, Requester


def test_a_flood_of_bad_requests_leaves_a_short_readable_log(mosquitto, tmp_path):
    r = Requester(mosquitto.port)
    c = ControllerProc(tmp_path / "c", mosquitto.url, HALL_TOML).start()
    try:
        r.mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=30)
        huge = "x" * 100_000
        for i in range(300):  # 300 client ids, each with a payload that does not fit and echoes a huge field
            r.mon.client.publish(f"hallq/test/req/kiosk-{i}/take",
                                 json.dumps({"req": f"f{i}", "category": "A", huge[: 200 + i]: 1}), qos=1)
        rep = r.send("kiosk-x", "take", {"req": "last", "category": "A", "x" * 5000: 1}, timeout=30)
        assert rep["ok"] is False and rep["error"]["code"] == "bad_request"
        assert len(rep["error"]["message"]) <= 300  # the answer does not echo 5000 characters back
        time.sleep(0.5)
    finally:
        c.stop()
        r.close()
    lines = (tmp_path / "c" / "controller.log").read_text().splitlines()
    assert max(len(ln) for ln in lines) <= 1200
    bad = [ln for ln in lines if "does not fit the contract" in ln]
    assert 1 <= len(bad) <= 3, bad[:5]  # held back: at most one a minute from the same place
