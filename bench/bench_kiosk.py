"""Kiosk benchmarks: tap to number on screen through Mosquitto and the real controller (headless);
drawing one 1920×1080 frame; the kiosk process's memory.

Targets (issue 4): tap → number on screen p95 ≤ 150 ms; one frame ≤ 16 ms; RSS ≤ 150 MB.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from escpos.printer import Dummy
from harness import Mosquitto

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
HALLQ = [sys.executable, "-m", "hallq.shared.cli"]
TAPS = 200

HALL = """
[hall]
id = "bench"
name = "示范县政务服务中心"
timezone = "Asia/Shanghai"
notices = ["请携带本人身份证原件办理业务"]
[[categories]]
code = "A"
name = "社保医保"
[[categories]]
code = "B"
name = "不动产登记"
[[categories]]
code = "C"
name = "户籍办理"
[[windows]]
no = 1
name = "1号窗口"
categories = ["*"]
"""


class AnsweringDummy(Dummy):
    """A printer that answers DLE EOT with "online, paper OK" and keeps what it is sent."""

    def _raw(self, msg: bytes) -> None:
        if msg in (b"\x10\x04\x01", b"\x10\x04\x04"):
            self._pending = b"\x12"
            return
        super()._raw(msg)

    def _read(self) -> bytes:
        out, self._pending = getattr(self, "_pending", b""), b""
        return out


def pct(values: list[float], p: float) -> float:
    return round(percentile(values, p), 2)


def kiosk_toml(work: Path, broker: str) -> Path:
    key = work / "hall.key"
    key.write_bytes(os.urandom(32).hex().encode())
    p = work / "kiosk.toml"
    p.write_text(
        f'[kiosk]\nid = "kiosk-1"\nhall = "bench"\nbroker = "{broker}"\nsecret_key_file = "{key}"\n'
        'qr_url = "https://hall.example/q?n={number}"\n'
        '[screen]\nwidth = 1920\nheight = 1080\nmode = "headless"\n'
        f'[printer]\nurl = "file:{work / "printer.bin"}"\n',
        encoding="utf-8",
    )
    return p


def tap_to_number(work: Path, broker: Mosquitto) -> dict:
    from hallq.kiosk.app import KioskApp
    from hallq.kiosk.config import load

    app = KioskApp(load(kiosk_toml(work, broker.url)), mode="headless", printer=AnsweringDummy())
    frames: list[tuple[float, str | None]] = []
    app.on_frame = lambda s: frames.append((time.perf_counter(), s.shown.ticket.number if s.shown else None))
    app.start()
    try:
        if not app.run_until(lambda s: s.hall is not None and s.controller == "online" and s.queue, 20):
            raise RuntimeError("the kiosk did not get the hall's config from the controller")
        app.run_until(lambda s: False, 0.3)
        lat: list[float] = []
        for i in range(TAPS):
            code = "ABC"[i % 3]
            app.step(0)
            pos = app.ui.find("category", code)
            frames.clear()
            t0 = time.perf_counter()
            app.tap(pos)
            deadline = t0 + 5
            while time.perf_counter() < deadline and not any(n for _, n in frames):
                app.step(0.001)
            shown = [t for t, n in frames if n]
            if not shown:
                raise RuntimeError(f"tap {i}: no number on screen within 5 s ({app.state.screen})")
            lat.append((shown[0] - t0) * 1000)
            app.run_until(lambda s: s.shown is not None and s.shown.printed is not None, 5)
            app.tap(app.ui.find("home"))
            app.run_until(lambda s: s.screen == "home", 2)
            app.step(0)
        return {"taps": TAPS, "p50_ms": pct(lat, 50), "p95_ms": pct(lat, 95), "max_ms": round(max(lat), 2),
                "mean_ms": round(statistics.fmean(lat), 2), "target_p95_ms": 150}
    finally:
        app.stop()


def frame_time() -> dict:
    from hallq.kiosk import core
    from hallq.kiosk.ui import KioskUI
    from hallq.shared.schemas import CategoryInfo, CategoryQueue, HallConfig, QueueState, Ticket
    from hallq.shared.screen import open_screen

    tz = ZoneInfo("Asia/Shanghai")
    t0 = datetime(2026, 11, 23, 9, 30, tzinfo=tz)
    names = ["社保医保", "不动产登记", "户籍办理", "市场监管", "税务", "公积金"]
    hall = HallConfig(hall="b", name="示范县政务服务中心", timezone="Asia/Shanghai", windows=[],
                      categories=[CategoryInfo(code=c, name=n, prefix=c) for c, n in zip("ABCDEF", names, strict=True)])
    s = core.initial(core.Settings(device="k", req_prefix="k"), t0)
    s, _ = core.handle(s, core.ConfigChanged(hall), t0)
    screen = open_screen((1920, 1080), "headless")
    ui = KioskUI(screen)
    out: dict = {}
    try:
        for name in ("home", "ticket"):
            times = []
            for i in range(300):
                q = QueueState(at=t0, categories={c: CategoryQueue(waiting=(i + k) % 40, est_wait_min=(i * 3 + k) % 90)
                                                  for k, c in enumerate("ABCDEF")})
                st = core.handle(s, core.QueueChanged(q), t0)[0]
                if name == "ticket":
                    tk = Ticket(number=f"A{i % 1000:03d}", category="A", issued_at=t0, ahead=i % 30, est_wait_min=i % 60)
                    st = core.replace(st, screen="ticket", shown=core.Shown(tk, "社保医保", None, True))
                a = time.perf_counter()
                ui.draw(st, t0 + timedelta(minutes=i), f"{9 + i // 60:02d}:{i % 60:02d}")
                screen.flip()
                times.append((time.perf_counter() - a) * 1000)
            out[f"{name}_first_ms"] = round(times[0], 2)
            out[f"{name}_p50_ms"] = pct(times[1:], 50)
            out[f"{name}_p95_ms"] = pct(times[1:], 95)
        out["target_ms"] = 16
        return out
    finally:
        screen.close()


def rss(work: Path, broker: Mosquitto) -> dict:
    cfg = kiosk_toml(work, broker.url)
    proc = subprocess.Popen([*HALLQ, "kiosk", "--config", str(cfg), "--headless"], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(6)
        if proc.poll() is not None:
            raise RuntimeError("the kiosk process ended early")
        fields = {}
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        return {"rss_mb": round(int(fields["VmRSS"].split()[0]) / 1024, 1),
                "peak_rss_mb": round(int(fields["VmHWM"].split()[0]) / 1024, 1), "target_mb": 150}
    finally:
        proc.terminate()
        proc.wait(10)


def run() -> dict:
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        broker = Mosquitto(work / "mosquitto").start()
        (work / "hall.toml").write_text(HALL, encoding="utf-8")
        ctl = subprocess.Popen([*HALLQ, "controller", "--config", str(work / "hall.toml"), "--broker", broker.url,
                                "--db", str(work / "hall.db")], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        try:
            result = {"tap_to_number": tap_to_number(work, broker), "frame_1920x1080": frame_time(),
                      "memory": rss(work, broker)}
        finally:
            ctl.terminate()
            ctl.wait(10)
            broker.stop()
    return result
