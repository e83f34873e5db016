"""The devices registry (pure): listed devices, status, health, version, last seen; bad messages change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hallq.controller.devices import MAX_UNLISTED, Registry
from hallq.shared.inventory import DeviceEntry
from hallq.shared.schemas import DeviceHealth, PayloadError, encode

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai"))
LISTED = [DeviceEntry(id="kiosk-1", role="kiosk"), DeviceEntry(id="pad-3", role="pad", window=3),
          DeviceEntry(id="display-hall", role="display", mode="hall")]


def states(reg: Registry) -> dict[str, tuple]:
    return {d.id: (d.status, d.version, d.last_seen, d.listed) for d in reg.snapshot(T0).devices}


def test_every_listed_device_is_there_never_seen_at_first():
    reg = Registry(LISTED)
    snap = reg.snapshot(T0)
    assert [(d.id, d.role, d.window, d.status) for d in snap.devices] == [
        ("display-hall", "display", None, "never_seen"), ("kiosk-1", "kiosk", None, "never_seen"),
        ("pad-3", "pad", 3, "never_seen")]


def test_status_and_health_with_the_version_and_when_last_seen():
    reg = Registry(LISTED)
    h = DeviceHealth(at=T0, role="kiosk", errors=["paper near end"], version="0.2.0")
    assert reg.health("kiosk-1", encode(h), T0)
    assert states(reg)["kiosk-1"] == ("online", "0.2.0", T0, True)
    reg.status("kiosk-1", b"stopped", T0 + timedelta(minutes=5))
    assert states(reg)["kiosk-1"] == ("stopped", "0.2.0", T0 + timedelta(minutes=5), True)
    reg.status("kiosk-1", b"offline", T0 + timedelta(minutes=6))
    assert states(reg)["kiosk-1"][0] == "offline"
    snap = {d.id: d for d in reg.snapshot(T0).devices}
    assert snap["kiosk-1"].health.errors == ["paper near end"]


def test_bad_messages_change_nothing():
    reg = Registry(LISTED)
    before = reg.snapshot(T0)
    with pytest.raises(ValueError):
        reg.status("kiosk-1", b"hacked", T0)
    with pytest.raises(PayloadError):
        reg.health("kiosk-1", b'{"at": "never"}', T0)
    with pytest.raises(PayloadError):
        reg.health("kiosk-1", b"\xff\xfe", T0)
    assert reg.snapshot(T0) == before


def test_unlisted_devices_are_shown_but_bounded():
    reg = Registry(LISTED)
    reg.status("stranger", b"online", T0)
    assert states(reg)["stranger"] == ("online", None, T0, False)
    for i in range(MAX_UNLISTED + 50):
        reg.status(f"x-{i}", b"online", T0)
    assert sum(1 for d in reg.snapshot(T0).devices if not d.listed) == MAX_UNLISTED
    assert reg.ignored == 51
    # listed ones come first
    assert [d.listed for d in reg.snapshot(T0).devices][:3] == [True, True, True]


# -- device events (migration 9): what goes into the record ----------------------------------------------------
def _events(reg: Registry) -> list[tuple]:
    return [(e.device, e.status, e.problems, e.change) for e in reg.take_events()]


def test_each_change_of_status_or_hardware_is_one_event_and_repeats_are_none():
    from hallq.shared.schemas import PrinterHealth, ReaderHealth

    reg = Registry(LISTED)
    reg.status("kiosk-1", b"online", T0)
    ok = DeviceHealth(at=T0, role="kiosk", printer=PrinterHealth(online=True, paper="ok"),
                      readers=[ReaderHealth(name="idcard", online=True)])
    reg.health("kiosk-1", encode(ok), T0)  # nothing wrong: no change
    reg.health("kiosk-1", encode(ok), T0 + timedelta(seconds=30))  # the same again
    out = DeviceHealth(at=T0, role="kiosk", printer=PrinterHealth(online=True, paper="out"),
                       readers=[ReaderHealth(name="idcard", online=False)], errors=["cutter jammed"])
    reg.health("kiosk-1", encode(out), T0 + timedelta(minutes=1))
    reg.health("kiosk-1", encode(out), T0 + timedelta(minutes=2))
    reg.status("kiosk-1", b"offline", T0 + timedelta(minutes=3))
    reg.status("kiosk-1", b"offline", T0 + timedelta(minutes=4))
    assert _events(reg) == [
        ("kiosk-1", "online", (), "status"),
        ("kiosk-1", "online", ("paper_out", "reader_offline:idcard", "cutter jammed"), "health"),
        ("kiosk-1", "offline", ("paper_out", "reader_offline:idcard", "cutter jammed"), "status")]
    assert _events(reg) == []  # taken


def test_a_restart_that_sees_the_recorded_state_again_records_nothing():
    recorded = {"kiosk-1": ("online", ("paper_near_end",)), "pad-3": ("offline", ())}
    reg = Registry(LISTED, recorded)
    from hallq.shared.schemas import PrinterHealth

    near_end = DeviceHealth(at=T0, role="kiosk", printer=PrinterHealth(online=True, paper="near_end"))
    reg.health("kiosk-1", encode(near_end), T0)  # retained health before the retained status: same as recorded
    reg.status("kiosk-1", b"online", T0)
    # pad-3's retained health comes before its retained (Last Will) `offline`: no made-up `online` in between
    reg.health("pad-3", encode(DeviceHealth(at=T0, role="pad")), T0)
    reg.status("pad-3", b"offline", T0)
    assert _events(reg) == []
    reg.status("pad-3", b"online", T0 + timedelta(minutes=1))
    assert _events(reg) == [("pad-3", "online", (), "status")]


def test_a_flapping_device_is_bounded_per_day():
    from hallq.controller.devices import MAX_EVENTS_PER_DAY

    reg = Registry(LISTED)
    for i in range(MAX_EVENTS_PER_DAY + 40):
        reg.status("pad-3", b"online" if i % 2 == 0 else b"offline", T0 + timedelta(seconds=i))
    assert len(reg.take_events()) == MAX_EVENTS_PER_DAY and reg.events_dropped == 40
    reg.status("pad-3", b"online" if (MAX_EVENTS_PER_DAY + 40) % 2 == 0 else b"offline", T0 + timedelta(days=1))
    assert len(reg.take_events()) == 1  # a new day
