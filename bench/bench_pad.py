"""Rating pad benchmarks (issue 6).

- firmware size: every Pico W module compiled with mpy-cross, total .mpy bytes (target ≤ 32 KB; the
  umqtt.simple that mip installs is micropython-lib's, not counted);
- Pi pad memory: RSS of `hallq pad` without a screen, connected and idle (target ≤ 60 MB);
- press to accepted rating: from the button's pin going low (gpiozero MockFactory) to the controller's
  answer reaching the pad, through real Mosquitto and the real `hallq controller` process (target p95 ≤ 50 ms).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.figures import percentile

ROOT = Path(__file__).resolve().parents[1]
FIRMWARE = ROOT / "rating-pad" / "firmware"
BIN = Path(sys.executable).parent
RATINGS = 60

HALL = """
[hall]
id = "bench"
name = "评价器基准大厅"

[[categories]]
code = "A"
name = "社保医保"

[[windows]]
no = 1
name = "1号窗口"
categories = ["A"]
"""

PAD = """
[pad]
hall = "bench"
window = 1
journal = "{journal}"
thanks_seconds = 0.2
debounce_ms = 5

[gpio]
pin_factory = "mock"
"""


def firmware_size() -> dict:
    sizes = {}
    with tempfile.TemporaryDirectory() as d:
        for src in sorted(FIRMWARE.glob("*.py")):
            out = Path(d) / (src.stem + ".mpy")
            subprocess.run([str(BIN / "mpy-cross"), "-o", str(out), str(src)], check=True)
            sizes[out.name] = out.stat().st_size
    total = sum(sizes.values())
    return {"firmware_mpy_bytes": sizes, "firmware_mpy_total_kb": round(total / 1024, 1),
            "firmware_target_kb": 32, "firmware_ok": total <= 32 * 1024}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def pad_memory(broker_url: str, work: Path) -> dict:
    from harness import Monitor

    cfg = work / "pad-mem.toml"
    cfg.write_text(PAD.format(journal=work / "mem.jsonl").replace('window = 1', 'window = 1\nclient_id = "pad-mem"'))
    mon = Monitor(broker_url)
    proc = subprocess.Popen([str(BIN / "hallq"), "--log-level", "warning", "pad", "--config", str(cfg),
                             "--broker", broker_url], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        mon.wait_for("hallq/bench/device/pad-mem/status", lambda m: m.payload == b"online", timeout=30)
        time.sleep(2.0)
        rss = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        mon.close()
    return {"pad_rss_mb": round(rss, 1), "pad_rss_target_mb": 60, "pad_rss_ok": rss <= 60}


def press_to_accepted(broker_url: str, work: Path) -> dict:
    from hallq.rating_pad.app import PadApp
    from hallq.rating_pad.config import load
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import Case, Staff, TakeRequest, WindowRequest

    hall = work / "hall.toml"
    hall.write_text(HALL)
    ctl = subprocess.Popen([str(BIN / "hallq"), "--log-level", "warning", "controller", "--config", str(hall),
                            "--broker", broker_url, "--db", str(work / "hall.db")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    cfg_path = work / "pad.toml"
    cfg_path.write_text(PAD.format(journal=work / "ratings.jsonl"))
    cfg = load(cfg_path)
    app = PadApp(cfg, broker=broker_url)
    factory = app.gpio.factory
    invited: list[str] = []
    original = app._apply

    def record(effect: list) -> None:
        if effect[:2] == ["show", "invite"]:
            invited.append(effect[2]["ticket"])
        original(effect)

    app._apply = record
    kiosk = HallClient(broker_url, "bench", "kiosk-1").start()
    caller = HallClient(broker_url, "bench", "window-1").start()
    times: list[float] = []
    try:
        import threading

        app.start()
        threading.Thread(target=app.run, daemon=True).start()
        for c in (kiosk, caller, app.client):
            c.wait_connected(10)

        def op(name: str, **kw):
            return caller.request("window", WindowRequest(req=caller.new_req(), window=1, op=name, **kw), timeout=20)

        deadline = time.monotonic() + 30
        while True:  # the controller may still be starting
            try:
                op("open", staff=Staff(id="s01", name="王芳"))
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        pin = factory.pin(cfg.gpio.buttons[0])
        for i in range(RATINGS):
            kiosk.request("take", TakeRequest(req=kiosk.new_req(), category="A"), timeout=10)
            number = op("next").ticket.number
            op("done", case=Case(id=f"BENCH-{i:04d}", item_code="000101001000"))
            while number not in invited:
                time.sleep(0.001)
            time.sleep(0.02)
            before = app.accepted
            t0 = time.perf_counter()
            pin.drive_low()
            while app.accepted == before:
                time.sleep(0.0002)
            times.append((time.perf_counter() - t0) * 1000)
            pin.drive_high()
    finally:
        app.stop()
        kiosk.stop()
        caller.stop()
        ctl.terminate()
        ctl.wait(10)
    times.sort()
    p95 = percentile(times, 95)
    return {"press_to_accepted_ms": {"n": len(times), "p50": round(statistics.median(times), 1),
                                     "p95": round(p95, 1), "max": round(times[-1], 1)},
            "press_to_accepted_target_p95_ms": 50, "press_to_accepted_ok": p95 <= 50}


def run() -> dict:
    from harness import Mosquitto

    out = firmware_size()
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        broker = Mosquitto(work / "mosquitto").start()
        try:
            out.update(pad_memory(broker.url, work))
            out.update(press_to_accepted(broker.url, work))
        finally:
            broker.stop()
    return out
