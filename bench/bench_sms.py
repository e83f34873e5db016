"""SMS gateway benchmark: a text taking a number → its answer queued to the modem (committed to the outbox),
through the modem emulator on a pty, Mosquitto and the real controller in its own process.

Target (issue 14): take by SMS → answer queued ≤ 1 s p95, modem time excluded. The modem's own time is
measured separately: answer queued → its last part accepted by the (emulated, zero-latency) modem, i.e. the
gateway's AT exchange (``AT+CMGW`` with the PDU, ``AT+CMSS``, ``AT+CMGD``) over the pty; a real SIM800 or
EC20 adds 1–5 s per part of network time, which no software can shorten.

Two loads: one text at a time (each waits for its answer), and a burst of texts from different phones
arriving at once.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import Mosquitto

from bench.figures import percentile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "sms"))

SEQUENTIAL = 100
BURST = 60

HALL = """
[hall]
id = "bench"
name = "示范县政务服务中心"
timezone = "Asia/Shanghai"
[[categories]]
code = "A"
name = "社保医保"
daily_quota = 999
[[categories]]
code = "B"
name = "不动产登记"
daily_quota = 999
[[windows]]
no = 1
name = "1号窗口"
categories = ["*"]
"""


def _msg_id(pdu_hex: str) -> str:
    return hashlib.sha256(pdu_hex.upper().encode()).hexdigest()[:20]


def run() -> dict:
    from hallq.shared.clock import real
    from hallq.shared.config import parse_config
    from hallq.sms.app import SmsGateway
    from hallq.sms.config import SmsConfig, check
    from modem_emulator import ModemEmulator

    with tempfile.TemporaryDirectory() as d:
        work = Path(d)
        broker = Mosquitto(work / "mosquitto").start()
        (work / "hall.toml").write_text(HALL, encoding="utf-8")
        key = work / "hall.key"
        key.write_text(os.urandom(32).hex())
        key.chmod(0o600)
        ctl = subprocess.Popen([sys.executable, "-m", "hallq.shared.cli", "controller", "--config", str(work / "hall.toml"),
                                "--broker", broker.url, "--db", str(work / "hall.db")], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        modem = ModemEmulator()
        modem.capacity = 200  # a burst bigger than a SIM holds: the ME storage of an EC20
        gw = None
        try:
            cfg = check(parse_config(
                f'[sms]\nid = "sms-1"\nhall = "bench"\nbroker = "{broker.url}"\nsecret_key_file = "{key}"\n'
                f'db = "{work / "sms.db"}"\nmax_texts_per_day = 1000\n'
                f'[modem]\nport = "{modem.port}"\ncommand_timeout_s = 5\nhealth_every_s = 60\n', SmsConfig))
            gw = SmsGateway(cfg, real("Asia/Shanghai")).start()
            deadline = time.monotonic() + 30
            while (gw.state.hall is None or not gw.link.ready) and time.monotonic() < deadline:
                time.sleep(0.05)
            if gw.state.hall is None or not gw.link.ready:
                raise RuntimeError("the gateway did not get ready (controller config, modem set-up)")

            def deliver(i: int, text: str) -> tuple[str, float]:
                phone = f"+86135{i:08d}"
                t0 = time.monotonic()
                idx = modem.deliver(phone, text)
                return _msg_id(modem.storage[idx][1]) if idx in modem.storage else "", t0

            # warm-up
            mid, _ = deliver(99_999, "A")
            _wait(lambda: mid in gw.queued_at, 20)

            sequential: list[float] = []
            for i in range(SEQUENTIAL):
                with modem.lock:
                    mid, t0 = deliver(i, "社保" if i % 2 else "B")
                _wait(lambda mid=mid: mid in gw.queued_at, 20)
                sequential.append(gw.queued_at[mid] - t0)

            sent_before = len(modem.messages)
            burst: list[tuple[str, float]] = []
            with modem.lock:  # all arrive before the gateway reads the first
                for i in range(BURST):
                    burst.append(deliver(10_000 + i, "A"))
            _wait(lambda: all(m in gw.queued_at for m, _ in burst), 60)
            burst_lat = [gw.queued_at[m] - t0 for m, t0 in burst]

            # the modem's side: from queued to the last part accepted, for the burst (a queue of sends)
            _wait(lambda: len(modem.messages) >= sent_before + BURST, 120)
            msgs = modem.messages[sent_before:sent_before + BURST]
            per_msg = [b.at - a.at for a, b in itertools.pairwise(msgs)]
            parts = sum(m.parts for m in msgs)
        finally:
            if gw is not None:
                gw.stop()
            modem.close()
            ctl.terminate()
            ctl.wait(10)
            broker.stop()

    return {
        "target": "take by SMS -> answer queued to the modem p95 <= 1000 ms (modem time excluded)",
        "sequential_texts": SEQUENTIAL,
        "take_to_queued_ms_p50": round(percentile(sequential, 50) * 1000, 1),
        "take_to_queued_ms_p95": round(percentile(sequential, 95) * 1000, 1),
        "take_to_queued_ms_max": round(max(sequential) * 1000, 1),
        "burst_texts": BURST,
        "burst_take_to_queued_ms_p95": round(percentile(burst_lat, 95) * 1000, 1),
        "burst_take_to_queued_ms_max": round(max(burst_lat) * 1000, 1),
        "modem_time_per_answer_ms_p50 (emulated modem, no network time)": round(percentile(per_msg, 50) * 1000, 1),
        "answer_parts_mean": round(parts / len(msgs), 2),
    }


def _wait(pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError("the gateway did not answer in time")
        time.sleep(0.001)
