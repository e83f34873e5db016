"""Fixtures of the rating pad tests (the helpers are in padkit.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from padkit import Clerk, ControllerRunner, TcpProxy


@pytest.fixture
def controller(mosquitto, tmp_path) -> Iterator[ControllerRunner]:
    runner = ControllerRunner(mosquitto.url, tmp_path / "hall.db")
    runner.start()
    yield runner
    runner.stop()


@pytest.fixture
def clerk(mosquitto, controller) -> Iterator[Clerk]:
    c = Clerk(mosquitto.url)
    yield c
    c.close()


@pytest.fixture
def proxy(mosquitto) -> Iterator[TcpProxy]:
    p = TcpProxy(mosquitto.port)
    yield p
    p.close()
