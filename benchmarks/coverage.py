"""Coverage of ParkTwin's 95% intervals for a rare, skewed figure: do they hold what they claim?

Runs ``--truth`` replications of the surface lot (and of a variant B with the hourly rate
doubled) to estimate each figure's true mean, then ``--experiments`` independent experiments of
``--reps`` replications each (disjoint replication indexes after the truth's, through
``twin.api.run(..., frames=(), first_replication=k)``), and counts how often each experiment's
interval covers the truth:

* ``run``: the summary interval of ``reneged_pct`` (:func:`twin.experiments.figure_interval`,
  what ``run().summary()`` and summary.json show) against the plain t interval it replaced;
* ``compare``: the paired interval of B − A (:func:`twin.compare.paired_figure`, what
  ``compare`` shows) against the plain paired t interval.

Prints one line per interval: coverage, misses below/above, and the Monte-Carlo error of the
coverage itself. Usage (12,000 replications at the defaults: about 7 minutes on one free
core)::

    python benchmarks/coverage.py [--truth 4000] [--experiments 400] [--reps 5]

Measured (truth from 2,000 replications, 400 experiments of 5; Monte-Carlo ±2.1 pp)::

    run, t interval (before)            89.0%  missed: 44 with the truth above, 0 below
    run, figure_interval (after)        95.8%  missed: 17 with the truth above, 0 below
    compare, paired t (before)          87.5%  missed: 1 with the truth above, 49 below
    compare, paired_figure (after)      94.0%  missed: 0 with the truth above, 24 below
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from twin.api import load
from twin.api import run as api_run
from twin.compare import paired_figure
from twin.experiments import figure_interval
from twin.stats import confidence_interval, paired_difference

ROOT = Path(__file__).resolve().parents[1]
SURFACE = ROOT / "scenarios" / "surface_lot.yaml"
FIGURE = "reneged_pct"
#: B: the hourly rate doubled (more drivers balk at the price, fewer are left to renege; paired
#: with A by common random numbers).
VARIANT = {"tariff.per_period": 3.0}


def figures_only(scenario_overrides: dict, first: int, count: int) -> pd.DataFrame:
    """Per-replication figures of replications ``first .. first+count-1`` (no tables kept)."""
    sc = load(SURFACE, scenario_overrides or None)
    return api_run(sc, replications=count, frames=(), first_replication=first).metrics


Interval = Callable[[pd.DataFrame], tuple[float, float]]


def coverage(
    truth: float, experiments: list[pd.DataFrame], interval: Interval
) -> tuple[float, int, int, int]:
    """Share of experiments whose interval holds ``truth``; misses low and high; zero-widths."""
    low = high = zero = 0
    for exp in experiments:
        lo, hi = interval(exp)
        if hi - lo == 0:
            zero += 1
        if truth < lo:
            low += 1  # interval entirely above the truth
        elif truth > hi:
            high += 1  # interval entirely below the truth: the "low side" misses
    n = len(experiments)
    return (n - low - high) / n, low, high, zero


def simulate(truth_reps: int, experiments: int, reps: int) -> dict[str, pd.DataFrame]:
    """Per-replication figures of A and B: the truth's replications, then the experiments'."""
    t0 = time.perf_counter()
    data = {
        "a_truth": figures_only({}, 0, truth_reps),
        "b_truth": figures_only(VARIANT, 0, truth_reps),
        "a": figures_only({}, truth_reps, experiments * reps),
        "b": figures_only(VARIANT, truth_reps, experiments * reps),
    }
    print(
        f"simulated {2 * (truth_reps + experiments * reps)} replications "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    return data


def measure(data: dict[str, pd.DataFrame], reps: int) -> dict[str, tuple]:
    """The coverage of each interval, by name, from :func:`simulate`'s figures."""
    a_truth, b_truth, a_all, b_all = data["a_truth"], data["b_truth"], data["a"], data["b"]
    truth_reps, experiments = len(a_truth), len(a_all) // reps
    truth_a = float(a_truth[FIGURE].mean())
    truth_d = float((b_truth[FIGURE] - a_truth[FIGURE]).mean())
    se_a = float(a_truth[FIGURE].std(ddof=1)) / math.sqrt(truth_reps)
    se_d = float((b_truth[FIGURE] - a_truth[FIGURE]).std(ddof=1)) / math.sqrt(truth_reps)
    print(
        f"truth {FIGURE}: A {truth_a:.4f} % (± {1.96 * se_a:.4f}), "
        f"B − A {truth_d:.4f} pp (± {1.96 * se_d:.4f}); "
        f"{100 * float((a_truth[FIGURE] == 0).mean()):.1f}% of A's replications are 0"
    )
    chunks_a = [
        a_all.iloc[i * reps : (i + 1) * reps].reset_index(drop=True) for i in range(experiments)
    ]
    chunks_b = [
        b_all.iloc[i * reps : (i + 1) * reps].reset_index(drop=True) for i in range(experiments)
    ]
    pairs = [pd.concat({"a": a, "b": b}, axis=1) for a, b in zip(chunks_a, chunks_b, strict=True)]

    def t_run(m: pd.DataFrame) -> tuple[float, float]:
        _, _, lo, hi = confidence_interval(m[FIGURE].to_numpy())
        return lo, hi

    def new_run(m: pd.DataFrame) -> tuple[float, float]:
        row = figure_interval(m, FIGURE)
        return float(row["ci_low"]), float(row["ci_high"])

    def t_compare(p: pd.DataFrame) -> tuple[float, float]:
        d = paired_difference(p["a"][FIGURE].to_numpy(), p["b"][FIGURE].to_numpy())
        return d.ci_low, d.ci_high

    def new_compare(p: pd.DataFrame) -> tuple[float, float]:
        d, _ = paired_figure(p["a"], p["b"], FIGURE)
        return d.ci_low, d.ci_high

    return {
        "run, t interval (before)": coverage(truth_a, chunks_a, t_run),
        "run, figure_interval (after)": coverage(truth_a, chunks_a, new_run),
        "compare, paired t (before)": coverage(truth_d, pairs, t_compare),
        "compare, paired_figure (after)": coverage(truth_d, pairs, new_compare),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", type=int, default=4000)
    parser.add_argument("--experiments", type=int, default=400)
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    results = measure(simulate(args.truth, args.experiments, args.reps), args.reps)
    mc = 1.96 * math.sqrt(0.95 * 0.05 / args.experiments)
    print(
        f"{args.experiments} experiments of {args.reps} replications; "
        f"a true 95% interval covers 95% ± {100 * mc:.1f} pp (Monte-Carlo)"
    )
    for name, (cov, low, high, zero) in results.items():
        print(
            f"  {name:34s} {100 * cov:5.1f}%  missed: {high} with the truth above, "
            f"{low} below; zero-width intervals: {zero}"
        )


if __name__ == "__main__":
    main()
