"""Figures every part of hallq reports the same way: one percentile for the statistics, the simulations
and the benchmarks."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``: the smallest value that at least
    ``p`` % of the values do not exceed. Always one of the values (never interpolated), as halls count
    "90 % waited at most N minutes"."""
    if not values:
        raise ValueError("the percentile of no values")
    if not 0 < p <= 100:
        raise ValueError(f"a percentile is over (0, 100], not {p}")
    s = sorted(values)
    return s[max(math.ceil(p / 100 * len(s)) - 1, 0)]
