"""A feed that starts long after the scenario's start: what the mirror costs, and what it scores.

The mirror's clock is the scenario's start (its epoch) until the feed's first event. Before
session 5 it ticked every minute (and checkpointed every 2 h) from there to the first event,
so a feed starting 60 days on was slow, and the divergence detectors judged 60 days of an
empty lot (occupancy samples of zeros, occupancy alerts) that the feed never covered.

The feed is ``--days`` of the downtown garage emitted from a start ``--late-days`` after the
scenario's, mirrored with the scenario as it is (epoch = the scenario's start), once with the
divergence detectors (a ``--replications`` prediction computed once, outside the timing) and
once without; beside it, the same feed mirrored with its own start as the epoch (no gap).

    .venv/bin/python benchmarks/bench_late_feed.py [--late-days 60] [--days 1] [--repeat 3]

Reports the best of ``--repeat`` (CPU seconds of this process, and wall), the ticks run, the
divergence samples taken before the first event, and the alerts raised before it, with the
load average.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta

from parktwin.adapters.events import parse_json
from twin import api
from twin.live.divergence import Divergence, Prediction
from twin.live.emit import emit
from twin.live.mirror import Mirror


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="scenarios/downtown_garage.yaml")
    ap.add_argument("--late-days", type=float, default=60.0)
    ap.add_argument("--days", type=float, default=1.0)
    ap.add_argument("--replications", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    scenario = api.load(args.scenario)
    late_start = scenario.start + timedelta(days=args.late_days)
    late = api.load(args.scenario, {"start": late_start.isoformat()})
    events = [parse_json(x) for x in emit(late, days=args.days).lines]
    first = min(e.dateObserved for e in events)
    print(
        f"feed: {len(events):,} events from {first:%Y-%m-%d %H:%M} ({args.days:g} days); "
        f"scenario start {scenario.start:%Y-%m-%d %H:%M}; {load()}"
    )
    # each epoch's own prediction: the model's time of week is counted from its start
    predictions = {
        id(sc): Prediction.from_scenario(sc, args.replications, seed=910_000)
        for sc in (scenario, late)
    }
    for with_div in (False, True):
        for name, sc in (("scenario's epoch", scenario), ("feed's own start as epoch", late)):
            cpu, wall = [], []
            for _ in range(args.repeat):
                div = Divergence(predictions[id(sc)]) if with_div else None
                w0, c0 = time.perf_counter(), time.process_time()
                mirror = Mirror(sc, divergence=div).consume(events)
                cpu.append(time.process_time() - c0)
                wall.append(time.perf_counter() - w0)
            fold = mirror.fold
            first_t = mirror.seconds(first)
            ticks = round((fold.next_tick - fold.start_t) / fold.config.tick_s) - 1
            before = 0 if div is None else sum(1 for s in div.samples if s[0] < first_t)
            alerts = sum(1 for a in fold.alerts if a.raised_t < first_t)
            print(
                f"{'with' if with_div else 'without'} divergence, {name:26s}: "
                f"CPU {min(cpu):6.2f} s, wall {min(wall):6.2f} s; ticks run {ticks:,}; "
                f"samples before the first event {before:,}; alerts raised before it {alerts}; "
                f"alerts in all {len(fold.alerts)}"
            )
    print(load())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
