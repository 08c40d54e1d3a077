"""Throughput of the live mirror: events/s applied from a file replay as fast as possible.

A simulated week of the downtown garage (``twin.live.emit``: gates, bay sensors with
15-minute heartbeats, counters, payments; ~410,000 events) is written to JSONL, then:

* ``mirror``: events already validated, folded into the mirror (what the mirror itself costs,
  checkpoints included); the issue's target is 50,000 events/s;
* ``end to end``: FileReplay (with its replay clock: receive times) → Intake (pydantic
  validation, dedupe, order checks, the clock checks) → mirror, as ``parktwin live --replay``
  runs it; once more with the start-up heap frozen (``gc.freeze()``), as ``parktwin live``
  does before it reads the feed;
* ``with divergence``: the mirror with the divergence detectors and the model's prediction.

    .venv/bin/python benchmarks/bench_mirror.py [--days 7] [--repeat 3] [--feed FILE.jsonl]

Best of ``--repeat`` runs (the machine is shared; the best is the least disturbed), by wall
time and by CPU time of this process (``time.process_time``: events per CPU second, which
the other users of the machine disturb less), with the load average before and after.
End to end runs first, before the feed is parsed into memory for the mirror-only rows:
110,000 parsed events held alive make every full garbage collection scan them, which cost
the end-to-end row ~0.3 s of CPU on two days of the downtown garage.
"""

from __future__ import annotations

import argparse
import gc
import os
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


def best(fn, repeat: int) -> tuple[float, float]:
    """Least wall and least CPU time of ``repeat`` runs (seconds)."""
    wall, cpu = [], []
    for _ in range(repeat):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return min(wall), min(cpu)


def row(name: str, n: int, times: tuple[float, float]) -> None:
    wall, cpu = times
    print(
        f"{name:44s} {n / wall:>9,.0f} events/s ({wall:.2f} s)"
        f"  {n / cpu:>9,.0f} events per CPU-s ({1e6 * cpu / n:.1f} µs/event)"
    )


def load() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


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
        n = sum(1 for line in path.open(encoding="utf-8") if line.strip())
        print(f"feed: {n:,} events ({path.name}); {load()}")

        def end_to_end() -> None:
            Mirror(scenario).consume(Intake().events(FileReplay(path)))

        row("end to end (file → intake → mirror)", n, best(end_to_end, args.repeat))
        gc.collect()
        gc.freeze()
        row("  same, start-up heap frozen (parktwin live)", n, best(end_to_end, args.repeat))
        gc.unfreeze()

        events = [parse_json(x) for x in path.read_text(encoding="utf-8").splitlines()]
        row(
            "mirror (validated events)",
            n,
            best(lambda: Mirror(scenario).consume(events), args.repeat),
        )
        prediction = Prediction.from_scenario(scenario, replications=5, seed=910_000)
        row(
            "mirror + divergence",
            n,
            best(
                lambda: Mirror(scenario, divergence=Divergence(prediction)).consume(events),
                args.repeat,
            ),
        )
    print(load())
    print("target (issue 11): 50,000 events/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
