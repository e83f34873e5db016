"""The simulated hall's set-up: which clients it uses, what real devices take over, person keys."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from hallq.controller import config
from hallq.demo.hall import shape_of
from hallq.demo.hallsim import SimHall, person_key
from hallq.shared.clock import scaled
from hallq.shared.schemas import TakeRequest

SAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "hall.toml"
MIDNIGHT = datetime(2024, 6, 3, tzinfo=ZoneInfo("Asia/Shanghai"))


def sim(cfg, replaces=()):
    shape = shape_of(cfg)
    return SimHall(broker="mqtt://127.0.0.1:1", cfg=cfg, shape=shape, visits=[], clock=scaled(MIDNIGHT, 100),
                   midnight=MIDNIGHT, replaces=set(replaces), secret=b"k" * 32)


def test_own_client_ids_and_what_real_devices_replace():
    s = sim(config.load(SAMPLE), replaces=("pad:1", "window:2", "display:hall"))
    assert s.kiosk_ids == ["sim-kiosk-1", "sim-kiosk-2"]
    assert sorted(s.clerk_ids) == [1, 3, 4, 5, 6, 7, 8]  # a real clerk app works window 2
    assert sorted(s.pad_ids) == [2, 3, 4, 5, 6, 7, 8]  # a real pad rates at window 1
    assert s.clerk_ids[3] == "sim-window-3" and s.pad_ids[3] == "sim-pad-3"


def test_a_hall_that_lists_its_devices_gets_requests_only_from_them():
    text = SAMPLE.read_text(encoding="utf-8") + (
        '\n[[devices]]\nid = "k1"\nrole = "kiosk"\n'
        '\n[[devices]]\nid = "w1"\nrole = "window"\nwindow = 1\n'
        '\n[[devices]]\nid = "p1"\nrole = "pad"\nwindow = 1\n'
        '\n[[devices]]\nid = "w3"\nrole = "window"\nwindow = 3\n'
    )
    s = sim(config.parse(text))
    assert s.kiosk_ids == ["k1"]
    assert s.clerk_ids == {1: "w1", 3: "w3"}
    assert s.pad_ids == {1: "p1"}


def test_person_keys_are_opaque_stable_and_fit_the_contract():
    a = person_key(b"secret", 7, 1)
    assert a == person_key(b"secret", 7, 1) != person_key(b"secret", 8, 1) != person_key(b"other", 7, 1)
    TakeRequest(req="1", category="A", person=a)  # the schema's pattern accepts it
    assert len(a) == 64
