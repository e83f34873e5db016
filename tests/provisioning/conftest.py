"""Fixtures of the provisioning tests: a keyring made by `init` and its secure Mosquitto."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hallq.provisioning.local import LocalBroker
from provkit import Hall, make_keyring


@pytest.fixture
def keyring(tmp_path):
    return make_keyring(tmp_path)


@pytest.fixture
def hall(keyring, tmp_path):
    broker = LocalBroker(keyring.path, tmp_path / "mosquitto").start()
    h = Hall(keyring, broker)
    yield h
    h.close()
    broker.stop()
