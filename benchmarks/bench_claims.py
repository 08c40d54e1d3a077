"""Claims in the main model: what each claim strategy changes, at three scales.

Prints, in one run (docs/locking.md, "In the main model", quotes it):
  (a) the shipped downtown garage, each strategy against claims off, paired over the same
      replications (common random numbers, ``twin.api.compare``): the differences in the
      headline figures with their 95% intervals, and the claim figures;
  (b) scenarios/scale/claims_surge.yaml: 10,000 arrivals a minute on one counter row, each
      strategy once: claim time at the gate, waits, conflicts, failures; then (b2) the same on
      a row of 60,000 units, which fills during the surge: claims race for the last units;
  (d) scenarios/downtown_operations.yaml without its permits (claims do not cover permit
      holders yet): app reservations claim their holds' units through the same store as the
      gates; each strategy against claims off, paired as in (a), with the reservation figures;
  (c) with ``--city-hours H``: the city-scale scenario (500 lots, one row each) from 07:00
      for H hours with the first hour as warm-up, so the measured part is the 08-09h peak of
      10,000 arrivals a minute; each strategy and off once.
Every run's CPU time (``time.process_time``) and the machine's load (``os.getloadavg``) are
printed, because wall time on a shared machine says little.

    python benchmarks/bench_claims.py [--replications 5] [--skip-downtown] [--skip-surge]
                                      [--skip-operations] [--city-hours 1.5]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from twin.api import compare, load  # noqa: E402
from twin.results import metrics  # noqa: E402
from twin.scenario.claims import ClaimsSpec  # noqa: E402
from twin.sim.model import simulate  # noqa: E402

STRATEGIES = ("pessimistic", "optimistic", "atomic", "queue")
DOWNTOWN = ROOT / "scenarios" / "downtown_garage.yaml"
OPERATIONS = ROOT / "scenarios" / "downtown_operations.yaml"
SURGE = ROOT / "scenarios" / "scale" / "claims_surge.yaml"
CITY = ROOT / "scenarios" / "scale" / "city_scale.yaml"
console = Console(width=180)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def _with(scenario, strategy: str | None):
    """The scenario with claims off (None) or through ``strategy`` at its default latencies."""
    claims = None if strategy is None else ClaimsSpec(strategy=strategy)
    return scenario.model_copy(update={"claims": claims})


def _diff(table, name: str, scale: float = 1.0, digits: int = 3) -> str:
    row = table.loc[name]
    return (
        f"{row['diff'] * scale:+.{digits}f} "
        f"({row['ci_low'] * scale:+.{digits}f} … {row['ci_high'] * scale:+.{digits}f})"
    )


#: The headline differences each paired table starts with: (column, metric, scale, digits).
HEADLINE = (
    ("Δ blocked pp", "blocked_pct", 1.0, 3),
    ("Δ reneged pp", "reneged_pct", 1.0, 3),
    ("Δ revenue $/day", "revenue_per_day", 1.0, 1),
    ("Δ occupancy pp", "occupancy.mean", 100.0, 3),
)


def paired(title: str, base, replications: int, columns: tuple[str, ...], cells) -> None:
    """Each strategy against claims off, paired over the same replications: the headline
    differences, then ``columns`` (``cells(table, metrics)`` gives them), double bookings and
    the CPU time."""
    table = Table(title=title)
    for col in ("strategy", *(head[0] for head in HEADLINE), *columns, "double-booked", "CPU s"):
        table.add_column(col, justify="right")
    for strategy in STRATEGIES:
        t0 = time.process_time()
        cmp = compare(base, _with(base, strategy), replications=replications)
        cpu = time.process_time() - t0
        tab, b = cmp.table, cmp.b.metrics
        table.add_row(
            strategy,
            *(_diff(tab, name, scale, digits) for _, name, scale, digits in HEADLINE),
            *cells(tab, b),
            f"{int(b['claims.double_bookings'].sum())}",
            f"{cpu:.1f}",
        )
    console.print(table)
    console.print(f"({_load()})")


def downtown(replications: int) -> None:
    base = load(DOWNTOWN)
    paired(
        f"(a) downtown garage, each strategy − claims off, {replications} paired "
        f"replications, seed {base.seed}: mean (95% CI)",
        base,
        replications,
        ("claim ms mean / p95 / max", "waited %", "conflicts/day", "given back/day"),
        lambda tab, b: (
            f"{b['claims.wait_ms.mean'].mean():.2f} / {b['claims.wait_ms.p95'].mean():.2f} / "
            f"{b['claims.wait_ms.max'].max():.1f}",
            f"{b['claims.waited_pct'].mean():.2f}",
            f"{b['claims.conflicts_per_day'].mean():.1f}",
            f"{b['claims.no_spot_per_day'].mean():.1f}",
        ),
    )


def operations(replications: int) -> None:
    """(d): the downtown garage run with reservations (and payments, sensors), permits off."""
    full = load(OPERATIONS)
    base = full.model_copy(
        update={"operations": full.operations.model_copy(update={"permits": None})}
    )
    paired(
        f"(d) downtown_operations without permits, each strategy − claims off, "
        f"{replications} paired replications, seed {base.seed}: mean (95% CI)",
        base,
        replications,
        (
            "Δ reservation arrivals",
            "Δ bumped",
            "Δ hold waits",
            "gate claim ms mean / p95",
            "app claims/day",
            "app claim ms mean / p95",
            "app refused %",
            "app given back/day",
        ),
        lambda tab, b: (
            _diff(tab, "reservations.arrivals", digits=1),
            _diff(tab, "reservations.bumped", digits=1),
            _diff(tab, "reservations.hold_waits", digits=1),
            f"{b['claims.wait_ms.mean'].mean():.2f} / {b['claims.wait_ms.p95'].mean():.2f}",
            f"{b['claims.app.per_day'].mean():.1f}",
            f"{b['claims.app.wait_ms.mean'].mean():.2f} / {b['claims.app.wait_ms.p95'].mean():.2f}",
            f"{b['claims.app.refused_pct'].mean():.2f}",
            f"{b['claims.app.given_back_per_day'].mean():.2f}",
        ),
    )


def _once(scenario, strategy: str | None) -> tuple[dict, float, int]:
    sc = _with(scenario, strategy)
    t0 = time.process_time()
    rec = simulate(sc, 0)
    m = metrics(rec)
    return m, time.process_time() - t0, len(rec.drivers)


def single_runs(title: str, scenario, strategies: tuple[str | None, ...]) -> None:
    table = Table(title=title)
    for col in (
        "strategy",
        "arrivals",
        "claim ms mean",
        "p95",
        "max",
        "waited %",
        "conflicts / claim",
        "failed %",
        "blocked %",
        "diverted %",
        "double-booked",
        "CPU s",
    ):
        table.add_column(col, justify="right")
    for strategy in strategies:
        m, cpu, n = _once(scenario, strategy)
        on = strategy is not None
        per_day = m.get("claims.per_day", 0.0)
        table.add_row(
            strategy or "off",
            f"{n:,}",
            f"{m['claims.wait_ms.mean']:.2f}" if on else "0",
            f"{m['claims.wait_ms.p95']:.2f}" if on else "0",
            f"{m['claims.wait_ms.max']:.1f}" if on else "0",
            f"{m['claims.waited_pct']:.1f}" if on else "-",
            f"{m['claims.conflicts_per_day'] / per_day:.3f}" if on and per_day else "-",
            f"{m['claims.failed_pct']:.2f}" if on else "-",
            f"{m['blocked_pct']:.3f}",
            f"{m.get('diverted_pct', 0.0):.3f}",
            f"{int(m['claims.double_bookings'])}" if on else "-",
            f"{cpu:.1f}",
        )
    console.print(table)
    console.print(f"({_load()})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replications", type=int, default=5)
    parser.add_argument("--skip-downtown", action="store_true")
    parser.add_argument("--skip-surge", action="store_true")
    parser.add_argument("--skip-operations", action="store_true")
    parser.add_argument("--city-hours", type=float, default=0.0, help="0: skip the city")
    args = parser.parse_args()
    console.print(f"bench_claims: {_load()}")
    if not args.skip_downtown:
        downtown(args.replications)
    if not args.skip_operations:
        operations(args.replications)
    if not args.skip_surge:
        surge = load(SURGE)
        single_runs(
            "(b) claims_surge: 10,000 arrivals/min on one counter row, seed "
            f"{surge.seed}, measured {surge.horizon_s / 60 - surge.warmup_s / 60:.0f} min",
            surge,
            STRATEGIES,
        )
        # the same surge on a row of 60,000 units: it fills after ~6 min, so the claims race
        # for the last units and then are refused
        facility = surge.facility.model_copy(
            update={
                "levels": [
                    surge.facility.levels[0].model_copy(update={"spots": {"REGULAR": 60000}})
                ]
            }
        )
        small = surge.model_copy(update={"facility": facility})
        single_runs(
            "(b2) claims_surge on a row of 60,000 units (full after ~6 min): the last units",
            small,
            (None, *STRATEGIES),
        )
    if args.city_hours > 0:
        city = load(CITY)
        city = city.model_copy(
            update={
                "start": datetime(2026, 1, 5, 7, 0),
                "horizon_days": args.city_hours / 24.0,
                "warmup_hours": 1.0,
            }
        )
        single_runs(
            f"(c) city_scale from 07:00 for {args.city_hours:g} h (warm-up 1 h), 500 lots, "
            f"one row each, seed {city.seed}",
            city,
            (None, *STRATEGIES),
        )


if __name__ == "__main__":
    main()
