"""The SimPy model of one facility for one replication.

Design for speed (see benchmarks/): no SimPy process per vehicle. Arrivals are drawn before the
run, and so are the departures of cars that park the moment they arrive (arrival + dwell): both
are presorted streams merged, in SimPy's own (time, priority, id) order, with SimPy's event
queue. Everything else is a plain callback on that queue: a gate passage when there are entry
lanes, a departure after waiting or queueing, a patience deadline, a drive to another lot.
Barrier queues are FIFO multi-server queues, so a car's barrier time follows from the lanes'
next-free times (Kiefer-Wolfowitz recursion) without simulating the queue car by car; queue
lengths are rebuilt exactly from the per-vehicle records afterwards.

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

import numpy as np
import pandas as pd
import simpy

from twin.core.adaptive import elasticity_factor
from twin.core.clock import Calendar
from twin.core.lot import Lot, Session
from twin.core.types import Vehicle, VehicleClass
from twin.scenario.model import Scenario
from twin.sim.build import build_lots, calendar_for
from twin.sim.components import TURN_AWAY, ModelContext, acts_on, build_components
from twin.sim.demand import Drivers, draw_drivers
from twin.sim.rng import Streams
from twin.sim.size import check_size
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

_DEPART = 0  # event priorities: departures first at equal times
_ARRIVE = 1
_UNDECIDED, _ON_STREAM, _OFF_STREAM = 0, 1, 2  # see stream_state in ParkingModel.run


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
    The per-car callbacks in :meth:`ParkingModel.run` push the same tuple inline, with
    recycled events: they run millions of times.
    """
    heappush(env._queue, (t, priority, next(env._eid), _Call(callback, value)))


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


class ParkingModel:
    """One replication of a scenario: drivers drawn, events run, raw records out."""

    def __init__(self, scenario: Scenario, replication: int = 0, seed: int | None = None) -> None:
        self.scenario = scenario
        self.replication = replication
        self.seed = scenario.seed if seed is None else seed
        self.calendar: Calendar = calendar_for(scenario)
        self.lots = build_lots(scenario, self.calendar)
        self.lot = self.lots[0]
        self.streams = Streams(self.seed, replication)
        self.drivers = draw_drivers(scenario, self.streams, self.calendar)
        for lot in self.lots:  # strategies that draw take the replication's own stream
            if lot.strategy.random:
                lot.strategy.seed(self.streams.get(f"allocation[{lot.lot_id}]"))
        self.env = simpy.Environment()
        self.components = build_components(scenario)
        self.seeded = None  # what a start state placed (twin.sim.initial.Seeded), if any

    def product_draws(self) -> tuple[np.ndarray, np.ndarray]:
        """Per driver, the uniform draws that decide whether they buy the event product on sale
        at their entry and which validation they get (:meth:`Tariff.products_for`); a stream of
        their own, so the same drivers hold them whatever else changes."""
        rng = self.streams.get("products")
        n = len(self.drivers)
        return rng.random(n), rng.random(n)

    def _adaptive_pricing(self, lot: Lot, log: list[tuple[float, str, float, float, str]]) -> None:
        """Sample occupancy per rate table and let the pricing rule move rates every period.

        Occupancy is sampled every ``sample_minutes`` and credited to the table (time band) in
        force at that instant; at each period's end the rule sees each band's mean and the lot
        gets a new tariff; it quotes arrivals and prices every exit from then on, as a
        garage pay station would.
        """
        spec = self.scenario.pricing_policy
        assert spec is not None
        rule = spec.build()
        env = self.env
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
            log.append((0.0, names[k], cents / 100.0, math.nan, lot.lot_id))

        def on_sample(event: _Call) -> None:
            t = env._now
            k = lot.tariff.table_index_at(t)
            total[k] += lot.n_occupied / lot.capacity
            count[k] += 1
            if t + sample < horizon:
                call_at(env, t + sample, _ARRIVE, on_sample, None)

        def on_adjust(event: _Call) -> None:
            t = env._now
            seen = {k: total[k] / count[k] for k in range(len(names)) if count[k]}
            new = rule.adjust(rates(), seen)
            lot.tariff = lot.tariff.with_hourly_rates(new)
            for k, cents in new.items():
                log.append((t, names[k], cents / 100.0, seen.get(k, math.nan), lot.lot_id))
            total[:] = [0.0] * len(names)
            count[:] = [0] * len(names)
            if t + period < horizon:
                call_at(env, t + period, _ARRIVE, on_adjust, None)

        call_at(env, sample / 2, _ARRIVE, on_sample, None)
        if period < horizon:
            call_at(env, period, _DEPART, on_adjust, None)

    def _seed_initial(self, spot_freed: Callable[[int, float], None]):
        """Place the start state's cars (twin.sim.initial); their departures are events."""
        from twin.sim.initial import seed_lots

        env = self.env
        return seed_lots(
            self.scenario,
            self.lots,
            self.calendar,
            self.seed,
            self.replication,
            self.streams,
            self.scenario.horizon_s,
            lambda t, fn: call_at(env, t, _DEPART, lambda ev: fn(env._now), None),
            spot_freed,
        )

    def run(self, progress: Callable[[float], None] | None = None) -> RunRecord:
        """Run to the horizon; ``progress`` gets the fraction of simulated time done.

        One long function on purpose: the per-car callbacks are closures over its locals,
        the cheapest way to reach state in CPython (an attribute lookup per access would cost
        more than the allocation itself; see benchmarks/README.md).
        """
        sc = self.scenario
        env, lots, d = self.env, self.lots, self.drivers
        n = len(d)
        horizon = sc.horizon_s
        queue = env._queue
        nxt = env._eid.__next__

        # Per-driver inputs and records are memoryviews of numpy arrays: indexed twice as fast
        # as numpy and returning plain Python numbers, at 8 bytes a value where a list holds a
        # 32-byte object per value. Lists would save nothing: building them costs as much as
        # the reads they speed up, and their objects stream through the CPU cache and push out
        # the parked cars' state, which is what makes a large lot slower per car. It is also
        # what lets a city-day fit in memory.

        def seq(values: np.ndarray, used: bool = True) -> memoryview | np.ndarray:
            # features a scenario does not use keep their (often broadcast) arrays untouched
            return memoryview(values) if used else values

        def record(fill: float, used: bool = True) -> memoryview | np.ndarray:
            if not used:
                return np.broadcast_to(np.float64(fill), n)
            # zeros are calloc'd: pages never written cost no memory
            return memoryview(np.zeros(n) if fill == 0.0 else np.full(n, fill))

        arrival = seq(np.append(d.arrival, math.inf))
        dwell = seq(d.dwell)
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
        profile = seq((d.vclass * 4 + d.handicap * 2 + d.ev).astype(np.int8))
        patience = seq(d.patience, bool(d.patience.any()))
        at = seq(d.lot.copy())  # the lot each driver is at (or driving to)

        nan = math.nan
        session_of: list[Session | None] = [None] * n
        outcome = memoryview(np.full(n, QUEUED, dtype=np.int8))
        offsets = np.cumsum([0] + [lot.capacity for lot in lots])[:-1].tolist()
        entry_rec, leave_rec, amount_rec, spot_rec = (
            np.full(n, nan),
            np.full(n, nan),
            np.full(n, nan),
            np.full(n, -1, dtype=np.int64),
        )
        # written car by car as cars park and leave
        entry_w, leave_w, amount_w, spot_w = map(
            memoryview, (entry_rec, leave_rec, amount_rec, spot_rec)
        )

        # per lot: the core's entry points, barrier next-free times, drivers waiting for a spot
        allocate = [lot.try_allocate for lot in lots]
        release = [lot.release for lot in lots]
        specs = sc.lot_specs
        entry_free = [
            [0.0] * spec.lanes.entry.count if spec.lanes and spec.lanes.entry else None
            for spec in specs
        ]
        exit_free = [
            [0.0] * spec.lanes.exit.count if spec.lanes and spec.lanes.exit else None
            for spec in specs
        ]
        any_entry_lanes = any(free is not None for free in entry_free)
        any_exit_lanes = any(free is not None for free in exit_free)
        entry_rows = [seq(row, any_entry_lanes) for row in d.entry_service]
        exit_rows = [seq(row, any_exit_lanes) for row in d.exit_service]
        entry_service = [entry_rows[kind] for kind in d.lane_kinds]
        exit_service = [exit_rows[kind] for kind in d.lane_kinds]
        waiting: list[deque[int]] = [deque() for _ in lots]

        check_price = any(lot.tariff is not None for lot in lots) and bool(
            np.isfinite(d.wtp_cents).any()
        )
        # records of features the scenario does not use are shared read-only placeholders
        gate_t = record(nan, any_entry_lanes)
        lane_start = record(nan, any_entry_lanes)
        exit_start = record(nan, any_exit_lanes)
        exit_t = record(nan, any_exit_lanes)
        quote = record(nan, check_price)
        elastic = bool(np.isfinite(d.accept_u).any())
        accept_u = seq(d.accept_u, elastic)
        stream_of = seq(d.stream, elastic)
        elasticity_of = [
            (s.elasticity.value, s.elasticity.reference_rate * 100.0, s.elasticity.cap)
            if s.elasticity is not None
            else None
            for s in sc.demand
        ]
        wtp = seq(d.wtp_cents, check_price)
        wtp_hourly = seq(d.wtp_per_hour, check_price)

        network = sc.network if len(lots) > 1 else None
        tries = memoryview(np.zeros(n, dtype=np.int16))
        search_km = record(0.0, len(lots) > 1)
        rearrived: dict[int, float] = {}  # diverted drivers: when they reached the next lot
        if network is not None:
            minutes = sc.travel_minutes()
            km = [[m * network.speed_kmh / 60.0 for m in row] for row in minutes]
            nearest_first = [
                sorted((j for j in range(len(lots)) if j != k), key=lambda j, k=k: minutes[k][j])
                for k in range(len(lots))
            ]
            divert_u = [seq(row) for row in d.divert_u]
            rule = network.diversion
            tried: dict[int, set[int]] = {}

        # event products and validations: who buys or gets one is drawn from a stream of its own
        # (common random numbers: the same drivers hold them whatever else changes)
        sells = [lot.tariff is not None and lot.tariff.sells_products for lot in lots]
        selling = any(sells)
        if selling:
            u_event, u_validation = map(seq, self.product_draws())

        def price_for(i: int, k: int, t: float) -> float:
            lot = lots[k]
            if lot.tariff is None:
                return 0.0
            return lot.tariff.quote(t, t + dwell[i], lot.n_occupied / lot.capacity)

        def turned_away(i: int, k: int, t: float, code: int) -> None:
            """Full, priced out or tired of waiting: leave, or drive to the nearest other lot."""
            outcome[i] = code
            if network is None or tries[i] >= rule.max_tries:
                return
            seen = tried.setdefault(i, {k})
            j = next((j for j in nearest_first[k] if j not in seen), None)
            if j is None:
                return
            extra = max(0.0, price_for(i, j, t) - price_for(i, k, t)) / 100.0
            p = rule.base_probability * math.exp(
                -rule.per_minute * minutes[k][j] - rule.per_dollar * extra
            )
            u = divert_u[tries[i]][i]
            tries[i] += 1
            if u < p:
                seen.add(j)
                search_km[i] += km[k][j]
                at[i] = j
                outcome[i] = DIVERTING
                heappush(queue, (t + 60.0 * minutes[k][j], _ARRIVE, nxt(), _Call(arrive_again, i)))

        def gate(i: int, t: float) -> None:
            k = at[i]
            session = allocate[k](fleet[profile[i]], t)
            if session is None:
                for component in refused_comps:
                    component.on_refused(i, k, t)
                if patience[i] > 0.0:
                    outcome[i] = WAITING
                    waiting[k].append(i)
                    heappush(queue, (t + patience[i], _ARRIVE, nxt(), _Call(renege, i)))
                else:
                    turned_away(i, k, t, BLOCKED)
                return
            session_of[i] = session  # the price lives on the session until the car leaves
            if selling and sells[k]:
                held = lots[k].tariff.products_for(t, u_event[i], u_validation[i])
                lots[k].hold(session.ticket, held.prepaid, held.validation)
            entry_w[i] = t  # written now, in arrival order: cheaper than at a random leave
            spot_w[i] = offsets[k] + session.spot.index
            if park_comps:
                for component in park_comps:
                    component.on_park(i, k, session, t)
            if stream_state[i] == _UNDECIDED and t == arrival[i]:
                # parked on arrival: leaves in the presorted departure stream
                stream_state[i] = _ON_STREAM
                eid_of[i] = nxt()
            else:
                heappush(queue, (t + dwell[i], _DEPART, nxt(), _Call(depart, i)))

        def at_gate(event: _Call) -> None:
            i = event._value
            gate_t[i] = env._now  # passing a barrier (without one, arrival is the gate time)
            gate(i, env._now)

        def arrive(i: int, t: float) -> None:
            k = at[i]
            for component in arrival_comps:
                verdict = component.on_arrival(i, k, t)
                if verdict is None:
                    continue
                if verdict == TURN_AWAY:
                    turned_away(i, k, t, TURNED_AWAY)
                else:  # the component parked the car in a spot kept for it
                    park(i, k, verdict, t)
                return
            if check_price:
                stay = dwell[i]
                lot = lots[k]
                if lot.tariff is not None:
                    q = lot.tariff.quote(t, t + stay, lot.n_occupied / lot.capacity)
                    quote[i] = q
                    budget = wtp[i] * (stay / 3600.0) if wtp_hourly[i] else wtp[i]
                    if q > budget:
                        turned_away(i, k, t, BALKED)
                        return
            free = entry_free[k]
            if free is not None:
                start = free[0]
                start = t if t > start else start
                lane_start[i] = start
                done = start + entry_service[k][i]
                heapreplace(free, done)
                heappush(queue, (done, _ARRIVE, nxt(), _Call(at_gate, i)))
            else:
                if any_entry_lanes:  # a lot without barriers in a network that has some
                    gate_t[i] = t
                gate(i, t)

        def arrive_first(i: int, t: float) -> None:
            u = accept_u[i]
            if u == u:  # not NaN: a price-elastic candidate, who may stay away at this price
                value, reference, cap = elasticity_of[stream_of[i]]
                rate = lots[at[i]].tariff.hourly_rate_at(t)
                if u * cap >= elasticity_factor(rate, reference, value, cap):
                    outcome[i] = DETERRED
                    return
            arrive(i, t)

        def arrive_again(event: _Call) -> None:
            i = event._value
            rearrived[i] = env._now
            arrive(i, env._now)

        def depart(event: _Call) -> None:
            # (stream departures' times and amounts are filled in after the run)
            i = event._value
            leave_w[i] = env._now
            amount_w[i] = leave(i, env._now)

        def leave(i: int, t: float) -> float:
            """The car leaves its spot: release, components, exit barrier; what it paid."""
            k = at[i]
            session = session_of[i]
            release[k](session.ticket, t)
            if after_leave:
                leave_lot(i, k, session, t)  # components may settle the amount differently
            # let the session go: the run ends without millions of sessions to read back
            session_of[i] = None
            amount = session.amount_cents
            if recycle is not None:  # nothing else holds it: the next car reuses the object
                recycle[k](session)
            if waiting[k]:
                serve_waiting(k, t)
            return nan if amount is None else amount

        def leave_lot(i: int, k: int, session: Session, t: float) -> None:
            """After the spot: components and the exit barrier."""
            extra = 0.0
            for component in leave_comps:
                extra += component.on_leave(i, k, session, t)
            free = exit_free[k]
            if free is not None:
                start = free[0]
                start = t if t > start else start
                exit_start[i] = start
                done = start + exit_service[k][i] + extra
                heapreplace(free, done)
                exit_t[i] = done

        def serve_waiting(k: int, t: float) -> None:
            """First come, first served across classes: each freed spot goes to the
            longest-waiting driver it fits; the others keep their place in the line.

            A profile the lot refused once is refused again at this instant (a refusal changes
            nothing, and parking others only takes spots), so the scan asks the lot at most
            once per profile, and stops when the lot is full. Drivers who parked, reneged or
            drove on are dropped lazily: from the front, or when they are most of the line.
            """
            queued = waiting[k]
            lot = lots[k]
            refused = 0  # bit mask of the vehicle profiles the lot has no spot for now
            gone = 0
            for i in queued:
                if outcome[i] != WAITING or at[i] != k:
                    gone += 1
                    continue
                p = profile[i]
                if refused >> p & 1:
                    continue
                session = allocate[k](fleet[p], t)
                if session is None:
                    refused |= 1 << p
                    continue
                park(i, k, session, t)
                gone += 1
                if lot.n_occupied == lot.capacity:
                    break
            while queued and (outcome[queued[0]] != WAITING or at[queued[0]] != k):
                queued.popleft()
            if gone > len(queued) // 2:
                waiting[k] = deque(i for i in queued if outcome[i] == WAITING and at[i] == k)

        def renege(event: _Call) -> None:
            i = event._value
            if outcome[i] == WAITING:
                turned_away(i, at[i], env._now, RENEGED)

        def park(i: int, k: int, session: Session, t: float) -> None:
            """A car parks outside the walk-in path (after waiting, or in a kept spot)."""
            session_of[i] = session
            entry_w[i] = t
            spot_w[i] = offsets[k] + session.spot.index
            outcome[i] = PARKED
            for component in park_comps:
                component.on_park(i, k, session, t)
            heappush(queue, (t + dwell[i], _DEPART, nxt(), _Call(depart, i)))

        comps = self.components
        # Each moment calls only the components that act on it: one with nothing to do for a
        # car (closures act on their timetable) leaves the per-car fast paths on.
        arrival_comps = [c for c in comps if acts_on(c, "on_arrival")]
        refused_comps = [c for c in comps if acts_on(c, "on_refused")]
        park_comps = [c for c in comps if acts_on(c, "on_park")]
        leave_comps = [c for c in comps if acts_on(c, "on_leave")]
        # Components may keep the sessions they are shown; without them, the model holds the
        # last reference to a session once its car has left, and hands it back to the lot.
        keeps = any(c.keeps_sessions for c in comps)
        recycle = None if keeps else [lot.recycle for lot in lots]
        external: list[tuple[int, Session]] = []  # cars parked by components (holders)
        after_leave = bool(leave_comps) or any_exit_lanes
        if comps:
            context = ModelContext(
                scenario=sc,
                lots=lots,
                drivers=d,
                streams=self.streams,
                env=env,
                call_at=lambda t, fn: call_at(env, t, _ARRIVE, lambda ev: fn(env._now), None),
                horizon=horizon,
                spot_freed=lambda k, t: serve_waiting(k, t) if waiting[k] else None,
                external_park=lambda k, session, t: [
                    external.append((k, session)),
                    *(c.on_external_park(k, session, t) for c in comps),
                ],
                external_leave=lambda k, session, t: [
                    c.on_external_leave(k, session, t) for c in comps
                ],
                exit_barrier_time=lambda k, t: (
                    t if exit_free[k] is None else max(t, exit_free[k][0])
                ),
                component=lambda name: next((c for c in comps if c.name == name), None),
            )
            for component in comps:
                component.start(context)
        if sc.initial != "empty":  # begin from a given or the typical state: twin.sim.initial
            self.seeded = self._seed_initial(
                lambda k, t: serve_waiting(k, t) if waiting[k] else None
            )
            external.extend(self.seeded.sessions)

        if elastic:
            first = arrive_first
        elif not check_price and not any_entry_lanes and not arrival_comps:
            first = gate  # nothing happens between arrival and the barrier
        else:
            first = arrive
        rates_log: list[tuple[float, str, float, float, str]] = []
        if sc.pricing_policy is not None:
            for lot in lots:
                self._adaptive_pricing(lot, rates_log)

        if progress is not None:
            step = horizon / 100.0

            def tick(event: _Call) -> None:
                progress(min(env._now / horizon, 1.0))
                if env._now + step < horizon:
                    call_at(env, env._now + step, _ARRIVE, tick, None)

            call_at(env, step, _ARRIVE, tick, None)

        # Three time-ordered sources are merged: arrivals (drawn before the run, so a presorted
        # stream), departures of cars that parked on arrival (they leave at arrival + dwell, also
        # known before the run: one argsort, then a walk that skips drivers who did not park on
        # arrival), and SimPy's event queue for everything else (gate passages, departures after
        # waiting, diversions, components' events). The order is exactly SimPy's (time,
        # priority, event id): a stream departure carries the id it took when the car parked.
        # Most cars never touch the heap, so an event costs O(1) instead of O(log queue).
        leave_at = d.arrival + d.dwell
        by_leave = np.argsort(leave_at, kind="stable")
        dep_t_np = np.append(leave_at[by_leave], math.inf)
        dep_i_np = np.append(by_leave, n).astype(np.int32)
        del leave_at, by_leave
        dep_t, dep_i = seq(dep_t_np), seq(dep_i_np)
        paid_np = np.full(n + 1, nan)
        paid_j = memoryview(paid_np)
        # Per driver: _UNDECIDED until its arrival has been handled, then _ON_STREAM if it
        # parked at once, _OFF_STREAM if not (it may still park later, e.g. after waiting; that
        # departure goes through the heap). One byte each: the loop reads it for every stream
        # entry, and a compact array stays in the CPU cache where event-id objects would not.
        # The event id a stream departure carries is read only to break an exact time tie, so
        # it is kept as 8 raw bytes, not as an int object per parked car held to the end.
        stream_state = bytearray(n + 1)
        eid_of = memoryview(np.zeros(n + 1, dtype=np.int64))
        env_step = env.step
        i = j = 0
        # The loop allocates only acyclic objects (sessions, events, heap entries), which
        # reference counting frees; the cyclic collector would rescan every live session and
        # event each few hundred allocations, a cost that grows with the lot's size.
        gc_enabled = gc.isenabled()
        gc.disable()
        try:
            while True:
                p = dep_i[j]
                state = stream_state[p]
                if state == _OFF_STREAM:
                    j += 1
                    continue
                # (state _UNDECIDED: driver p has not arrived yet, arrival[i] <= dep_t[j])
                ta = arrival[i]
                tp = dep_t[j]
                if queue:
                    top = queue[0]
                    td = top[0]
                    if td <= ta and (
                        state == _UNDECIDED
                        or td < tp
                        or (td == tp and (top[1], top[2]) < (_DEPART, eid_of[p]))
                    ):
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
                if state == _ON_STREAM and tp <= ta:
                    if tp >= horizon:
                        break
                    env._now = tp
                    # kept in departure order (written in sequence, not at a random driver)
                    paid_j[j] = leave(p, tp)
                    j += 1
                    continue
                if ta >= horizon:
                    break
                env._now = ta
                first(i, ta)
                if stream_state[i] == _UNDECIDED:
                    stream_state[i] = _OFF_STREAM
                i += 1
        finally:
            if gc_enabled:
                gc.enable()
        env._now = horizon
        if progress is not None:
            progress(1.0)

        # departures through the presorted stream: their times, and what each paid
        dep_t, dep_i, paid_j = dep_t_np[:n], dep_i_np[:n], paid_np[:n]
        left = np.frombuffer(stream_state, dtype=np.uint8, count=n + 1)[dep_i] == _ON_STREAM
        left &= dep_t < horizon
        who = dep_i[left]
        leave_rec[who] = dep_t[left]
        amount_rec[who] = paid_j[left]
        del left, who
        # Cars still parked at the horizon keep the entry time and spot written when they
        # parked, and no leave time or amount (NaN): there is nothing to read from their sessions.
        lot_of = np.asarray(at, dtype=np.int32)
        session_of.clear()  # the sessions' work is done; free them before the frames are built
        # The callbacks reference each other, so the arrays they close over would live until
        # the cyclic collector runs; a city-day's run arrays are hundreds of MB: free them now.
        arrival = dep_t = dep_i = dep_t_np = dep_i_np = paid_np = paid_j = None  # type: ignore[assignment]
        eid_of = stream_state = profile = dwell = None  # type: ignore[assignment]
        if network is not None:
            divert_u = None  # type: ignore[assignment]
            d.divert_u = d.divert_u[:, :0]  # spent: they decided this run's diversions
        outcomes = np.asarray(outcome, dtype=np.int8)
        outcomes[spot_rec >= 0] = PARKED
        balked = outcomes == BALKED
        entry, leave, charged, spot = entry_rec, leave_rec, amount_rec, spot_rec
        lot_arrival = d.arrival  # a copy only when someone drove on to another lot
        if rearrived:
            lot_arrival = d.arrival.copy()
            lot_arrival[list(rearrived)] = list(rearrived.values())
        return RunRecord(
            scenario=sc,
            replication=self.replication,
            seed=self.seed,
            drivers=d,
            lots=lots,
            # without barriers, arriving is passing the gate and leaving the spot is exiting
            gate_t=(
                np.asarray(gate_t, dtype=float)
                if any_entry_lanes
                else (np.where(balked, nan, d.arrival) if balked.any() else d.arrival)
            ),
            entry_t=entry,
            spot=spot,
            leave_t=leave,
            exit_start_t=np.asarray(exit_start, dtype=float) if any_exit_lanes else leave,
            exit_t=np.asarray(exit_t, dtype=float) if any_exit_lanes else leave,
            amount_cents=charged,
            quote_cents=np.asarray(quote, dtype=float),
            outcome=outcomes,
            entry_lane_start_t=np.asarray(lane_start, dtype=float),
            lot_of=lot_of,
            lot_arrival_t=lot_arrival,
            tries=np.asarray(tries, dtype=np.int16),
            search_km=np.asarray(search_km, dtype=float),
            external_stays=_external_stays(external, offsets),
            component_metrics={
                **{
                    f"{c.name}.{key}": value
                    for c in comps
                    for key, value in c.finish(horizon).items()
                },
                **(status_metrics(lots, spot, entry, leave, external, sc) if comps else {}),
            },
            component_frames={
                f"{c.name}_{key}": frame for c in comps for key, frame in c.frames().items()
            },
            rates=rates_log,
        )


def _external_stays(external: list[tuple[int, Session]], offsets: list[int]) -> pd.DataFrame:
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


def simulate(
    scenario: Scenario,
    replication: int = 0,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
) -> RunRecord:
    """Run one replication of ``scenario``; the Python entry point notebooks call.

    Raises RunTooLarge (a ValueError naming the setting) before drawing anything when the
    replication would not fit in memory.
    """
    check_size(scenario)
    return ParkingModel(scenario, replication, seed).run(progress)
