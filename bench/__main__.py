"""Run the benchmarks: ``make bench`` or ``python -m bench [NAME ...]``.

Every ``bench/bench_*.py`` module has ``run() -> dict`` returning its figures (and the targets it is
measured against). Results are printed and written to ``bench/out/results.json`` (running only some
benchmarks replaces only their figures there).
"""

from __future__ import annotations

import importlib
import json
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(HERE.parent / "tests"))  # the broker harness
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    if argv:
        names = [n for n in names if any(a in n for a in argv)]
    results: dict[str, object] = {}
    for name in names:
        t0 = time.monotonic()
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"bench.{name}")
        figures = module.run()
        figures["_seconds"] = round(time.monotonic() - t0, 1)
        results[name] = figures
        print(json.dumps(figures, ensure_ascii=False, indent=2), flush=True)
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    path = out / "results.json"
    if argv and path.exists():  # a subset run replaces only its own benchmarks' figures
        try:
            results = json.loads(path.read_text()) | results
        except ValueError:
            pass
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
