"""Fixtures of the kiosk tests."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from kiosk_kit import Controller, FakeSam


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    p = tmp_path / "hall.key"
    p.write_bytes(os.urandom(32).hex().encode())
    return p


@pytest.fixture
def sam():
    s = FakeSam()
    yield s
    s.close()


@pytest.fixture
def controller(tmp_path, mosquitto):
    (tmp_path / "controller").mkdir()
    c = Controller(tmp_path / "controller", mosquitto.url).start()
    yield c
    c.stop()
