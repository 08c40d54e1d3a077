"""Claims at the gates through a shared store, with the core's claim strategies (``claims:``).

Without a ``claims:`` section a car at the barrier takes a spot from the core's
:class:`~twin.core.lot.Lot` at once. With one, the gate first claims one unit of its lot from a
store that every gate of every lot shares, run with one of :mod:`twin.core.locking`'s
strategies (row lock, version check, atomic counter, serialising queue). Each lot is one
counter row of that store, with the lot's spots as its capacity.

The core decides, the simulator only adds time. Every change of the store's state is a
``begin``/``release``/``step`` of the core strategy; between two steps the claim spends the time
the locking study's latency model gives it (the transactions of :mod:`twin.sim.claim_latency`,
which the study shares, without its client-CPU and shared-host options): half a round trip
each way, a database connection from a pool held for the whole transaction, one of the
database's workers per statement, the WAL flush of a committing write, the controller's work
between read and write, the optimistic back-off (exponential, full jitter) and retries, one
Redis thread per command, one consumer for the queue. A blocked step waits until the core
hands it the lock (``Step.woken``).

What the model does with an answer (:meth:`twin.sim.model.ParkingModel.run`):

* granted: the car takes a spot from the lot and passes the barrier then (the claim's time is
  added to its time at the gate). If the lot has no spot that fits it after all (a motorcycle
  bay is free, the car is a van; a closure), the unit is given back through the store at once
  and the car is refused (``no_spot``);
* refused (the row was full) or failed (optimistic, out of retries): the car is refused like
  one the lot had no spot for: it waits (``when_full: wait``), leaves, or drives on;
* a waiting driver is not given a freed spot directly: the line claims for as many drivers as
  the lot has spots free (minus claims already in flight there), longest-waiting first among
  those the lot has a fitting spot for. A grant parks the driver, a refusal leaves them in the
  line; a store release that completes tells the line to try again;
* a departure gives the unit back through the store (a release transaction, with its latency:
  until it commits the unit stays taken in the store though the spot is free);
* a start state's cars and holds are granted their units at time 0 without latency
  (:meth:`ClaimsComponent.prefill`), and give them back through the store as they leave;
* app reservations (``operations.reservations``) claim through the same store
  (:meth:`ClaimsComponent.claim_unit`): the reservation book
  (:class:`~twin.core.reservations.ReservationBook` with ``units_from_store``) asks for a unit
  when a hold is due, takes the spot only once the unit is granted and waits (as for a full
  lot) when it is refused; a holder who comes before their hold claims at the gate and is
  bumped when refused; a hold that ends unused and a holder who leaves give the unit back
  (:meth:`ClaimsComponent.give_back_unit`). The hold's unit is the holder's for the stay.

Invariants checked as the run goes (``double_bookings`` counts violations: it must stay 0;
the tests assert it): at every grant, the units the store has granted and not taken back never
exceed the row's capacity, and its count is never negative; at every park and every hold, the
lot's parked cars and held spots never outnumber the units granted there. Figures cover claims
begun in ``[warm-up, horizon)``: the gates' (``claims.<name>``) and the app's
(``claims.app.<name>``, with reservations).

Randomness: service-time factors and back-off jitter come from streams of their own
(``claims/service``, ``claims/backoff``), so switching claims on changes no driver, stay or
lane time (common random numbers against the same scenario without claims).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import simpy

from twin.core.locking import (
    ClaimStrategy,
    Kind,
    Status,
    Step,
    make_claim_strategy,
)
from twin.sim.claim_latency import ClaimTransactions, Latencies, service_factors
from twin.sim.components import Component, ModelContext, register
from twin.sim.record import WAITING
from twin.sim.rng import BlockDraws

if TYPE_CHECKING:
    from twin.core.lot import Lot, Session
    from twin.core.types import Vehicle
    from twin.scenario.claims import ClaimsSpec
    from twin.scenario.model import Scenario

__all__ = ["Answer", "ClaimsComponent", "Done", "claim_first"]

#: ``done(driver, lot, status, t, line)``: the model's continuation when a driver's claim is
#: answered (``line``: the claim was made for a driver waiting in the lot's line).
Done = Callable[[int, int, Status, float, bool], None]

#: ``answer(claim_id, status, t)``: where an app's claim (a reservation's) is answered.
Answer = Callable[[int, Status, float], None]


def _claims_of(scenario: Scenario) -> ClaimsSpec | None:
    return scenario.claims


@register("claims", order=60, spec=_claims_of)
class ClaimsComponent(Component, ClaimTransactions):
    """The store the gates claim units from, one counter row per lot."""

    name: ClassVar[str] = "claims"
    keeps_sessions: ClassVar[bool] = False

    def __init__(self, spec: ClaimsSpec, scenario: Scenario) -> None:
        self.spec = spec
        self.scenario = scenario
        # set here, not in start: the reservations component (which starts first) adds to them
        #: other holders of a lot's units than parked cars (a reservation book's holds): the
        #: invariant counts them (see check_parked)
        self.also_taken: list[Callable[[int], int]] = []
        #: told when a release completes at lot k (a unit came free in the store)
        self.on_unit_freed: list[Callable[[int, float], None]] = []

    # -- set-up ---------------------------------------------------------------------------------
    def start(self, ctx: ModelContext) -> None:
        super().start(ctx)
        spec, env = self.spec, ctx.env
        self.env: simpy.Environment = env
        self.lots = ctx.lots
        self.core: ClaimStrategy = make_claim_strategy(
            spec.strategy,
            {k: lot.capacity for k, lot in enumerate(ctx.lots)},
            max_retries=spec.max_retries,
        )
        self.open_store(
            env,
            spec.strategy,
            Latencies(
                rtt_ms=spec.rtt_ms,
                app_ms=spec.app_ms,
                statement_ms=spec.statement_ms,
                commit_ms=spec.commit_ms,
                redis_op_ms=spec.redis_op_ms,
                consumer_ms=spec.consumer_ms,
                statements_in_lock=spec.statements_in_lock,
                backoff_base_ms=spec.backoff_base_ms,
                backoff_cap_ms=spec.backoff_cap_ms,
            ),
            connections=spec.connections,
            workers=spec.workers,
            redis_servers=spec.redis_servers,
            svc=service_factors(ctx.streams.get("claims/service"), spec.service_cv),
            jitter=BlockDraws(ctx.streams.get("claims/backoff").random),
        )
        self._events: dict[int, simpy.Event] = {}  # blocked transactions by claim id
        self._ids = 0
        self.holding: dict[int, int] = {}  # driver -> claim id of the unit it holds
        self.claiming: set[int] = set()  # drivers with a claim in flight
        self.in_flight = [0] * len(ctx.lots)  # claims in flight per lot (not releases)
        self.done: Done = lambda i, k, status, t, line: None
        # per claim: begun at, answered at (NaN: not yet), status code, lot, conflicts, waited
        self._target: list[int] = []
        self._line: list[bool] = []
        self._begun: list[float] = []
        self._answered: list[float] = []
        self._status: list[int] = []
        self.conflicts: list[int] = []  # per claim: conflicts retried or not
        self._waited: list[bool] = []
        self._with_space: list[bool] = []  # refused or failed while the lot had a spot free
        self._app: list[bool] = []  # the claim is an app's (a reservation's), not a gate's
        self._answers: dict[int, Answer] = {}  # app claims in flight: where the answer goes
        self.app_units: set[int] = set()  # app claims granted and not given back
        self.app_given_back: list[float] = []  # app grants the book could not use
        self.no_spot: list[float] = []  # grants given back: the lot had no spot for the car
        self.double_bookings = 0
        self.negative_counts = 0
        self.releases = 0
        # units a start state's cars and holds took before the run: claim ids -1, -2, ...
        self._seeded: list[list[int]] = [[] for _ in ctx.lots]
        self._seeded_target: dict[int, int] = {}

    def bind(self, done: Done) -> None:
        """Where answers go: the model's continuation of a driver's visit."""
        self.done = done

    # -- what the model calls -------------------------------------------------------------------
    def claim(self, i: int, k: int, t: float, line: bool = False) -> None:
        """Driver ``i`` claims a unit of lot ``k`` at ``t``; ``done`` hears the answer."""
        cid = self._new(k, t, line, False)
        self.claiming.add(i)
        self.env.process(self._claim(cid, i, k))

    def claim_unit(self, k: int, t: float, answer: Answer) -> int:
        """An app claims a unit of lot ``k`` at ``t`` (a reservation's hold, or a holder at the
        gate without one); ``answer`` hears it. Returns the claim id, which a grant holds until
        :meth:`give_back_unit`."""
        cid = self._new(k, t, False, True)
        self._answers[cid] = answer
        self.env.process(self._claim(cid, -1, k))
        return cid

    def give_back_unit(self, cid: int, t: float, unused: bool = False) -> None:
        """An app's granted unit goes back to the store (a release transaction); ``unused``:
        the book could not use the grant (counted as given back)."""
        if cid in self.app_units:
            self.app_units.discard(cid)
            if unused:
                self.app_given_back.append(t)
            self.releases += 1
            self.env.process(self._release(cid))

    def _new(self, k: int, t: float, line: bool, app: bool) -> int:
        cid = self._ids
        self._ids += 1
        self._target.append(k)
        self._line.append(line)
        self._begun.append(t)
        self._answered.append(math.nan)
        self._status.append(-1)
        self.conflicts.append(0)
        self._waited.append(False)
        self._with_space.append(False)
        self._app.append(app)
        self.in_flight[k] += 1
        return cid

    def give_back(self, i: int, t: float) -> None:
        """Driver ``i``'s granted unit goes back to the store (a departure, or a grant the
        driver could not use); the release is a transaction of its own."""
        cid = self.holding.pop(i, None)
        if cid is not None:
            self.releases += 1
            self.env.process(self._release(cid))

    def prefill(self) -> None:
        """Grant at time 0, without latency, a unit for every spot a start state took (its
        parked cars and its holds): the store begins agreeing with the lots."""
        t = self.env.now
        cid = -1 - len(self._seeded_target)
        for k, lot in enumerate(self.lots):
            for _ in range(lot.capacity - lot.n_available):
                step = self.core.begin(cid, k, t)
                while not step.status.final:
                    step = self.core.step(cid, t)
                self._seeded[k].append(cid)
                self._seeded_target[cid] = k
                cid -= 1

    def seeded_freed(self, freed: Callable[[int, float], None]) -> Callable[[int, float], None]:
        """Wrap the model's "a start state's spot came free at lot k" so that the unit it held
        goes back through the store too (a release transaction, like a departure's)."""

        def hook(k: int, t: float) -> None:
            if self._seeded[k]:
                self.releases += 1
                self.env.process(self._release(self._seeded[k].pop()))
            freed(k, t)

        return hook

    def _row(self, cid: int) -> int:
        return self._target[cid] if cid >= 0 else self._seeded_target[cid]

    def check_parked(self, k: int) -> None:
        """After a car parked (or a hold took a spot) at lot ``k``: the lot's parked cars and
        held spots never outnumber the units the store has granted there (two on one unit
        would be a double booking)."""
        taken = self.lots[k].n_occupied
        for also in self.also_taken:
            taken += also(k)
        if taken > self.core.held(k):
            self.double_bookings += 1

    def note_no_spot(self, t: float) -> None:
        """A granted unit the lot had no fitting spot for (the model gives it back)."""
        self.no_spot.append(t)

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        self.give_back(i, t)
        return 0.0

    # -- transactions ---------------------------------------------------------------------------
    def _claim(self, cid: int, i: int, k: int) -> Generator:
        step = yield from self._claim_body(cid, k)
        t = self.env.now
        self._answered[cid] = t
        self._status[cid] = _CODE[step.status]
        self.in_flight[k] -= 1
        if step.status is not Status.GRANTED and self.lots[k].n_available > 0:
            self._with_space[cid] = True
        answer = self._answers.pop(cid, None)
        if answer is not None:  # an app's claim
            if step.status is Status.GRANTED:
                self.app_units.add(cid)
            answer(cid, step.status, t)
            return
        self.claiming.discard(i)
        if step.status is Status.GRANTED:
            self.holding[i] = cid
        self.done(i, k, step.status, t, self._line[cid])

    def _release(self, cid: int) -> Generator:
        yield from self._release_body(cid)
        # a unit came free in the store: drivers (and holds) waiting at that lot may claim it
        k, t = self._row(cid), self.env.now
        for listener in self.on_unit_freed:  # holds first, as the book gives a freed spot
            listener(k, t)
        self.ctx.spot_freed(k, t)

    def _step(self, cid: int) -> Generator[simpy.Event, Step, Step]:
        """Perform the transaction's next operation now; if it blocks, wait to be woken."""
        step = self.core.step(cid, self.env.now)
        for woken in step.woken:
            self._events.pop(woken.claim_id).succeed(woken)
        if step.status is Status.BLOCKED:
            if step.kind is Kind.CLAIM:
                self._waited[cid] = True
            event = self.env.event()
            self._events[cid] = event
            step = yield event
        elif step.status is Status.GRANTED:
            self._check_grant(cid)
        return step

    def _check_grant(self, cid: int) -> None:
        """The invariant: a row never has more units granted than it has, nor a count < 0."""
        k = self._row(cid)
        if self.core.held(k) > self.core.capacity(k):
            self.double_bookings += 1
        if self.core.store_value(k) < 0:
            self.negative_counts += 1

    # -- figures --------------------------------------------------------------------------------
    def finish(self, t: float) -> dict[str, float]:
        """Figures of the claims begun in [warm-up, horizon): the gates' (``claims.<name>``)
        and, when a reservation book claims through the store, the app's (``claims.app.*``)."""
        warm = self.scenario.warmup_s
        days = max(t - warm, 0.0) / 86400.0
        begun = np.asarray(self._begun, dtype=float)
        app = np.asarray(self._app, dtype=bool)
        out = self._figures((begun >= warm) & ~app, warm, days)
        if self.also_taken:  # a book claims through the store: its claims' own figures
            mine = self._figures((begun >= warm) & app, warm, days)
            given_back = int((np.asarray(self.app_given_back) >= warm).sum())
            out.update(
                {
                    "app.per_day": mine["per_day"],
                    "app.wait_ms.mean": mine["wait_ms.mean"],
                    "app.wait_ms.p95": mine["wait_ms.p95"],
                    "app.refused_pct": mine["refused_pct"],
                    "app.failed_pct": mine["failed_pct"],
                    "app.given_back_per_day": given_back / days if days > 0 else math.nan,
                    "app.unfinished": mine["unfinished"],
                }
            )
        # the invariant counts every claim, the gates' and the app's
        out["double_bookings"] = float(self.double_bookings + self.negative_counts)
        return out

    def _figures(self, keep: np.ndarray, warm: float, days: float) -> dict[str, float]:
        """The figures of the claims ``keep`` selects (per-claim records)."""
        begun = np.asarray(self._begun, dtype=float)
        answered = np.asarray(self._answered, dtype=float)[keep]
        status = np.asarray(self._status, dtype=np.int8)[keep]
        done = np.isfinite(answered)
        wait_ms = (answered[done] - begun[keep][done]) * 1000.0
        n = int(keep.sum())

        def per_day(count: float) -> float:
            return count / days if days > 0 else math.nan

        def share(count: float) -> float:
            return 100.0 * count / n if n else 0.0

        refused = int((status == _CODE[Status.REFUSED]).sum())
        failed = int((status == _CODE[Status.FAILED]).sum())
        conflicts = int(np.asarray(self.conflicts)[keep].sum()) if n else 0
        stats = self.core.stats
        return {
            "wait_ms.mean": float(wait_ms.mean()) if wait_ms.size else math.nan,
            "wait_ms.p95": float(np.percentile(wait_ms, 95)) if wait_ms.size else math.nan,
            "wait_ms.max": float(wait_ms.max()) if wait_ms.size else math.nan,
            "per_day": per_day(n),
            "refused_pct": share(refused),
            "failed_pct": share(failed),
            "refused_with_space_per_day": per_day(
                int(np.asarray(self._with_space, dtype=bool)[keep].sum())
            ),
            "no_spot_per_day": per_day(int((np.asarray(self.no_spot) >= warm).sum())),
            "conflicts_per_day": per_day(conflicts),
            # each conflict is retried, except the last of a claim that failed
            "retries_per_day": per_day(conflicts - failed),
            "waited_pct": share(int(np.asarray(self._waited, dtype=bool)[keep].sum())),
            "unfinished": float(n - int(done.sum())),
            "double_bookings": float(self.double_bookings + self.negative_counts),
            "spurious_refusals": float(stats.spurious_refusals),
        }


#: Status codes in the per-claim record.
_CODE = {s: code for code, s in enumerate(Status)}


def claim_first(
    claims: ClaimsComponent,
    admit: Callable[[int, float], None],
    refused: Callable[[int, int, float], None],
    park: Callable[[int, int, Session, float], None],
    lots: list[Lot],
    allocate: list[Callable[[Vehicle, float], Session | None]],
    fleet: list[Vehicle],
    profile: memoryview,
    outcome: memoryview,
    at: memoryview,
    waiting: list[deque[int]],
    gate_t: memoryview | None,
    session_of: list[Session | None],
) -> tuple[Callable[[int, float], None], Callable[[int, float], None]]:
    """The model's ``gate`` and ``serve_waiting`` when the gates claim through the store.

    ``admit(i, t)`` is the model's own gate (take a spot, or ``refused``); it now runs when a
    claim is granted. Called once per replication by :meth:`ParkingModel.run`; the closures
    it returns replace the model's, so a run without claims keeps its fast paths untouched.
    """

    def gate(i: int, t: float) -> None:
        claims.claim(i, at[i], t)

    def done(i: int, k: int, status: Status, t: float, line: bool) -> None:
        if line:  # a claim for a driver of the waiting line
            if status is Status.GRANTED:
                if outcome[i] == WAITING and at[i] == k:
                    session = allocate[k](fleet[profile[i]], t)
                    if session is not None:
                        park(i, k, session, t)
                        claims.check_parked(k)
                        return
                    claims.note_no_spot(t)
                claims.give_back(i, t)  # reneged or drove on meanwhile, or no fitting spot
            return  # refused: still in the line
        if gate_t is not None:
            gate_t[i] = t  # the barrier opens (or the car is refused) when the store answers
        if status is Status.GRANTED:
            admit(i, t)
            if session_of[i] is None:  # granted, but the lot had no spot that fits the car
                claims.note_no_spot(t)
                claims.give_back(i, t)
            else:
                claims.check_parked(k)
        else:
            refused(i, k, t)

    def serve_waiting(k: int, t: float) -> None:
        """Claim for as many waiting drivers as the lot has spots free (less the claims in
        flight there), longest-waiting first among those a free spot fits."""
        queued = waiting[k]
        lot = lots[k]
        room = lot.n_available - claims.in_flight[k]
        no_fit = 0  # bit mask of the vehicle profiles the lot has no spot for now
        gone = 0
        for i in queued:
            if room <= 0:
                break
            if outcome[i] != WAITING or at[i] != k:
                gone += 1
                continue
            p = profile[i]
            if i in claims.claiming or no_fit >> p & 1:
                continue
            if not lot.has_space_for(fleet[p]):
                no_fit |= 1 << p
                continue
            claims.claim(i, k, t, line=True)
            room -= 1
        while queued and (outcome[queued[0]] != WAITING or at[queued[0]] != k):
            queued.popleft()
        if gone > len(queued) // 2:
            waiting[k] = deque(i for i in queued if outcome[i] == WAITING and at[i] == k)

    claims.bind(done)
    return gate, serve_waiting
