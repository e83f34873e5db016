"""The strict kiosk.toml and the technicians' tools."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner
from hallq.kiosk.cli import command
from hallq.kiosk.config import load
from hallq.shared.config import ConfigError
from kiosk_kit import ROOT, card_fields, make_id

NUMBER = make_id(date(1972, 8, 30))


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "kiosk.toml"
    p.write_text(text, encoding="utf-8")
    return p


BASE = '[kiosk]\nid = "kiosk-1"\nhall = "demo"\nsecret_key_file = "/k"\n[printer]\nurl = "file:/tmp/x"\n'


def test_the_example_config_is_valid():
    cfg = load(ROOT / "kiosk" / "examples" / "kiosk.toml")
    assert cfg.kiosk.id == "kiosk-1" and cfg.screen.font_index == 2 and len(cfg.readers) == 2


def test_defaults(tmp_path):
    cfg = load(write(tmp_path, BASE))
    assert (cfg.kiosk.language, cfg.kiosk.elderly_age, cfg.printer.chinese, cfg.screen.width) == ("zh", 65, "raster", 1920)


@pytest.mark.parametrize(("extra", "where"), [
    ("colour = 1\n", "colour"),
    ('[screen]\nmode = "vr"\n', "screen.mode"),
    ('[kiosk2]\n', "kiosk2"),
])
def test_unknown_or_bad_keys_are_refused_by_name(tmp_path, extra, where):
    with pytest.raises(ConfigError, match=where.split(".")[-1]):
        load(write(tmp_path, BASE.replace("[printer]", extra + "[printer]") if extra.startswith("colour") else BASE + extra))


@pytest.mark.parametrize(("old", "new", "where"), [
    ('id = "kiosk-1"', 'id = "Kiosk 1"', "kiosk.id"),
    ('hall = "demo"', 'hall = "Demo!"', "kiosk.hall"),
    ('url = "file:/tmp/x"', 'url = "lpt:1"', "printer.url"),
    ('id = "kiosk-1"', 'id = "kiosk-1"\nqr_url = "https://x/{ticket}"', "kiosk.qr_url"),
    ('id = "kiosk-1"', 'id = "kiosk-1"\nelderly_age = 7', "elderly_age"),
    ('id = "kiosk-1"', 'id = "kiosk-1"\nbroker = "http://x"', "broker"),
])
def test_bad_values_are_refused(tmp_path, old, new, where):
    with pytest.raises(ConfigError, match=where):
        load(write(tmp_path, BASE.replace(old, new)))


def test_bad_reader_url(tmp_path):
    with pytest.raises(ConfigError, match=r"readers\[0\]"):
        load(write(tmp_path, BASE + '[[readers]]\nurl = "bluetooth:x"\n'))


def test_hallq_kiosk_with_a_bad_config_says_why(tmp_path):
    p = write(tmp_path, BASE + "oops = 1\n")
    r = subprocess.run([sys.executable, "-m", "hallq.shared.cli", "kiosk", "--config", str(p), "--headless"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "oops" in r.stderr
    missing = write(tmp_path, BASE.replace('"/k"', f'"{tmp_path / "nokey"}"'))
    r = subprocess.run([sys.executable, "-m", "hallq.shared.cli", "kiosk", "--config", str(missing), "--headless"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "secret key file" in r.stderr


def test_test_print_to_a_file(tmp_path):
    out = tmp_path / "printer.bin"
    r = CliRunner().invoke(command, ["test-print", "--printer", f"file:{out}"])
    assert r.exit_code == 0, r.output
    assert "paper unknown" in r.output and b"\x1dv0" in out.read_bytes()
    r = CliRunner().invoke(command, ["test-print", "--printer", "serial:/dev/does-not-exist"])
    assert r.exit_code != 0 or "offline" in r.output


def test_test_reader_reads_one_card(sam):
    sam.card = NUMBER
    r = CliRunner().invoke(command, ["test-reader", "--id-reader", sam.url, "--timeout", "5"])
    assert r.exit_code == 0, r.output
    assert NUMBER[:3] + "*" * 11 + NUMBER[-4:] in r.output and NUMBER not in r.output
    assert "1972-08-30" in r.output and "check digit: valid" in r.output


def test_test_reader_says_when_the_check_digit_is_wrong(sam):
    bad = NUMBER[:-1] + ("0" if NUMBER[-1] != "0" else "1")
    sam.card = bad
    sam.card_text = card_fields(bad)
    r = CliRunner().invoke(command, ["test-reader", "--id-reader", sam.url, "--timeout", "5"])
    assert r.exit_code == 1 and "check digit: WRONG" in r.output and bad not in r.output


def test_test_reader_errors(sam, tmp_path):
    sam.silent = True
    r = CliRunner().invoke(command, ["test-reader", "--id-reader", sam.url, "--timeout", "1"])
    assert r.exit_code != 0 and "no answer" in r.output
    r = CliRunner().invoke(command, ["test-reader", "--id-reader", "evdev:/dev/input/none", "--timeout", "1"])
    assert r.exit_code != 0 and "cannot open the card reader" in r.output
    r = CliRunner().invoke(command, ["test-reader", "--id-reader", "bt:1"])
    assert r.exit_code != 0


@pytest.mark.parametrize("headless", [True, False])
def test_demo_participant(tmp_path, headless):
    from hallq.kiosk.demo import participants
    from hallq.shared.demo import DemoContext

    key = tmp_path / "hall.key"
    key.write_text("ab" * 32)
    ctx = DemoContext(hall="demo", broker="mqtt://127.0.0.1:1883", out_dir=tmp_path / "out", headless=headless,
                      windows=(1, 2), secret_file=key)
    [proc] = participants(ctx)
    cfg = load(tmp_path / "out" / "kiosk-1.toml")
    assert cfg.kiosk.hall == "demo" and cfg.printer.url.startswith("file:") and str(tmp_path) in cfg.printer.url
    assert cfg.screen.mode == ("headless" if headless else "window")
    assert proc.argv[1:5] == ["-m", "hallq.shared.cli", "kiosk", "--config"]
    assert ("--screenshot" in proc.argv) is headless


def test_printer_url_on_the_command_line_is_checked(tmp_path):
    p = write(tmp_path, BASE)
    r = subprocess.run([sys.executable, "-m", "hallq.shared.cli", "kiosk", "--config", str(p), "--headless",
                        "--printer", "lpt:1"], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "printer.url" in r.stderr
