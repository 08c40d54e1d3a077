"""Claim strategies on real stores: measured ceilings against the locking study's predictions.

1. Measures the study's latency inputs on this machine (``twin.locking_live.measure_inputs``):
   PostgreSQL and Redis round trips, statement and commit (WAL flush) time, Redis CPU per
   command, the queue consumer's time per request.
2. Runs the study's sweep (``benchmarks/locking_live.yaml``) against the real stores with
   ``--clients`` client processes: PostgreSQL for pessimistic and optimistic, Redis for atomic
   and queue. Prints the measured table (the same columns as ``parktwin locking``).
3. Reruns the simulated study with the measured inputs and prints, per strategy, the measured
   ceiling, the predicted one, their ratio, and the seed's rule of thumb.

    python benchmarks/bench_locking_stores.py [--clients 8] [--out DIR]
        [--pg postgresql://127.0.0.1:5432/test] [--redis redis://127.0.0.1:6379/0]

The machine's load (``uptime``) is printed before and after: on a shared machine the measured
ceilings fall with it, the predictions do not. Nothing here is a test; the invariants are in
tests/adapters/test_stores.py.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

STUDY = ROOT / "benchmarks" / "locking_live.yaml"
SEED_RANGE = {
    "pessimistic": "100–500",
    "optimistic": "~5K",
    "atomic": "10K+",
    "queue": "~1K",
}


def _uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _versions(pg: str, redis_url: str) -> str:
    import psycopg
    import redis

    with psycopg.connect(pg) as conn:
        pg_version = conn.execute("SHOW server_version").fetchone()[0]
    redis_version = redis.Redis.from_url(redis_url).info("server")["redis_version"]
    return f"PostgreSQL {pg_version}, Redis {redis_version}"


def _ceiling(ceilings, name: str) -> tuple[float, str]:
    row = ceilings.set_index("strategy").loc[name]
    return float(row["ceiling_tps"]), str(row["limited_by"])


def main() -> None:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from twin.locking_live import measure_inputs, predicted_spec, run_live_study
    from twin.scenario.locking import load_locking_study
    from twin.sim.locking_study import run_locking_study
    from twin.views.locking import locking_tables

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument(
        "--pg", default=os.environ.get("PARKTWIN_PG_DSN", "postgresql://127.0.0.1:5432/test")
    )
    parser.add_argument(
        "--redis", default=os.environ.get("PARKTWIN_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    parser.add_argument("--strategy", action="append", help="only this strategy (repeatable)")
    parser.add_argument("--out", type=Path, help="folder for measured/predicted tables (CSV)")
    args = parser.parse_args()
    console = Console(width=160)

    spec = load_locking_study(STUDY)
    names = args.strategy or list(spec.strategies)
    before = _uptime()
    console.print(f"machine: {_cpu()}, {os.cpu_count()} cores; {_versions(args.pg, args.redis)}")
    console.print(f"before: {before}")
    started = time.perf_counter()
    inputs = measure_inputs({"postgres": args.pg, "redis": args.redis})
    console.print(
        "measured inputs (ms): " + json.dumps({k: round(v, 4) for k, v in inputs.items()})
    )
    measured = run_live_study(spec, [args.pg, args.redis], strategies=names, clients=args.clients)
    after_live = _uptime()
    for table in locking_tables(measured):
        console.print(table)
    predicted, shared = {}, {}
    for name in names:
        sim = predicted_spec(spec, inputs, name, args.clients)
        predicted[name] = run_locking_study(sim, strategies=[name])
        sim = predicted_spec(spec, inputs, name, args.clients, shared_host=True)
        shared[name] = run_locking_study(sim, strategies=[name])

    summary = Table(
        title=f"ceilings (TPS), measured with {args.clients} client processes vs predicted "
        "by the study from the measured inputs",
        title_justify="left",
    )
    headers = ("strategy", "measured", "predicted", "ratio", "shared host", "ratio", "seed")
    for header in headers:
        summary.add_column(header, justify="left" if header == "strategy" else "right")
    summary.add_column("measured: ended by")
    summary.add_column("predicted: ended by")
    summary.add_column("shared host: ended by")
    rows = []
    for name in names:
        m, m_by = _ceiling(measured.ceilings, name)
        p, p_by = _ceiling(predicted[name].ceilings, name)
        h, h_by = _ceiling(shared[name].ceilings, name)
        ratio = p / m if m > 0 else float("nan")
        ratio_h = h / m if m > 0 else float("nan")
        rows.append(
            {
                "strategy": name,
                "measured_tps": m,
                "predicted_tps": p,
                "ratio": ratio,
                "shared_tps": h,
                "ratio_shared": ratio_h,
                "measured_limited_by": m_by,
                "predicted_limited_by": p_by,
                "shared_limited_by": h_by,
            }
        )
        summary.add_row(
            name,
            f"{m:,.0f}",
            f"{p:,.0f}",
            f"{ratio:.2f}",
            f"{h:,.0f}",
            f"{ratio_h:.2f}",
            SEED_RANGE[name],
            m_by,
            p_by,
            h_by,
        )
    console.print(summary)

    def order(key: str) -> list[str]:  # a ceiling below the sweep's first rate counts as 0
        return [r["strategy"] for r in sorted(rows, key=lambda r: np.nan_to_num(r[key]))]

    for key in ("predicted_tps", "shared_tps"):
        same = order("measured_tps") == order(key)
        console.print(
            f"order, lowest first: measured {order('measured_tps')}; {key} "
            f"{order(key)} ({'same' if same else 'DIFFERENT'})"
        )
    console.print("\nfor docs/locking.md:\n")
    console.print(
        "| strategy | measured ceiling (TPS) | predicted, own CPUs | ratio "
        "| predicted, shared host | ratio | seed |"
    )
    console.print("|---|---:|---:|---:|---:|---:|---|")
    low = f"< {min(spec.offered_tps):g}"

    def tps(x: float) -> str:
        return low if np.isnan(x) else f"{x:,.0f}"

    for r in rows:
        console.print(
            f"| {r['strategy']} | {tps(r['measured_tps'])} | {tps(r['predicted_tps'])} | "
            f"{r['ratio']:.2f} | {tps(r['shared_tps'])} | {r['ratio_shared']:.2f} | "
            f"{SEED_RANGE[r['strategy']]} |"
        )
    console.print(f"after the live sweep: {after_live}")
    console.print(f"after: {_uptime()}; took {time.perf_counter() - started:.0f} s")
    if args.out is not None:
        import pandas as pd

        args.out.mkdir(parents=True, exist_ok=True)
        measured.table.to_csv(args.out / "measured.csv", index=False)
        pd.concat([p.table for p in predicted.values()]).to_csv(
            args.out / "predicted.csv", index=False
        )
        pd.concat([p.table for p in shared.values()]).to_csv(
            args.out / "predicted_shared_host.csv", index=False
        )
        pd.DataFrame(rows).to_csv(args.out / "ceilings.csv", index=False)
        (args.out / "inputs.json").write_text(
            json.dumps(
                {
                    **inputs,
                    "clients": args.clients,
                    "uptime_before": before,
                    "uptime_after": after_live,
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
