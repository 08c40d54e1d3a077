"""City-scale benchmark: wall time and peak memory of city-day replications.

Runs ``scenarios/scale/city_scale.yaml`` (500 lots × 1,000 spots, peaks of 10,000 arrivals per
minute) and prints:
  (a) one replication on one core: wall time split into build+draw, event loop and figures,
      vehicles per second, and the peak resident memory of the process that ran it;
  (b) N replications on the local process pool and on a Dask LocalCluster (both with the
      machine's cores), wall time, replications per minute and the largest worker's peak memory.
Each measurement runs in a fresh child process so peak memory is that run's own.

    python benchmarks/bench_city.py [--hours 24] [--replications 20] [--skip-parallel]

``--hours`` simulates only the first hours of the day (a quick look); figures then cover that
part only. The targets (issue 4) are one city-day in ≤ 60 s on one core and ≤ 1.5 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "scale" / "city_scale.yaml"


def _one(hours: float) -> dict:
    """Child process: one replication, timed by phase."""
    from twin.api import load
    from twin.results import metrics
    from twin.sim.model import ParkingModel

    sc = load(SCENARIO)
    if hours < 24:
        sc = sc.model_copy(update={"horizon_days": hours / 24, "warmup_hours": 0.0})
    t0 = time.perf_counter()
    model = ParkingModel(sc)
    t1 = time.perf_counter()
    rec = model.run()
    t2 = time.perf_counter()
    m = metrics(rec)
    t3 = time.perf_counter()
    return {
        "vehicles": len(rec.drivers),
        "build_draw_s": t1 - t0,
        "loop_s": t2 - t1,
        "figures_s": t3 - t2,
        "total_s": t3 - t0,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "blocked_pct": m["blocked_pct"],
        "diverted_pct": m.get("diverted_pct", 0.0),
        "occupancy_peak": m["occupancy.peak"],
    }


class _PeakSampler(threading.Thread):
    """Largest resident size of any process under this one, sampled every half second.

    ``RUSAGE_CHILDREN`` misses the process pool's workers (they are children of the forkserver,
    not of this process), so both executors are measured the same way: by watching them.
    """

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak_mb = 0.0
        self._stop_event = threading.Event()

    def run(self) -> None:
        import psutil

        me = psutil.Process()
        while not self._stop_event.wait(0.5):
            for proc in me.children(recursive=True):
                try:
                    rss = proc.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.peak_mb = max(self.peak_mb, rss)

    def stop(self) -> float:
        self._stop_event.set()
        self.join()
        return self.peak_mb


def _many(hours: float, replications: int, executor: str) -> dict:
    """Child process: N replications through an executor."""
    from twin.api import load
    from twin.executors import make_executor
    from twin.experiments import run

    sc = load(SCENARIO)
    if hours < 24:
        sc = sc.model_copy(update={"horizon_days": hours / 24, "warmup_hours": 0.0})
    sampler = _PeakSampler()
    sampler.start()
    t0 = time.perf_counter()
    with make_executor(executor) as ex:
        result = run(sc, replications=replications, executor=ex)
        workers = ex.workers
    wall = time.perf_counter() - t0
    return {
        "worker_peak_mb": sampler.stop(),
        "executor": executor,
        "workers": workers,
        "replications": result.replications,
        "wall_s": wall,
        "per_minute": 60 * result.replications / wall,
        "parent_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "children_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def _child(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise SystemExit(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--replications", type=int, default=20)
    parser.add_argument("--skip-parallel", action="store_true")
    parser.add_argument("--skip-one", action="store_true", help="only the N-replication runs")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "one":
            print(json.dumps(_one(float(rest[0]))))
        else:
            print(json.dumps(_many(float(rest[0]), int(rest[1]), rest[2])))
        return

    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"city-scale benchmark: {SCENARIO.relative_to(ROOT)}, {args.hours:g} h, "
        f"{os.cpu_count()} cores"
    )
    if not args.skip_one:
        one = _child(["one", str(args.hours)])
        table = Table(title="one replication, one core")
        for col in (
            "vehicles",
            "build+draw s",
            "event loop s",
            "figures s",
            "total s",
            "veh/s",
            "peak MB",
        ):
            table.add_column(col, justify="right")
        table.add_row(
            f"{one['vehicles']:,}",
            f"{one['build_draw_s']:.1f}",
            f"{one['loop_s']:.1f}",
            f"{one['figures_s']:.1f}",
            f"{one['total_s']:.1f}",
            f"{one['vehicles'] / one['total_s']:,.0f}",
            f"{one['peak_mb']:,.0f}",
        )
        console.print(table)
        console.print(
            f"blocked {one['blocked_pct']:.2f}%, diverted {one['diverted_pct']:.2f}%, "
            f"peak occupancy {100 * one['occupancy_peak']:.1f}%; targets: ≤ 60 s and ≤ 1,536 MB"
        )
    if args.skip_parallel:
        return
    par = Table(title=f"{args.replications} replications")
    for col in (
        "executor",
        "workers",
        "wall s",
        "replications/min",
        "largest worker MB",
        "parent MB",
    ):
        par.add_column(col, justify="right")
    for executor in ("processes", "dask"):
        r = _child(["many", str(args.hours), str(args.replications), executor])
        par.add_row(
            r["executor"],
            str(r["workers"]),
            f"{r['wall_s']:.1f}",
            f"{r['per_minute']:.2f}",
            f"{r['worker_peak_mb']:,.0f}",
            f"{r['parent_peak_mb']:,.0f}",
        )
    console.print(par)


if __name__ == "__main__":
    main()
