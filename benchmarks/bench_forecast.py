"""Forecast speed: a 4-hour, 20-replication forecast of the downtown garage from a busy state.

The state is a snapshot of a simulated Wednesday at 10:30 (about 400 cars parked, the garage
filling towards its lunchtime peak), taken once; the timed part is ``twin.api.forecast`` from
it, on one core. Target (issue 11): under 1 s. Prints the best and median of ``--repeat`` runs,
wall-clock and CPU time (the process's own; on a busy machine wall time also counts waiting).

    python benchmarks/bench_forecast.py [--repeat 5] [--hours 4] [--replications 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from twin import api  # noqa: E402
from twin.sim.model import ParkingModel  # noqa: E402
from twin.sim.snapshot import state_from_record  # noqa: E402

SNAPSHOT_S = (2 * 24 + 12 + 10.5) * 3600.0  # from Sunday 12:00: Wednesday 10:30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--hours", type=float, default=4.0)
    ap.add_argument("--replications", type=int, default=20)
    args = ap.parse_args()
    scenario = api.load(ROOT / "scenarios" / "downtown_garage.yaml")
    state = state_from_record(ParkingModel(scenario, 0, seed=7).run(), SNAPSHOT_S)
    api.forecast(state, scenario, hours=args.hours, replications=2)  # imports, caches
    took, cpu = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        fc = api.forecast(state, scenario, hours=args.hours, replications=args.replications)
        took.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    print(f"state: {state.time:%a %H:%M}, {state.n_sessions} cars parked")
    for line in fc.summary():
        print("  " + line)
    print(
        f"forecast {args.hours:g} h x {args.replications} replications (downtown garage): "
        f"best {min(took):.3f} s, median {statistics.median(took):.3f} s "
        f"over {args.repeat} runs (target < 1 s); CPU time best {min(cpu):.3f} s, median "
        f"{statistics.median(cpu):.3f} s (what one core spends: wall time includes waiting "
        "for the CPU on a shared machine)"
    )


if __name__ == "__main__":
    main()
