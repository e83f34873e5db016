"""Fixtures of the call display tests: a headless screen's fonts, a quick clip pack, the real controller."""

from __future__ import annotations

import pytest
from call_display.kit import Controller, write_tone


@pytest.fixture(scope="session")
def screen():
    from hallq.shared.screen import open_screen

    return open_screen((320, 240), "headless")


@pytest.fixture(scope="session")
def fonts(screen):
    return screen.font


@pytest.fixture(scope="session")
def quick_pack(tmp_path_factory):
    """A clip pack of short tones (10 ms a clip), so announcements take a fraction of a second."""
    from hallq.call_display.voice import required_clips

    folder = tmp_path_factory.mktemp("quick-pack")
    for i, name in enumerate(required_clips(("zh", "en"))):
        write_tone(folder / f"{name}.wav", 0.01, 300 + 7 * i)
    return folder


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    c = Controller(tmp_path_factory.mktemp("hall")).start()
    yield c
    c.close()
