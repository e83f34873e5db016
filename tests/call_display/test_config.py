"""display.toml is strict; the example parses; the demo writes configs that parse; the command refuses bad input."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from call_display.kit import HALLQ, ROOT
from hallq.call_display import config, demo
from hallq.call_display.config import ClipVoice, ConfigError, FrameLed, ModbusLed, SerialVoice
from hallq.shared.demo import DemoContext

BASE = '[display]\nhall = "demo"\n'


def test_the_example_parses():
    cfg = config.load(ROOT / "call-display/examples/display.toml")
    assert cfg.display.hall == "demo" and isinstance(cfg.voice, ClipVoice) and cfg.caller is None


@pytest.mark.parametrize("text,where", [
    (BASE + "colour = 1\n", "unknown field `colour`"),
    ('[display]\nhall = "Demo Hall"\n', "hall id"),
    (BASE + 'mode = "window"\n', "display.window is needed"),
    (BASE + "size = [10, 10]\n", "display.size"),
    (BASE + '[voice]\nbackend = "clips"\n', "voice: Object missing required field `pack`"),
    (BASE + '[voice]\nbackend = "festival"\npack = "x"\n', "voice"),
    (BASE + '[led]\nprotocol = "frame"\nport = "loop://"\nheader = "zz"\n', "led.header"),
    (BASE + '[led]\nprotocol = "frame"\nport = "loop://"\nchecksum = "md5"\n', "led.checksum"),
    (BASE + '[led]\nprotocol = "modbus"\nport = "loop://"\naddress = 0\n', "led.address"),
    (BASE + '[caller]\n', "exactly one of [caller.gpio] or [caller.keypad]"),
    (BASE + '[caller.gpio]\nbuttons = { fly = "GPIO5" }\n', "caller.gpio.buttons"),
    (BASE + '[caller.keypad]\ndevice = "/dev/input/x"\nkeys = { kp1 = "next" }\n', "caller.keypad.keys"),
    (BASE + '[caller]\ntransfer_to = { category = "B", window = 3 }\n[caller.gpio]\nbuttons = {}\n',
     "transfer_to needs exactly one"),
])
def test_bad_configs_name_the_key(text, where):
    with pytest.raises(ConfigError) as exc:
        config.parse(text)
    assert where in str(exc.value)


def test_tagged_sections_and_client_ids():
    cfg = config.parse(BASE + '[voice]\nbackend = "syn6288"\nport = "/dev/ttyUSB1"\n'
                              '[led]\nprotocol = "modbus"\nport = "/dev/ttyUSB0"\nregisters = 16\n')
    assert isinstance(cfg.voice, SerialVoice) and isinstance(cfg.led, ModbusLed) and cfg.led.registers == 16
    assert cfg.client_id == "display-hall"
    w = config.parse(BASE + 'mode = "window"\nwindow = 3\n[led]\nprotocol = "frame"\nport = "loop://"\n')
    assert isinstance(w.led, FrameLed) and w.client_id == "display-window-3"
    c = config.parse(BASE + 'mode = "window"\nwindow = 3\n[caller.gpio]\nbuttons = { next = "GPIO5" }\n')
    assert c.client_id == "window-3"


def test_the_command_refuses_a_bad_config(tmp_path):
    p = tmp_path / "display.toml"
    p.write_text(BASE + "colour = 1\n")
    res = subprocess.run([HALLQ, "display", "--config", str(p), "--headless"], capture_output=True, text=True,
                         timeout=30)
    assert res.returncode != 0 and "colour" in res.stderr
    res = subprocess.run([HALLQ, "display", "--config", str(p.with_name("missing.toml"))], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode != 0 and "cannot read" in res.stderr


@pytest.mark.parametrize("headless,sound", [(True, False), (False, True)])
def test_demo_participants(tmp_path, headless, sound):
    ctx = DemoContext(hall="demo", broker="mqtt://127.0.0.1:1883", out_dir=tmp_path, headless=headless,
                      windows=(1, 2, 3), secret_file=tmp_path / "hall.key", sound=sound)
    procs = demo.participants(ctx)
    assert [p.name for p in procs] == ["display-hall", "display-window-1"]
    for p in procs:
        cfg_path = Path(p.argv[p.argv.index("--config") + 1])
        cfg = config.load(cfg_path)
        assert cfg.display.screen == ("headless" if headless else "window")
        assert ("--screenshot" in p.argv) == headless and p.replaces == ()
    hall = config.load(tmp_path / "display-hall.toml")
    assert (hall.voice is not None) == sound and hall.display.mode == "hall"
    assert config.load(tmp_path / "display-window-1.toml").display.window == 1
    assert demo.participants(DemoContext(hall="demo", broker="mqtt://x", out_dir=tmp_path, headless=True,
                                         windows=(), secret_file=tmp_path / "k")) == []


@pytest.mark.parametrize("section,message", [
    ('[led]\nprotocol = "frame"\nport = "/dev/ttyNOPE9"\n', "ttyNOPE9"),
    ('[voice]\nbackend = "clips"\npack = "/nonexistent/pack"\n', "not a folder"),
])
def test_missing_hardware_stops_start_up_with_a_clear_error(tmp_path, section, message):
    p = tmp_path / "display.toml"
    p.write_text(BASE + 'broker = "mqtt://127.0.0.1:9"\nscreen = "headless"\n' + section)
    res = subprocess.run([HALLQ, "display", "--config", str(p)], capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and message in res.stderr and "Traceback" not in res.stderr
