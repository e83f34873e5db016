"""A rating across a simulated power loss: the pad process is SIGKILLed while its rating is on the way,
started again, and the rating reaches the real controller (through real Mosquitto) exactly once, with the
time it was pressed."""

from __future__ import annotations

import json
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from hallq.rating_pad import padjournal
from padkit import pad_toml

HERE = Path(__file__).resolve().parent


class PadProcess:
    def __init__(self, cfg: Path, broker: str):
        env = dict(os.environ, PYTHONUNBUFFERED="1", HALLQ_LOG_LEVEL="warning")
        self.proc = subprocess.Popen([sys.executable, str(HERE / "padproc.py"), str(cfg), broker],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True, env=env)
        self.effects: queue.Queue[list] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda e: e == ["started"], 20)

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.effects.put(json.loads(line))

    def wait_for(self, fits, timeout: float = 10.0) -> list:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("the pad did not show what the test waits for")
            try:
                e = self.effects.get(timeout=left)
            except queue.Empty:
                continue
            if fits(e):
                return e

    def press(self, level: int) -> None:
        self.proc.stdin.write(f"press {level}\n")
        self.proc.stdin.flush()

    def power_cut(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def invite_for(ticket: str):
    return lambda e: e[:2] == ["show", "invite"] and e[2]["ticket"] == ticket


def wait_pending(journal: Path, n: int, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = padjournal.Journal(str(journal)).pending
        if len(pending) == n:
            return pending
        time.sleep(0.05)
    raise AssertionError(f"the journal should hold {n} pending ratings")


def ratings(db: Path) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as c:
        return c.execute("SELECT ticket, level, at, case_id FROM ratings ORDER BY id").fetchall()


def test_a_rating_survives_a_power_cut_and_arrives_once(mosquitto, controller, clerk, monitor, proxy, tmp_path):
    cfg = pad_toml(tmp_path)
    journal = tmp_path / "ratings-1.jsonl"
    pad = PadProcess(cfg, proxy.url)
    try:
        # 1. killed mid-send: the request reached the controller, the answer never reached the pad
        t1 = clerk.serve("CASE-0001")
        pad.wait_for(invite_for(t1))
        proxy.mute_downstream = True
        pad.press(1)
        pad.wait_for(lambda e: e[0] == "rate")
        first = monitor.wait_for("hallq/padtest/req/pad-1/rate")
        monitor.wait_for("hallq/padtest/reply/pad-1")  # the controller counted it and answered
        pad.power_cut()
        (kept,) = padjournal.Journal(str(journal)).pending
        assert kept["ticket"] == t1 and kept["req"] == json.loads(first.payload)["req"]

        # power back: the same rating is sent again, with the same req, and answered with the first answer
        proxy.mute_downstream = False
        pad = PadProcess(cfg, proxy.url)
        wait_pending(journal, 0)
        assert len(ratings(controller.db)) == 1

        # 2. pressed while offline, then killed
        t2 = clerk.serve("CASE-0002")
        pad.wait_for(invite_for(t2))
        proxy.cut()  # the network goes; the broker and the controller stay
        pressed_at = datetime.now().astimezone()
        pad.press(4)
        pad.wait_for(lambda e: e[0] == "rate")
        wait_pending(journal, 1)
        pad.power_cut()
        assert all(json.loads(m.payload)["ticket"] == t1 for m in monitor.on("hallq/padtest/req/pad-1/rate"))

        # 3. power back, network back: it is sent from the journal and answered
        time.sleep(2.0)  # so that a time stamped at restart would differ from the time of the press
        pad = PadProcess(cfg, mosquitto.url)
        wait_pending(journal, 0, timeout=15)
    finally:
        pad.stop()

    rows = ratings(controller.db)
    assert [(r[0], r[1], r[3]) for r in rows] == [(t1, "satisfied", "CASE-0001"), (t2, "very_dissatisfied", "CASE-0002")]
    at2 = datetime.fromisoformat(rows[1][2])
    assert abs((at2 - pressed_at).total_seconds()) < 1.5, "the rating keeps the time it was pressed"
    sent = [json.loads(m.payload) for m in monitor.on("hallq/padtest/req/pad-1/rate")]
    by_ticket: dict[str, set[str]] = {}
    for s in sent:
        by_ticket.setdefault(s["ticket"], set()).add(s["req"])
    assert {k: len(v) for k, v in by_ticket.items()} == {t1: 1, t2: 1}, "each rating keeps one req"
    assert sum(1 for s in sent if s["ticket"] == t1) >= 2, "the first rating was sent again after the power cut"
