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

from dataclasses import fields

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


def queue_drivers(
    scenario: Scenario, state: StartState, streams: Streams, calendar: Calendar, tries: int
) -> dict[str, np.ndarray] | None:
    """The state's queued cars as driver columns (see the module docstring); None if none.

    Raises StateMismatch (one line naming the field) for an unknown lot or stream, or a car
    no demand stream can give a stay to.
    """
    rows = [
        (lot_index(scenario, lot, k), q, f"lots.{k}.queue.{j}")
        for k, lot in enumerate(state.lots)
        for j, q in enumerate(lot.queue)
    ]
    if not rows:
        return None
    # longest-waiting first: they reached the barrier first
    rows.sort(key=lambda r: -_waited_s(state, r[1]))
    n = len(rows)
    demand = scenario.demand
    names = [s.name for s in demand]
    lot_names = [spec.name for spec in scenario.lot_specs]
    behaviour = scenario.behaviour
    t0 = calendar.to_seconds(state.time)
    waited = np.array([_waited_s(state, q) for _, q, _ in rows])

    def patience_law(j: int):
        if behaviour.when_full != "wait":
            return None
        return demand[j].patience or behaviour.patience

    u_stream = streams.get("initial/queue-stream").random(n)
    chosen = np.zeros(n, dtype=np.int64)
    for i, (lot_k, q, path) in enumerate(rows):
        if q.stream is not None:
            if q.stream not in names:
                raise StateMismatch(
                    f"{path}.stream: unknown stream {q.stream!r} (streams: {', '.join(names)})"
                )
            chosen[i] = names.index(q.stream)
            continue
        vclass = q.vehicle_class or "REGULAR"
        ok = [
            j
            for j, s in enumerate(demand)
            if s.vehicle_class == vclass
            and s.lot in (None, "*", lot_names[lot_k])
            and dwell_law(s, t0, calendar) is not None
        ] or [j for j, s in enumerate(demand) if dwell_law(s, t0, calendar) is not None]
        if not ok:
            raise StateMismatch(f"{path}: no demand stream has a dwell law to draw its stay")
        w = np.array([arrival_rate(demand[j], t0 - waited[i], calendar) for j in ok])
        if waited[i] > 0:
            w *= np.array(
                [
                    float(survival(law, np.array([waited[i]]))[0]) if law is not None else 1.0
                    for law in map(patience_law, ok)
                ]
            )
        if w.sum() <= 0:
            w = np.ones(len(ok))
        cum = np.cumsum(w / w.sum())
        chosen[i] = ok[min(int((cum < u_stream[i]).sum()), len(ok) - 1)]

    u_patience = streams.get("initial/queue-patience").random(n)
    u_dwell = streams.get("initial/queue-dwell").random(n)
    patience = np.zeros(n)
    dwell = np.zeros(n)
    for i in range(n):
        j = int(chosen[i])
        law = patience_law(j)
        if law is not None:
            patience[i] = remaining_stays(law, waited[i : i + 1], u_patience[i : i + 1])[0]
        stay = dwell_law(demand[j], t0, calendar)
        if stay is None:
            raise StateMismatch(
                f"{rows[i][2]}.stream: stream {names[j]!r} has no dwell law to draw a stay from"
            )
        dwell[i] = remaining_stays(stay, np.zeros(1), u_dwell[i : i + 1])[0]

    kinds: list[LanesSpec] = []
    for spec in scenario.lot_specs:
        lanes = spec.lanes or LanesSpec()
        if lanes not in kinds:
            kinds.append(lanes)
    exit_service = np.zeros((len(kinds), n))
    for k, kind in enumerate(kinds):
        if kind.exit is not None:
            gen = streams.get(f"initial/queue-exit/{k}")
            exit_service[k] = np.maximum(kind.exit.service.sample_seconds(gen, n), 0.0)
    flags = [
        (VehicleClass[q.vehicle_class or "REGULAR"].value, q.ev, q.handicap) for _, q, _ in rows
    ]
    return {
        "arrival": np.zeros(n),
        "dwell": dwell,
        "vclass": np.array([f[0] for f in flags], dtype=np.int8),
        "ev": np.array([f[1] for f in flags], dtype=bool),
        "handicap": np.array([f[2] for f in flags], dtype=bool),
        "stream": chosen.astype(np.int16),
        "wtp_cents": np.full(n, np.inf),
        "wtp_per_hour": np.zeros(n, dtype=bool),
        "patience": patience,
        "entry_service": np.zeros((len(kinds), n)),
        "exit_service": exit_service,
        "lot": np.array([r[0] for r in rows], dtype=np.int32),
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
