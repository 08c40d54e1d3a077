"""The lot state machine: allocate on entry, release and price on exit.

This is the object a production gate controller holds. Time is always passed in (core seconds,
see :mod:`twin.core.clock`); nothing here reads a clock, sleeps or does I/O, so the simulator and
the live twin drive the very same code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from heapq import heappop, heappush
from numbers import Integral

from twin.core.allocation import AllocationStrategy, Tiers, make_strategy
from twin.core.errors import DoubleExit, InvalidTransition, LotFull, NoCompatibleSpot, UnknownTicket
from twin.core.facility import Level, Spot
from twin.core.pricing import PriceContext, Tariff
from twin.core.types import (
    GENERAL_TYPES,
    SPOT_CAPACITY,
    SpotStatus,
    SpotType,
    Vehicle,
    VehicleClass,
)

_AVAILABLE = SpotStatus.AVAILABLE
_OCCUPIED = SpotStatus.OCCUPIED
_RESERVED = SpotStatus.RESERVED
_MAINTENANCE = SpotStatus.MAINTENANCE
#: The claim an unnamed ``set_status``/``hold_spot`` makes: one per spot, last write wins
#: (how holds and operators have always used it). Named claims (a closure, a feed) layer on
#: top, and only their own owner lifts them.
UNNAMED = ""
_N_TYPES = len(SpotType)
#: Recycled sessions kept for reuse. Arrivals and departures alternate, so a few suffice; the
#: cap keeps an evening's departures from parking thousands of dead sessions in memory.
_SPARE_SESSIONS = 256


#: A status change as the lot records it: (time, spot index, old, new, claim reason).
StatusChange = tuple[float, int, SpotStatus, SpotStatus, str]
#: Called after every status change that is not a session's (see ``Lot.add_hook``).
StatusHook = Callable[[Spot, SpotStatus, SpotStatus, float, str], None]


@dataclass(slots=True, eq=False)
class Session:
    """A parking session: one ticket, one spot, from entry to exit."""

    ticket: int
    vehicle: Vehicle
    spot: Spot
    entry_t: float
    #: Lot occupancy fraction just before this entry; dynamic pricing multiplies by it.
    occupancy_at_entry: float
    exit_t: float | None = None
    amount_cents: int | None = None

    @property
    def open(self) -> bool:
        return self.exit_t is None


@cache
def _fractions(n: int) -> tuple[float, ...]:
    """``k / n`` for k = 0..n, shared by every lot of n spots.

    A session records the occupancy at its entry; taking the float from this table instead of
    dividing gives the same value without a new object per car that lives as long as the stay
    (a large lot holds thousands, scattered over memory).
    """
    return tuple(k / n for k in range(n + 1))


def compatible_tiers(
    vehicle_size: int, handicap: bool, ev: bool, ev_open_to_all: bool, by_size: bool
) -> Tiers:
    """Spot types a vehicle may use, grouped into preference tiers, most preferred first.

    Rules: a spot takes any vehicle no larger than its capacity; HANDICAP bays only with a
    permit (and are then preferred); EV bays are preferred by EVs and open to other vehicles
    only if the lot allows it, and then as a last resort so chargers stay free for EVs.
    """
    tiers: list[tuple[SpotType, ...]] = []
    if ev and SPOT_CAPACITY[SpotType.EV] >= vehicle_size:
        tiers.append((SpotType.EV,))
    if handicap and SPOT_CAPACITY[SpotType.HANDICAP] >= vehicle_size:
        tiers.append((SpotType.HANDICAP,))
    general = tuple(t for t in GENERAL_TYPES if SPOT_CAPACITY[t] >= vehicle_size)
    if by_size:
        tiers.extend((t,) for t in general)
    elif general:
        tiers.append(general)
    if not ev and ev_open_to_all and SPOT_CAPACITY[SpotType.EV] >= vehicle_size:
        tiers.append((SpotType.EV,))
    return tuple(tiers)


class Lot:
    """One parking facility: spots, their free-spot index, counters and open sessions.

    Counters (available per level and type, occupied per level and per type) are kept exact on
    every transition so displays, spread allocation and occupancy pricing never count spots.

    **The lot owns every spot status.** A spot is OCCUPIED while a session holds it
    (``allocate``/``allocate_spot`` .. ``release``); otherwise its status follows from its
    *claims*: any MAINTENANCE claim (a closure, an operator, a feed saying ``closed`` or
    ``unknown``) makes it MAINTENANCE, else any RESERVED claim (a permit or reservation hold)
    makes it RESERVED, else it is AVAILABLE. Claims are keyed by a reason, so a hold ending
    during a closure lifts the hold only and the spot stays closed; a closure of an occupied
    spot waits for the car to leave. Every change other than a session's goes through
    ``_apply``: counters, the strategy's index, the status log (``status_log``, which makes
    held and closed spot-hours exact figures) and the hooks (``add_hook``).
    Tickets are issued sequentially, so a closed ticket is recognised without keeping it:
    any ticket below the next number that is not open has exited already.
    """

    def __init__(
        self,
        spots: Sequence[Spot],
        levels: Sequence[Level],
        strategy: str | AllocationStrategy = "nearest",
        tariff: Tariff | None = None,
        ev_open_to_all: bool = False,
        lot_id: str = "lot",
    ) -> None:
        if not spots:
            raise ValueError("a lot needs at least one spot")
        self.lot_id = lot_id
        self.levels = list(levels)
        self.spots = list(spots)
        for i, spot in enumerate(self.spots):
            if spot.index != i:
                raise ValueError(f"spot {spot.id} has index {spot.index}, expected {i}")
            if not 0 <= spot.level < len(self.levels):
                raise ValueError(f"spot {spot.id} is on unknown level {spot.level}")
        self.tariff = tariff
        self.ev_open_to_all = ev_open_to_all
        self.strategy = make_strategy(strategy) if isinstance(strategy, str) else strategy
        n_levels = len(self.levels)
        self.capacity_by_level = [0] * n_levels
        self.capacity_by_type = [0] * _N_TYPES
        self.available = [[0] * _N_TYPES for _ in range(n_levels)]
        self.occupied_by_level = [0] * n_levels
        self.occupied_by_type = [0] * _N_TYPES
        self.n_reserved = 0
        self.n_closed = 0  # MAINTENANCE
        self.n_occupied = 0
        #: Every status change other than a session's, in order (see ``StatusChange``).
        self.status_log: list[StatusChange] = []
        self._hooks: list[StatusHook] = []
        self._feed_sessions: dict[int, int] = {}  # spot -> ticket of a car only a feed saw
        for spot in self.spots:
            spot.status = SpotStatus(spot.status)  # compared by identity on the hot path
            # a spot built out of service carries that as an unnamed claim
            out = spot.status is _RESERVED or spot.status is _MAINTENANCE
            spot.claims = {UNNAMED: spot.status} if out else None
            self.capacity_by_level[spot.level] += 1
            self.capacity_by_type[spot.type] += 1
            self._count(spot, spot.status, +1)
        self.strategy.bind(self)
        self._by_rank = self.strategy.by_rank
        self._choose = self.strategy.choose_plan
        self._plans: list[object] = [None] * (4 * len(VehicleClass))
        self._needs_context = tariff is not None and (
            getattr(tariff, "dynamic", None) is not None or getattr(tariff, "sells_products", False)
        )
        #: ticket -> (bought the event product, validation index) for tickets that hold any
        self._products: dict[int, tuple[bool, int | None]] = {}
        self._fraction = _fractions(len(self.spots))
        self._open: dict[int, Session] = {}
        self._spare: list[Session] = []  # closed sessions handed back by ``recycle``
        self._next_ticket = 0

    # -- counters -------------------------------------------------------------------------
    def _count(self, spot: Spot, status: SpotStatus, delta: int) -> None:
        if status == _AVAILABLE:
            self.available[spot.level][spot.type] += delta
        elif status == _OCCUPIED:
            self.occupied_by_level[spot.level] += delta
            self.occupied_by_type[spot.type] += delta
            self.n_occupied += delta
        elif status == _RESERVED:
            self.n_reserved += delta
        else:
            self.n_closed += delta

    @property
    def n_available(self) -> int:
        """Spots free to allocate now (derived, so the hot path updates one counter less)."""
        return len(self.spots) - self.n_occupied - self.n_reserved - self.n_closed

    @property
    def _n_held(self) -> int:
        return self.n_reserved + self.n_closed

    @property
    def capacity(self) -> int:
        return len(self.spots)

    def occupancy(self) -> float:
        """Occupied fraction of all spots (what occupancy-band pricing reads)."""
        return self.n_occupied / len(self.spots)

    def tiers(self, vehicle: Vehicle) -> Tiers:
        """Spot types ``vehicle`` may use, by preference (see :func:`compatible_tiers`)."""
        return compatible_tiers(
            int(vehicle.vclass),
            vehicle.handicap,
            vehicle.ev,
            self.ev_open_to_all,
            self.strategy.by_size,
        )

    def has_space_for(self, vehicle: Vehicle) -> bool:
        """Whether ``allocate`` would succeed now; O(levels · types), for displays and queues."""
        for tier in self.tiers(vehicle):
            for stype in tier:
                for row in self.available:
                    if row[stype]:
                        return True
        return False

    def _plan_for(self, vehicle: Vehicle) -> object:
        """The strategy's plan for this vehicle's profile, or the one heap it reduces to."""
        plan = self.strategy.plan(self.tiers(vehicle))
        heap = self.strategy.single_heap(plan)
        return plan if heap is None else heap

    # -- the state machine ----------------------------------------------------------------
    def allocate(self, vehicle: Vehicle, t: float) -> Session:
        """Give ``vehicle`` a spot at time ``t`` and open a session, or raise why not."""
        session = self.try_allocate(vehicle, t)
        if session is None:
            if self.n_available == 0:
                raise LotFull(f"{self.lot_id}: no spot available")
            raise NoCompatibleSpot(f"{self.lot_id}: no free spot fits vehicle {vehicle.id}")
        return session

    def try_allocate(self, vehicle: Vehicle, t: float) -> Session | None:
        """``allocate`` that answers None instead of raising: a full lot is a normal state at a
        busy gate, and raising costs more than the allocation itself."""
        plan = self._plans[vehicle.profile]
        if plan is None:
            plan = self._plans[vehicle.profile] = self._plan_for(vehicle)
        if plan.__class__ is list:  # one heap to pop from: the strategy's choice, written out
            by_rank = self._by_rank
            while plan:
                spot = by_rank[heappop(plan)]
                spot.indexed = False
                if spot.status is _AVAILABLE:
                    break
            else:
                return None
        else:
            spot = self._choose(plan)
            if spot is None:
                return None
        # set_status(AVAILABLE -> OCCUPIED) written out: this is the hot path
        n_occupied = self.n_occupied
        occupancy = self._fraction[n_occupied]
        spot.status = _OCCUPIED
        level, stype = spot.level, spot.type
        self.available[level][stype] -= 1
        self.occupied_by_level[level] += 1
        self.occupied_by_type[stype] += 1
        self.n_occupied = n_occupied + 1
        ticket = self._next_ticket
        self._next_ticket = ticket + 1
        spare = self._spare
        if spare:  # a recycled session: every field set, as Session(...) would
            session = spare.pop()
            session.ticket = ticket
            session.vehicle = vehicle
            session.spot = spot
            session.entry_t = t
            session.occupancy_at_entry = occupancy
            session.exit_t = None
            session.amount_cents = None
        else:
            session = Session(ticket, vehicle, spot, t, occupancy)
        self._open[ticket] = session
        return session

    def recycle(self, session: Session) -> None:
        """Hand a closed session back so a later allocation reuses the object.

        For a simulator, which reads what it needs from a session when the car leaves and then
        drops it: building a session costs a tenth of a simulated car, and a reused one is
        still in the CPU cache. The caller must hold the last reference, because the object
        comes back as another car's session. A gate controller never needs this.
        """
        if session.exit_t is None:
            raise InvalidTransition(f"{self.lot_id}: ticket {session.ticket} is still open")
        if session.ticket < 0:
            raise InvalidTransition(f"{self.lot_id}: this session was recycled already")
        session.ticket = -1
        if len(self._spare) < _SPARE_SESSIONS:
            self._spare.append(session)

    def release(self, ticket: int, t: float) -> Session:
        """Close the session of ``ticket`` at time ``t``, free its spot and price it."""
        session = self._open.pop(ticket, None)
        if session is None:
            if isinstance(ticket, Integral) and 0 <= ticket < self._next_ticket:
                raise DoubleExit(f"{self.lot_id}: ticket {ticket} has already exited")
            raise UnknownTicket(f"{self.lot_id}: ticket {ticket!r} was never issued here")
        if not t >= session.entry_t:  # also refuses NaN, which would pass `t < entry_t`
            self._open[ticket] = session
            raise ValueError(f"exit at {t} before entry at {session.entry_t}")
        spot = session.spot
        if spot.claims:  # a closure or hold waits for this car to leave: the one path
            self._apply(spot, self._claimed_status(spot), t, "release")
        else:  # _apply(AVAILABLE) written out: this is the hot path
            spot.status = _AVAILABLE
            level, stype = spot.level, spot.type
            self.occupied_by_level[level] -= 1
            self.occupied_by_type[stype] -= 1
            self.n_occupied -= 1
            self.available[level][stype] += 1
            if not spot.indexed:  # AllocationStrategy.freed, written out
                heappush(spot.home, spot.rank)
                spot.indexed = True
        session.exit_t = t
        tariff = self.tariff
        if tariff is not None:  # self.price written out: one call less per exit
            if self._needs_context:
                ctx = self._context(session, self._products.pop(session.ticket, None))
                session.amount_cents = tariff.price(session.entry_t, t, ctx)
            else:
                session.amount_cents = tariff.price(session.entry_t, t)
        return session

    def hold(self, ticket: int, prepaid: bool, validation: int | None) -> None:
        """Record what an open ticket holds: the event product bought at entry, a merchant
        validation (index into the tariff's validations). Priced at exit."""
        if ticket not in self._open:
            raise UnknownTicket(f"{self.lot_id}: ticket {ticket!r} is not open")
        if prepaid or validation is not None:
            self._products[ticket] = (prepaid, validation)

    def _context(
        self, session: Session, held: tuple[bool, int | None] | None
    ) -> PriceContext | None:
        # A context object costs as much as a simple price; build it only when prices use it.
        if not self._needs_context:
            return None
        if held is None:
            return PriceContext(session.occupancy_at_entry)
        return PriceContext(session.occupancy_at_entry, prepaid=held[0], validation=held[1])

    def price(self, session: Session, exit_t: float) -> int:
        """What the session costs if it leaves at ``exit_t`` (a quote, or the final charge)."""
        if self.tariff is None:
            return 0
        ctx = self._context(session, self._products.get(session.ticket))
        return self.tariff.price(session.entry_t, exit_t, ctx)

    # -- the one path for every status change that is not a session's ----------------------
    def add_hook(self, hook: StatusHook) -> None:
        """Call ``hook(spot, old, new, t, reason)`` after every status change that is not a
        session's (holds, closures, feeds; sessions are reported by allocate/release)."""
        self._hooks.append(hook)

    def _apply(self, spot: Spot, status: SpotStatus, t: float, reason: str) -> None:
        old = spot.status
        if old is status:
            return
        self._count(spot, old, -1)
        spot.status = status
        self._count(spot, status, +1)
        if status is _AVAILABLE:
            self.strategy.freed(spot)
        self.status_log.append((t, spot.index, old, status, reason))
        for hook in self._hooks:
            hook(spot, old, status, t, reason)

    @staticmethod
    def _claimed_status(spot: Spot) -> SpotStatus:
        """The status a spot without a session has: its strongest claim, else AVAILABLE."""
        claims = spot.claims
        if not claims:
            return _AVAILABLE
        return _MAINTENANCE if _MAINTENANCE in claims.values() else _RESERVED

    def _spot(self, spot_index: int) -> Spot:
        if not 0 <= spot_index < len(self.spots):
            raise IndexError(f"{self.lot_id}: no spot with index {spot_index}")
        return self.spots[spot_index]

    def claim(self, spot_index: int, status: SpotStatus | int, t: float, reason: str) -> None:
        """Make (or lift, with AVAILABLE) the claim ``reason`` on a spot; the spot's status
        follows from all its claims. A named claim on an occupied spot takes effect when the
        car leaves; an unnamed one (``set_status``) is refused, as ever, so a session can never
        lose its spot underneath it."""
        status = SpotStatus(status)  # statuses are compared by identity on the hot path
        spot = self._spot(spot_index)
        if status is _OCCUPIED or (reason == UNNAMED and spot.status is _OCCUPIED):
            raise InvalidTransition(
                f"{self.lot_id}: spot {spot.id} {spot.status.name} -> {status.name} "
                "must go through allocate/release"
            )
        claims = spot.claims
        if status is _AVAILABLE:
            if not claims or reason not in claims:
                return
            del claims[reason]
        else:
            if claims is None:
                claims = spot.claims = {}
            claims[reason] = status
        if spot.status is not _OCCUPIED:
            self._apply(spot, self._claimed_status(spot), t, reason or status.name.lower())

    def set_status(
        self, spot_index: int, status: SpotStatus | int, t: float, reason: str = UNNAMED
    ) -> None:
        """Take a free spot out of service (MAINTENANCE/RESERVED) or put it back (AVAILABLE).

        Unnamed (the default), it sets the spot's one unnamed claim (last write wins) and
        leaves named claims alone: ending a hold with ``set_status(i, AVAILABLE, t)`` during a
        closure keeps the spot closed. With ``reason`` it is :meth:`claim`.
        """
        self.claim(spot_index, status, t, reason)

    def close(self, spot_indexes: Iterable[int], t: float, reason: str = "closed") -> None:
        """Take spots out of service for ``reason`` (a closure, a feed's ``closed`` or
        ``unknown``); occupied ones close when their car leaves."""
        for i in spot_indexes:
            self.claim(i, _MAINTENANCE, t, reason)

    def reopen(self, spot_indexes: Iterable[int], t: float, reason: str = "closed") -> None:
        """Lift ``reason``'s closure; each spot returns to what its other claims say."""
        for i in spot_indexes:
            self.claim(i, _AVAILABLE, t, reason)

    def claims_of(self, spot_index: int) -> dict[str, SpotStatus]:
        """A copy of a spot's claims (reason -> status; ``""`` is the unnamed one)."""
        return dict(self._spot(spot_index).claims or {})

    def free_spots(self) -> list[Spot]:
        """AVAILABLE spots in the strategy's index, in its order (a public view, O(n))."""
        return self.strategy.free_spots()

    # -- held spots (reservations, assigned permit spots) ---------------------------------
    def hold_spot(self, spot_type: SpotType | int, t: float) -> Spot | None:
        """Take the strategy's best AVAILABLE spot of ``spot_type`` out of walk-in allocation.

        The spot becomes RESERVED (an unnamed claim, so ``allocate`` never hands it out) and
        is returned, or None if no spot of that type is free. Uses the free-spot index,
        O(log n): a reservation system holds spots without scanning the lot.
        """
        spot = self.strategy.choose(((SpotType(spot_type),),))
        if spot is None:
            return None
        spot.claims = {UNNAMED: _RESERVED} if spot.claims is None else spot.claims
        spot.claims[UNNAMED] = _RESERVED
        self._apply(spot, _RESERVED, t, "hold")
        return spot

    def allocate_spot(
        self, spot_index: int, vehicle: Vehicle, t: float, *, enforce_rules: bool = True
    ) -> Session:
        """Open a session on one named spot (RESERVED or AVAILABLE): a holder takes their spot.

        This is how a reservation holder or an assigned-permit holder parks in the spot kept
        for them. The vehicle must fit the bay physically; with ``enforce_rules`` (default) the
        permit and EV rules of :func:`compatible_tiers` apply too. ``enforce_rules=False``
        models a driver ignoring the signs (e.g. no permit in a HANDICAP bay), which
        enforcement then counts. Not on the hot path: ``allocate`` is untouched.
        """
        spot = self._spot(spot_index)
        if spot.status not in (SpotStatus.RESERVED, _AVAILABLE):
            raise InvalidTransition(
                f"{self.lot_id}: spot {spot.id} is {spot.status.name}, cannot be allocated"
            )
        if SPOT_CAPACITY[spot.type] < vehicle.vclass:
            raise NoCompatibleSpot(
                f"{self.lot_id}: vehicle {vehicle.id} ({vehicle.vclass.name}) does not fit "
                f"{spot.type.name} spot {spot.id}"
            )
        if enforce_rules and not any(spot.type in tier for tier in self.tiers(vehicle)):
            raise NoCompatibleSpot(
                f"{self.lot_id}: vehicle {vehicle.id} may not use {spot.type.name} spot {spot.id}"
            )
        # An AVAILABLE spot keeps its (now stale) heap entry: the index discards it lazily.
        # The holder takes the spot kept for them: the hold claims end here (named closures
        # cannot be on it, or it would not be RESERVED or AVAILABLE).
        claims = spot.claims
        if claims:
            for reason in [r for r, st in claims.items() if st is _RESERVED]:
                del claims[reason]
            if spot.status is _RESERVED:
                self.status_log.append((t, spot.index, _RESERVED, _OCCUPIED, "holder"))
        occupancy = self._fraction[self.n_occupied]
        self._count(spot, spot.status, -1)
        spot.status = _OCCUPIED
        self._count(spot, _OCCUPIED, +1)
        ticket = self._next_ticket
        self._next_ticket = ticket + 1
        self._open[ticket] = session = Session(ticket, vehicle, spot, t, occupancy)
        return session

    # -- a feed's spot statuses (the live twin) -------------------------------------------
    #: Statuses a spot sensor or operator feed reports, as the lot takes them.
    FEED_STATUSES = ("free", "occupied", "closed", "unknown")

    def apply_feed_status(
        self, spot_index: int, status: str, t: float, source: str = "feed"
    ) -> Session | None:
        """Take a feed's word for one spot, through the same claims as everything else.

        ``closed`` and ``unknown`` are MAINTENANCE claims named ``<source>:closed`` and
        ``<source>:unknown`` (a spot the twin cannot see is not offered to walk-ins);
        ``free`` lifts both and ends a session the feed opened; ``occupied`` opens a session
        for an unseen car (vehicle ``<source>:<spot id>``, rules not enforced) unless the spot
        is occupied already, and returns it. Holds and closures of other owners stay in force:
        a feed saying ``free`` does not reopen a scheduled closure.
        """
        if status not in self.FEED_STATUSES:
            raise ValueError(
                f"{self.lot_id}: feed status {status!r} (allowed: {list(self.FEED_STATUSES)})"
            )
        spot = self._spot(spot_index)
        feed_sessions = self._feed_sessions
        if status in ("closed", "unknown"):
            other = "unknown" if status == "closed" else "closed"
            self.claim(spot_index, _AVAILABLE, t, f"{source}:{other}")
            self.claim(spot_index, _MAINTENANCE, t, f"{source}:{status}")
            return None
        self.claim(spot_index, _AVAILABLE, t, f"{source}:closed")
        self.claim(spot_index, _AVAILABLE, t, f"{source}:unknown")
        if status == "free":
            ticket = feed_sessions.pop(spot_index, None)
            if ticket is not None:
                self.release(ticket, t)
            return None
        if spot.status is _OCCUPIED:
            return None
        session = self.allocate_spot(
            spot_index, Vehicle(f"{source}:{spot.id}"), t, enforce_rules=False
        )
        feed_sessions[spot_index] = session.ticket
        return session

    def session(self, ticket: int) -> Session:
        try:
            return self._open[ticket]
        except KeyError:
            raise UnknownTicket(f"{self.lot_id}: no open session for ticket {ticket!r}") from None

    @property
    def open_sessions(self) -> int:
        return len(self._open)

    def sessions(self) -> list[Session]:
        """The open sessions (a copy, in ticket order of opening): for audits and the live
        mirror's state, never on the hot path."""
        return list(self._open.values())
