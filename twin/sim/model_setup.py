"""Setting a replication up: the per-driver inputs and records the model's callbacks close over,
entry/exit lanes, price checks, the network's diversion plan, adaptive pricing's timetable.

Everything here runs once per replication, before the first event; what runs per car stays
in :meth:`twin.sim.model.ParkingModel.run` (closures over these values, the cheapest way to
reach state in CPython) and :mod:`twin.sim.loop`.

Per-driver inputs and records are memoryviews of numpy arrays: indexed twice as fast as numpy
and returning plain Python numbers, at 8 bytes a value where a list holds a 32-byte object per
value. Lists would save nothing: building them costs as much as the reads they speed up, and
their objects stream through the CPU cache and push out the parked cars' state, which is what
makes a large lot slower per car. It is also what lets a city-day fit in memory.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import simpy

from twin.core.lot import Lot
from twin.core.types import Vehicle, VehicleClass
from twin.scenario.model import Scenario
from twin.sim.demand import Drivers
from twin.sim.events import ARRIVE, DEPART, Call, call_at


def seq(values: np.ndarray, used: bool = True) -> memoryview | np.ndarray:
    """A per-driver input; features a scenario does not use keep their (often broadcast)
    arrays untouched."""
    return memoryview(values) if used else values


def blank(n: int, fill: float, used: bool = True) -> memoryview | np.ndarray:
    """A per-driver record to be written during the run; a shared read-only placeholder when
    the scenario does not use the feature."""
    if not used:
        return np.broadcast_to(np.float64(fill), n)
    # zeros are calloc'd: pages never written cost no memory
    return memoryview(np.zeros(n) if fill == 0.0 else np.full(n, fill))


def fleet() -> list[Vehicle]:
    """One shared Vehicle per (class, permit, EV) profile, indexed by profile code.

    The core needs only those three facts, and the simulator identifies a driver by its index,
    so per-car objects would be pure overhead on the hot path.
    """
    vehicles = [
        Vehicle(f"sim:{c.name}{':permit' * h}{':ev' * e}", c, bool(h), bool(e))
        for c in VehicleClass
        for h in (0, 1)
        for e in (0, 1)
    ]
    assert all(v.profile == k for k, v in enumerate(vehicles))
    return vehicles


def profiles(d: Drivers) -> np.ndarray:
    """Each driver's profile code (an index into :func:`fleet`)."""
    return (d.vclass * 4 + d.handicap * 2 + d.ev).astype(np.int8)


@dataclass
class Lanes:
    """Barrier lanes per lot: their next-free times (a heap per lot, None without barriers)
    and each driver's service time at its lot's kind of lane."""

    entry_free: list[list[float] | None]
    exit_free: list[list[float] | None]
    any_entry: bool
    any_exit: bool
    entry_service: list[Any]
    exit_service: list[Any]


def lanes(sc: Scenario, d: Drivers) -> Lanes:
    """The barrier lanes of every lot (FIFO multi-server queues: a car's barrier time follows
    from the lanes' next-free times)."""
    specs = sc.lot_specs
    entry_free = [
        [0.0] * spec.lanes.entry.count if spec.lanes and spec.lanes.entry else None
        for spec in specs
    ]
    exit_free = [
        [0.0] * spec.lanes.exit.count if spec.lanes and spec.lanes.exit else None for spec in specs
    ]
    any_entry = any(free is not None for free in entry_free)
    any_exit = any(free is not None for free in exit_free)
    entry_rows = [seq(row, any_entry) for row in d.entry_service]
    exit_rows = [seq(row, any_exit) for row in d.exit_service]
    return Lanes(
        entry_free,
        exit_free,
        any_entry,
        any_exit,
        [entry_rows[kind] for kind in d.lane_kinds],
        [exit_rows[kind] for kind in d.lane_kinds],
    )


def checks_price(lots: list[Lot], d: Drivers) -> bool:
    """Whether arrivals compare a quoted price with their budget (a tariff and finite budgets)."""
    return any(lot.tariff is not None for lot in lots) and bool(np.isfinite(d.wtp_cents).any())


def elasticities(sc: Scenario) -> list[tuple[float, float, float] | None]:
    """Per demand stream, its price elasticity (value, reference rate in cents, cap) or None."""
    return [
        (s.elasticity.value, s.elasticity.reference_rate * 100.0, s.elasticity.cap)
        if s.elasticity is not None
        else None
        for s in sc.demand
    ]


@dataclass
class Diversion:
    """A network's plan for drivers turned away: travel minutes and km between lots, the
    other lots nearest first, each try's uniform draws per driver, the diversion rule."""

    minutes: list[list[float]]
    km: list[list[float]]
    nearest_first: list[list[int]]
    divert_u: list[memoryview]
    rule: Any


def diversion(sc: Scenario, lots: list[Lot], d: Drivers) -> Diversion:
    network = sc.network
    assert network is not None
    minutes = sc.travel_minutes()
    km = [[m * network.speed_kmh / 60.0 for m in row] for row in minutes]
    nearest_first = [
        sorted((j for j in range(len(lots)) if j != k), key=lambda j, k=k: minutes[k][j])
        for k in range(len(lots))
    ]
    return Diversion(
        minutes, km, nearest_first, [seq(row) for row in d.divert_u], network.diversion
    )


def schedule_adaptive_pricing(
    env: simpy.Environment,
    sc: Scenario,
    lot: Lot,
    log: list[tuple[float, str, float, float, str]],
) -> None:
    """Sample occupancy per rate table and let the pricing rule move rates every period.

    Occupancy is sampled every ``sample_minutes`` and credited to the table (time band) in
    force at that instant; at each period's end the rule sees each band's mean and the lot
    gets a new tariff; it quotes arrivals and prices every exit from then on, as a
    garage pay station would.
    """
    spec = sc.pricing_policy
    assert spec is not None
    rule = spec.build()
    names = lot.tariff.table_names
    sample = spec.sample_minutes * 60.0
    period = spec.adjust_every_days * 86400.0
    horizon = sc.horizon_s
    total = [0.0] * len(names)
    count = [0] * len(names)

    def rates() -> dict[int, int]:
        # the hourly rate of each incremental table (flat tables are not adjusted)
        out = {}
        for k, table in enumerate((lot.tariff.default, *(b.table for b in lot.tariff.bands))):
            if table.flat_cents is None:
                out[k] = round(table.period_cents * 60 / table.period_minutes)
        return out

    for k, cents in rates().items():
        log.append((0.0, names[k], cents / 100.0, math.nan, lot.lot_id))

    def on_sample(event: Call) -> None:
        t = env._now
        k = lot.tariff.table_index_at(t)
        total[k] += lot.n_occupied / lot.capacity
        count[k] += 1
        if t + sample < horizon:
            call_at(env, t + sample, ARRIVE, on_sample, None)

    def on_adjust(event: Call) -> None:
        t = env._now
        seen = {k: total[k] / count[k] for k in range(len(names)) if count[k]}
        new = rule.adjust(rates(), seen)
        lot.tariff = lot.tariff.with_hourly_rates(new)
        for k, cents in new.items():
            log.append((t, names[k], cents / 100.0, seen.get(k, math.nan), lot.lot_id))
        total[:] = [0.0] * len(names)
        count[:] = [0] * len(names)
        if t + period < horizon:
            call_at(env, t + period, ARRIVE, on_adjust, None)

    call_at(env, sample / 2, ARRIVE, on_sample, None)
    if period < horizon:
        call_at(env, period, DEPART, on_adjust, None)


def schedule_progress(env: simpy.Environment, horizon: float, progress: Any) -> None:
    """Report the fraction of simulated time done every 1 % of the horizon."""
    step = horizon / 100.0

    def tick(event: Call) -> None:
        progress(min(env._now / horizon, 1.0))
        if env._now + step < horizon:
            call_at(env, env._now + step, ARRIVE, tick, None)

    call_at(env, step, ARRIVE, tick, None)


def waiting_lines(lots: list[Lot]) -> list[deque[int]]:
    """Per lot, the drivers waiting for a spot, longest-waiting first."""
    return [deque() for _ in lots]
