"""The pad in the demo: its participant entry, and the `hallq pad` process it starts (headless, mock
pins) coming online on real Mosquitto and stopping cleanly on SIGTERM."""

from __future__ import annotations

import subprocess
import time
from importlib.metadata import entry_points

from hallq.rating_pad.config import load
from hallq.rating_pad.demo import participants
from hallq.shared.demo import DemoContext


def ctx(tmp_path, broker: str, headless: bool = True) -> DemoContext:
    return DemoContext(hall="demo", broker=broker, out_dir=tmp_path, headless=headless, windows=(1, 2, 3),
                       secret_file=tmp_path / "secret")


def test_the_pad_is_registered_for_the_demo():
    eps = {ep.name: ep.value for ep in entry_points(group="hallq.demo")}
    assert eps["pad"] == "hallq.rating_pad.demo:participants"


def test_a_window_with_a_screen_pictures_without(tmp_path):
    (p,) = participants(ctx(tmp_path, "mqtt://127.0.0.1:1883", headless=False))
    cfg = load(p.argv[p.argv.index("--config") + 1])
    assert cfg.screen is not None and cfg.screen.touch
    (p,) = participants(ctx(tmp_path, "mqtt://127.0.0.1:1883", headless=True))
    cfg = load(p.argv[p.argv.index("--config") + 1])
    assert cfg.screen is not None and cfg.screen.mode == "headless" and not cfg.screen.touch
    assert cfg.screen.screenshot_dir == str(tmp_path / "pad" / "screens")
    assert cfg.gpio.pin_factory == "mock"
    assert p.replaces == ("pad:1", "press:1") and "--demo-presses" in p.argv  # the simulated citizens press it


def test_the_demo_pad_comes_online_and_stops(mosquitto, monitor, tmp_path):
    (p,) = participants(ctx(tmp_path, mosquitto.url))
    proc = subprocess.Popen(p.argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        monitor.wait_for("hallq/demo/device/pad-1/status", lambda m: m.payload == b"online", timeout=20)
        shots = tmp_path / "pad" / "screens"
        deadline = time.monotonic() + 10
        while not list(shots.glob("pad-1-*-idle.png")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert list(shots.glob("pad-1-*-idle.png")), "the headless pad pictures its screen"
        proc.terminate()
        assert proc.wait(10) == 0
        monitor.wait_for("hallq/demo/device/pad-1/status", lambda m: m.payload == b"stopped", timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_hallq_pad_refuses_a_bad_config_naming_the_key(tmp_path):
    import sys

    bad = tmp_path / "pad.toml"
    bad.write_text('[pad]\nhall = "demo"\nwindow = 1\nbuttons = 5\n')
    r = subprocess.run([sys.executable, "-m", "hallq.shared.cli", "pad", "--config", str(bad)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    assert "buttons" in r.stderr
