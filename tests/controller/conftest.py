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
