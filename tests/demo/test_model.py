"""The simulated hall day: deterministic with a seed, the right shape over the day, the right shares."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from hallq.controller import config
from hallq.demo.hall import PROFILES, default_profile, shape_of
from hallq.demo.model import (
    HALF_HOUR,
    LEVELS,
    Rates,
    expected_visits,
    half_hour_profile,
    hhmm_to_s,
    profile_weight,
    rating_level,
    s_to_hhmm,
    satisfaction,
    simulate_visits,
)

SAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "hall.toml"


@pytest.fixture(scope="module")
def shape():
    return shape_of(config.load(SAMPLE))


def test_same_seed_same_day_other_seed_other_day(shape):
    a = simulate_visits(shape, seed=7)
    b = simulate_visits(shape, seed=7)
    c = simulate_visits(shape, seed=8)
    assert a == b
    assert a != c
    assert [v.arrival_s for v in a] == sorted(v.arrival_s for v in a)


def test_arrivals_only_in_opening_hours(shape):
    for v in simulate_visits(shape, seed=3):
        assert any(lo <= v.arrival_s < hi for lo, hi in shape.hours), s_to_hhmm(v.arrival_s)


def test_profile_has_a_morning_peak_and_a_smaller_afternoon_one(shape):
    prof = half_hour_profile(shape.hours)
    assert sorted(prof) == [hhmm_to_s(f"{h:02d}:{m:02d}") for h in (9, 10, 11, 14, 15, 16, 17) for m in (0, 30)]
    morning = {t: w for t, w in prof.items() if t < hhmm_to_s("12:00")}
    afternoon = {t: w for t, w in prof.items() if t >= hhmm_to_s("14:00")}
    peak_am = max(morning, key=morning.get)
    peak_pm = max(afternoon, key=afternoon.get)
    assert hhmm_to_s("09:30") <= peak_am <= hhmm_to_s("10:00")
    assert hhmm_to_s("14:30") <= peak_pm <= hhmm_to_s("15:00")
    assert morning[peak_am] > afternoon[peak_pm] > prof[hhmm_to_s("17:30")]
    assert profile_weight(hhmm_to_s("12:30"), shape.hours) == 0.0


def test_drawn_arrivals_follow_the_profile(shape):
    # pooled over several seeds, the busiest morning half hours really are the busiest
    counts: Counter = Counter()
    for seed in range(1, 9):
        for v in simulate_visits(shape, seed=seed):
            counts[int(v.arrival_s // HALF_HOUR * HALF_HOUR)] += 1
    peak = counts[int(hhmm_to_s("09:30"))] + counts[int(hhmm_to_s("10:00"))]
    quiet = counts[int(hhmm_to_s("11:30"))] + counts[int(hhmm_to_s("17:30"))]
    assert peak > 2.0 * quiet  # the profile says about 2.7
    am = sum(n for t, n in counts.items() if t < hhmm_to_s("12:00")) / 3
    pm = sum(n for t, n in counts.items() if t >= hhmm_to_s("14:00")) / 4
    assert am > 1.05 * pm  # per opening hour, the morning is busier (the profile says about 1.1)


def test_volume_follows_the_load(shape):
    n = [len(simulate_visits(shape, Rates(load=load), seed=5)) for load in (0.5, 1.0)]
    assert 1.7 < n[1] / n[0] < 2.3
    expected = expected_visits(shape, Rates())
    days = [len(simulate_visits(shape, seed=s)) for s in range(1, 9)]
    assert abs(sum(days) / len(days) - expected) < 0.08 * expected


def test_rates_of_priorities_noshows_transfers_and_ratings(shape):
    vs = [v for s in range(1, 9) for v in simulate_visits(shape, seed=s)]
    n = len(vs)
    r = Rates()

    def share(pred) -> float:
        return sum(1 for v in vs if pred(v)) / n

    assert abs(share(lambda v: v.priority == "appointment") - r.appointment) < 0.02
    assert abs(share(lambda v: v.priority == "elderly") - r.priority["elderly"]) < 0.02
    assert abs(share(lambda v: v.answers_after is None) - r.noshow) < 0.015
    assert abs(share(lambda v: v.answers_after == 1) - r.late) < 0.015
    assert abs(share(lambda v: v.transfer is not None) - r.transfer * (1 - r.noshow)) < 0.015
    assert abs(share(lambda v: v.rates) - r.rate) < 0.03
    for v in vs:
        if v.transfer:
            assert v.transfer.category != v.category
            assert v.answers_after is not None  # no-shows are never served, so never transferred
        assert v.service_s > 0
        assert v.item in (PROFILES[v.transfer.category if v.transfer else v.category].items)
        assert (v.appointment is not None) == (v.priority == "appointment")
    by_cat = Counter(v.category for v in vs)
    total = sum(p.share for p in PROFILES.values())
    for code, p in PROFILES.items():
        assert abs(by_cat[code] / n - p.share / total) < 0.03


def test_service_times_are_long_tailed_per_category(shape):
    vs = [v for s in range(1, 9) for v in simulate_visits(shape, seed=s)]
    for code in ("A", "B"):
        xs = sorted(v.service_s / 60 for v in vs if v.category == code)
        median = xs[len(xs) // 2]
        mean = sum(xs) / len(xs)
        assert abs(median - PROFILES[code].service_median_min) < 0.15 * PROFILES[code].service_median_min
        assert mean > median  # log-normal: the mean sits above the median
    assert PROFILES["B"].service_median_min > PROFILES["A"].service_median_min


def test_ratings_as_halls_report_them():
    levels = [rating_level(i / 10000, 5 * 60) for i in range(10000)]
    c = Counter(levels)
    assert set(c) <= set(LEVELS)
    assert abs(satisfaction(levels) - 0.9897) < 0.002  # 13,345 + 363 of 13,851
    assert c["dissatisfied"] > 0
    # waiting long makes poor ratings likelier
    late = [rating_level(i / 10000, 40 * 60) for i in range(10000)]
    assert abs(satisfaction(late) - (satisfaction(levels) - 0.10)) < 0.002
    assert rating_level(0.5, 20 * 60) == rating_level(0.5, 0) == "very_satisfied"
    assert satisfaction([]) is None


def test_a_span_keeps_only_its_arrivals(shape):
    whole = simulate_visits(shape, seed=2)
    part = simulate_visits(shape, seed=2, span=(hhmm_to_s("09:00"), hhmm_to_s("10:00")))
    assert part == [v for v in whole if v.arrival_s < hhmm_to_s("10:00")]
    assert part


def test_unknown_categories_get_a_plain_profile():
    p = default_profile("Z", "其他")
    assert p.code == "Z" and p.items and p.service_median_min > 0
    cfg = config.parse(
        '[hall]\nid = "x"\nname = "X"\n[[categories]]\ncode = "Z"\nname = "其他"\n'
        '[[windows]]\nno = 1\nname = "1"\ncategories = ["*"]\n'
    )
    shape = shape_of(cfg)
    assert shape.hours == ((0.0, 86400.0),)
    assert shape.windows == {1: ("Z",)}
    assert simulate_visits(shape, Rates(load=0.1), seed=1)


def test_time_helpers():
    assert hhmm_to_s("09:30") == 9.5 * 3600
    assert hhmm_to_s("24:00") == 86400
    assert s_to_hhmm(hhmm_to_s("17:45")) == "17:45"
    with pytest.raises(ValueError):
        hhmm_to_s("24:30")
