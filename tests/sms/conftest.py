"""Fixtures of the SMS gateway tests: the modem emulator on a pty."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from modem_emulator import ModemEmulator


@pytest.fixture
def modem():
    m = ModemEmulator()
    yield m
    m.close()


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    p = tmp_path / "hall.key"
    p.write_bytes(os.urandom(32).hex().encode())
    p.chmod(0o600)
    return p
