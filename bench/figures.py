"""Figures every benchmark reports the same way."""

from __future__ import annotations

import math


def percentile(values: list[float], p: float) -> float:
    """The nearest-rank ``p``-th percentile (0 < p <= 100) of ``values``: the smallest value that at least
    ``p`` % of the values do not exceed (as the controller's statistics count their p90)."""
    if not values:
        raise ValueError("no values")
    s = sorted(values)
    return s[max(math.ceil(p / 100 * len(s)) - 1, 0)]
