"""Fixtures of the phone pages' tests: the dashboard's whole hall (tests/dashboard) with [follow]."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))


@pytest.fixture
def phone_hall(tmp_path):
    from dashkit import HALL_TOML, WebHall

    key = tmp_path / "follow.key"
    key.write_text(os.urandom(32).hex())
    key.chmod(0o600)
    toml = HALL_TOML + f"""
[follow]
url = "http://hall.lan/m/f/{{token}}"
key_file = "{key}"
take_client = "web-take"

[[devices]]
id = "web-take"
role = "kiosk"
"""
    h = WebHall(tmp_path, toml)
    h.follow_key = key.read_text()
    yield h
    h.close()


@pytest.fixture
def phone_browser():
    from browser import Browser, available

    why = available()
    if why:
        pytest.fail(why)
    b = Browser(size=(390, 844))  # a small phone
    yield b
    b.close()
