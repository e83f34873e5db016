"""The hall the power-cut bench provisions (``imagekit.provision_hall(quotas=False)``) must answer every take of a
30-cut run: no window calls anyone there, so every ticket stays waiting. The sample hall's daily quotas (650 a
day) ended one run at cut 11, and the kiosk's cap on waiting tickets (1,000) ended the next one at cut 12: every
later take was refused and those cuts proved nothing about answered tickets. Driven through the controller's
pure core with the same config text the bench writes."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import msgspec
from hallq.controller import config, core
from hallq.shared.schemas import TakeRequest
from imagekit import hall_toml_all_day

DEVICES = '\n[broker]\nhost = "127.0.0.1"\nport = 8883\n\n[[devices]]\nid = "kiosk-1"\nrole = "kiosk"\n'
TAKES = 1_100  # past the default 1,000 waiting tickets per kiosk and past B's, D's and F's 150 a day


def _takes(toml: str) -> list[dict]:
    cfg = config.parse(toml)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=ZoneInfo(cfg.hall.timezone))
    state = core.new_state(cfg, now)
    answers = []
    for i in range(TAKES):
        now += timedelta(seconds=0.2)  # the kiosk's 10 requests a second, as the bench's taker sends at most
        state, fx = core.handle(state, core.Request("kiosk-1", TakeRequest(req=f"r{i}", category="ABCDEF"[i % 6])),
                                now)
        answers.append(msgspec.json.decode(fx.reply[1]))
    return answers


def test_the_power_cut_hall_answers_every_take_of_a_long_run():
    answers = _takes(hall_toml_all_day(quotas=False) + DEVICES)
    refused = [a["error"]["code"] for a in answers if not a["ok"]]
    assert not refused, f"{len(refused)} of {TAKES} takes refused: {sorted(set(refused))}"
    numbers = [a["ticket"]["number"] for a in answers]
    assert len(set(numbers)) == TAKES


def test_the_sample_hall_with_its_quotas_refuses_such_a_run():
    """The same run against the hall as the boot tests use it: the caps the bench lifts are there."""
    answers = _takes(hall_toml_all_day(quotas=True) + DEVICES)
    assert "quota_full" in {a["error"]["code"] for a in answers if not a["ok"]}
