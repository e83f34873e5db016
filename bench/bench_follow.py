"""Follow pages benchmark: 500 open follow pages (Server-Sent Events streams on the dashboard's server), then
calls at a window; the time from the window's ``next`` request to each page's update.

Target (issue 14): follow page update after a call ≤ 500 ms p95 with 500 open follow pages.

Real parts: Mosquitto, the controller and ``hallq dashboard`` (with the phone pages) as processes of their own;
500 streams held by one asyncio client here (the browsers' side), each following its own ticket.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "dashboard"))

PAGES = 500
CALLS = 10


async def _stream(port: int, token: str, events: list[float], ready: asyncio.Event, count: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 20)
    writer.write(f"GET /m/f/{token}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    first = True
    try:
        while True:
            line = await reader.readline()
            if not line:
                return
            if line.startswith(b"data:"):
                if first:
                    first = False
                    count[0] += 1
                    if count[0] == PAGES:
                        ready.set()
                else:
                    events.append(time.monotonic())
    finally:
        writer.close()


def run() -> dict:
    from dashkit import HALL_TOML, WebHall
    from hallq.shared.mqtt import HallClient
    from hallq.shared.schemas import Staff, TakeRequest, WindowRequest

    lat: list[float] = []
    cpu: list[float] = []  # the dashboard's CPU seconds per call (its share does not depend on the machine's load)
    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        key = work / "follow.key"
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
        toml = HALL_TOML.replace("hours = [[\"08:00\", \"18:00\"]]", "") + (
            f'\n[follow]\nurl = "http://hall.lan/m/f/{{token}}"\nkey_file = "{key}"\n'
            # one kiosk takes the 500 numbers as fast as it can, far beyond a real kiosk's limits
            "\n[limits.kiosk]\nrate = 100000\nburst = 1000000\nopen_tickets = 1000000\n")
        hall = WebHall(work, toml, with_db=False)
        try:
            kiosk = hall.kiosk
            tokens = []
            for _ in range(PAGES):
                r = kiosk.request("take", TakeRequest(req=kiosk.new_req(), category="A"), timeout=10, resend_every=1)
                tokens.append(r.ticket.follow)  # type: ignore[attr-defined]
            clerk = HallClient(hall.broker.url, "web", "web-caller-1").start()
            assert clerk.wait_connected(10)
            clerk.request("window", WindowRequest(req=clerk.new_req(), window=1, op="open",
                                                  staff=Staff(id="s1", name="王芳")), timeout=10)

            async def main() -> None:
                ready = asyncio.Event()
                count = [0]
                per_page: list[list[float]] = [[] for _ in tokens]
                tasks = [asyncio.create_task(_stream(hall.dash.port, t, per_page[i], ready, count))
                         for i, t in enumerate(tokens)]
                await asyncio.wait_for(ready.wait(), 120)
                await asyncio.sleep(1.0)
                cpu0 = _cpu_s(hall.dash.proc.pid)
                for _ in range(CALLS):
                    for ev in per_page:
                        ev.clear()
                    t0 = time.monotonic()
                    await asyncio.to_thread(clerk.request, "window",
                                            WindowRequest(req=clerk.new_req(), window=1, op="next"), timeout=10)
                    deadline = time.monotonic() + 10
                    # every page whose ticket still waits or was just called gets an update
                    while time.monotonic() < deadline and sum(1 for ev in per_page if ev) < len(per_page) - 1:
                        await asyncio.sleep(0.005)
                    lat.extend(ev[0] - t0 for ev in per_page if ev)
                    await asyncio.sleep(0.3)
                cpu.append((_cpu_s(hall.dash.proc.pid) - cpu0) / CALLS)
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            asyncio.run(main())
            clerk.stop()
        finally:
            hall.close()
    return {
        "target": "follow page update after a call p95 <= 500 ms with 500 open follow pages",
        "open_pages": PAGES,
        "calls": CALLS,
        "updates_measured": len(lat),
        "call_to_page_update_ms_p50": round(percentile(lat, 50) * 1000, 1),
        "call_to_page_update_ms_p95": round(percentile(lat, 95) * 1000, 1),
        "call_to_page_update_ms_max": round(max(lat) * 1000, 1),
        "dashboard_cpu_ms_per_call": round(cpu[0] * 1000, 1) if cpu else None,
        "load_average": list(os.getloadavg()),
    }


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
