"""False alarms on fault-free emitted feeds that start from an empty lot or the steady state.

A simulated week of the downtown garage is emitted per seed twice (``twin.live.emit``): from an
empty lot (as before) and from the steady state (``start_state="steady"``: the lot in its
typical state at the start, Sunday noon, its cars parked when the feed begins). Each feed goes
through the mirror with the divergence detectors against the model's prediction (replications
of the scenario with other seeds). Occupancy is judged after ``settle_s``: the scenario's
warm-up (12 h, as the tests and bench_divergence.py do), and for the steady feed also from the
first instant (0). Printed: alerts per feed with kind, subject and time, and per day.

    nice .venv/bin/python benchmarks/bench_emit_start.py [--seeds 2026,7,11] [--replications 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from parktwin.adapters.events import parse_json
from twin import api
from twin.live.divergence import Divergence, DivergenceConfig, Prediction
from twin.live.emit import emit
from twin.live.mirror import Mirror

HOUR = 3600.0


def alerts(lines: list[str], scenario, prediction, settle_s: float) -> list:
    mirror = Mirror(
        scenario, divergence=Divergence(prediction, DivergenceConfig(settle_s=settle_s))
    )
    return mirror.consume(parse_json(x) for x in lines).alerts()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="scenarios/downtown_garage.yaml")
    ap.add_argument("--seeds", default="2026,7,11")
    ap.add_argument("--replications", type=int, default=10, help="for the prediction")
    ap.add_argument("--days", type=float, default=None, help="feed length (default: scenario)")
    args = ap.parse_args()
    cpu0 = time.process_time()
    scenario = api.load(args.scenario)
    prediction = Prediction.from_scenario(scenario, args.replications, seed=910_000)
    days = args.days or scenario.horizon_days
    warm = scenario.warmup_hours * HOUR
    print(f"load {os.getloadavg()[0]:.1f}; prediction {args.replications} replications")
    print(f"{'seed':>6} {'start':<7} {'settle':>7} {'parked@0':>9} {'alerts':>7} {'per day':>8}")
    totals: dict[tuple[str, float], int] = {}
    for seed in (int(s) for s in args.seeds.split(",")):
        for start in ("empty", "steady"):
            feed = emit(scenario, seed=seed, days=args.days, start_state=start)
            for settle in (warm, 0.0) if start == "steady" else (warm,):
                found = alerts(feed.lines, scenario, prediction, settle)
                totals[(start, settle)] = totals.get((start, settle), 0) + len(found)
                print(
                    f"{seed:>6} {start:<7} {settle / HOUR:>6.0f}h {feed.initial:>9} "
                    f"{len(found):>7} {len(found) / days:>8.2f}"
                )
                for a in found:
                    end = a.cleared_t if a.cleared_t is not None else a.raised_t
                    print(
                        f"{'':>8}{a.kind} {a.subject} from {a.since_t / HOUR:.2f} h "
                        f"({(end - a.since_t) / 60:.0f} min): {a.message}"
                    )
    n = len(args.seeds.split(","))
    for (start, settle), k in totals.items():
        print(
            f"{start:<7} settle {settle / HOUR:.0f} h: {k / (n * days):.2f} alerts per day "
            f"({k} in {n} x {days:g} days)"
        )
    print(f"CPU {time.process_time() - cpu0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
