"""Choosing the arrivals CUSUM's design ratio on the model, not on a feed.

The CUSUM of ``twin.live.divergence`` is designed for a rate ratio (``surge_ratio``); its
threshold is then calibrated to the false-alarm budget on the model's replications. Which
ratio catches a +50 % surge soonest at that budget is a question about the model's own noise,
so it is answered on the model's replications: a surge of ``--percent`` % extra arrivals
(Poisson, at that share of the model's expected rate) is injected into each null replication
from each weekday hour in ``--hours``, for ``--surge-hours``, and the CUSUM (its threshold
calibrated for each ratio) runs from three hours before. Printed per ratio: the threshold,
its alarm rate on the replications, and the share of surges caught within ``--within``
minutes with the median delay. No emitted feed (and no benchmark seed) is involved.

    .venv/bin/python benchmarks/divergence_design.py [--replications 20] [--null 60]
        [--ratios 1.2,1.3,1.4,1.5,1.6] [--percent 50] [--hours 7-18]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from twin import api
from twin.live.divergence import DivergenceConfig, Prediction
from twin.live.divergence_null import cusum_threshold, poisson_llr
from twin.live.fold import MirrorConfig

HOUR = 3600.0


def first_signals(increments: np.ndarray, h: float, start: int) -> np.ndarray:
    """Ticks from ``start`` to each row's first signal (inf: none); rows are replications."""
    s = np.zeros(increments.shape[0])
    first = np.full(increments.shape[0], np.inf)
    for t in range(increments.shape[1]):
        s = np.maximum(0.0, s + increments[:, t])
        hit = (s > h) & np.isinf(first) & (t >= start)
        first[hit] = t - start + 1
        s[s > h] = 0.0
    return first


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="scenarios/downtown_garage.yaml")
    ap.add_argument("--replications", type=int, default=20, help="for the prediction")
    ap.add_argument("--null", type=int, default=60, help="replications calibrated on")
    ap.add_argument("--ratios", default="1.2,1.3,1.4,1.5,1.6")
    ap.add_argument("--percent", type=float, default=50.0)
    ap.add_argument("--hours", default="7-18", help="weekday start hours, first-last")
    ap.add_argument("--surge-hours", type=float, default=4.0)
    ap.add_argument("--within", type=float, default=45.0, help="minutes")
    ap.add_argument("--seed", type=int, default=123_000, help="of the model's replications")
    args = ap.parse_args()
    first_h, last_h = (int(x) for x in args.hours.split("-"))
    scenario = api.load(args.scenario)
    tick = MirrorConfig().tick_s
    cfg = DivergenceConfig()
    print(f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    c0 = time.process_time()
    pred = Prediction.from_scenario(
        scenario, args.replications, seed=args.seed, null_replications=args.null
    )
    counts, expected, starts = pred.null_series("arrivals", tick)
    expected = np.maximum(expected, 1e-3 * tick / 60.0)
    phi = pred.dispersion_of("arrivals")
    rng = np.random.default_rng(args.seed)
    # surge windows: weekday (Mon-Fri) start hours, in tick indices of the null series
    cal = pred.calendar
    windows = []
    for k, t in enumerate(starts):
        on_the_hour = cal.seconds_of_day(t) % HOUR == 0
        if cal.weekday(t) < 5 and on_the_hour and first_h <= cal.hour(t) <= last_h:
            windows.append(k)
    span = int(args.surge_hours * HOUR / tick)
    lead = int(3 * HOUR / tick)
    windows = [k for k in windows if k >= lead and k + span <= counts.shape[1]]
    extra = {k: rng.poisson(expected[:, k : k + span] * args.percent / 100.0) for k in windows}
    print(
        f"{counts.shape[0]} null replications x {counts.shape[1] * tick / 86400:.1f} days; "
        f"{len(windows) * counts.shape[0]} injected +{args.percent:g}% surges "
        f"(weekdays {first_h:02d}-{last_h:02d}h, {args.surge_hours:g} h each)"
    )
    print(f"{'ratio':>6} {'h':>6} {'alarms/day':>11} {'within':>8} {'median':>8} {'found':>6}")
    for ratio in (float(r) for r in args.ratios.split(",")):
        h, rate = cusum_threshold(
            counts, expected, ratio, phi, cfg.surge_per_day, tick, cfg.cusum_clear_s
        )
        delays = []
        for k in windows:
            c = counts[:, k - lead : k + span].copy()
            c[:, lead:] += extra[k]
            inc = poisson_llr(c, expected[:, k - lead : k + span], ratio, phi)
            delays.append(first_signals(inc, h, lead) * tick / 60.0)
        d = np.concatenate(delays)
        print(
            f"{ratio:>6.2f} {h:>6.2f} {rate:>11.2f} {np.mean(d <= args.within):>8.1%} "
            f"{np.median(d):>6.0f} m {np.mean(np.isfinite(d)):>6.0%}"
        )
    print(
        f"(budget {cfg.surge_per_day} alarms/day; within = share caught within "
        f"{args.within:g} min; CPU {time.process_time() - c0:.0f} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
