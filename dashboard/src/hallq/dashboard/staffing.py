"""Staffing advice (DB3310/T 58 §5.2.6, table 1: windows against ticket flow), pure.

For each half hour and category: the arrival rate measured on recent same weekdays, the category's mean
service time, and the fewest windows ``c`` that keep the 90th percentile of waits under the hall's target,
by the Erlang C model of a queue with ``c`` servers (M/M/c): a citizen waits at all with probability
``C(c, A)`` (A = λ·S, the offered load in Erlangs) and waits longer than ``t`` with probability
``C(c, A)·exp(-(c/S − λ)·t)``. The p90 is under the target when that is at most 10 %.

Erlang C assumes Poisson arrivals, exponential service and a steady state within the half hour; the
tests check it against the hall simulator (``hallq.demo.simulate``), which has log-normal services,
walking time and the real dispatch.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

QUANTILE = 0.9
MAX_WINDOWS = 60


def erlang_c(c: int, a: float) -> float:
    """The probability that an arrival waits, with ``c`` servers and offered load ``a`` (1.0 when c <= a)."""
    if a <= 0:
        return 0.0
    if c <= a:
        return 1.0
    b = 1.0  # Erlang B by its recursion: stable for any c
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return c * b / (c - a * (1 - b))


def p_wait_over(c: int, lam_per_min: float, service_min: float, t_min: float) -> float:
    """P(wait > t) in an M/M/c queue."""
    a = lam_per_min * service_min
    if a <= 0:
        return 0.0
    if c <= a:
        return 1.0
    return erlang_c(c, a) * math.exp(-(c / service_min - lam_per_min) * t_min)


def wait_quantile(c: int, lam_per_min: float, service_min: float, q: float = QUANTILE) -> float:
    """The q-quantile of waits in minutes (inf when c cannot keep up)."""
    a = lam_per_min * service_min
    if a <= 0:
        return 0.0
    if c <= a:
        return math.inf
    pw = erlang_c(c, a)
    if pw <= 1 - q:
        return 0.0
    return math.log(pw / (1 - q)) / (c / service_min - lam_per_min)


def windows_needed(lam_per_min: float, service_min: float, target_min: float, q: float = QUANTILE) -> int:
    """The fewest windows that keep the q-quantile of waits at most ``target_min`` (0 with no arrivals)."""
    if lam_per_min <= 0 or service_min <= 0:
        return 0
    c = max(1, math.floor(lam_per_min * service_min) + 1)
    while c < MAX_WINDOWS and p_wait_over(c, lam_per_min, service_min, target_min) > 1 - q:
        c += 1
    return c


@dataclass(frozen=True)
class Cell:
    arrivals: float  # mean numbers taken in the half hour
    service_min: float | None
    assumed: bool  # no service of this category (nor of the hall) was measured: ``fallback_service_min``
    needed: int
    p90_min: float | None  # the expected p90 with ``needed`` windows


@dataclass(frozen=True)
class Advice:
    slots: list[str]
    categories: list[str]
    cells: dict[tuple[str, str], Cell]  # (slot, category)
    total: dict[str, int]  # slot -> windows needed over all categories
    days: int  # same weekdays that had tickets


def advise(slots: list[str], categories: list[str], days: list[dict[str, Counter]],
           service: dict[str, tuple[float, int]], target_min: float, fallback_service_min: float = 10.0) -> Advice:
    """``days``: per earlier same weekday, numbers taken per category and half hour; ``service``: per
    category (mean service minutes, number of services) over those days."""
    used = [d for d in days if any(sum(c.values()) for c in d.values())]
    n = len(used)
    cells: dict[tuple[str, str], Cell] = {}
    total: dict[str, int] = {}
    all_services = [(m, k) for m, k in service.values() if k]
    pooled = (sum(m * k for m, k in all_services) / sum(k for _, k in all_services)) if all_services else None
    for slot in slots:
        total[slot] = 0
        for cat in categories:
            arrivals = sum(d.get(cat, Counter())[slot] for d in used) / n if n else 0.0
            mean, k = service.get(cat, (0.0, 0))
            s = mean if k else (pooled or fallback_service_min)
            assumed = not k and pooled is None
            lam = arrivals / 30.0
            need = windows_needed(lam, s, target_min)
            p90 = wait_quantile(need, lam, s) if need else None
            cells[(slot, cat)] = Cell(arrivals=round(arrivals, 1), service_min=round(s, 1) if arrivals else None,
                                      assumed=assumed and arrivals > 0,
                                      needed=need, p90_min=None if p90 is None else round(p90, 1))
            total[slot] += need
    return Advice(slots=slots, categories=categories, cells=cells, total=total, days=n)
