"""Opening hours: open or not at a moment, and the next opening (the kiosk's closed screen)."""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from hallq.shared.hours import is_open, next_opening

HOURS = [("09:00", "12:00"), ("14:00", "18:00")]
TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize("at,open_,nxt", [
    ("08:59", False, (23, 9)), ("09:00", True, (23, 14)), ("11:59", True, (23, 14)), ("12:00", False, (23, 14)),
    ("13:30", False, (23, 14)), ("17:59", True, (24, 9)), ("18:00", False, (24, 9)), ("23:59", False, (24, 9)),
])
def test_open_and_next_opening(at, open_, nxt):
    local = datetime(2026, 11, 23, int(at[:2]), int(at[3:]), tzinfo=TZ)
    assert is_open(HOURS, local) is open_
    assert next_opening(HOURS, local) == datetime(2026, 11, nxt[0], nxt[1], 0, tzinfo=TZ)


def test_no_hours_is_always_open_and_24_00_is_midnight():
    assert is_open([], time(3, 0)) and next_opening([], datetime(2026, 1, 1)) is None
    assert is_open([("00:00", "24:00")], time(23, 59, 59))
    assert not is_open([("08:00", "24:00")], time(7, 59))
