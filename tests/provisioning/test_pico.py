"""`hallq provision pico`: a Pico W pad's pad.json and the hall's CA, written through mpremote and read back
(mpremote and the board are played by tests/provisioning/fakeboard/mpremote: a folder is the board's file
system), and the firmware itself logging in over TLS with them to the secure broker (under CPython, with
the doubles of tests/rating_pad/pico)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import time as _time
from pathlib import Path

import pytest
from hallq.provisioning.files import ProvisionError
from hallq.provisioning.pico import pad_files
from provkit import make_keyring

HERE = Path(__file__).resolve().parent
HALLQ = str(Path(sys.executable).parent / "hallq")
FIRMWARE = HERE.parents[1] / "rating-pad" / "firmware"
PICO_FAKES = HERE.parent / "rating_pad" / "pico"


class MicroTime:
    """MicroPython's ``time`` on CPython (what the firmware calls of it)."""

    def ticks_ms(self) -> int:
        return _time.monotonic_ns() // 1_000_000

    def ticks_diff(self, a: int, b: int) -> int:
        return a - b

    def sleep_ms(self, ms: int) -> None:
        _time.sleep(ms / 1000)

    def time(self) -> int:
        return int(_time.time())

    gmtime = staticmethod(_time.gmtime)


def run_pico(kr, board: Path, psk: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    path = f"{HERE / 'fakeboard'}:{Path(sys.executable).parent}:{os.environ['PATH']}"
    return subprocess.run([HALLQ, "provision", "pico", "pad-1", "--keyring", str(kr.path), "--port", str(board),
                           "--wifi-ssid", "hall-devices", "--wifi-psk-file", str(psk), *extra],
                          capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": path, **(env or {})})


def test_pad_json_carries_the_identity_and_tls(keyring):
    files = pad_files(keyring, "pad-1", ssid="hall-devices", psk="correct horse", buttons=[2, 3, 4, 5, 6],
                      leds=[16, 17, 18, 19, 20])
    cfg = json.loads(files["pad.json"])
    port = keyring.inventory().broker.port
    assert cfg | {"mqtt_password": "x"} == {
        "ssid": "hall-devices", "password": "correct horse", "broker": "127.0.0.1", "port": port, "hall": "t1",
        "client": "pad-1", "window": 1, "buttons": [2, 3, 4, 5, 6], "leds": [16, 17, 18, 19, 20], "user": "pad-1",
        "mqtt_password": "x", "ca": "ca.der", "utc_offset_min": 480}
    assert cfg["mqtt_password"] == keyring.password("pad-1")
    assert files["ca.der"][:1] == b"\x30"  # DER
    with pytest.raises(ProvisionError, match="kiosk device"):
        pad_files(keyring, "kiosk-1", ssid="x", psk="12345678", buttons=[1, 2, 3, 4, 5], leds=[])
    with pytest.raises(ProvisionError, match="five GPIO"):
        pad_files(keyring, "pad-1", ssid="x", psk="12345678", buttons=[1, 2], leds=[])
    with pytest.raises(ProvisionError, match="8 to 63"):
        pad_files(keyring, "pad-1", ssid="x", psk="short", buttons=[1, 2, 3, 4, 5], leds=[])


def test_pico_writes_verifies_and_installs_the_firmware_once(keyring, tmp_path):
    board = tmp_path / "board"
    board.mkdir()
    psk = tmp_path / "psk"
    psk.write_text("correct horse\n")
    p = run_pico(keyring, board, psk)
    assert p.returncode == 0, p.stderr
    assert "pad-1 has the firmware, pad.json and ca.der" in p.stdout
    assert {"padcore.mpy", "padjournal.mpy", "picopad.mpy", "main.py", "pad.json", "ca.der"} <= \
        {x.name for x in board.iterdir()}
    want = pad_files(keyring, "pad-1", ssid="hall-devices", psk="correct horse", buttons=[2, 3, 4, 5, 6],
                     leds=[16, 17, 18, 19, 20])
    assert (board / "pad.json").read_bytes() == want["pad.json"]
    assert (board / "ca.der").read_bytes() == want["ca.der"]
    assert keyring.password("pad-1") not in p.stdout + p.stderr
    # again: the firmware is there, only the identity is written
    (board / "picopad.mpy").write_bytes(b"mine")
    p = run_pico(keyring, board, psk, "--leds", "")
    assert p.returncode == 0 and "has pad.json" in p.stdout
    assert (board / "picopad.mpy").read_bytes() == b"mine"
    assert json.loads((board / "pad.json").read_text())["leds"] == []
    # a copy that does not read back right leaves the pad's old pad.json as it was
    before = (board / "pad.json").read_bytes()
    p = run_pico(keyring, board, psk, env={"FAKEBOARD_CORRUPT": "pad.json"})
    assert p.returncode == 1 and "did not read back the same" in p.stderr
    assert (board / "pad.json").read_bytes() == before and not (board / "pad.json.new").exists()
    # no board there
    p = run_pico(keyring, tmp_path / "nothing", psk)
    assert p.returncode == 1 and "failed" in p.stderr


def test_the_firmware_logs_in_over_tls_with_what_pico_wrote(hall, tmp_path, monkeypatch):
    files = pad_files(hall.kr, "pad-1", ssid="hall-devices", psk="correct horse", buttons=[2, 3, 4, 5, 6], leds=[])
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    spy = hall.controller()
    spy.subscribe("hallq/t1/device/pad-1/status")
    names = ("machine", "network", "ntptime", "umqtt", "umqtt.simple", "picopad", "padcore", "padjournal")
    for n in names:
        sys.modules.pop(n, None)
    monkeypatch.syspath_prepend(str(FIRMWARE))
    monkeypatch.syspath_prepend(str(PICO_FAKES))
    monkeypatch.chdir(tmp_path)
    try:
        picopad = importlib.import_module("picopad")
        monkeypatch.setattr(picopad, "time", MicroTime())
        pad = picopad.PicoPad(picopad.load_config())
        pad.set_time = lambda: None
        pad.time_known = True
        pad.connect()
        assert spy.wait(lambda: [m for m in spy.got("hallq/t1/device/pad-1/status") if m.payload == b"online"], 10)
        pad.mqtt.sock.close()
        # another hall's CA: the pad does not trust the broker and never logs in
        other = make_keyring(tmp_path, hall="other")
        (tmp_path / "ca.der").write_bytes(pad_files(other, "pad-1", ssid="x", psk="12345678", buttons=[1, 2, 3, 4, 5],
                                                    leds=[])["ca.der"])
        with pytest.raises(Exception):  # noqa: B017 (paho raises the ssl module's verification error)
            picopad.PicoPad(picopad.load_config()).connect()
    finally:
        for n in names:
            sys.modules.pop(n, None)
    time.sleep(0.1)
