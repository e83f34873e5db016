"""The hall config: strict, cross-checked, every error names the key; the public ``config`` payload."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from controller_kit import HALL_TOML
from hallq.controller import config
from hallq.shared.config import ConfigError
from hallq.shared.schemas import HallConfig, encode

EXAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "hall.toml"


def test_example_hall_loads():
    cfg = config.load(EXAMPLE)
    assert len(cfg.categories) == 6 and len(cfg.windows) == 8
    assert cfg.window(7).categories == [c.code for c in cfg.categories]  # 综合窗口: "*"
    assert cfg.dispatch.priority_lead_min == 90
    pub = msgspec.json.decode(encode(cfg.public()), type=HallConfig)
    assert pub.hall == "demo" and pub.hours == [("09:00", "12:00"), ("14:00", "18:00")]
    assert pub.categories[0].prefix == "A" and pub.notices


def test_defaults():
    cfg = config.parse(HALL_TOML.replace("[dispatch]\npriority_lead_min = 15\n", ""))
    assert cfg.hall.timezone == "Asia/Shanghai" and cfg.dispatch.priority_lead_min == 90
    assert cfg.devices is None and cfg.category("C").ticket_prefix == "H"


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (("[hall]\n", "[hall]\ncolour = 1\n"), "hall: Object contains unknown field `colour`"),
        (('id = "test"', 'id = "Test Hall"'), "hall.id"),
        (('hours = [["09:00", "12:00"]', 'hours = [["9:00", "12:00"]'), "hall.hours[0][0]"),
        (('hours = [["09:00", "12:00"]', 'hours = [["12:00", "09:00"]'), "hall.hours[0]: 12:00–09:00"),
        (('["14:00", "18:00"]', '["11:00", "18:00"]'), "hall.hours[1]: 11:00–18:00 overlaps"),
        (('name = "测试政务服务中心"', 'name = "x"\ntimezone = "Mars/Olympus"'), "hall.timezone: unknown time zone"),
        (('daily_quota = 5', 'daily_quota = 0'), "categories[0].daily_quota"),
        (('daily_quota = 5', 'daily_quota = 1000'), "categories[0].daily_quota"),
        (('code = "B"', 'code = "A"'), "categories[1].code: 'A' is already categories[0]"),
        (('prefix = "H"', 'prefix = "A"'), "categories[2].prefix: 'A' is already"),
        (('prefix = "H"', 'prefix = "h"'), "categories[2].prefix"),
        (('prefix = "H"\n', ''), None),  # code "C" is a fine prefix
        (('categories = ["A"]', 'categories = ["A", "Q"]'), "windows[0].categories[1]: unknown category 'Q'"),
        (('categories = ["A"]', 'categories = []'), "windows[0].categories"),
        (('categories = ["A"]', 'categories = ["A", "A"]'), "windows[0].categories[1]: 'A' is listed twice"),
        (('categories = ["*"]', 'categories = ["*", "A"]'), "windows[2].categories"),
        (('no = 2', 'no = 1'), "windows[1].no: window 1 is already windows[0]"),
        (("priority_lead_min = 15", "priority_lead_min = -1"), "dispatch.priority_lead_min"),
        (("priority_lead_min = 15", "priority_lead_min = 15\nmode = 1"), "dispatch: Object contains unknown field"),
        (("[dispatch]", '[[devices]]\nid = "k1"\nrole = "printer"\n[dispatch]'), "devices[0].role"),
        (("[dispatch]", '[[devices]]\nid = "c1"\nrole = "window"\n[dispatch]'), "devices[0].window: a window device needs"),
        (("[dispatch]", '[[devices]]\nid = "c1"\nrole = "pad"\nwindow = 9\n[dispatch]'), "devices[0].window: unknown window 9"),
        (("[dispatch]", '[[devices]]\nid = "k1"\nrole = "kiosk"\nwindow = 1\n[dispatch]'), "devices[0].window: only"),
        (("[dispatch]", '[[devices]]\nid = "k1"\nrole = "kiosk"\n[[devices]]\nid = "k1"\nrole = "kiosk"\n[dispatch]'),
         "devices[1].id: 'k1' is already devices[0]"),
    ],
)
def test_bad_config_names_the_key(change, needle):
    text = HALL_TOML.replace(*change, 1)
    assert text != HALL_TOML
    if needle is None:
        config.parse(text)
        return
    with pytest.raises(ConfigError) as info:
        config.parse(text, source="hall.toml")
    assert str(info.value).startswith("hall.toml: ")
    assert needle in str(info.value)


def test_a_category_no_window_serves():
    text = HALL_TOML.replace('categories = ["*"]', 'categories = ["A"]')
    with pytest.raises(ConfigError, match=r"categories\[2\]: no window serves category 'C'"):
        config.parse(text)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "nope.toml")
