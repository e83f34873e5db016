"""Fixtures of the dashboard tests: a whole hall with the dashboard, and Debian's chromium."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from browser import Browser, available
from dashkit import WebHall


@pytest.fixture
def web(tmp_path):
    h = WebHall(tmp_path)
    yield h
    h.close()


@pytest.fixture
def browser():
    why = available()
    if why:
        pytest.fail(why)
    b = Browser()
    yield b
    b.close()
