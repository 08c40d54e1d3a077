"""Warm-up bias of the airport lot: empty start + 240 h warm-up against the steady-state start.

The figure is the mean occupancy over the measured window of scenarios/airport_long_stay.yaml
(day 10 to day 28 after its start). Its truth is what a lot that has always been running would
show over that same calendar window: replications that start empty four weeks earlier (same
weekday; after 4 weeks only ~0.3 % of the ~4-day stays begun at the start are still running,
worth < 0.02 pp) and measure the same window. Against it:

* ``warmup``: the scenario as shipped (empty at its start, 240 h cut);
* ``steady``: starting at the window's first instant with ``initial: steady`` (no warm-up).

For each: bias (mean of the replications minus the truth, with its 95% interval), and the
coverage of the 95% t interval of experiments of 3 and of 5 replications (the share of
experiments whose interval holds the truth; target ~95%).

    python benchmarks/steady_start.py [--reps 600] [--truth-reps 600] [--save FILE.npz]
    python benchmarks/steady_start.py --only truth --save truth.npz     # one part (in parallel)
    python benchmarks/steady_start.py --report truth.npz warmup.npz ...  # the table from parts

One core; about 0.5 s per replication. Prints a table for docs and the closing note.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
from scipy import stats

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import twin.sim.initial  # noqa: E402,F401  (imported now: a later edit must not mix versions)
from twin.results import metrics  # noqa: E402
from twin.scenario.loader import load_scenario  # noqa: E402
from twin.sim.model import simulate  # noqa: E402

FIGURE = "occupancy.mean"


def scenarios():
    sc = load_scenario(ROOT / "scenarios" / "airport_long_stay.yaml")
    window_start = sc.start + timedelta(hours=sc.warmup_hours)
    days = sc.horizon_days - sc.warmup_hours / 24
    before = 28.0  # days of empty-start history before the window for the truth
    truth = sc.model_copy(
        update={
            "start": window_start - timedelta(days=before),
            "horizon_days": before + days,
            "warmup_hours": before * 24,
            "seed": 90_001,
        }
    )
    warmup = sc.model_copy(update={"seed": 90_002})
    steady = sc.model_copy(
        update={
            "start": window_start,
            "horizon_days": days,
            "warmup_hours": 0.0,
            "initial": "steady",
            "seed": 90_003,
        }
    )
    return {"truth": truth, "warmup": warmup, "steady": steady}


def values(scenario, reps: int, label: str) -> np.ndarray:
    out = np.empty(reps)
    t = time.perf_counter()
    for r in range(reps):
        out[r] = metrics(simulate(scenario, r))[FIGURE]
        if (r + 1) % 100 == 0:
            print(f"  {label}: {r + 1}/{reps} ({time.perf_counter() - t:.0f} s)", flush=True)
    return out


def coverage(x: np.ndarray, truth: float, n: int) -> tuple[float, int]:
    k = len(x) // n
    groups = x[: k * n].reshape(k, n)
    mean = groups.mean(axis=1)
    half = stats.t.ppf(0.975, n - 1) * groups.std(axis=1, ddof=1) / np.sqrt(n)
    return float(np.mean(np.abs(mean - truth) <= half)), k


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=600)
    ap.add_argument("--truth-reps", type=int, default=600)
    ap.add_argument("--save", type=Path, default=None)
    ap.add_argument("--only", choices=["truth", "warmup", "steady"], action="append")
    args = ap.parse_args()
    sc = scenarios()
    got = {}
    for name in args.only or ("truth", "warmup", "steady"):
        got[name] = values(sc[name], args.truth_reps if name == "truth" else args.reps, name)
        if args.save:
            np.savez(args.save, **got)
    if {"truth", "warmup", "steady"} <= set(got):
        report(got)


def report(got: dict[str, np.ndarray]) -> None:
    truth = got["truth"]
    t_mean, t_se = truth.mean(), truth.std(ddof=1) / np.sqrt(len(truth))
    print(f"\ntruth ({len(truth)} reps): mean occupancy {100 * t_mean:.3f}% ± {196 * t_se:.3f} pp")
    print("| start | reps | bias (pp) | 95% CI of bias | sd/rep (pp) | coverage n=3 | n=5 |")
    print("|---|---|---|---|---|---|---|")
    for name in ("warmup", "steady"):
        x = got[name]
        bias = x.mean() - t_mean
        se = np.sqrt(x.var(ddof=1) / len(x) + t_se**2)
        c3, k3 = coverage(x, t_mean, 3)
        c5, k5 = coverage(x, t_mean, 5)
        print(
            f"| {name} | {len(x)} | {100 * bias:+.3f} | [{100 * (bias - 1.96 * se):+.3f}, "
            f"{100 * (bias + 1.96 * se):+.3f}] | {100 * x.std(ddof=1):.2f} | "
            f"{100 * c3:.1f}% ({k3}) | {100 * c5:.1f}% ({k5}) |"
        )


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "--report":
        parts: dict[str, np.ndarray] = {}
        for file in sys.argv[2:]:
            data = np.load(file)
            parts.update({k: data[k] for k in data.files})
        report(parts)
    else:
        main()
