"""Call displays (issue 5): call to frame, call to announcement, memory.

A real Mosquitto on loopback; the hall screen runs as its own process (``hallq display --headless``, SDL's
dummy video and audio drivers, voice from a clip pack made with espeak-ng) and writes its trace (call
received, first frame that shows it, announcement start; wall-clock times). This process plays the
controller's part: it publishes the retained hall state once, then ``calls`` messages built from the
shared schemas, noting the time just before each publish.

- **frame**: from publishing a ``calls`` message to the flipped frame that shows it as the newest call;
  120 calls, one every 150 ms (faster than any hall), at 1920×1080. Target p95 ≤ 100 ms.
- **announcement** (measured first): from publishing a ``calls`` message to the mixer starting the
  announcement, with the voice idle (a call waits its turn behind one being spoken: that is the queue
  doing its job, not latency); 6 calls, each after the previous announcement ended. Target ≤ 300 ms
  (max and p95 reported).
- **idle CPU** (reported, no target): one core's share the hall screen takes with only the clock and the
  scrolling line moving (20 frames a second, the line redrawn alone between whole frames).
- **memory**: the display process's peak RSS (VmHWM) after both, the voice's clips loaded and the frame
  caches warm. Target ≤ 150 MB.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
HALLQ = str(ROOT / ".venv" / "bin" / "hallq")
TZ = timezone(timedelta(hours=8))

FRAME_CALLS = 120
FRAME_GAP = 0.15
ANNOUNCE_CALLS = 6


def _hall_state(pub, topics) -> None:
    from hallq.shared.schemas import (
        Board,
        CategoryInfo,
        CategoryQueue,
        Figures,
        HallConfig,
        QueueState,
        Staff,
        Stats,
        WindowInfo,
        WindowState,
    )

    now = datetime.now(TZ)
    cats = [("A", "社保医保"), ("B", "不动产登记"), ("C", "户籍办理"), ("D", "市场监管"), ("E", "税务"), ("F", "公积金")]
    cfg = HallConfig(
        hall="bench", name="示范县政务服务中心", name_en="Demo County Government Service Center",
        timezone="Asia/Shanghai", hours=[("09:00", "12:00"), ("14:00", "18:00")],
        categories=[CategoryInfo(code=c, name=n, prefix=c) for c, n in cats],
        windows=[WindowInfo(no=n, name=f"{n}号窗口", categories=[cats[(n - 1) % 6][0]]) for n in range(1, 9)],
        notices=["请携带本人身份证原件办理业务", "过号请重新取号"],
    )
    msgs = [
        (topics.config, cfg),
        (topics.queue, QueueState(at=now, categories={c: CategoryQueue(waiting=5, est_wait_min=10) for c, _ in cats})),
        (topics.board, Board(calls=[])),
        (topics.stats, Stats(date=now.date().isoformat(), at=now, hall=Figures(issued=0), quiet_half_hours=["11:30"])),
    ]
    for n in range(1, 9):
        msgs.append((topics.window_state(n), WindowState(window=n, status="idle", staff=Staff(id=f"s{n}", name="李娜"))))
    for topic, payload in msgs:
        pub.publish(topic, payload, retain=True).wait_for_publish(5)
    pub.publish(topics.controller_status, "online", retain=True).wait_for_publish(5)


def _call(i: int):
    from hallq.shared.schemas import Call

    window = i % 8 + 1
    cat = "ABCDEF"[(window - 1) % 6]
    return Call(ticket=f"{cat}{i % 1000:03d}", category=cat, window=window, window_name=f"{window}号窗口",
                at=datetime.now(TZ))


def _rss(pid: int) -> dict[str, float]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            k, v = line.split(":")
            out[k] = int(v.split()[0]) / 1024
    return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _trace(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_for(path: Path, pred, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for e in _trace(path):
            if pred(e):
                return e
        time.sleep(0.02)
    raise TimeoutError(f"no trace event fitting the benchmark in {path} within {timeout} s")


def run() -> dict:
    from hallq.call_display.voice import make_pack
    from hallq.shared.mqtt import HallClient
    from harness import Mosquitto

    results: dict = {
        "targets": {"call_to_frame_p95_ms": 100, "call_to_announcement_ms": 300, "rss_mb": 150},
    }
    with tempfile.TemporaryDirectory(prefix="bench-display-") as tmp_s:
        tmp = Path(tmp_s)
        pack = make_pack(tmp / "pack", languages=("zh",))
        broker = Mosquitto(tmp / "mosquitto").start()
        pub = HallClient(broker.url, "bench", "bench-controller", auto_online=False).start()
        proc = None
        try:
            assert pub.wait_connected(10)
            _hall_state(pub, pub.topics)
            cfg = tmp / "display.toml"
            cfg.write_text(
                f'[display]\nhall = "bench"\nbroker = "{broker.url}"\nscreen = "headless"\nsize = [1920, 1080]\n'
                f'fps = 20\nflash_seconds = 8.0\n[voice]\nbackend = "clips"\npack = "{pack}"\nlanguages = ["zh"]\n'
            )
            trace = tmp / "trace.jsonl"
            env = {**os.environ, "SDL_AUDIODRIVER": "dummy", "SDL_VIDEODRIVER": "dummy"}
            proc = subprocess.Popen([HALLQ, "display", "--config", str(cfg), "--trace", str(trace)], env=env,
                                    stdout=subprocess.DEVNULL, stderr=open(tmp / "display.log", "wb"))  # noqa: SIM115
            _wait_for(trace, lambda e: e["ev"] == "complete", 30)
            time.sleep(1.0)  # let the first frames settle

            # -- call to announcement -----------------------------------------------------------
            ann_lat: list[float] = []
            for i in range(ANNOUNCE_CALLS):
                call = _call(500 + i)
                t0 = time.time()
                pub.publish(pub.topics.calls, call)
                e = _wait_for(trace, lambda e, c=call: e["ev"] == "announce" and e["ticket"] == c.ticket, 30)
                ann_lat.append((e["t"] - t0) * 1000)
                time.sleep(7.5)  # the announcement (chime and sentence) ends before the next call
            results["call_to_announcement_ms"] = {
                "calls": ANNOUNCE_CALLS, "p50": round(statistics.median(ann_lat), 1),
                "p95": round(percentile(ann_lat, 95), 1), "max": round(max(ann_lat), 1),
            }
            # -- call to frame -------------------------------------------------------------------
            sent: dict[str, float] = {}
            for i in range(FRAME_CALLS):
                call = _call(i + 1)
                sent[call.ticket] = time.time()
                pub.publish(pub.topics.calls, call)
                time.sleep(FRAME_GAP)
            last = _call(FRAME_CALLS).ticket
            _wait_for(trace, lambda e: e["ev"] == "frame" and e["ticket"] == last, 10)
            frames = {e["ticket"]: e["t"] for e in _trace(trace) if e["ev"] == "frame" and e["ticket"] in sent}
            lat = [(frames[t] - sent[t]) * 1000 for t in sent if t in frames]
            results["call_to_frame_ms"] = {
                "calls": FRAME_CALLS, "shown": len(lat), "p50": round(statistics.median(lat), 1),
                "p95": round(percentile(lat, 95), 1), "max": round(max(lat), 1),
            }

            # -- idle: the clock and the scrolling line only --------------------------------------
            time.sleep(9.0)  # the last call's flash is over
            t0, c0 = time.monotonic(), _cpu_seconds(proc.pid)
            time.sleep(5.0)
            results["idle_cpu_percent"] = round(100 * (_cpu_seconds(proc.pid) - c0) / (time.monotonic() - t0), 1)
            mem = _rss(proc.pid)
            results["rss_mb"] = {"now": round(mem["VmRSS"], 1), "peak": round(mem["VmHWM"], 1)}
        finally:
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            pub.stop()
            broker.stop()
    results["ok"] = {
        "call_to_frame": results["call_to_frame_ms"]["p95"] <= 100,
        "call_to_announcement": results["call_to_announcement_ms"]["max"] <= 300,
        "rss": results["rss_mb"]["peak"] <= 150,
    }
    return results


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "tests"))
    print(json.dumps(run(), ensure_ascii=False, indent=2))
