"""Helpers of the call display tests: paths, a tone writer, a waiter, the real controller as a process."""

from __future__ import annotations

import math
import struct
import time
import wave
from pathlib import Path

from harness import ControllerProcess, Mosquitto

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


class Controller(ControllerProcess):
    """The real hall controller (``hallq controller``) as a process, on a Mosquitto of its own."""

    def __init__(self, workdir: Path):
        self.broker = Mosquitto(workdir / "mosquitto").start()
        # a weekday morning inside the sample hall's opening hours, whatever the time of the test
        super().__init__(workdir, self.broker.url, ROOT / "controller/examples/hall.toml",
                         clock="2026-11-23T10:00:00+08:00", hall="demo")

    def start(self) -> Controller:
        super().start(wait_online=True)
        return self

    def close(self) -> None:
        self.stop()
        self.broker.stop()
