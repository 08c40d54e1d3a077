"""The steady-state start: the cars parked at a run's first instant in the scenario's own demand.

The cars present at t0 in the model's own demand are exactly the arrivals of the past whose
stay outlasts t0 (the M_t/G/inf picture): a past window long enough for every stay is drawn
with the scenario's own demand streams (arrival profile, dwell, willingness to pay and price
elasticity against the tariff), and those still parked at t0 are returned as placements for
twin.sim.initial to place, oldest first, through the lot's normal allocation. Drawn from
streams of its own (``steady_seed``), so the run's own drivers are unchanged (CRN).
"""

from __future__ import annotations

import math
from datetime import timedelta

import numpy as np

from twin.core.clock import HOUR
from twin.core.lot import Lot
from twin.core.types import Vehicle, VehicleClass
from twin.scenario.dists import UNIT_SECONDS, Constant, Empirical
from twin.scenario.model import Scenario
from twin.sim.initial_laws import Placement
from twin.sim.rng import Streams

#: The past window of a steady start covers every stay but this share of the longest law.
STEADY_TAIL = 1e-5


def steady_seed(seed: int) -> int:
    """The seed of a steady start's own streams: independent of the run's, fixed by its seed."""
    return int(np.random.SeedSequence([int(seed), 0x5EAD]).generate_state(1)[0])


def past_window_s(scenario: Scenario) -> float:
    """How far back a steady start draws arrivals: long enough that a stay begun earlier is
    still running at t0 with probability below STEADY_TAIL (at least a day, at most a year)."""
    longest = 86400.0
    for stream in scenario.demand:
        laws = [stream.dwell, *(b.dwell for b in stream.dwell_by_hour)]
        for law in laws:
            if law is None:
                continue
            unit = UNIT_SECONDS[law.unit]
            if isinstance(law, Constant):
                q = law.value
            elif isinstance(law, Empirical):
                q = float(law._data().max())
            else:
                q = float(law.law().isf(STEADY_TAIL))
            longest = max(longest, q * unit)
    return min(math.ceil(longest / HOUR) * HOUR, 366 * 86400.0)


def steady_placements(
    scenario: Scenario, lots: list[Lot], seed: int, replication: int
) -> list[Placement]:
    """The cars parked at the scenario's start in its own demand's steady state (see module).

    Trace streams are left out: a recorded trace has no past before its start.
    """
    from twin.core.adaptive import elasticity_factor
    from twin.sim.build import build_lots, calendar_for
    from twin.sim.demand import draw_drivers

    generated = [s for s in scenario.demand if s.trace is None]
    if not generated:
        return []
    window = past_window_s(scenario)
    past = scenario.model_copy(
        update={
            "start": scenario.start - timedelta(seconds=window),
            "horizon_days": window / 86400.0,
            "warmup_hours": 0.0,
            "demand": generated,
            "initial": "empty",
        }
    )
    calendar = calendar_for(past)
    drivers = draw_drivers(past, Streams(steady_seed(seed), replication), calendar)
    still = np.flatnonzero(drivers.arrival + drivers.dwell > window)
    past_lots = build_lots(past, calendar)
    kept = []
    n_present = len(still)
    for i in still.tolist():
        k = int(drivers.lot[i])
        tariff = past_lots[k].tariff
        t = float(drivers.arrival[i])
        stay = float(drivers.dwell[i])
        u = drivers.accept_u[i]
        if tariff is not None and u == u:  # price-elastic candidate: came at this price?
            spec = generated[int(drivers.stream[i])].elasticity
            factor = elasticity_factor(
                tariff.hourly_rate_at(t), spec.reference_rate * 100.0, spec.value, spec.cap
            )
            if u * spec.cap >= factor:
                continue
        wtp = drivers.wtp_cents[i]
        if tariff is not None and math.isfinite(wtp):  # balked at the quoted price?
            occupancy = min(n_present / max(lots[k].capacity, 1), 1.0)
            budget = wtp * (stay / 3600.0) if drivers.wtp_per_hour[i] else wtp
            if tariff.quote(t, t + stay, occupancy) > budget:
                continue
        kept.append(i)
    out = []
    for i in kept:
        vehicle = Vehicle(
            f"steady:{i}",
            VehicleClass(int(drivers.vclass[i])),
            bool(drivers.handicap[i]),
            bool(drivers.ev[i]),
        )
        out.append(
            Placement(
                lot=int(drivers.lot[i]),
                vehicle=vehicle,
                entry_t=float(drivers.arrival[i]) - window,
                leave_t=float(drivers.arrival[i] + drivers.dwell[i]) - window,
            )
        )
    return out


__all__ = ["STEADY_TAIL", "past_window_s", "steady_placements", "steady_seed"]
