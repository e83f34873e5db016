"""Helpers of the call display tests: paths, a tone writer, a waiter, the real controller as a process."""

from __future__ import annotations

import math
import os
import struct
import subprocess
import time
import wave
from pathlib import Path

from harness import Monitor, Mosquitto

ROOT = Path(__file__).resolve().parents[2]
HALLQ = str(ROOT / ".venv" / "bin" / "hallq")


def write_tone(path: Path, seconds: float, freq: float, rate: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(rate * seconds)
    data = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * i / rate))) for i in range(n))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data)


def wait_until(predicate, timeout: float = 5.0, step: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"condition not met within {timeout} s")


class Controller:
    """The real hall controller (``hallq controller``) as a process, on a Mosquitto of its own."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.broker = Mosquitto(workdir / "mosquitto").start()
        self.db = workdir / "hall.db"
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "controller.log"

    @property
    def url(self) -> str:
        return self.broker.url

    def start(self) -> Controller:
        self.proc = subprocess.Popen(
            [HALLQ, "controller", "--config", str(ROOT / "controller/examples/hall.toml"), "--broker", self.url,
             "--db", str(self.db)],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "ab"),  # noqa: SIM115
            # a weekday morning inside the sample hall's opening hours, whatever the time of the test
            env={**os.environ, "PYTHONUNBUFFERED": "1", "HALLQ_CLOCK": f"2026-11-23T10:00:00+08:00,1,{time.time()}"},
        )
        m = Monitor(self.url, "hallq/demo/controller/status")
        try:
            m.wait_for("hallq/demo/controller/status", lambda msg: msg.payload == b"online", timeout=20)
        except TimeoutError:
            raise AssertionError(f"the controller did not come online:\n{self.log.read_text()[-2000:]}") from None
        finally:
            m.close()
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None

    def close(self) -> None:
        self.stop()
        self.broker.stop()
