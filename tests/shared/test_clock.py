"""The demo's shared scaled clock (``HALLQ_CLOCK``), and its start on "go" (issue 13: two runs with the same
seed were different days because the clock ran while a busy machine started the processes)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from hallq.shared import clock as hclock

START = datetime.fromisoformat("2026-12-01T08:58:00+08:00")


def test_a_clock_waiting_for_go_stands_at_the_start_then_runs_from_it(tmp_path):
    go = tmp_path / "go"
    c = hclock.scaled(START, 600, "Asia/Shanghai", go_file=str(go))
    other = hclock.from_env("Asia/Shanghai", {hclock.ENV: c.to_env()})  # another process, the same clock
    assert c.to_env().endswith(f",@{go}")
    time.sleep(0.2)
    assert c.now() == START and other.now() == START  # however long the processes take to start
    hclock.go(go, time.time() + 0.3)
    assert other.now() == START  # go is in 0.3 s: it does not step back before it
    time.sleep(0.5)
    for clk in (c, other):
        ran = clk.now() - START
        assert timedelta(seconds=0.15 * 600) < ran < timedelta(seconds=5 * 600), ran


def test_the_numeric_anchor_is_unchanged():
    anchor = time.time()
    c = hclock.from_env("Asia/Shanghai", {hclock.ENV: f"{START.isoformat()},60,{anchor}"})
    assert c.go_file is None and timedelta(0) <= c.now() - START < timedelta(minutes=5)
