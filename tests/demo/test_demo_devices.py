"""Device roles joining the demo, and Ctrl-C stopping everything cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

from click.testing import CliRunner
from hallq.demo import cli as demo_cli
from hallq.shared.demo import DemoContext, DemoProcess
from harness import Monitor

# A stand-in device app: records the context it was started with, says when it is stopped with SIGTERM.
DEVICE = textwrap.dedent("""
    import os, signal, sys, time
    out = sys.argv[1]
    with open(out, "w") as f:
        f.write(os.environ.get("HALLQ_CLOCK", "") + "\\n")
    def bye(*_):
        with open(out, "a") as f:
            f.write("terminated\\n")
        sys.exit(0)
    signal.signal(signal.SIGTERM, bye)
    while True:
        time.sleep(0.1)
""")


def test_devices_start_with_the_context_replace_the_simulation_and_stop_with_sigterm(
        mosquitto, tmp_path, monkeypatch):
    seen: list[DemoContext] = []
    record = tmp_path / "device.txt"

    def fake_participants(ctx: DemoContext) -> list[DemoProcess]:
        seen.append(ctx)
        return [DemoProcess("stand-in", [sys.executable, "-c", DEVICE, str(record)], ("pad:1", "window:2"))]

    monkeypatch.setattr(demo_cli, "participants", fake_participants)
    report = tmp_path / "r.json"
    result = CliRunner().invoke(demo_cli.command, [
        "--headless", "--speed", "900", "--span", "09:00-09:30", "--seed", "3", "--broker", mosquitto.url,
        "--out", str(tmp_path / "out"), "--report", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output

    ctx = seen[0]
    assert ctx.hall == "demo" and ctx.broker == mosquitto.url and ctx.headless
    assert ctx.windows == (1, 2, 3, 4, 5, 6, 7, 8)
    assert ctx.secret_file.exists() and len(bytes.fromhex(ctx.secret_file.read_text().strip())) == 32
    lines = record.read_text().splitlines()
    assert lines[0] == ctx.env["HALLQ_CLOCK"] and lines[0].count(",") == 2
    assert lines[-1] == "terminated"

    doc = json.loads(report.read_text())
    assert doc["devices"] == ["stand-in"]
    windows = doc["controller"]["windows"]
    assert "2" not in windows or windows["2"].get("called", 0) == 0  # no simulated clerk at window 2
    assert windows["1"]["served"] > 0 and not windows["1"].get("ratings")  # a real pad rates at window 1
    assert sum(doc["controller"]["hall"]["ratings"].values()) == doc["simulated"]["rated"] > 0


def test_ctrl_c_stops_everything_cleanly(mosquitto, tmp_path):
    mon = Monitor(mosquitto.url, "hallq/demo/controller/status")
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hallq.shared.cli", "demo", "--headless", "--no-devices", "--speed", "60",
             "--broker", mosquitto.url, "--out", str(tmp_path / "out")],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())
        mon.wait_for("hallq/demo/controller/status", lambda m: m.payload == b"online", timeout=30)
        time.sleep(1.0)  # the simulated hall is at work
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 15
        assert proc.returncode == 0, err[-2000:]
        assert "stopping" in err
        # the controller was stopped with SIGTERM while the broker was still up: it said so
        mon.wait_for("hallq/demo/controller/status", lambda m: m.payload == b"stopped", timeout=5)
        assert "满意率" not in out  # no report for an interrupted day
    finally:
        if proc.poll() is None:
            proc.kill()
        mon.close()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def test_a_controller_that_dies_ends_the_demo_with_an_error(mosquitto, tmp_path):
    mon = Monitor(mosquitto.url, "hallq/demo/controller/status")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hallq.shared.cli", "demo", "--headless", "--no-devices", "--speed", "60",
         "--broker", mosquitto.url, "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        mon.wait_for("hallq/demo/controller/status", lambda m: m.payload == b"online", timeout=30)
        (controller,) = _children(proc.pid)  # the demo's only child: no devices
        os.kill(controller, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "the controller ended" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        mon.close()
