"""The virtual-time hall day: conservation, the plain policies, and the controller's core plugged in."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hallq.controller import config
from hallq.demo import simulate
from hallq.demo.corepolicy import CorePolicy
from hallq.demo.hall import shape_of
from hallq.demo.model import CategoryProfile, HallShape, Item, simulate_visits
from hallq.demo.simulate import (
    NOSHOW_AFTER_S,
    RECALL_AFTER_S,
    WALK_S,
    FifoPerCategory,
    FifoPerCategoryRoundRobin,
    GlobalFifo,
    estimate_error,
    percentile,
    run_day,
    wait_figures,
)

SAMPLE = Path(__file__).resolve().parents[2] / "controller" / "examples" / "hall.toml"
DAY = date(2024, 6, 3)


@pytest.fixture(scope="module")
def cfg():
    return config.load(SAMPLE)


def visit(i, t, cat, service=300.0, priority=None, answers=0):
    from hallq.demo.model import Visit

    return Visit(id=i, arrival_s=t, category=cat, priority=priority, channel="idcard" if priority else "touch",
                 service_s=service,
                 answers_after=answers, transfer=None, rates=True, rating_u=0.5, item=Item("X", "x"),
                 case_kind="instant")


TWO = HallShape(
    (CategoryProfile("A", 1, 5), CategoryProfile("B", 1, 5)),
    {1: ("A", "B")},
    ((9 * 3600.0, 12 * 3600.0),),
)
NINE = 9 * 3600.0


def order(result):
    return [r.visit.id for r in sorted(result.tickets, key=lambda r: r.first_call_s)]


def test_fifo_per_category_takes_the_windows_first_category_first():
    vs = [visit(1, NINE, "B"), visit(2, NINE + 10, "B"), visit(3, NINE + 20, "A")]
    assert order(run_day(TWO, vs, FifoPerCategory(TWO))) == [1, 3, 2]
    assert order(run_day(TWO, vs, GlobalFifo(TWO))) == [1, 2, 3]
    vs4 = [visit(1, NINE, "A"), visit(2, NINE + 10, "A"), visit(3, NINE + 20, "B"), visit(4, NINE + 30, "B")]
    assert order(run_day(TWO, vs4, FifoPerCategoryRoundRobin(TWO))) == [1, 3, 2, 4]
    assert order(run_day(TWO, vs4, FifoPerCategory(TWO))) == [1, 2, 3, 4]


def test_waits_follow_the_clerk_behaviour():
    vs = [visit(1, NINE, "A", service=600), visit(2, NINE + 1, "A", answers=None), visit(3, NINE + 2, "A")]
    r = run_day(TWO, vs, GlobalFifo(TWO))
    by = {x.visit.id: x for x in r.tickets}
    assert by[1].wait_s == 0
    assert by[2].first_call_s == NINE + WALK_S + 600  # after the first one's service
    assert by[2].outcome == "noshow"
    assert by[3].first_call_s == by[2].first_call_s + RECALL_AFTER_S + NOSHOW_AFTER_S
    assert [x.outcome for x in r.tickets] == ["done", "noshow", "done"]


def test_the_core_calls_a_priority_ticket_before_recent_normal_ones(cfg):
    shape = shape_of(cfg)
    one = HallShape(shape.categories, {1: ("A",)}, shape.hours)
    vs = [visit(1, NINE, "A", 900), visit(2, NINE + 60, "A"), visit(3, NINE + 120, "A"),
          visit(4, NINE + 180, "A", priority="elderly")]
    assert order(run_day(one, vs, CorePolicy(cfg, DAY), windows=[1])) == [1, 4, 2, 3]
    assert order(run_day(one, vs, GlobalFifo(one), windows=[1])) == [1, 2, 3, 4]


def test_a_whole_day_through_each_policy_serves_everyone(cfg):
    shape = shape_of(cfg)
    vs = simulate_visits(shape, seed=11)
    for policy in (CorePolicy(cfg, DAY), FifoPerCategory(shape), FifoPerCategoryRoundRobin(shape),
                   GlobalFifo(shape)):
        r = run_day(shape, vs, policy)
        assert r.refused == 0
        assert len(r.tickets) == len(vs)
        assert all(t.first_call_s is not None and t.first_call_s >= t.issued_s for t in r.tickets)
        assert sum(t.outcome == "noshow" for t in r.tickets) == sum(v.answers_after is None for v in vs)
        assert all(t.outcome in ("done", "noshow") for t in r.tickets)
        transferred = [t for t in r.tickets if t.visit.transfer is not None and t.visit.answers_after is not None]
        assert all(len(t.calls) == 2 for t in transferred)
        f = wait_figures(r)
        assert f["called"] == len(vs) and f["wait_p90_min"] >= f["wait_mean_min"] > 0
    ctl = CorePolicy(cfg, DAY)
    e = estimate_error(run_day(shape, vs, ctl))
    assert e["est_pairs"] == len(vs) and e["est_mae_min"] >= 0


def test_percentile_is_the_nearest_rank_one_everywhere():
    from hallq.controller import stats

    assert simulate.percentile is percentile and stats.percentile is percentile
    with pytest.raises(ValueError):
        percentile([], 90)
    assert percentile([5.0], 90) == 5.0
    assert percentile([float(x) for x in range(1, 11)], 90) == 9.0  # 9 of 10 values are at most 9
    assert percentile([float(x) for x in range(11)], 90) == 9.0
    assert percentile([0.0, 10.0], 50) == 0.0  # never interpolated: one of the values


def test_the_controller_carries_the_day_before_over_midnight():
    """``CorePolicy(after=...)``: the next day rolls over from the earlier day's core (as the controller at
    midnight): numbering restarts, nothing waits, the measured services stay; requests of the new day are
    answered anew (not from the earlier day's kept answers, which a repeated request id would get)."""
    cfg = config.load(SAMPLE)
    shape = shape_of(cfg)
    span = (9 * 3600.0, 10 * 3600.0)
    before = CorePolicy(cfg, date(2024, 6, 2))
    run_day(shape, simulate_visits(shape, seed=5, span=span), before)  # (other booking codes than seed 4's)
    learnt = {c: list(xs) for c, xs in before.state.service_recent.items()}
    assert learnt
    vs = simulate_visits(shape, seed=4, span=span)
    ctl = CorePolicy(cfg, DAY, after=before.state)
    r = run_day(shape, vs, ctl)
    assert ctl.state.day == DAY and not ctl.refusals and len(r.tickets) == len(vs)
    first = run_day(shape, vs, CorePolicy(cfg, DAY))
    assert sorted(t.ticket for t in r.tickets) == sorted(t.ticket for t in first.tickets)  # numbering restarted
    assert all(len(ctl.state.service_recent[c]) >= len(xs) for c, xs in learnt.items())
    assert all(t.outcome in ("done", "noshow") for t in r.tickets)
    with pytest.raises(ValueError):
        CorePolicy(cfg, DAY, after=ctl.state)
