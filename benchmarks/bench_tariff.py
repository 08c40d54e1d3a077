"""Tariff benchmark: receipts priced per second by ``Tariff.price``.

Pricing is on the hot path of every exit. This prices the stays of the richest shipped tariff's
own drivers (``scenarios/city_ramp_tariff.yaml``, replication 0: operating-day maximums, an
evening window cap, early-bird and event flat rates, a prepaid event product with capped normal
tickets, a holiday at Sunday rates, validations, occupancy and time multipliers) with the
products and validations they hold, and, for comparison, the same stays under two tariffs the
fast paths price: the downtown garage's (bands, event flat, dynamic) and the surface lot's
(one table). Each figure is the best of --repeat rounds (the least disturbed by other load).

    python benchmarks/bench_tariff.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from twin.api import load  # noqa: E402
from twin.core.pricing import PriceContext, Tariff  # noqa: E402
from twin.sim.build import calendar_for  # noqa: E402
from twin.sim.model import ParkingModel  # noqa: E402

SCENARIOS = ROOT / "scenarios"


def stays(name: str) -> tuple[Tariff, list[tuple[float, float, PriceContext]]]:
    """A scenario's tariff and its replication-0 drivers' stays with what they hold."""
    model = ParkingModel(load(SCENARIOS / f"{name}.yaml"), replication=0)
    tariff = model.lots[0].tariff
    d = model.drivers
    u_event, u_validation = model.product_draws()
    out = []
    for i in range(len(d)):
        t = float(d.arrival[i])
        held = tariff.products_for(t, float(u_event[i]), float(u_validation[i]))
        ctx = PriceContext((i * 0.618034) % 1.0, prepaid=held.prepaid, validation=held.validation)
        out.append((t, t + float(d.dwell[i]), ctx))
    return tariff, out


def rate(tariff: Tariff, work: list[tuple[float, float, PriceContext]], repeat: int) -> float:
    price = tariff.price
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        for entry, exit_, ctx in work:
            price(entry, exit_, ctx)
        best = min(best, time.perf_counter() - t0)
    return len(work) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ramp, work = stays("city_ramp_tariff")
    others = {name: load(SCENARIOS / f"{name}.yaml") for name in ("downtown_garage", "surface_lot")}
    table = Table(title=f"Tariff.price on {len(work):,} stays of the city ramp's drivers")
    table.add_column("tariff")
    table.add_column("path")
    table.add_column("prices / s", justify="right")
    table.add_column("µs / price", justify="right")
    rows = [("city_ramp_tariff (richest shipped)", "by day", ramp)]
    for name, sc in others.items():
        rows.append((name, "fast", sc.tariff.build(calendar_for(sc))))
    for label, path, tariff in rows:
        r = rate(tariff, work, args.repeat)
        table.add_row(label, path, f"{r:,.0f}", f"{1e6 / r:.1f}")
    Console().print(table)


if __name__ == "__main__":
    main()
