"""A start state's queue: cars waiting at an entry for a spot when the run begins.

They become the run's first drivers, so the model's own waiting line serves them (first come,
first served with its other waiting drivers, reneging when patience runs out, counted like any
driver): each arrives at the start instant at the barrier of its lot, longest-waiting first,
with

* no entry-lane service (it is at the barrier already) and any price accepted (it chose to
  wait, so it neither balks nor is deterred);
* its **remaining patience** drawn from the patience law conditioned on the time it has
  waited, ``P | P > waited``, by the same inversion as a parked car's remaining stay
  (twin.sim.initial_laws.remaining_stays): an exponential patience is memoryless, a lognormal
  one is not. A scenario whose drivers do not wait (``when_full: leave``) turns them away at
  once if no spot fits;
* its stay drawn from its stream's dwell law at the start instant (it has not parked yet);
* its stream the state's, or the most likely one among the streams of its vehicle class: each
  weighted by its arrival rate when the car began to wait times the chance that a driver of it
  waits that long.

Randomness comes from streams of its own (``initial/queue-*``), so the run's own drivers draw
exactly what they draw from an empty start; their row numbers (vehicle ids) shift by the
queue's length. In the outputs the queued cars are drivers arriving at the start (``arrival_s``
0; the wait before it is not in the frames) and count as arrivals, parked, reneged or blocked.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from twin.core.clock import Calendar
from twin.core.types import VehicleClass
from twin.scenario.model import LanesSpec, Scenario
from twin.scenario.state import QueuedState, StartState
from twin.sim.demand import Drivers
from twin.sim.initial_laws import (
    StateMismatch,
    arrival_rate,
    dwell_law,
    lot_index,
    remaining_stays,
    survival,
)
from twin.sim.rng import Streams

__all__ = ["queue_drivers", "with_queue"]


def _waited_s(state: StartState, q: QueuedState) -> float:
    if q.waited_min is not None:
        return q.waited_min * 60.0
    if q.since is not None:
        return (state.time - q.since).total_seconds()
    return 0.0


@dataclass
class _Plan:
    """What a queue's drivers need that is the same in every replication (computed once per
    (scenario, state) pair: a forecast's replications only draw random numbers)."""

    lots: np.ndarray  # int32, per car (longest-waiting first)
    waited: np.ndarray  # seconds
    cum: np.ndarray  # (n, streams): cumulative chance of the stream each car came from
    patience: list  # per stream: its patience law (None: drivers do not wait)
    dwell: list  # per stream: its dwell law at the start (None: none)
    vclass: np.ndarray
    ev: np.ndarray
    handicap: np.ndarray
    exit_lanes: list  # per lane setting: its exit lane spec (None: no exit barrier)


_PLANS: dict[tuple[int, int], tuple[Scenario, StartState, _Plan]] = {}


def _plan(scenario: Scenario, state: StartState, calendar: Calendar) -> _Plan:
    key = (id(scenario), id(state))
    hit = _PLANS.get(key)
    if hit is not None and hit[0] is scenario and hit[1] is state:
        return hit[2]
    rows = [
        (lot_index(scenario, lot, k), q, f"lots.{k}.queue.{j}")
        for k, lot in enumerate(state.lots)
        for j, q in enumerate(lot.queue)
    ]
    rows.sort(key=lambda r: -_waited_s(state, r[1]))  # longest-waiting first: came first
    n = len(rows)
    demand = scenario.demand
    names = [s.name for s in demand]
    lot_names = [spec.name for spec in scenario.lot_specs]
    behaviour = scenario.behaviour
    t0 = calendar.to_seconds(state.time)
    waited = np.array([_waited_s(state, q) for _, q, _ in rows])
    patience = [
        (s.patience or behaviour.patience) if behaviour.when_full == "wait" else None
        for s in demand
    ]
    dwell = [dwell_law(s, t0, calendar) for s in demand]
    cum = np.zeros((n, len(demand)))
    for i, (lot_k, q, path) in enumerate(rows):
        if q.stream is not None:
            if q.stream not in names:
                raise StateMismatch(
                    f"{path}.stream: unknown stream {q.stream!r} (streams: {', '.join(names)})"
                )
            j = names.index(q.stream)
            if dwell[j] is None:
                raise StateMismatch(
                    f"{path}.stream: stream {q.stream!r} has no dwell law to draw a stay from"
                )
            cum[i, j:] = 1.0
            continue
        vclass = q.vehicle_class or "REGULAR"
        ok = [
            j
            for j, s in enumerate(demand)
            if s.vehicle_class == vclass
            and s.lot in (None, "*", lot_names[lot_k])
            and dwell[j] is not None
        ] or [j for j in range(len(demand)) if dwell[j] is not None]
        if not ok:
            raise StateMismatch(f"{path}: no demand stream has a dwell law to draw its stay")
        w = np.zeros(len(demand))
        for j in ok:
            w[j] = arrival_rate(demand[j], t0 - waited[i], calendar)
            if waited[i] > 0 and patience[j] is not None:
                w[j] *= float(survival(patience[j], waited[i : i + 1])[0])
        if w.sum() <= 0:
            w[ok] = 1.0
        cum[i] = np.cumsum(w / w.sum())
    kinds: list[LanesSpec] = []
    for spec in scenario.lot_specs:
        lanes = spec.lanes or LanesSpec()
        if lanes not in kinds:
            kinds.append(lanes)
    plan = _Plan(
        lots=np.array([r[0] for r in rows], dtype=np.int32),
        waited=waited,
        cum=cum,
        patience=patience,
        dwell=dwell,
        vclass=np.array(
            [VehicleClass[q.vehicle_class or "REGULAR"].value for _, q, _ in rows], dtype=np.int8
        ),
        ev=np.array([q.ev for _, q, _ in rows], dtype=bool),
        handicap=np.array([q.handicap for _, q, _ in rows], dtype=bool),
        exit_lanes=[kind.exit for kind in kinds],
    )
    if len(_PLANS) >= 8:
        _PLANS.clear()
    _PLANS[key] = (scenario, state, plan)
    return plan


def queue_drivers(
    scenario: Scenario, state: StartState, streams: Streams, calendar: Calendar, tries: int
) -> dict[str, np.ndarray] | None:
    """The state's queued cars as driver columns (see the module docstring); None if none.

    Raises StateMismatch (one line naming the field) for an unknown lot or stream, or a car
    no demand stream can give a stay to.
    """
    plan = _plan(scenario, state, calendar)
    n = len(plan.lots)
    if n == 0:
        return None
    u_stream = streams.get("initial/queue-stream").random(n)
    u_patience = streams.get("initial/queue-patience").random(n)
    u_dwell = streams.get("initial/queue-dwell").random(n)
    n_streams = plan.cum.shape[1]
    chosen = np.minimum((plan.cum < u_stream[:, None]).sum(axis=1), n_streams - 1)
    patience = np.zeros(n)
    dwell = np.zeros(n)
    for j in np.unique(chosen).tolist():
        ix = np.flatnonzero(chosen == j)
        if plan.patience[j] is not None:
            patience[ix] = remaining_stays(plan.patience[j], plan.waited[ix], u_patience[ix])
        dwell[ix] = remaining_stays(plan.dwell[j], np.zeros(len(ix)), u_dwell[ix])
    exit_service = np.zeros((len(plan.exit_lanes), n))
    for k, lane in enumerate(plan.exit_lanes):
        if lane is not None:
            gen = streams.get(f"initial/queue-exit/{k}")
            exit_service[k] = np.maximum(lane.service.sample_seconds(gen, n), 0.0)
    return {
        "arrival": np.zeros(n),
        "dwell": dwell,
        "vclass": plan.vclass.copy(),
        "ev": plan.ev.copy(),
        "handicap": plan.handicap.copy(),
        "stream": chosen.astype(np.int16),
        "wtp_cents": np.full(n, np.inf),
        "wtp_per_hour": np.zeros(n, dtype=bool),
        "patience": patience,
        "entry_service": np.zeros((len(plan.exit_lanes), n)),
        "exit_service": exit_service,
        "lot": plan.lots.copy(),
        "divert_u": streams.get("initial/queue-divert").random((tries, n)),
        "accept_u": np.full(n, np.nan),
    }


def with_queue(
    scenario: Scenario, drivers: Drivers, streams: Streams, calendar: Calendar
) -> Drivers:
    """``drivers`` with the start state's queued cars in front (unchanged without a queue)."""
    state = scenario.initial
    if not isinstance(state, StartState) or not state.n_queued:
        return drivers
    queued = queue_drivers(scenario, state, streams, calendar, drivers.divert_u.shape[0])
    if queued is None:
        return drivers
    if queued["entry_service"].shape[0] != drivers.entry_service.shape[0]:
        raise AssertionError("lane settings of the queue and the drivers differ")
    columns = {
        f.name: np.concatenate([queued[f.name], np.asarray(getattr(drivers, f.name))], axis=-1)
        for f in fields(Drivers)
        if f.name in queued
    }
    return Drivers(**columns, trace_dropped=drivers.trace_dropped, lane_kinds=drivers.lane_kinds)
