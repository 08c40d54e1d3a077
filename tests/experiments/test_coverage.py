"""Do the 95% intervals of a rare, skewed share cover its true value about 95% of the time?

A cheap form of ``benchmarks/coverage.py``: a twelve-spot lot where drivers wait briefly for a
spot and some give up (``reneged_pct``: about half of the replications see no reneging at all,
the rest a handful), half a day per replication. The truth is the mean over many replications;
then independent experiments of five replications each (disjoint replication indexes, through
``first_replication``) each give their interval, as ``run().summary()`` and ``compare`` would.
The plain t interval misses well over 5% of the time here (that is the bug this guards); the
pooled-count interval must not. Fixed seeds: the numbers are the same on every run.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from twin.api import load, run
from twin.compare import paired_figure
from twin.experiments import figure_interval
from twin.stats import confidence_interval, count_share_interval, paired_difference

TINY = """
name: tiny_wait
horizon_days: 0.5
warmup_hours: 0
seed: 7
replications: 5
start: 2024-01-01T06:00:00
facility:
  name: tiny
  levels:
    - name: G
      spots: {REGULAR: 12}
demand:
  - name: cars
    vehicle_class: REGULAR
    rate_per_hour: 4
    dwell: {type: lognormal, mean: 2, sd: 2, unit: h}
behaviour:
  when_full: wait
  patience: {type: exponential, mean: 2, unit: min}
tariff: {name: free, per_period: 0, period_minutes: 60}
output: {interval_min: 60}
"""
FIGURE = "reneged_pct"
TRUTH_REPS = 1000
#: 200 experiments: a 95% interval then covers in at least 91% of them but with odds of about
#: 1 in 200 (binomial sd 1.5 pp); 80 were too few (a correct interval fell to 88.8% by chance
#: when the demand draws changed; over 500 experiments it covers 95.6%)
EXPERIMENTS = 200
REPS = 5


def figures(overrides: dict, first: int, count: int) -> pd.DataFrame:
    return run(
        load(TINY, overrides), replications=count, frames=(), first_replication=first
    ).metrics


@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    # B: drivers wait twice as long (fewer give up); same indexes, so A and B are paired
    b = {"behaviour.patience.mean": 4}
    return {
        "a_truth": figures({}, 0, TRUTH_REPS),
        "b_truth": figures(b, 0, TRUTH_REPS),
        "a": figures({}, TRUTH_REPS, EXPERIMENTS * REPS),
        "b": figures(b, TRUTH_REPS, EXPERIMENTS * REPS),
    }


def chunks(frame: pd.DataFrame) -> list[pd.DataFrame]:
    return [
        frame.iloc[i * REPS : (i + 1) * REPS].reset_index(drop=True) for i in range(EXPERIMENTS)
    ]


def covered(truth: float, intervals: list[tuple[float, float]]) -> float:
    return float(np.mean([lo <= truth <= hi for lo, hi in intervals]))


def test_the_lot_is_a_hard_case(data: dict[str, pd.DataFrame]) -> None:
    """Many replications with no reneging at all, the rest spread out: skewed and rare."""
    a = data["a_truth"]
    zero = float((a[FIGURE] == 0).mean())
    assert 0.3 < zero < 0.7
    assert a[FIGURE].mean() > 0


def test_run_intervals_cover_and_the_t_interval_does_not(data: dict[str, pd.DataFrame]) -> None:
    truth = float(data["a_truth"][FIGURE].mean())
    exps = chunks(data["a"])
    new = covered(
        truth, [(r["ci_low"], r["ci_high"]) for r in (figure_interval(m, FIGURE) for m in exps)]
    )
    old = covered(truth, [confidence_interval(m[FIGURE].to_numpy())[2:] for m in exps])
    assert new >= 0.91, f"the summary interval of {FIGURE} covers only {new:.1%}"
    assert old < new  # the plain t interval is what fails here: the test can tell them apart


def test_compare_intervals_cover(data: dict[str, pd.DataFrame]) -> None:
    diff = data["b_truth"][FIGURE] - data["a_truth"][FIGURE]
    truth = float(diff.mean())
    pairs = list(zip(chunks(data["a"]), chunks(data["b"]), strict=True))
    new = covered(
        truth, [(d.ci_low, d.ci_high) for d, _ in (paired_figure(a, b, FIGURE) for a, b in pairs)]
    )
    old = covered(
        truth,
        [
            (d.ci_low, d.ci_high)
            for d in (
                paired_difference(a[FIGURE].to_numpy(), b[FIGURE].to_numpy()) for a, b in pairs
            )
        ],
    )
    assert new >= 0.91, f"compare's interval of B − A {FIGURE} covers only {new:.1%}"
    assert new >= old


def test_no_event_at_all_gives_an_upper_bound_not_certainty() -> None:
    """Five replications without one renege: [0, ~3/N], not [0, 0] (issue 9, seed 242)."""
    ci = count_share_interval(np.zeros(5), np.full(5, 1000.0))
    assert ci.ci_low == 0.0
    assert ci.ci_high == pytest.approx(100 * -math.log(0.05) / 5000)
    assert ci.one_sided and not ci.reliable
    frame = pd.DataFrame({"arrivals": [1000.0] * 5, FIGURE: [0.0] * 5})
    row = figure_interval(frame, FIGURE)
    assert row["half_width"] > 0 and row["unreliable"]


def test_the_issues_all_zero_case_is_an_upper_bound_flagged_unreliable() -> None:
    """Surface lot, seed 242: no driver reneges in any of 5 replications. The t interval was
    [0, 0]; the summary gives an upper bound and flags it (the bound assumes Poisson counts,
    which nothing here can check: hence the flag)."""
    from pathlib import Path

    surface = Path(__file__).resolve().parents[2] / "scenarios" / "surface_lot.yaml"
    result = run(load(surface), seed=242, replications=5, frames=())
    if result.metrics[FIGURE].any():
        pytest.skip("model numbers changed: seed 242 no longer has five replications at 0")
    row = result.summary().loc[FIGURE]
    assert confidence_interval(result.metrics[FIGURE].to_numpy())[2:] == (0.0, 0.0)
    assert row["ci_low"] == 0.0 < row["ci_high"]
    assert bool(row["unreliable"])
