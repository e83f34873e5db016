"""The kiosk's staff-confirmation mode (issue 9 §5): on a kiosk with ``[staff]``, a priority that needs a document is
asked for only after the floor guide (导引员) picked it and typed their PIN; the take then goes on the ``staff``
channel. Pure core with explicit times; the PIN file and the ``hallq kiosk staff-pin`` tool for real."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from hallq.kiosk import core
from hallq.kiosk.cli import command
from hallq.kiosk.core import (
    CardRead,
    CheckStaffPin,
    Press,
    PrinterChecked,
    SendTake,
    Settings,
    StaffChecked,
    Tick,
)
from hallq.kiosk.idcard import CardIdentity
from hallq.kiosk.staff import StaffPins, line_for
from hallq.shared.schemas import CategoryInfo, HallConfig

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 23, 9, 30, tzinfo=TZ)
HALL = HallConfig(hall="demo", name="示范中心", timezone="Asia/Shanghai", windows=[],
                  categories=[CategoryInfo(code="A", name="社保医保", prefix="A")])
GUIDED = Settings(device="k", req_prefix="k", staff_priorities=("military", "disabled"), staff_lock_after=3,
                  staff_lock=timedelta(minutes=5))


def home(settings: Settings = GUIDED) -> core.State:
    s = core.initial(settings, T0)
    for ev in (core.ConfigChanged(HALL), core.ControllerStatus("online"), core.Link(True)):
        s, _ = core.handle(s, ev, T0)
    return s


def run(s: core.State, *events, at: datetime = T0):
    effects = []
    for ev in events:
        s, fx = core.handle(s, ev, at)
        effects += fx
    return s, effects


def pin(s: core.State, digits: str = "2468"):
    return run(s, *(Press("key", d) for d in digits))[0]


def test_staff_confirm_a_priority_and_the_take_goes_on_the_staff_channel():
    s, _ = run(home(), Press("staff"))
    assert s.screen == "staff"
    s = pin(run(s, Press("priority", "military"))[0])
    assert s.typing == "2468" and s.staff_choice == "military"
    s, fx = run(s, Press("confirm"))
    assert fx == [CheckStaffPin("2468")] and s.typing == "" and s.staff_checking  # the PIN is out of the state
    assert "2468" not in repr(fx[0]) and "2468" not in repr(s)  # nor in a log line made of them
    s, _ = run(s, Press("key", "1"))
    assert s.typing == ""  # no typing while the PIN is checked
    s, _ = run(s, StaffChecked("g7"))
    assert s.screen == "home" and s.staff_priority == "military" and s.staff_by == "g7"
    s, fx = run(s, Press("category", "A"), PrinterChecked(True, "ok"))
    req = next(e.request for e in fx if isinstance(e, SendTake))
    assert (req.channel, req.priority, req.person) == ("staff", "military", None)
    # answered: the confirmation is gone with the citizen
    s, _ = run(s, core.TakeAnswered(req.req, _ticket()))
    s, _ = run(s, Press("home"))
    assert s.staff_priority is None and s.screen == "home"


def _ticket():
    from hallq.shared.schemas import Ticket

    return Ticket(number="A001", category="A", priority="military", issued_at=T0, ahead=0, est_wait_min=0)


def test_a_confirmation_needs_a_priority_of_this_kiosk_and_a_whole_pin():
    s, _ = run(home(), Press("staff"), Press("priority", "pregnant"))  # not one this kiosk confirms
    assert s.staff_choice is None
    s = pin(s, "246")
    assert run(s, Press("confirm"))[1] == []  # no priority picked, PIN too short
    s = pin(run(s, Press("priority", "disabled"))[0], "8")
    s, fx = run(s, Press("confirm"))
    assert fx == [CheckStaffPin("2468")]
    s = pin(home(), "123456789")  # digits on home are nothing
    assert s.typing == ""


def test_a_kiosk_without_staff_has_no_staff_screen_and_a_card_cannot_interfere():
    plain = home(Settings(device="k", req_prefix="k"))
    assert run(plain, Press("staff"))[0].screen == "home"
    s, _ = run(home(), Press("staff"), Press("priority", "military"))
    card = CardIdentity("ab" * 32, "110***********1234", date(1990, 1, 1), "ga467")
    s2, _ = run(s, CardRead(card))
    assert s2 == s  # a swipe while staff are at the kiosk changes nothing


def test_wrong_pins_lock_the_staff_screen_for_a_while():
    s, _ = run(home(), Press("staff"), Press("priority", "military"))
    for i in range(2):
        s, _ = run(pin(s), Press("confirm"), StaffChecked(None))
        assert s.screen == "staff" and s.staff_wrong == i + 1 and s.staff_priority is None
    s, _ = run(pin(s), Press("confirm"), StaffChecked(None))
    assert s.screen == "error" and s.failure.kind == "staff_locked"
    assert s.staff_locked_until == T0 + timedelta(minutes=5)
    s, _ = run(s, Press("home"), Press("staff"), at=T0 + timedelta(minutes=4))
    assert s.screen == "error" and s.failure.kind == "staff_locked"
    s, _ = run(s, Press("home"), Press("staff"), at=T0 + timedelta(minutes=5, seconds=1))
    assert s.screen == "staff"


def test_an_answer_after_the_screen_was_left_confirms_nothing_and_idle_forgets():
    s, _ = run(home(), Press("staff"), Press("priority", "military"))
    s, _ = run(pin(s), Press("confirm"), Press("cancel"), StaffChecked("g7"))
    assert s.screen == "home" and s.staff_priority is None
    s, _ = run(home(), Press("staff"), Press("priority", "military"))
    s, _ = run(pin(s), Press("confirm"), StaffChecked("g7"))
    assert s.staff_priority == "military"
    s, _ = run(s, Tick(), at=T0 + GUIDED.idle_timeout + timedelta(seconds=1))
    assert s.screen == "home" and s.staff_priority is None  # the citizen walked away: the next one is not vouched


def test_pin_file_check_and_its_permissions(tmp_path):
    p = tmp_path / "staff-pins"
    p.write_text(line_for("g7", "2468") + "\n# a comment\n" + line_for("g8", "13579") + "\n")
    os.chmod(p, 0o600)
    pins = StaffPins.load(p)
    assert pins.check("2468") == "g7" and pins.check("13579") == "g8" and pins.check("0000") is None
    assert "2468" not in p.read_text()
    os.chmod(p, 0o644)
    with pytest.raises(ValueError, match="readable by others"):
        StaffPins.load(p)
    os.chmod(p, 0o600)
    p.write_text("g7:2468\n")
    with pytest.raises(ValueError, match="line 1"):
        StaffPins.load(p)
    with pytest.raises(ValueError, match="4-8 digits"):
        line_for("g1", "12ab")


def test_staff_pin_command_adds_and_replaces_a_guides_pin(tmp_path):
    p = tmp_path / "pins"
    r = CliRunner().invoke(command, ["staff-pin", "--file", str(p), "--staff", "g7"], input="2468\n2468\n")
    assert r.exit_code == 0, r.output
    assert (p.stat().st_mode & 0o777) == 0o600 and "2468" not in r.output
    r = CliRunner().invoke(command, ["staff-pin", "--file", str(p), "--staff", "g8"], input="1357\n1357\n")
    r = CliRunner().invoke(command, ["staff-pin", "--file", str(p), "--staff", "g7"], input="9999\n9999\n")
    assert r.exit_code == 0
    pins = StaffPins.load(p)
    assert pins.check("9999") == "g7" and pins.check("2468") is None and pins.check("1357") == "g8"
    bad = CliRunner().invoke(command, ["staff-pin", "--file", str(p), "--staff", "g9"], input="12\n12\n")
    assert bad.exit_code != 0 and "4-8 digits" in bad.output


def test_settings_from_the_kiosk_config(tmp_path):
    from hallq.kiosk.config import load
    from hallq.shared.config import ConfigError

    k = tmp_path / "kiosk.toml"
    base = (f'[kiosk]\nid = "kiosk-1"\nhall = "demo"\nsecret_key_file = "{tmp_path / "k"}"\n'
            f'[printer]\nurl = "file:{tmp_path / "p"}"\n')
    k.write_text(base + '[staff]\npriorities = ["military"]\npins_file = "/etc/hallq/staff-pins"\n')
    assert load(k).staff.priorities == ["military"]
    k.write_text(base + '[staff]\npriorities = ["appointment"]\npins_file = "x"\n')
    with pytest.raises(ConfigError):
        load(k)
    assert replace(GUIDED).staff_priorities == ("military", "disabled")
