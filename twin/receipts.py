"""Receipts of a replication's own drivers, priced by the tariff without simulating.

The regression gate compares simulated figures, whose paired differences mix a pricing change
with drivers reshuffled by it (a driver who balks at a new quote changes who finds a spot
later). That noise hides small but real changes: a grace period of 10 → 12 minutes at the
airport moves revenue by 0.02 %, inside the noise of 3 replications. This figure has no such
noise: each driver of replication *r* (the same drivers in both runs, common random numbers)
pays for the stay they came for (arrival to arrival + dwell) at the lot they head for, with the
event product and validation they would hold, at an occupancy spread evenly over [0, 1) so
that every occupancy band is used, and (for a product sold at some entry lanes only) through an
entry lane spread evenly over the lot's lanes, so that a change of the lane list shows.
Nothing random sits between the draw and the receipt, so any difference is a pricing change
and the gate fails it (:data:`twin.regress.EXACT_FIGURES`).
"""

from __future__ import annotations

import math

import numpy as np

from twin.core.clock import DAY
from twin.core.pricing import PriceContext
from twin.scenario.model import Scenario
from twin.sim.model import ParkingModel

#: At most this many drivers are priced per replication: every k-th of the measured arrivals
#: (k fixed by their number), so a months-long scenario costs the gate a fraction of a second.
MAX_PRICED = 50_000

#: Occupancies at which drivers are priced: driver i at the fractional part of i × this
#: (a low-discrepancy sequence: every occupancy band gets its share of drivers).
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0

#: Entry lanes through which drivers are priced: driver i at lane 1 + floor(c × frac(i × this))
#: of a lot's c lanes (another irrational, so that lane and occupancy do not move together).
_SILVER = math.sqrt(2.0) - 1.0


def receipts_per_day(scenario: Scenario, replication: int, seed: int | None = None) -> float:
    """Sum of the receipts of drivers arriving in the measured window, per measured day (NaN
    without any tariff); above :data:`MAX_PRICED` drivers, every k-th scaled by k."""
    model = ParkingModel(scenario, replication=replication, seed=seed)
    tariffs = [lot.tariff for lot in model.lots]
    if all(t is None for t in tariffs):
        return math.nan
    d = model.drivers
    t0, t1 = scenario.warmup_s, scenario.horizon_s
    measured = np.flatnonzero((d.arrival >= t0) & (d.arrival < t1))
    step = -(-len(measured) // MAX_PRICED)
    measured = measured[::step]
    u_event, u_validation = (u[measured].tolist() for u in model.product_draws())
    occupancy = np.modf(measured * _GOLDEN)[0].tolist()
    arrival = d.arrival[measured].tolist()
    leave = (d.arrival[measured] + d.dwell[measured]).tolist()
    lots = d.lot[measured].tolist()
    specs = scenario.lot_specs
    lane_count = [
        spec.lanes.entry.count if spec.lanes is not None and spec.lanes.entry else 0
        for spec in specs
    ]
    spread = np.modf(measured * _SILVER)[0].tolist()
    total = 0
    for i, t in enumerate(arrival):
        tariff = tariffs[lots[i]]
        if tariff is None:
            continue
        if tariff.sells_products:
            count = lane_count[lots[i]]
            lane = 1 + int(spread[i] * count) if count and tariff.sells_at_lanes else None
            held = tariff.products_for(t, u_event[i], u_validation[i], lane)
            ctx = PriceContext(occupancy[i], prepaid=held.prepaid, validation=held.validation)
        elif tariff.dynamic is not None:
            ctx = PriceContext(occupancy[i])
        else:
            ctx = None
        total += tariff.price(t, leave[i], ctx)
    return step * total / 100.0 / ((t1 - t0) / DAY)
