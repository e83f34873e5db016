"""Why the hall's Mosquitto runs with ``set_tcp_nodelay true`` (issue 9 §5).

The same ``next`` → ``calls`` round trip as bench_controller_latency (the real controller, a Mosquitto of its
own), once with the broker's ``set_tcp_nodelay false`` (Mosquitto's default) and once with ``true``, in
alternating rounds. Without it the broker's small packets wait for Nagle's algorithm and the peer's delayed
ACK (about 40 ms on Linux) whenever two are in flight on one connection: a clerk's call waits for that.
"""

from __future__ import annotations

from pathlib import Path

from bench.bench_controller_latency import run as latency

CALLS = 300
ROUNDS = 2


def run() -> dict:
    out: dict[str, list] = {"nodelay_false": [], "nodelay_true": []}
    for _ in range(ROUNDS):
        for nodelay in (False, True):
            r = latency(CALLS, nodelay=nodelay)
            out[f"nodelay_{str(nodelay).lower()}"].append(
                {k: r["call_latency"][k] for k in ("p50_ms", "p99_ms", "mean_ms")})
    return {"calls_per_round": CALLS, "loadavg": Path("/proc/loadavg").read_text().split()[:3], **out}
