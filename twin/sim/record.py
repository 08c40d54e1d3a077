"""What one replication leaves behind: outcome codes, :class:`RunRecord` and its assembly.

:meth:`twin.sim.model.ParkingModel.run` writes per-car columns as cars park and leave; the cars
that left on the presorted departure stream (see :mod:`twin.sim.loop`) are filled in here after
the run, in one vectorised pass, and the columns of features a scenario does not use become
their neutral values (without barriers, arriving is passing the gate and leaving is exiting).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from twin.core.lot import Lot, Session
from twin.scenario.model import Scenario
from twin.sim.components import Component
from twin.sim.demand import Drivers
from twin.sim.status import status_metrics

#: Outcome codes of a vehicle record.
PARKED, BLOCKED, BALKED, RENEGED, WAITING, QUEUED, DETERRED, DIVERTING, TURNED_AWAY = range(9)
OUTCOMES = (
    "parked",
    "blocked",
    "balked",
    "reneged",
    "waiting",
    "in_entry_lane",
    "deterred",
    "diverting",  # driving to another lot of the network when the run ended
    "turned_away",  # left before the barrier on an operations component's word (display FULL)
)
#: ``deterred``: a price-elastic candidate driver who, at the price in force, did not come at
#: all (they are not arrivals; see ElasticitySpec).

#: Per driver, how its departure is scheduled (``stream_state`` in ParkingModel.run):
#: not arrived yet, parked on arrival (leaves on the presorted stream), or not (any departure
#: goes through SimPy's heap).
UNDECIDED, ON_STREAM, OFF_STREAM = 0, 1, 2


@dataclass
class RunRecord:
    """Raw columns of one replication; :mod:`twin.results` turns them into frames and figures."""

    scenario: Scenario
    replication: int
    seed: int
    drivers: Drivers
    lots: list[Lot]
    gate_t: np.ndarray  # time the car passed the entry barrier (NaN if it never did)
    entry_t: np.ndarray  # time it took a spot
    spot: np.ndarray  # spot index over all lots (lot offset + index in lot), -1 if none
    leave_t: np.ndarray  # time it left the spot
    exit_start_t: np.ndarray  # time its exit barrier service started
    exit_t: np.ndarray  # time it passed the exit barrier
    amount_cents: np.ndarray  # charged at exit (NaN if it did not exit)
    quote_cents: np.ndarray  # price shown at arrival when drivers compare it with their budget
    outcome: np.ndarray  # int8 codes, see OUTCOMES
    entry_lane_start_t: np.ndarray
    lot_of: np.ndarray  # int32: the lot where the driver parked or was last turned away
    lot_arrival_t: np.ndarray  # when the driver reached that lot (= arrival unless diverted)
    tries: np.ndarray  # other lots the driver considered after being turned away
    search_km: np.ndarray  # extra km driven between lots
    #: Adaptive pricing's decisions: (time s, rate table name, hourly rate $, mean occupancy
    #: the rule saw over the period that ended then (NaN for the opening rates), lot name).
    rates: list[tuple[float, str, float, float, str]] = field(default_factory=list)
    #: Cars that components parked (reservation holders): columns entry_t, leave_t,
    #: amount_cents, spot (same numbering as ``spot``) and lot; counted in occupancy and revenue.
    external_stays: pd.DataFrame | None = None
    component_metrics: dict[str, float] = field(default_factory=dict)
    component_frames: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def lot(self) -> Lot:
        """The facility of a one-lot scenario (the first lot of a network)."""
        return self.lots[0]


def settle_stream_departures(
    dep_t: np.ndarray,
    dep_i: np.ndarray,
    paid: np.ndarray,
    stream_state: bytearray,
    horizon: float,
    leave_rec: np.ndarray,
    amount_rec: np.ndarray,
) -> None:
    """Write the leave times and amounts of the cars that left on the presorted stream.

    ``dep_t``/``dep_i``/``paid`` are the stream in departure order with its end sentinel;
    the loop kept what each car paid in that order (written in sequence, not at a random
    driver), so here it goes to the drivers in one pass. Cars still parked at the horizon keep
    no leave time or amount (NaN).
    """
    n = len(dep_t) - 1
    dep_t, dep_i, paid = dep_t[:n], dep_i[:n], paid[:n]
    left = np.frombuffer(stream_state, dtype=np.uint8, count=n + 1)[dep_i] == ON_STREAM
    left &= dep_t < horizon
    who = dep_i[left]
    leave_rec[who] = dep_t[left]
    amount_rec[who] = paid[left]


@dataclass
class Columns:
    """The per-car columns the run wrote (views over numpy arrays, or shared placeholders for
    features the scenario does not use)."""

    outcome: memoryview
    entry: np.ndarray
    leave: np.ndarray
    amount: np.ndarray
    spot: np.ndarray
    gate_t: memoryview | np.ndarray
    lane_start: memoryview | np.ndarray
    exit_start: memoryview | np.ndarray
    exit_t: memoryview | np.ndarray
    quote: memoryview | np.ndarray
    tries: memoryview
    search_km: memoryview | np.ndarray
    lot_of: np.ndarray


def assemble_record(
    model_scenario: Scenario,
    replication: int,
    seed: int,
    drivers: Drivers,
    lots: list[Lot],
    cols: Columns,
    any_entry_lanes: bool,
    any_exit_lanes: bool,
    rearrived: dict[int, float],
    external: list[tuple[int, Session]],
    offsets: list[int],
    comps: list[Component],
    horizon: float,
    rates: list[tuple[float, str, float, float, str]],
) -> RunRecord:
    """The run's :class:`RunRecord` from its columns, components and lots."""
    sc, d, nan = model_scenario, drivers, math.nan
    outcomes = np.asarray(cols.outcome, dtype=np.int8)
    outcomes[cols.spot >= 0] = PARKED
    balked = outcomes == BALKED
    entry, leave, charged, spot = cols.entry, cols.leave, cols.amount, cols.spot
    lot_arrival = d.arrival  # a copy only when someone drove on to another lot
    if rearrived:
        lot_arrival = d.arrival.copy()
        lot_arrival[list(rearrived)] = list(rearrived.values())
    return RunRecord(
        scenario=sc,
        replication=replication,
        seed=seed,
        drivers=d,
        lots=lots,
        # without barriers, arriving is passing the gate and leaving the spot is exiting
        gate_t=(
            np.asarray(cols.gate_t, dtype=float)
            if any_entry_lanes
            else (np.where(balked, nan, d.arrival) if balked.any() else d.arrival)
        ),
        entry_t=entry,
        spot=spot,
        leave_t=leave,
        exit_start_t=np.asarray(cols.exit_start, dtype=float) if any_exit_lanes else leave,
        exit_t=np.asarray(cols.exit_t, dtype=float) if any_exit_lanes else leave,
        amount_cents=charged,
        quote_cents=np.asarray(cols.quote, dtype=float),
        outcome=outcomes,
        entry_lane_start_t=np.asarray(cols.lane_start, dtype=float),
        lot_of=cols.lot_of,
        lot_arrival_t=lot_arrival,
        tries=np.asarray(cols.tries, dtype=np.int16),
        search_km=np.asarray(cols.search_km, dtype=float),
        external_stays=external_stays(external, offsets),
        component_metrics={
            **{f"{c.name}.{key}": value for c in comps for key, value in c.finish(horizon).items()},
            **(status_metrics(lots, spot, entry, leave, external, sc) if comps else {}),
        },
        component_frames={
            f"{c.name}_{key}": frame for c in comps for key, frame in c.frames().items()
        },
        rates=rates,
    )


def external_stays(external: list[tuple[int, Session]], offsets: list[int]) -> pd.DataFrame:
    """The stays of cars that components parked (reservation holders, a start state's cars)."""
    return pd.DataFrame(
        {
            "entry_t": [s.entry_t for _, s in external],
            "leave_t": [math.nan if s.exit_t is None else s.exit_t for _, s in external],
            "amount_cents": [
                math.nan if s.amount_cents is None else s.amount_cents for _, s in external
            ],
            "spot": np.array([offsets[k] + s.spot.index for k, s in external], dtype=np.int64),
            "lot": np.array([k for k, _ in external], dtype=np.int32),
        }
    )
