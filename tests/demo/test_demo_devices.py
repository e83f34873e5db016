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
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
            # Ctrl-C as in a terminal: a suite started in the background (`make test &`) hands its children
            # SIGINT ignored, and a Python started that way never raises KeyboardInterrupt
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
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
        # the report of the day so far, on screen and kept (it was once lost with the terminal)
        assert "demo: stopped at " in out and "the report of the day so far" in out and "满意率" in out
        assert (tmp_path / "out" / "report.txt").read_text(encoding="utf-8").strip() == out.strip()
    finally:
        if proc.poll() is None:
            proc.kill()
        mon.close()


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(x) for x in f.read().split()]


def test_a_controller_that_dies_ends_the_demo_with_an_error(mosquitto, tmp_path):
    mon = Monitor(mosquitto.url, "hallq/demo/#")
    proc = subprocess.Popen(
        [sys.executable, "-m", "hallq.shared.cli", "demo", "--headless", "--no-devices", "--speed", "60",
         "--broker", mosquitto.url, "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        mon.wait_for("hallq/demo/controller/status", lambda m: m.payload == b"online", timeout=30)
        # the day has begun (the demo saw the controller online and its clerks sign in): then it dies
        mon.wait_for("hallq/demo/req/sim-window-1/window", timeout=30)
        (controller,) = _children(proc.pid)  # the demo's only child: no devices
        os.kill(controller, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 1
        assert "the controller ended" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        mon.close()


# Starts the command in argv[1:] after a few seconds: a device that is slow to start, as on a busy machine.
SLOW_START = "import os, sys, time; time.sleep(float(os.environ['SLOW_S'])); os.execv(sys.argv[1], sys.argv[1:])"


def test_the_real_pad_rates_and_the_province_takes_the_uploads(mosquitto, tmp_path, monkeypatch):
    """The demo's real pad once never rated (window 1 and its clerk had no ratings) and "uploads 0" always:
    now the simulated citizens press its mock buttons, and a local 好差评 stand-in takes the uploads.

    Every press asked is one rating of its case at its level: 2 of 47 were once lost when the pad came up
    after the day had begun (on a busy machine), so here the pad starts 4 s late and the day must wait."""
    from hallq.rating_pad.demo import participants as pad_participants

    def slow_pad(ctx: DemoContext) -> list[DemoProcess]:
        return [DemoProcess(p.name, [sys.executable, "-c", SLOW_START, *p.argv], p.replaces)
                for p in pad_participants(ctx)]

    monkeypatch.setattr(demo_cli, "participants", slow_pad)
    monkeypatch.setenv("SLOW_S", "4")
    report = tmp_path / "r.json"
    out = tmp_path / "out"
    result = CliRunner().invoke(demo_cli.command, [
        "--headless", "--speed", "400", "--span", "09:00-10:30", "--seed", "2", "--broker", mosquitto.url,
        "--out", str(out), "--report", str(report)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    doc = json.loads(report.read_text())
    assert doc["devices"] == ["pad-1"]
    pad_ratings = sum(doc["controller"]["windows"]["1"].get("ratings", {}).values())
    assert pad_ratings > 0 and doc["simulated"]["pad_presses"] == pad_ratings
    check = doc["pad"]
    assert check["lost"] == [] and check["other_level"] == [] and check["unasked"] == [], check
    assert check["asked"] == check["stored"] == check["rated_as_asked"] == pad_ratings
    n = pad_ratings
    assert f"presses asked {n}, 评价 ratings stored {n}, as pressed {n}." in result.output
    assert "丢失 lost" not in result.output
    clerk = next(f for k, f in doc["controller"]["staff"].items() if f["called"] == doc["controller"]["windows"]["1"]["called"])
    assert sum(clerk.get("ratings", {}).values()) == pad_ratings
    journal = [json.loads(line) for line in (out / "pad" / "ratings-1.jsonl").read_text().splitlines()]
    assert len({r["req"] for r in journal if "level" in r}) >= pad_ratings
    uploads = next(line for line in result.output.splitlines() if line.startswith("好差评上传"))
    sent = int(uploads.split("已上传 sent ")[1].split(",")[0])
    assert sent > 0, uploads
    assert "评价 " in result.output and "真实评价器 on the real pad (pad-1" in result.output


def test_each_run_starts_clean_and_the_same_seed_draws_the_same_citizens(mosquitto, tmp_path):
    out = tmp_path / "out"
    docs = []
    for _ in range(2):
        report = tmp_path / "r.json"
        result = CliRunner().invoke(demo_cli.command, [
            "--headless", "--no-devices", "--speed", "900", "--span", "09:00-09:30", "--seed", "5",
            "--broker", mosquitto.url, "--out", str(out), "--report", str(report)], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        docs.append(json.loads(report.read_text()))
        # logs were once appended across runs while hall.db was new: one run's log only
        assert (out / "logs" / "controller.log").read_text().count("INFO hallq.controller.cli: controller of hall") == 1
    a, b = (d["simulated"] for d in docs)
    for key in ("visits", "arrived", "taken", "refused"):
        assert a[key] == b[key], key
    assert docs[0]["controller"]["hall"]["issued"] == docs[1]["controller"]["hall"]["issued"] == a["taken"]


def test_a_folder_that_is_not_the_demos_is_not_emptied(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    result = CliRunner().invoke(demo_cli.command, ["--out", str(mine), "--no-devices"])
    assert result.exit_code == 1 and "not a demo output folder" in result.output
    assert (mine / "thesis.tex").read_text() == "years of work"
