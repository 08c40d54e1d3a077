"""Throughput of the live mirror: events/s applied from a file replay as fast as possible.

A simulated week of the downtown garage (``twin.live.emit``: gates, bay sensors with
15-minute heartbeats, counters, payments; ~410,000 events) is written to JSONL, then:

* ``mirror``: events already validated, folded into the mirror (what the mirror itself costs,
  checkpoints included); the issue's target is 50,000 events/s;
* ``end to end``: FileReplay → Intake (pydantic validation, dedupe, order checks) → mirror;
* ``with divergence``: the mirror with the divergence detectors and the model's prediction.

    .venv/bin/python benchmarks/bench_mirror.py [--days 7] [--repeat 3] [--feed FILE.jsonl]

Best of ``--repeat`` runs (the machine is shared; the best is the least disturbed).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from parktwin.adapters.events import parse_json
from parktwin.adapters.sources import FileReplay, Intake
from parktwin.adapters.sources.files import write_jsonl
from twin import api
from twin.live.divergence import Divergence, Prediction
from twin.live.emit import emit
from twin.live.mirror import Mirror


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenario", default="scenarios/downtown_garage.yaml")
    ap.add_argument("--days", type=float, default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--feed", type=Path, default=None, help="an emitted JSONL to reuse")
    args = ap.parse_args()
    scenario = api.load(args.scenario)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.feed
        if path is None:
            path = Path(tmp) / "feed.jsonl"
            write_jsonl(path, emit(scenario, days=args.days).lines)
        lines = path.read_text(encoding="utf-8").splitlines()
        events = [parse_json(x) for x in lines]
        n = len(events)
        print(f"feed: {n:,} events ({path.name})")

        t = best(lambda: Mirror(scenario).consume(events), args.repeat)
        print(f"mirror (validated events)   {n / t:>10,.0f} events/s  ({t:.2f} s)")

        def end_to_end() -> None:
            Mirror(scenario).consume(Intake().events(FileReplay(path)))

        t = best(end_to_end, args.repeat)
        print(f"end to end (file → intake → mirror) {n / t:>10,.0f} events/s  ({t:.2f} s)")

        prediction = Prediction.from_scenario(scenario, replications=5, seed=910_000)
        t = best(
            lambda: Mirror(scenario, divergence=Divergence(prediction)).consume(events),
            args.repeat,
        )
        print(f"mirror + divergence         {n / t:>10,.0f} events/s  ({t:.2f} s)")
    print("target (issue 11): 50,000 events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
