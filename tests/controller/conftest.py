"""Fixtures of the controller tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from controller_kit import Hall


@pytest.fixture
def hall() -> Hall:
    return Hall().at("09:00")


@pytest.fixture
def system(mosquitto, tmp_path):
    """Mosquitto, the controller process (test hall with its devices) and a requester listening to the hall."""
    from controller_kit import HALL_TOML, SYSTEM_DEVICES, ControllerProc, Requester

    r = Requester(mosquitto.port)
    c = ControllerProc(tmp_path / "controller", mosquitto.url, HALL_TOML + SYSTEM_DEVICES).start()
    r.mon.wait_for("hallq/test/controller/status", lambda m: m.payload == b"online", timeout=15)
    yield c, r
    c.kill()
    r.close()
