"""Fixtures shared by every test: real brokers and a hall monitor."""

from __future__ import annotations

import os

import pytest
from harness import Amqtt, Monitor, Mosquitto

# SDL's dummy drivers for every pygame test: no screen, no sound device needed.
os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


@pytest.fixture
def mosquitto(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto").start()
    yield broker
    broker.stop()


@pytest.fixture(params=["mosquitto", "amqtt"])
def any_broker(request, tmp_path):
    """Each contract test runs against real Mosquitto and against the embedded broker."""
    broker = (Mosquitto(tmp_path / "mosquitto") if request.param == "mosquitto" else Amqtt()).start()
    yield broker
    broker.stop()


@pytest.fixture
def monitor(mosquitto):
    m = Monitor(mosquitto.url)
    yield m
    m.close()
