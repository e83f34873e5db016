"""``hallq demo --headless`` end to end: real Mosquitto, the real controller process, the simulated hall.

A short day (09:00-09:40, the morning peak) at high speed; the JSON report's figures must agree with what
the simulation did and with the seeded day itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hallq.controller import config
from hallq.demo.hall import shape_of
from hallq.demo.model import Rates, hhmm_to_s, simulate_visits

SAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "hall.toml"


def test_headless_demo_report_matches_the_simulated_day(mosquitto, tmp_path):
    out, report = tmp_path / "out", tmp_path / "r.json"
    seed = 4
    r = subprocess.run(
        [sys.executable, "-m", "hallq.shared.cli", "demo", "--headless", "--no-devices", "--speed", "900",
         "--span", "09:00-09:40", "--seed", str(seed), "--broker", mosquitto.url, "--out", str(out),
         "--report", str(report)],
        capture_output=True, text=True, timeout=90, env=os.environ | {"HALLQ_LOG_LEVEL": "info"},
    )
    assert r.returncode == 0, r.stderr[-3000:]
    doc = json.loads(report.read_text())

    expected = simulate_visits(shape_of(config.load(SAMPLE)), Rates(), seed=seed,
                               span=(hhmm_to_s("09:00"), hhmm_to_s("09:40")))
    sim, ctl = doc["simulated"], doc["controller"]["hall"]
    assert sim["visits"] == sim["arrived"] == len(expected) > 20
    assert sim["taken"] == len(expected) and not sim["refused"]
    assert sim["timeouts"] == 0 and not sim["errors"]
    # every ticket ended: served or a no-show
    assert sim["served"] + sim["noshow"] == sim["taken"]
    assert sim["noshow"] == sum(1 for v in expected if v.answers_after is None)
    assert sim["transferred"] == sum(1 for v in expected if v.transfer is not None)
    # the controller's record agrees
    assert ctl["issued"] == sim["taken"]
    assert ctl["called"] >= sim["called"] == sim["taken"]
    assert ctl["served"] == sim["served"]
    assert ctl["noshow"] == sim["noshow"]
    assert ctl.get("transferred", 0) == sim["transferred"]
    assert sum(ctl["ratings"].values()) == sim["rated"] > 0
    assert ctl["satisfaction"] == sim["satisfaction"]
    assert sim["rated"] == sum(1 for v in expected if v.rates and v.answers_after is not None)
    # the waits the simulation saw are the controller's (both from the controller's time stamps)
    assert abs(sim["wait_mean_min"] - ctl["wait_mean_min"]) < 0.5
    assert sim["est_mae_min"] is not None and sim["est_mae_min"] >= 0
    # and the report printed on the terminal shows the day
    assert "满意率" in r.stdout and f"{sim['taken']}" in r.stdout
    assert (out / "hall.db").exists()


def test_the_live_view_runs_the_day_and_ends_with_the_report(mosquitto, tmp_path):
    from click.testing import CliRunner
    from hallq.demo import cli as demo_cli

    result = CliRunner().invoke(demo_cli.command, [
        "--no-devices", "--speed", "900", "--span", "09:00-09:15", "--broker", mosquitto.url,
        "--out", str(tmp_path / "out")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "窗口 Windows" in out and "排队 Queues" in out and "最近叫号 Latest calls" in out  # the live view
    assert "王丽" in out  # a clerk signed in
    assert "全厅 hall" in out and "满意率" in out  # the controller's report
    assert "simulated:" in out
