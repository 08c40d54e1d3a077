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

import math
from collections import deque
from collections.abc import Callable
from heapq import heappush, heapreplace

import numpy as np
import simpy

from twin.core.adaptive import elasticity_factor
from twin.core.clock import Calendar
from twin.core.lot import Session
from twin.scenario.model import Scenario
from twin.sim import model_setup as setup
from twin.sim.build import build_lots, calendar_for
from twin.sim.claims import claim_first
from twin.sim.components import TURN_AWAY, ModelContext, acts_on, build_components
from twin.sim.demand import draw_drivers
from twin.sim.events import ARRIVE as _ARRIVE
from twin.sim.events import DEPART as _DEPART
from twin.sim.events import Call as _Call
from twin.sim.events import call_at
from twin.sim.loop import departure_stream, run_events
from twin.sim.record import (
    BALKED,
    BLOCKED,
    DETERRED,
    DIVERTING,
    OUTCOMES,
    PARKED,
    QUEUED,
    RENEGED,
    TURNED_AWAY,
    WAITING,
    Columns,
    RunRecord,
    assemble_record,
    settle_stream_departures,
)
from twin.sim.record import ON_STREAM as _ON_STREAM
from twin.sim.record import UNDECIDED as _UNDECIDED
from twin.sim.rng import Streams
from twin.sim.size import check_size

# the run's record and outcome codes live in twin.sim.record; importers keep reading them here
__all__ = [
    "BALKED",
    "BLOCKED",
    "DETERRED",
    "DIVERTING",
    "OUTCOMES",
    "PARKED",
    "QUEUED",
    "RENEGED",
    "TURNED_AWAY",
    "WAITING",
    "ParkingModel",
    "RunRecord",
    "call_at",
    "simulate",
]


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
        if getattr(scenario.initial, "n_queued", 0):  # a start state's entry queue
            from twin.sim.initial_queue import with_queue

            self.drivers = with_queue(scenario, self.drivers, self.streams, self.calendar)
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
        # one row per driver, so a longer horizon keeps the first drivers' draws
        u = self.streams.get("products").random((len(self.drivers), 2))
        return u[:, 0].copy(), u[:, 1].copy()

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

        Three parts: setting up (:mod:`twin.sim.model_setup`: the per-driver inputs, records,
        lanes, prices, diversions), the event loop (:mod:`twin.sim.loop`) and the record's
        assembly (:mod:`twin.sim.record`). What stays here are the per-car callbacks, closures
        over this function's locals: the cheapest way to reach state in CPython (an attribute
        lookup per access would cost more than the allocation itself; see
        benchmarks/README.md).
        """
        sc = self.scenario
        env, lots, d = self.env, self.lots, self.drivers
        n = len(d)
        horizon = sc.horizon_s
        queue = env._queue
        nxt = env._eid.__next__
        seq, nan = setup.seq, math.nan

        # -- set-up: per-driver inputs (memoryviews, see twin.sim.model_setup) and records
        arrival = seq(np.append(d.arrival, math.inf))
        dwell = seq(d.dwell)
        fleet = setup.fleet()
        profile = seq(setup.profiles(d))
        patience = seq(d.patience, bool(d.patience.any()))
        at = seq(d.lot.copy())  # the lot each driver is at (or driving to)

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
        lanes = setup.lanes(sc, d)
        entry_free, exit_free = lanes.entry_free, lanes.exit_free
        any_entry_lanes, any_exit_lanes = lanes.any_entry, lanes.any_exit
        entry_service, exit_service = lanes.entry_service, lanes.exit_service
        del lanes
        waiting = setup.waiting_lines(lots)

        check_price = setup.checks_price(lots, d)
        # records of features the scenario does not use are shared read-only placeholders
        gate_t = setup.blank(n, nan, any_entry_lanes)
        lane_start = setup.blank(n, nan, any_entry_lanes)
        exit_start = setup.blank(n, nan, any_exit_lanes)
        exit_t = setup.blank(n, nan, any_exit_lanes)
        quote = setup.blank(n, nan, check_price)
        elastic = bool(np.isfinite(d.accept_u).any())
        accept_u = seq(d.accept_u, elastic)
        stream_of = seq(d.stream, elastic)
        elasticity_of = setup.elasticities(sc)
        wtp = seq(d.wtp_cents, check_price)
        wtp_hourly = seq(d.wtp_per_hour, check_price)

        network = sc.network if len(lots) > 1 else None
        tries = memoryview(np.zeros(n, dtype=np.int16))
        search_km = setup.blank(n, 0.0, len(lots) > 1)
        rearrived: dict[int, float] = {}  # diverted drivers: when they reached the next lot
        if network is not None:
            plan = setup.diversion(sc, lots, d)
            minutes, km, nearest_first = plan.minutes, plan.km, plan.nearest_first
            divert_u, rule = plan.divert_u, plan.rule
            del plan
            tried: dict[int, set[int]] = {}

        # event products and validations: who buys or gets one is drawn from a stream of its own
        # (common random numbers: the same drivers hold them whatever else changes)
        sells = [lot.tariff is not None and lot.tariff.sells_products for lot in lots]
        selling = any(sells)
        if selling:
            u_event, u_validation = map(seq, self.product_draws())
        # A product sold at some entry lanes only: the lanes get identities (a heap of (free
        # time, lane) pairs: the same free times as the plain heap, so the same barrier times)
        # and each driver's lane is kept; otherwise the heap of floats, the fast path.
        lane_of: memoryview | None = None
        if any(
            sells[k] and lots[k].tariff.sells_at_lanes and entry_free[k] is not None
            for k in range(len(lots))
        ):
            # 0: through no numbered lane; else the lane number (up to MAX_LANES, int16)
            lane_of = memoryview(np.zeros(n + 1, dtype=np.int16))
            for free in entry_free:
                if free is not None:
                    free[:] = [(0.0, j) for j in range(1, len(free) + 1)]

        # the presorted departure stream (twin.sim.loop) and, per driver, how it leaves
        dep_t_np, dep_i_np = departure_stream(d)
        dep_t, dep_i = seq(dep_t_np), seq(dep_i_np)
        paid_np = np.full(n + 1, nan)
        paid_j = memoryview(paid_np)
        # One byte each: the loop reads it for every stream entry, and a compact array stays in
        # the CPU cache where event-id objects would not. The event id a stream departure
        # carries is read only to break an exact time tie, so it is kept as 8 raw bytes, not as
        # an int object per parked car held to the end.
        stream_state = bytearray(n + 1)
        eid_of = memoryview(np.zeros(n + 1, dtype=np.int64))

        # -- the per-car callbacks

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
                refused(i, k, t)
                return
            session_of[i] = session  # the price lives on the session until the car leaves
            if selling and sells[k]:
                held = lots[k].tariff.products_for(
                    t, u_event[i], u_validation[i], None if lane_of is None else lane_of[i] or None
                )
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

        def refused(i: int, k: int, t: float) -> None:
            """No spot for the driver: wait for one (with patience), leave or drive on."""
            for component in refused_comps:
                component.on_refused(i, k, t)
            if patience[i] > 0.0:
                outcome[i] = WAITING
                waiting[k].append(i)
                heappush(queue, (t + patience[i], _ARRIVE, nxt(), _Call(renege, i)))
            else:
                turned_away(i, k, t, BLOCKED)

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
                if lane_of is None:
                    start = free[0]
                    start = t if t > start else start
                    lane_start[i] = start
                    done = start + entry_service[k][i]
                    heapreplace(free, done)
                else:  # the lane free longest (the lowest number on a tie) serves the car
                    start, lane = free[0]
                    start = t if t > start else start
                    lane_start[i] = start
                    done = start + entry_service[k][i]
                    heapreplace(free, (done, lane))
                    lane_of[i] = lane
                heappush(queue, (done, _ARRIVE, nxt(), _Call(at_gate, i)))
            else:
                if any_entry_lanes:  # a lot without barriers in a network that has some
                    gate_t[i] = t
                    if lane_of is not None:  # diverted here from a lane of another lot
                        lane_of[i] = 0
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

        # -- components: each moment calls only the components that act on it
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
        claims = next((c for c in comps if c.name == "claims"), None)
        if claims is not None:  # the gates claim a unit from a store first: twin.sim.claims
            gate, serve_waiting = claim_first(
                claims, gate, refused, park, lots, allocate, fleet, profile, outcome, at, waiting,
                gate_t if any_entry_lanes else None, session_of,
            )  # fmt: skip
        if sc.initial != "empty":  # begin from a given or the typical state: twin.sim.initial
            freed = lambda k, t: serve_waiting(k, t) if waiting[k] else None  # noqa: E731
            if claims is not None:  # a start state's unit goes back through the store too
                freed = claims.seeded_freed(freed)
            self.seeded = self._seed_initial(freed)
            external.extend(self.seeded.sessions)
            if claims is not None:
                claims.prefill()

        if elastic:
            first = arrive_first
        elif not check_price and not any_entry_lanes and not arrival_comps:
            first = gate  # nothing happens between arrival and the barrier
        else:
            first = arrive
        rates_log: list[tuple[float, str, float, float, str]] = []
        if sc.pricing_policy is not None:
            for lot in lots:
                setup.schedule_adaptive_pricing(env, sc, lot, rates_log)
        if progress is not None:
            setup.schedule_progress(env, horizon, progress)

        # -- the event loop
        run_events(env, horizon, arrival, dep_t, dep_i, stream_state, eid_of, paid_j, first, leave)
        if progress is not None:
            progress(1.0)

        # -- the record
        settle_stream_departures(
            dep_t_np, dep_i_np, paid_np, stream_state, horizon, leave_rec, amount_rec
        )
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
        columns = Columns(
            outcome=outcome,
            entry=entry_rec,
            leave=leave_rec,
            amount=amount_rec,
            spot=spot_rec,
            gate_t=gate_t,
            lane_start=lane_start,
            exit_start=exit_start,
            exit_t=exit_t,
            quote=quote,
            tries=tries,
            search_km=search_km,
            lot_of=lot_of,
        )
        return assemble_record(
            sc,
            self.replication,
            self.seed,
            d,
            lots,
            columns,
            any_entry_lanes,
            any_exit_lanes,
            rearrived,
            external,
            offsets,
            comps,
            horizon,
            rates_log,
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
