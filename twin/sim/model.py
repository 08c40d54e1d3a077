"""The SimPy model of one facility for one replication.

Design for speed (see benchmarks/): no SimPy process per vehicle. Arrivals are drawn before the
run and merged, in time order, with SimPy's event queue; every other happening is a plain
callback on that queue: one per gate passage when there are entry lanes, one per departure,
one per patience deadline. Barrier queues are FIFO multi-server
queues, so a car's barrier time follows from the lanes' next-free times (Kiefer-Wolfowitz
recursion) without simulating the queue car by car; queue lengths are rebuilt exactly from the
per-vehicle records afterwards.

Every allocation, release and price is a call into :mod:`twin.core` - the same Lot a gate
controller runs.

Tie rule: at equal times, departures (and other scheduled events) are processed before
arrivals, so a car leaving at 10:00:00 frees its spot for a car arriving at 10:00:00.
"""

from __future__ import annotations

import gc
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from heapq import heappop, heappush, heapreplace
from operator import attrgetter

import numpy as np
import simpy

from twin.core.adaptive import elasticity_factor
from twin.core.clock import Calendar
from twin.core.lot import Lot, Session
from twin.core.types import Vehicle, VehicleClass
from twin.scenario.model import Scenario
from twin.sim.build import build_lot, calendar_for
from twin.sim.demand import Drivers, draw_drivers
from twin.sim.rng import Streams

#: Outcome codes of a vehicle record.
PARKED, BLOCKED, BALKED, RENEGED, WAITING, QUEUED, DETERRED = range(7)
OUTCOMES = ("parked", "blocked", "balked", "reneged", "waiting", "in_entry_lane", "deterred")
#: ``deterred``: a price-elastic candidate driver who, at the price in force, did not come at
#: all (they are not arrivals; see ElasticitySpec).

_DEPART = 0  # event priorities: departures first at equal times
_ARRIVE = 1


class _Call:
    """The leanest object SimPy's ``Environment.step`` accepts as an event.

    ``step`` needs only ``callbacks`` and ``_ok``; a full ``simpy.Event`` costs several times
    more to build, and the model creates one per vehicle.
    """

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable, value: object) -> None:
        self.callbacks = [callback]
        self._ok = True
        self._value = value


def call_at(
    env: simpy.Environment, t: float, priority: int, callback: Callable, value: object
) -> None:
    """Schedule ``callback(event)`` at absolute time ``t``.

    Absolute, not ``now + delay``: with a delay the event time is ``now + (t - now)``, which
    can differ from ``t`` in the last bit and break ties that the model's records rely on.
    """
    heappush(env._queue, (t, priority, next(env._eid), _Call(callback, value)))


@dataclass
class RunRecord:
    """Raw columns of one replication; :mod:`twin.results` turns them into frames and figures."""

    scenario: Scenario
    replication: int
    seed: int
    drivers: Drivers
    lot: Lot
    gate_t: np.ndarray  # time the car passed the entry barrier (NaN if it never did)
    entry_t: np.ndarray  # time it took a spot
    spot: np.ndarray  # spot index, -1 if none
    leave_t: np.ndarray  # time it left the spot
    exit_start_t: np.ndarray  # time its exit barrier service started
    exit_t: np.ndarray  # time it passed the exit barrier
    amount_cents: np.ndarray  # charged at exit (NaN if it did not exit)
    quote_cents: np.ndarray  # price shown at arrival when drivers compare it with their budget
    outcome: np.ndarray  # int8 codes, see OUTCOMES
    entry_lane_start_t: np.ndarray
    #: Adaptive pricing's decisions: (time s, rate table name, hourly rate $, mean occupancy
    #: the rule saw over the period that ended then; NaN for the opening rates).
    rates: list[tuple[float, str, float, float]] = field(default_factory=list)


class ParkingModel:
    """One replication of a scenario: drivers drawn, events run, raw records out."""

    def __init__(self, scenario: Scenario, replication: int = 0, seed: int | None = None) -> None:
        self.scenario = scenario
        self.replication = replication
        self.seed = scenario.seed if seed is None else seed
        self.calendar: Calendar = calendar_for(scenario)
        self.lot = build_lot(scenario, self.calendar)
        self.drivers = draw_drivers(scenario, Streams(self.seed, replication), self.calendar)
        self.env = simpy.Environment()

    def _adaptive_pricing(
        self, queue: list, nxt: Callable[[], int], log: list[tuple[float, str, float, float]]
    ) -> None:
        """Sample occupancy per rate table and let the pricing rule move rates every period.

        Occupancy is sampled every ``sample_minutes`` and credited to the table (time band) in
        force at that instant; at each period's end the rule sees each band's mean and the lot
        gets a new tariff; it quotes arrivals and prices every exit from then on, as a
        garage pay station would.
        """
        spec = self.scenario.pricing_policy
        assert spec is not None
        rule = spec.build()
        lot, env = self.lot, self.env
        names = lot.tariff.table_names
        sample = spec.sample_minutes * 60.0
        period = spec.adjust_every_days * 86400.0
        horizon = self.scenario.horizon_s
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
            log.append((0.0, names[k], cents / 100.0, math.nan))

        def on_sample(event: _Call) -> None:
            t = env._now
            k = lot.tariff.table_index_at(t)
            total[k] += lot.n_occupied / lot.capacity
            count[k] += 1
            if t + sample < horizon:
                heappush(queue, (t + sample, _ARRIVE, nxt(), _Call(on_sample, None)))

        def on_adjust(event: _Call) -> None:
            t = env._now
            seen = {k: total[k] / count[k] for k in range(len(names)) if count[k]}
            new = rule.adjust(rates(), seen)
            lot.tariff = lot.tariff.with_hourly_rates(new)
            for k, cents in new.items():
                log.append((t, names[k], cents / 100.0, seen.get(k, math.nan)))
            total[:] = [0.0] * len(names)
            count[:] = [0] * len(names)
            if t + period < horizon:
                heappush(queue, (t + period, _ARRIVE, nxt(), _Call(on_adjust, None)))

        heappush(queue, (sample / 2, _ARRIVE, nxt(), _Call(on_sample, None)))
        if period < horizon:
            heappush(queue, (period, _DEPART, nxt(), _Call(on_adjust, None)))

    def run(self, progress: Callable[[float], None] | None = None) -> RunRecord:
        """Run to the horizon; ``progress`` gets the fraction of simulated time done."""
        sc = self.scenario
        env, lot, d = self.env, self.lot, self.drivers
        n = len(d)
        horizon = sc.horizon_s
        queue = env._queue
        eid = env._eid

        arrival = d.arrival.tolist()
        dwell = d.dwell.tolist()
        # One shared Vehicle per (class, permit, EV) profile: the core needs only those three
        # facts, and the simulator identifies a driver by its index, so per-car objects would
        # be pure overhead on the hot path.
        fleet = [
            Vehicle(f"sim:{c.name}{':permit' * h}{':ev' * e}", c, bool(h), bool(e))
            for c in VehicleClass
            for h in (0, 1)
            for e in (0, 1)
        ]
        assert all(v.profile == k for k, v in enumerate(fleet))
        profile = d.vclass.astype(np.int64) * 4 + d.handicap * 2 + d.ev
        vehicle_of = [fleet[p] for p in profile.tolist()]
        patience = d.patience.tolist()
        entry_service = d.entry_service.tolist()
        exit_service = d.exit_service.tolist()

        nan = math.nan
        gate_t = [nan] * n
        session_of: list[Session | None] = [None] * n
        exit_start = [nan] * n
        exit_t = [nan] * n
        quote = [nan] * n
        lane_start = [nan] * n
        outcome = [QUEUED] * n

        allocate, release = lot.try_allocate, lot.release
        pool: list[_Call] = []
        DEPART = _DEPART
        nxt = eid.__next__
        entry_lanes = sc.lanes.entry
        exit_lanes = sc.lanes.exit
        entry_free = [0.0] * entry_lanes.count if entry_lanes else None
        exit_free = [0.0] * exit_lanes.count if exit_lanes else None
        waiting: deque[int] = deque()
        check_price = lot.tariff is not None and bool(np.isfinite(d.wtp_cents).any())
        accept_u = d.accept_u.tolist()
        stream_of = d.stream.tolist()
        elastic = bool(np.isfinite(d.accept_u).any())
        elasticity_of = [
            (s.elasticity.value, s.elasticity.reference_rate * 100.0, s.elasticity.cap)
            if s.elasticity is not None
            else None
            for s in sc.demand
        ]
        wtp = d.wtp_cents.tolist()
        wtp_hourly = d.wtp_per_hour.tolist()

        def gate(i: int, t: float) -> None:
            if entry_free is not None:
                gate_t[i] = t
            session = allocate(vehicle_of[i], t)
            if session is None:
                if patience[i] > 0.0:
                    outcome[i] = WAITING
                    waiting.append(i)
                    heappush(queue, (t + patience[i], _ARRIVE, next(eid), _Call(renege, i)))
                else:
                    outcome[i] = BLOCKED
                return
            session_of[i] = session  # entry time, spot and (later) price live on the session
            if pool:  # departure events are recycled: one fewer object per car
                event = pool.pop()
                event.callbacks = depart_callbacks
                event._value = i
            else:
                event = _Call(depart, i)
            heappush(queue, (t + dwell[i], DEPART, nxt(), event))

        def at_gate(event: _Call) -> None:
            gate(event._value, env._now)

        def arrive(i: int, t: float) -> None:
            if elastic:
                u = accept_u[i]
                if u == u:  # not NaN: a price-elastic candidate
                    value, reference, cap = elasticity_of[stream_of[i]]
                    rate = lot.tariff.hourly_rate_at(t)
                    if u * cap >= elasticity_factor(rate, reference, value, cap):
                        outcome[i] = DETERRED
                        return
            if check_price:
                stay = dwell[i]
                q = lot.tariff.quote(t, t + stay, lot.n_occupied / lot.capacity)
                quote[i] = q
                budget = wtp[i] * (stay / 3600.0) if wtp_hourly[i] else wtp[i]
                if q > budget:
                    outcome[i] = BALKED
                    return
            if entry_free is not None:
                start = entry_free[0]
                start = t if t > start else start
                lane_start[i] = start
                done = start + entry_service[i]
                heapreplace(entry_free, done)
                heappush(queue, (done, _ARRIVE, next(eid), _Call(at_gate, i)))
            else:
                gate(i, t)

        def depart(event: _Call) -> None:
            i = event._value
            t = env._now
            release(session_of[i].ticket, t)
            pool.append(event)
            if exit_free is not None:
                start = exit_free[0]
                start = t if t > start else start
                exit_start[i] = start
                done = start + exit_service[i]
                heapreplace(exit_free, done)
                exit_t[i] = done
            if waiting:
                serve_waiting(t)

        def serve_waiting(t: float) -> None:
            # FIFO among those the freed capacity fits; reneged drivers are skipped lazily.
            for _ in range(len(waiting)):
                i = waiting.popleft()
                if outcome[i] != WAITING:
                    continue
                session = allocate(vehicle_of[i], t)
                if session is None:
                    waiting.append(i)
                    continue
                session_of[i] = session
                heappush(queue, (t + dwell[i], _DEPART, nxt(), _Call(depart, i)))
                return

        def renege(event: _Call) -> None:
            i = event._value
            if outcome[i] == WAITING:
                outcome[i] = RENEGED

        depart_callbacks = [depart]  # SimPy's step only reads an event's list: one can be shared

        if not check_price and entry_free is None and not elastic:
            arrive = gate  # nothing happens between arrival and the barrier
        rates_log: list[tuple[float, str, float, float]] = []
        if sc.pricing_policy is not None:
            self._adaptive_pricing(queue, nxt, rates_log)

        if progress is not None:
            step = horizon / 100.0

            def tick(event: _Call) -> None:
                progress(min(env._now / horizon, 1.0))
                if env._now + step < horizon:
                    heappush(queue, (env._now + step, _ARRIVE, next(eid), _Call(tick, None)))

            heappush(queue, (step, _ARRIVE, next(eid), _Call(tick, None)))

        # Arrivals are a presorted stream merged with SimPy's event queue instead of one
        # scheduled event each: half the heap traffic for the same order of processing.
        # Scheduled events at the arrival's instant (departures, gate passages) go first.
        env_step = env.step
        inf = math.inf
        arrival.append(inf)
        i = 0
        # The loop allocates only acyclic objects (sessions, events, heap entries), which
        # reference counting frees; the cyclic collector would rescan every live session and
        # event each few hundred allocations, a cost that grows with the lot's size.
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                ta = arrival[i]
                if queue:
                    top = queue[0]
                    td = top[0]
                    if td <= ta:
                        if td >= horizon:
                            break
                        event = top[3]
                        if event.__class__ is _Call:
                            # the model's own callbacks: SimPy's step without its generality
                            heappop(queue)
                            env._now = td
                            event.callbacks[0](event)
                        else:
                            env_step()  # any other SimPy event (processes, timeouts)
                        continue
                if ta >= horizon:
                    break
                env._now = ta
                arrive(i, ta)
                i += 1
        finally:
            if gc_enabled:
                gc.enable()
        arrival.pop()
        env._now = horizon
        if progress is not None:
            progress(1.0)

        parked = [x for x in session_of if x is not None]
        where = np.array([k for k, x in enumerate(session_of) if x is not None], dtype=np.int64)
        outcomes = np.array(outcome, dtype=np.int8)
        outcomes[where] = PARKED
        balked = outcomes == BALKED

        def column(values: list, fill: float = nan) -> np.ndarray:
            out = np.full(n, fill, dtype=float)
            out[where] = np.array(values, dtype=float)
            return out

        # (numpy turns the None of sessions still open into NaN)
        entry = column(list(map(attrgetter("entry_t"), parked)))
        leave = column(list(map(attrgetter("exit_t"), parked)))
        charged = column(list(map(attrgetter("amount_cents"), parked)))
        spot = column(list(map(attrgetter("spot.index"), parked)), -1).astype(np.int64)
        return RunRecord(
            scenario=sc,
            replication=self.replication,
            seed=self.seed,
            drivers=d,
            lot=lot,
            # without barriers, arriving is passing the gate and leaving the spot is exiting
            gate_t=np.array(gate_t) if entry_free is not None else np.where(balked, nan, d.arrival),
            entry_t=entry,
            spot=spot,
            leave_t=leave,
            exit_start_t=np.array(exit_start) if exit_free is not None else leave,
            exit_t=np.array(exit_t) if exit_free is not None else leave,
            amount_cents=charged,
            quote_cents=np.array(quote),
            outcome=outcomes,
            entry_lane_start_t=np.array(lane_start),
            rates=rates_log,
        )


def simulate(
    scenario: Scenario,
    replication: int = 0,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> RunRecord:
    """Run one replication of ``scenario``; the Python entry point notebooks call."""
    return ParkingModel(scenario, replication, seed).run(progress)
