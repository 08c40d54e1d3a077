"""Begin a replication from a state instead of an empty lot.

Two sources of a start (``Scenario.initial``):

* a :class:`~twin.scenario.state.StartState` (a file, the live mirror, a snapshot of a run):
  each open session is placed through the core Lot - at its exact spot when the state names
  one, else by the lot's own allocation (restricted to the level/type the state gives) - and
  its **remaining** stay is drawn from the dwell law *conditioned on the time already parked*:
  ``X | X > elapsed`` by inversion of the survival function (``isf(u · sf(elapsed))``) with
  scipy.stats, so an exponential stay is memoryless and a lognormal one is not. The dwell law
  is the one of the demand stream the car most likely came from: among streams of its vehicle
  class, weighted by the stream's arrival rate at the car's arrival time times the probability
  that such a stay lasts the elapsed time (M_t/G/∞ posterior), and the stream's arrival-hour
  band when it has ``dwell_by_hour``.
* ``steady``: the lot in its typical state for the start's time of day. The cars present at
  t0 in the model's own demand are exactly the arrivals of the past whose stay outlasts t0
  (the M_t/G/∞ picture): a past window long enough for every stay is drawn with the scenario's
  own demand streams (arrival profile, dwell, willingness to pay and price elasticity against
  the tariff), and those still parked at t0 are placed, oldest first, through the lot's normal
  allocation. Their ages and remaining stays are the model's joint law, length-biased as it
  should be. Capacity is respected by the placement (cars that do not fit are counted and left
  out, as the lot would have turned them away), waiting lines and diversions of the past are
  not replayed. Drawn from streams of its own, so the run's own drivers are unchanged (CRN).

Initial cars are reported like the cars operations components park: in ``external_stays``
(occupancy, peaks, revenue when they leave inside the measured window), not as arrivals.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import numpy as np

from twin.core.clock import Calendar
from twin.core.lot import Lot, Session
from twin.core.types import SPOT_CAPACITY, SpotStatus, SpotType, Vehicle, VehicleClass
from twin.scenario.model import Scenario
from twin.scenario.state import SessionState, SpotHoldState, StartState
from twin.sim.initial_laws import (
    Placement,
    StateMismatch,
    arrival_rate,
    dwell_law,
    laws_of,
    lot_index,
    remaining_stays,
    slot_rates,
    survival,
)
from twin.sim.initial_steady import past_window_s, steady_placements, steady_seed
from twin.sim.rng import Streams

__all__ = [
    "Placement",
    "StateMismatch",
    "arrival_rate",
    "dwell_law",
    "past_window_s",
    "remaining_stays",
    "seed_lots",
    "start_from",
    "steady_placements",
    "steady_seed",
    "survival",
]


# -- a state file's sessions -----------------------------------------------------------------
def _spot_ids(lot: Lot) -> dict[str, int]:
    """Spot id -> index, built once per lot object (a state names hundreds of spots)."""
    ids = getattr(lot, "_state_spot_ids", None)
    if ids is None:
        ids = {s.id: s.index for s in lot.spots}
        with contextlib.suppress(AttributeError):  # a lot with __slots__: no cache
            lot._state_spot_ids = ids  # type: ignore[attr-defined]
    return ids


def _vehicle_class(lot: Lot, s: SessionState, path: str) -> VehicleClass:
    """The session's class; unknown: what its named bay takes (at most REGULAR), or REGULAR."""
    if s.vehicle_class is not None:
        return VehicleClass[s.vehicle_class]
    if s.spot is not None:
        spot = _spot_ids(lot).get(s.spot)
        if spot is not None:
            return VehicleClass(min(SPOT_CAPACITY[lot.spots[spot].type], VehicleClass.REGULAR))
    if s.spot_type is not None:
        return VehicleClass(min(SPOT_CAPACITY[SpotType[s.spot_type]], VehicleClass.REGULAR))
    return VehicleClass.REGULAR


def _where(
    lot: Lot, item: SessionState | SpotHoldState, path: str
) -> tuple[int | None, int | None, SpotType | None]:
    """(spot index, level index, spot type) the state names, checked against the lot."""
    spot = level = stype = None
    if item.spot is not None:
        ids = _spot_ids(lot)
        if item.spot not in ids:
            raise StateMismatch(f"{path}.spot: no spot {item.spot!r} in lot {lot.lot_id!r}")
        spot = ids[item.spot]
    if item.level is not None:
        names = [lv.name for lv in lot.levels]
        if item.level not in names:
            raise StateMismatch(
                f"{path}.level: unknown level {item.level!r} (levels: {', '.join(names)})"
            )
        level = names.index(item.level)
    if item.spot_type is not None:
        stype = SpotType[item.spot_type]
    return spot, level, stype


@dataclass
class _Prepared:
    """What a state's placements need that is the same in every replication: computed once
    per (scenario, state) pair, so a forecast's replications only draw random numbers."""

    rows: list[tuple[int, SessionState, str]]
    elapsed: np.ndarray
    entry: np.ndarray
    cum: np.ndarray  # (n, streams): cumulative posterior of the stream each car came from
    fixed: np.ndarray  # stream index given by the state, or -1
    law_of: list[np.ndarray]  # per stream: the dwell law (object) per car
    where: list[tuple[int | None, int | None, SpotType | None]]
    vehicles: list[Vehicle]
    t0: float


_PREPARED: dict[tuple[int, int], tuple[Scenario, StartState, _Prepared]] = {}


def _prepare(
    scenario: Scenario, state: StartState, lots: list[Lot], calendar: Calendar
) -> _Prepared:
    key = (id(scenario), id(state))
    hit = _PREPARED.get(key)
    if hit is not None and hit[0] is scenario and hit[1] is state:
        return hit[2]
    t0 = calendar.to_seconds(state.time)  # 0 when the run starts at the state's time
    rows: list[tuple[int, SessionState, str]] = []
    for k, lot_state in enumerate(state.lots):
        lot_k = lot_index(scenario, lot_state, k)
        rows += [(lot_k, s, f"lots.{k}.sessions.{j}") for j, s in enumerate(lot_state.sessions)]
    n = len(rows)
    elapsed = np.array(
        [
            s.elapsed_min * 60.0
            if s.elapsed_min is not None
            else (state.time - s.entered).total_seconds()
            if s.entered is not None
            else 0.0  # unknown: replaced per replication by a steady-state car's age
            for _, s, _ in rows
        ],
        dtype=float,
    )
    entry = t0 - elapsed
    demand = scenario.demand
    lot_names = [spec.name for spec in scenario.lot_specs]
    names = [s.name for s in demand]
    slots = np.array(
        [calendar.weekday(t) * 24 + calendar.hour(t) for t in entry.tolist()], dtype=np.int64
    )
    # weights[j, i]: stream j's arrival rate at car i's arrival times the survival of its
    # stay to the elapsed time (the M_t/G/inf posterior); fallback[j, i] the survival alone
    vclass = [_vehicle_class(lots[lot_k], s, path) for lot_k, s, path in rows]
    weights = np.zeros((len(demand), n))
    fallback = np.zeros((len(demand), n))
    law_of = []
    for j, stream in enumerate(demand):
        laws = np.empty(n, dtype=object)
        for law, idx in laws_of(stream, entry, list(range(n)), calendar):
            laws[idx] = law
        law_of.append(laws)
        ok = [
            i
            for i, (lot_k, s, _) in enumerate(rows)
            if stream.vehicle_class == vclass[i].name
            and stream.lot in (None, "*", lot_names[lot_k])
        ]
        for law, idx in laws_of(stream, entry, ok, calendar):
            ix = np.array(idx)
            fallback[j, ix] = survival(law, elapsed[ix])
        weights[j] = slot_rates(stream, slots) * fallback[j]
    has_law = np.array([1.0 if s.dwell is not None else 0.0 for s in demand])
    fixed = np.full(n, -1, dtype=np.int64)
    cum = np.zeros((n, len(demand)))
    for i, (_, s, path) in enumerate(rows):
        if s.stream is not None:
            if s.stream not in names:
                raise StateMismatch(
                    f"{path}.stream: unknown stream {s.stream!r} (streams: {', '.join(names)})"
                )
            fixed[i] = names.index(s.stream)
            continue
        w = weights[:, i]
        if w.sum() <= 0:
            w = fallback[:, i]
        if w.sum() <= 0:  # no stream of its class can say: any stream with a law
            w = has_law
        if w.sum() <= 0:
            raise StateMismatch(f"{path}: no demand stream has a dwell law to draw its stay")
        cum[i] = np.cumsum(w / w.sum())
    where = [_where(lots[lot_k], s, path) for lot_k, s, path in rows]
    vehicles = [
        Vehicle(s.plate or s.ticket or f"state:{i}", vclass[i], s.handicap, s.ev)
        for i, (_, s, _) in enumerate(rows)
    ]
    prepared = _Prepared(rows, elapsed, entry, cum, fixed, law_of, where, vehicles, t0)
    if len(_PREPARED) >= 8:
        _PREPARED.clear()
    _PREPARED[key] = (scenario, state, prepared)
    return prepared


def state_placements(
    scenario: Scenario, state: StartState, lots: list[Lot], calendar: Calendar, streams: Streams
) -> list[Placement]:
    """The state's sessions as placements, each with its remaining stay drawn (see module)."""
    prep = _prepare(scenario, state, lots, calendar)
    n = len(prep.rows)
    if n == 0:
        return []
    u_stream = streams.get("initial/stream").random(n)
    u_rest = streams.get("initial/remaining").random(n)
    n_streams = prep.cum.shape[1]
    chosen = np.minimum((prep.cum < u_stream[:, None]).sum(axis=1), n_streams - 1)
    chosen = np.where(prep.fixed >= 0, prep.fixed, chosen)
    remaining = np.zeros(n)
    for j in np.unique(chosen).tolist():
        ix = np.flatnonzero(chosen == j)
        laws = prep.law_of[j][ix]
        by: dict[int, tuple[object, list[int]]] = {}
        for i, law in zip(ix.tolist(), laws.tolist(), strict=True):
            if law is not None:
                by.setdefault(id(law), (law, []))[1].append(i)
        for law, idx in by.values():
            sel = np.array(idx)
            remaining[sel] = remaining_stays(law, prep.elapsed[sel], u_rest[sel])
    out = []
    t0 = prep.t0
    entry = prep.entry.copy()
    leave = t0 + remaining
    unknown = [i for i, (_, s, _) in enumerate(prep.rows) if not s.age_known]
    if unknown:
        _steady_ages(scenario, prep, lots, streams, unknown, entry, leave)
    for i, (lot_k, s, _) in enumerate(prep.rows):
        spot, level, stype = prep.where[i]
        rest = s.remaining_min * 60.0 if s.remaining_min is not None else leave[i] - t0
        out.append(
            Placement(
                lot=lot_k,
                vehicle=prep.vehicles[i],
                entry_t=float(entry[i]),
                leave_t=float(t0 + rest),
                spot=spot,
                level=level,
                spot_type=stype,
                prepaid=s.prepaid,
                validation=s.validation,
                path=prep.rows[i][2],
            )
        )
    return out


def _steady_ages(
    scenario: Scenario,
    prep: _Prepared,
    lots: list[Lot],
    streams: Streams,
    unknown: list[int],
    entry: np.ndarray,
    leave: np.ndarray,
) -> None:
    """Cars of unknown age: entry and leave times of a car of the same class and lot drawn
    at random from a steady-state sample at the state's time (in place). Without one of its
    class, any car of the lot; without any, the car keeps age 0 and a fresh stay."""
    t0 = prep.t0
    at_t0 = scenario.model_copy(
        update={"start": scenario.start + timedelta(seconds=t0)} if t0 else {}
    )
    sample = steady_placements(at_t0, lots, streams.seed, streams.replication)
    u = streams.get("initial/age").random(len(unknown))
    by_key: dict[tuple[int, int], list[Placement]] = {}
    by_lot: dict[int, list[Placement]] = {}
    for p in sample:
        by_key.setdefault((p.lot, int(p.vehicle.vclass)), []).append(p)
        by_lot.setdefault(p.lot, []).append(p)
    for k, i in enumerate(unknown):
        lot_k = prep.rows[i][0]
        pool = by_key.get((lot_k, int(prep.vehicles[i].vclass))) or by_lot.get(lot_k)
        if not pool:
            continue
        pick = pool[min(int(u[k] * len(pool)), len(pool) - 1)]
        entry[i] = t0 + pick.entry_t
        leave[i] = t0 + pick.leave_t


# -- placing the cars in the lots and letting them go ------------------------------------------
class _ByPlace:
    """Per lot, spots of each (level, type) in the strategy's order, for placements that name
    a level and/or type but no spot: the lot's own choice restricted to that part."""

    def __init__(self, lot: Lot) -> None:
        order = sorted(lot.spots, key=lot.strategy.key)
        self.groups: dict[tuple[int, int], list] = {}
        for spot in reversed(order):  # best last: popped first
            self.groups.setdefault((spot.level, int(spot.type)), []).append(spot)
        self.rank = {spot.index: r for r, spot in enumerate(order)}
        self.lot = lot

    def best(self, vehicle: Vehicle, level: int | None, stype: SpotType | None):
        """The best AVAILABLE spot the vehicle may use on ``level`` / of ``stype``."""
        lot = self.lot
        if stype is not None:
            tiers: tuple[tuple[SpotType, ...], ...] = ((stype,),)
        else:
            tiers = lot.tiers(vehicle)
        levels = range(len(lot.levels)) if level is None else (level,)
        for tier in tiers:
            best = None
            for t in tier:
                if SPOT_CAPACITY[t] < vehicle.vclass:
                    continue
                for lv in levels:
                    group = self.groups.get((lv, int(t)))
                    while group and group[-1].status is not SpotStatus.AVAILABLE:
                        group.pop()  # taken or out of use: never free again before t0
                    if group and (
                        best is None or self.rank[group[-1].index] < self.rank[best.index]
                    ):
                        best = group[-1]
            if best is not None:
                return best
        return None


@dataclass
class Seeded:
    """What the seeding did: placed sessions (lot, session) and what could not be placed."""

    sessions: list[tuple[int, Session]]
    not_placed: int = 0
    held: int = 0


def _apply_holds(
    scenario: Scenario,
    state: StartState,
    lots: list[Lot],
    calendar: Calendar,
    schedule: Callable[[float, Callable[[float], None]], None],
    spot_freed: Callable[[int, float], None],
) -> int:
    count = 0
    for k, lot_state in enumerate(state.lots):
        lot_k = lot_index(scenario, lot_state, k)
        lot = lots[lot_k]
        for j, hold in enumerate(lot_state.holds):
            spot, level, stype = _where(lot, hold, f"lots.{k}.holds.{j}")
            if spot is not None:
                targets = [spot]
            else:
                targets = [
                    s.index
                    for s in lot.spots
                    if s.level == level and (stype is None or s.type == stype)
                ]
            status = SpotStatus.RESERVED if hold.status == "held" else SpotStatus.MAINTENANCE
            for index in targets:
                if lot.spots[index].status is SpotStatus.OCCUPIED:
                    continue  # a car still stands there: the state's sessions win
                lot.set_status(index, status, 0.0)
                count += 1
            if hold.until is not None:
                until = calendar.to_seconds(hold.until)

                def back(t: float, lot_k=lot_k, lot=lot, targets=targets, status=status) -> None:
                    for index in targets:
                        if lot.spots[index].status is status:
                            lot.set_status(index, SpotStatus.AVAILABLE, t)
                    spot_freed(lot_k, t)

                schedule(until, back)
    return count


def seed_lots(
    scenario: Scenario,
    lots: list[Lot],
    calendar: Calendar,
    seed: int,
    replication: int,
    streams: Streams,
    horizon: float,
    schedule: Callable[[float, Callable[[float], None]], None],
    spot_freed: Callable[[int, float], None],
) -> Seeded:
    """Place the start's cars in ``lots`` and schedule their departures (and holds' ends).

    ``schedule(t, fn)`` runs ``fn(t)`` at time ``t`` in the model's event order (departures
    first at equal times); ``spot_freed(k, t)`` lets waiting drivers of lot ``k`` in. Called by
    :meth:`twin.sim.model.ParkingModel.run` before the first arrival.
    """
    initial = scenario.initial
    held = 0
    if initial == "steady":
        placements = steady_placements(scenario, lots, seed, replication)
        placements.sort(key=lambda p: p.entry_t)  # oldest first: they came first
    elif isinstance(initial, StartState):
        # exact spots before the lot chooses for the others, then oldest first
        placements = state_placements(scenario, initial, lots, calendar, streams)
        placements.sort(key=lambda p: (p.spot is None, p.level is None, p.entry_t))
    else:
        return Seeded([])
    seeded = Seeded([])
    exact = [p for p in placements if p.spot is not None]
    others = [p for p in placements if p.spot is None]
    # exact bays first (a car stands there whatever is held or closed), then holds and
    # closures, then the cars the lot places itself, which must respect them
    for p, session in _place(lots, exact):
        _keep(lots, p, session, seeded, horizon, schedule, spot_freed)
    if isinstance(initial, StartState):
        held = _apply_holds(scenario, initial, lots, calendar, schedule, spot_freed)
    for p, session in _place(lots, others):
        _keep(lots, p, session, seeded, horizon, schedule, spot_freed)
    seeded.held = held
    return seeded


def _place(lots: list[Lot], placements: list[Placement]) -> list[tuple[Placement, Session | None]]:
    """Open each placement's session through the core Lot (None: no bay for it)."""
    where: list[_ByPlace | None] = [None] * len(lots)
    out = []
    for p in placements:
        lot = lots[p.lot]
        if p.spot is not None:
            spot = lot.spots[p.spot]
            if spot.status is not SpotStatus.AVAILABLE:
                raise StateMismatch(f"{p.path}.spot: {spot.id} holds another car of the state")
            session = lot.allocate_spot(p.spot, p.vehicle, p.entry_t, enforce_rules=False)
        elif p.level is not None or p.spot_type is not None:
            if where[p.lot] is None:
                where[p.lot] = _ByPlace(lot)
            spot = where[p.lot].best(p.vehicle, p.level, p.spot_type)
            session = (
                None
                if spot is None
                else lot.allocate_spot(spot.index, p.vehicle, p.entry_t, enforce_rules=False)
            )
        else:
            session = lot.try_allocate(p.vehicle, p.entry_t)
        out.append((p, session))
    return out


def _keep(
    lots: list[Lot],
    p: Placement,
    session: Session | None,
    seeded: Seeded,
    horizon: float,
    schedule: Callable[[float, Callable[[float], None]], None],
    spot_freed: Callable[[int, float], None],
) -> None:
    """Record a placed car and schedule its departure (inside the horizon)."""
    if session is None:
        seeded.not_placed += 1
        return
    lot = lots[p.lot]
    if p.prepaid or p.validation is not None:
        lot.hold(session.ticket, p.prepaid, p.validation)
    seeded.sessions.append((p.lot, session))
    if p.leave_t < horizon:

        def leave(t: float, k: int = p.lot, ticket: int = session.ticket) -> None:
            lots[k].release(ticket, t)
            spot_freed(k, t)

        schedule(max(p.leave_t, 0.0), leave)


# -- a scenario that begins from a state ------------------------------------------------------
def start_from(
    scenario: Scenario,
    state: StartState | Literal["steady", "empty"],
    *,
    warmup_hours: float | Literal["auto"] = 0.0,
) -> Scenario:
    """``scenario`` beginning from ``state``: its clock starts at the state's time (a state) or
    at its own start (``steady``), with ``warmup_hours`` (default 0: a run from a state needs
    no warm-up; that is the point). The state is checked against the facility now, so a bad
    one fails before anything runs, with one line naming its field (StateMismatch)."""
    update: dict = {"initial": state, "warmup_hours": warmup_hours}
    if isinstance(state, StartState):
        update["start"] = state.time
    elif state not in ("steady", "empty"):
        raise StateMismatch(f"start state: expected a state, 'steady' or 'empty', got {state!r}")
    out = scenario.model_copy(update=update)
    if warmup_hours != "auto" and warmup_hours >= out.horizon_days * 24:
        raise StateMismatch(
            f"warm-up ({warmup_hours:g} h) is not shorter than the horizon "
            f"({out.horizon_days * 24:g} h)"
        )
    if isinstance(state, StartState):
        check_state(out, state)
    return out


def check_state(scenario: Scenario, state: StartState) -> None:
    """Raise StateMismatch (one line, naming the field) if ``state`` does not fit the facility:
    unknown lot, spot, level or stream, two cars in one spot, or a hold on an unknown spot."""
    from twin.sim.build import build_lots, calendar_for

    calendar = Calendar(epoch=state.time)
    lots = build_lots(scenario, calendar_for(scenario))
    placements = state_placements(scenario, state, lots, calendar, Streams(0, 0))
    seen: dict[tuple[int, int], int] = {}
    for j, p in enumerate(placements):
        if p.spot is not None:
            if (p.lot, p.spot) in seen:
                spot_id = lots[p.lot].spots[p.spot].id
                raise StateMismatch(f"sessions: two cars in spot {spot_id} of {lots[p.lot].lot_id}")
            seen[(p.lot, p.spot)] = j
            if SPOT_CAPACITY[lots[p.lot].spots[p.spot].type] < p.vehicle.vclass:
                spot = lots[p.lot].spots[p.spot]
                raise StateMismatch(
                    f"sessions: a {p.vehicle.vclass.name} vehicle does not fit "
                    f"{spot.type.name} spot {spot.id}"
                )
    for k, lot_state in enumerate(state.lots):
        lot = lots[lot_index(scenario, lot_state, k)]
        for j, hold in enumerate(lot_state.holds):
            _where(lot, hold, f"lots.{k}.holds.{j}")
    if state.n_queued:  # unknown streams, cars no stream can give a stay: fail now
        from twin.sim.initial_queue import queue_drivers

        queue_drivers(scenario, state, Streams(0, 0), calendar, 0)
    # a dry run on fresh lots: every car must find its bay (the run then never drops one)
    scenario = scenario.model_copy(update={"initial": state})
    lots = build_lots(scenario, calendar_for(scenario))
    exact = [p for p in placements if p.spot is not None]
    others = sorted(
        (p for p in placements if p.spot is None), key=lambda p: (p.level is None, p.entry_t)
    )
    _place(lots, exact)
    _apply_holds(scenario, state, lots, calendar, lambda t, fn: None, lambda k, t: None)
    for p, session in _place(lots, others):
        if session is None:
            part = " ".join(
                x
                for x in (
                    f"on level {lots[p.lot].levels[p.level].name}" if p.level is not None else "",
                    f"of type {p.spot_type.name}" if p.spot_type is not None else "",
                )
                if x
            )
            raise StateMismatch(
                f"{p.path}: no free bay {part or 'in the lot'} for this "
                f"{p.vehicle.vclass.name} car (the state holds more cars than fit there)"
            )
