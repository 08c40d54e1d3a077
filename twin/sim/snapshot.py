"""A lot's state taken from a simulated replication: where tests, benchmarks and "what if it
had been like Tuesday 10:30" studies get a realistic start state (twin.sim.initial runs from it)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from twin.core.types import SPOT_CAPACITY, VehicleClass
from twin.scenario.state import LotState, SessionState, StartState


def state_from_record(rec, at_s: float, *, with_remaining: bool = False) -> StartState:
    """The lot(s) of a simulated replication at ``at_s`` seconds as a :class:`StartState`:
    every car parked then, at its spot, with its vehicle and elapsed time.

    ``with_remaining`` also writes each car's actual remaining stay (a perfect-information
    state; without it a run from the state draws the remaining stays, as from a real lot).
    Cars parked by components are included; spot holds are not (the record keeps no history
    of spot statuses).
    """
    from twin.results import Facility, _stays

    sc = rec.scenario
    fac = Facility.of(rec)
    spot, starts, ends = _stays(rec)
    ends = np.where(np.isnan(ends), np.inf, ends)
    here = (starts <= at_s) & (ends > at_s)
    when: datetime = sc.start + timedelta(seconds=at_s)
    d = rec.drivers
    n_drivers = int((rec.spot >= 0).sum())
    parked_idx = np.flatnonzero(rec.spot >= 0)
    offsets = np.cumsum([0] + [lot.capacity for lot in rec.lots])
    lots: list[LotState] = []
    by_lot: dict[int, list[SessionState]] = {k: [] for k in range(len(rec.lots))}
    for r in np.flatnonzero(here).tolist():
        g = int(spot[r])
        k = int(fac.lot[g])
        local = g - int(offsets[k])
        spot_obj = rec.lots[k].spots[local]
        if r < n_drivers:
            i = int(parked_idx[r])
            vclass = VehicleClass(int(d.vclass[i])).name
            ev, handicap = bool(d.ev[i]), bool(d.handicap[i])
        else:  # parked by a component: its class is not recorded; the bay's size says most
            vclass = VehicleClass(min(SPOT_CAPACITY[spot_obj.type], 2)).name
            ev = handicap = False
        remaining = (ends[r] - at_s) / 60.0 if with_remaining and math.isfinite(ends[r]) else None
        by_lot[k].append(
            SessionState(
                spot=spot_obj.id,
                vehicle_class=vclass,
                ev=ev,
                handicap=handicap,
                elapsed_min=(at_s - float(starts[r])) / 60.0,
                remaining_min=remaining,
            )
        )
    multi = len(rec.lots) > 1
    for k, lot in enumerate(rec.lots):
        lots.append(LotState(lot=lot.lot_id if multi else None, sessions=by_lot[k]))
    return StartState(time=when, lots=lots)
