"""Permits and special spots: monthly permit holders, accessible-bay enforcement, EV charging.

Pure production logic like the rest of :mod:`twin.core`: time is passed in (core seconds), money
is ``int`` cents, and nothing here draws a random number -- where chance matters (will a patrol
catch this illegal stay?) the caller passes a uniform draw in ``[0, 1)``, so the simulator and a
live system drive the same code.

Monthly permits (:class:`PermitRegistry`)
    A permit lists plates and a validity window ``[valid_from, valid_until)``. At the gate the
    plate is recognised (O(1)); a holder pays nothing per visit (the tariff amount is recorded as
    *waived*). A permit may carry an *assigned spot*: while the permit is valid the spot is
    RESERVED on the lot, so ``Lot.allocate`` never gives it to anyone else; the holder parks in
    it, and on exit it goes straight back to RESERVED. A plate already inside cannot enter again
    on the same permit (anti-passback).

Accessible bays (:class:`HandicapEnforcer`)
    ``Vehicle.handicap`` is the permit (placard). The lot never allocates a HANDICAP bay to a
    vehicle without one, but drivers can ignore the sign (:meth:`HandicapEnforcer.park_illegally`).
    Each stay is inspected once, with the *enforcement probability* of being caught: a stay in a
    HANDICAP bay without a permit is a violation, caught if the caller's draw is below the
    probability, and fined.

EV charging (:class:`ChargingPolicy`, :func:`charge_bill`, :class:`ChargingStations`)
    An EV plugged in with ``energy_kwh`` to take at ``power_kw`` charges for
    ``energy / power`` hours (less if it leaves first); afterwards it is *idle at the charger*
    until it leaves. Fees: per kWh delivered, per hour of charging (per started minute) and,
    after a grace period, per hour idle (per started minute), each rounded half-up to cents.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, fields
from decimal import ROUND_HALF_UP, Decimal
from heapq import heappop, heappush

from twin.core.errors import InvalidTransition, NoCompatibleSpot, ParkingError, UnknownTicket
from twin.core.lot import Lot, Session
from twin.core.types import SpotStatus, SpotType, Vehicle


class PermitError(ParkingError):
    """Base of every refusal of the permit system."""


class AlreadyInside(PermitError):
    """Anti-passback: this plate entered on its permit and has not left."""


def _check_time(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise ValueError(f"{name} must be a number of seconds, got {value!r}")
    return float(value)


def _check_cents(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be int cents >= 0, got {value!r}")


def _half_up(x: Decimal) -> int:
    return int(x.quantize(Decimal(1), rounding=ROUND_HALF_UP))


# =========================================================================== monthly permits


@dataclass(frozen=True, slots=True)
class MonthlyPermit:
    """A monthly (contract) permit: who may enter free, when, and whether a spot is theirs."""

    permit_id: str
    plates: frozenset[str]
    valid_from: float
    valid_until: float
    assigned_spot: int | None = None
    account: str = ""

    def __post_init__(self) -> None:
        if not self.permit_id:
            raise ValueError("permit_id must not be empty")
        plates = frozenset(str(p) for p in self.plates)
        if not plates:
            raise ValueError(f"permit {self.permit_id}: needs at least one plate")
        object.__setattr__(self, "plates", plates)
        start = _check_time("valid_from", self.valid_from)
        end = _check_time("valid_until", self.valid_until)
        if not end > start:
            raise ValueError(f"permit {self.permit_id}: valid_until must be after valid_from")

    def valid_at(self, t: float) -> bool:
        return self.valid_from <= t < self.valid_until


@dataclass
class PermitStats:
    """What the gate saw of permit holders."""

    recognised: int = 0  # a plate with a permit valid now
    not_valid_now: int = 0  # a plate whose permit(s) exist but are not valid now
    entries: int = 0
    assigned_entries: int = 0  # parked in their assigned spot
    assigned_busy: int = 0  # assigned spot in use (second car on one permit): general spot
    exits: int = 0
    waived_cents: int = 0  # tariff amount of permit stays, not charged
    #: Seconds assigned spots spent held (RESERVED) with nobody in them, over closed holds;
    #: :meth:`PermitRegistry.idle_spot_seconds` adds the holds still open.
    held_idle_s: float = 0.0

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class PermitRegistry:
    """Monthly permits of one lot: recognition at the gate, free stays, assigned spots.

    Assigned spots are held (RESERVED) while their permit is valid, which :meth:`advance`
    applies at ``valid_from``/``valid_until``. A spot still occupied by someone else when its
    permit starts is claimed as soon as it frees (:meth:`on_spot_freed`, which the simulator
    calls after releases when permits are on).
    """

    def __init__(self, lot: Lot) -> None:
        self.lot = lot
        self.stats = PermitStats()
        self._by_plate: dict[str, list[MonthlyPermit]] = {}
        self._by_id: dict[str, MonthlyPermit] = {}
        self._spot_owner: dict[int, list[MonthlyPermit]] = {}
        self._held: set[int] = set()  # assigned spots this registry holds RESERVED now
        self._held_since: dict[int, float] = {}  # held spot -> when its current hold began
        self._claim: set[int] = set()  # assigned spots to hold as soon as they free
        self._inside: dict[str, tuple[int, MonthlyPermit]] = {}  # plate -> (ticket, permit)
        self._tickets: dict[int, tuple[str, MonthlyPermit]] = {}
        self._events: list[tuple[float, int, int, str]] = []
        self._seq = 0
        self._now = -math.inf

    # -- registration -----------------------------------------------------------------------
    def add(self, permit: MonthlyPermit, t: float) -> None:
        """Register a permit at time ``t`` (its assigned spot is held from ``valid_from``)."""
        if permit.permit_id in self._by_id:
            raise ValueError(f"permit {permit.permit_id} is already registered")
        spot = permit.assigned_spot
        if spot is not None:
            if not 0 <= spot < len(self.lot.spots):
                raise IndexError(f"permit {permit.permit_id}: no spot with index {spot}")
            status = self.lot.spots[spot].status
            if status is SpotStatus.MAINTENANCE or (
                status is SpotStatus.RESERVED and spot not in self._held
            ):
                raise InvalidTransition(
                    f"spot {self.lot.spots[spot].id} is {status.name}: cannot assign it"
                )
            for other in self._spot_owner.get(spot, ()):
                if other.valid_from < permit.valid_until and permit.valid_from < other.valid_until:
                    raise ValueError(
                        f"spot {self.lot.spots[spot].id} is already assigned to permit "
                        f"{other.permit_id} for an overlapping period"
                    )
            self._spot_owner.setdefault(spot, []).append(permit)
            self._schedule(permit.valid_from, 1, permit)
            self._schedule(permit.valid_until, 0, permit)
        self._by_id[permit.permit_id] = permit
        for plate in permit.plates:
            self._by_plate.setdefault(plate, []).append(permit)
        self.advance(t)

    def add_many(self, permits: Iterable[MonthlyPermit], t: float) -> None:
        for permit in permits:
            self.add(permit, t)

    def _schedule(self, at: float, kind: int, permit: MonthlyPermit) -> None:
        # ends (kind 0) before starts (kind 1) at equal times: a renewal hands the spot over
        heappush(self._events, (at, kind, self._seq, permit.permit_id))
        self._seq += 1

    def permit(self, permit_id: str) -> MonthlyPermit:
        return self._by_id[permit_id]

    def __len__(self) -> int:
        return len(self._by_id)

    # -- time -------------------------------------------------------------------------------
    def advance(self, t: float) -> None:
        """Hold assigned spots of permits that became valid, free those of expired ones."""
        if not t >= self._now:
            raise ValueError(f"time went backwards: {t} after {self._now}")
        self._now = t
        events = self._events
        while events and events[0][0] <= t:
            at, kind, _, pid = heappop(events)
            spot = self._by_id[pid].assigned_spot
            assert spot is not None
            if kind == 1:
                self._hold(spot, at)
            elif self._owner_at(spot, at) is None:
                self._claim.discard(spot)
                if spot in self._held:
                    self._unhold(spot, at)
                    self.lot.set_status(spot, SpotStatus.AVAILABLE, at)

    def _owner_at(self, spot: int, t: float) -> MonthlyPermit | None:
        for permit in self._spot_owner.get(spot, ()):
            if permit.valid_at(t):
                return permit
        return None

    def _hold(self, spot_index: int, t: float) -> None:
        status = self.lot.spots[spot_index].status
        if spot_index in self._held:
            return
        if status is SpotStatus.AVAILABLE:
            self.lot.set_status(spot_index, SpotStatus.RESERVED, t)
            self._held.add(spot_index)
            self._held_since[spot_index] = t
            self._claim.discard(spot_index)
        elif status is not SpotStatus.OCCUPIED or not self._holder_parked_in(spot_index):
            # taken by a walk-in, held by a reservation or in maintenance since registration:
            # claimed when it frees (on_spot_freed), never taken from under anyone
            self._claim.add(spot_index)

    def _unhold(self, spot_index: int, t: float) -> None:
        """Stop counting a hold (its holder parked, or its permit ended) and book its idle time."""
        self._held.discard(spot_index)
        self.stats.held_idle_s += t - self._held_since.pop(spot_index)

    def idle_spot_seconds(self, t: float) -> float:
        """Spot-seconds assigned spots were held empty up to ``t`` (open holds counted to ``t``).

        What selling assigned spots costs in capacity: a walk-in can never use a held spot,
        even while its holder is away. O(assigned spots held now).
        """
        return self.stats.held_idle_s + sum(t - s for s in self._held_since.values())

    def _holder_parked_in(self, spot_index: int) -> bool:
        """A permit holder (not a walk-in) is in the spot. O(holders inside), rare calls."""
        lot = self.lot
        return any(lot.session(tk).spot.index == spot_index for tk, _ in self._inside.values())

    def on_spot_freed(self, spot_index: int, t: float) -> bool:
        """Hook after a release: claim the spot if it is assigned to a valid permit. O(1)."""
        self.advance(t)
        if spot_index in self._claim and self._owner_at(spot_index, t) is not None:
            self._hold(spot_index, t)
            return spot_index in self._held
        return False

    def assigned_held(self) -> frozenset[int]:
        """Assigned spots held for their permit holders now."""
        return frozenset(self._held)

    # -- the gate ---------------------------------------------------------------------------
    def recognise(self, plate: str, t: float) -> MonthlyPermit | None:
        """The permit valid for ``plate`` at ``t``, or None (counted either way)."""
        permits = self._by_plate.get(str(plate))
        if not permits:
            return None
        for permit in permits:
            if permit.valid_at(t):
                self.stats.recognised += 1
                return permit
        self.stats.not_valid_now += 1
        return None

    def enter(self, vehicle: Vehicle, t: float) -> Session | None:
        """Admit ``vehicle`` (its ``id`` is the plate) on its permit, or None if it has none.

        A holder with a free assigned spot parks there; otherwise the lot allocates as usual
        (and may raise :class:`~twin.core.errors.LotFull`). A None answer means: not a permit
        holder, treat as a paying driver.
        """
        self.advance(t)
        plate = str(vehicle.id)
        if plate in self._inside:
            raise AlreadyInside(f"plate {plate} is already inside on its permit")
        permit = self.recognise(plate, t)
        if permit is None:
            return None
        spot = permit.assigned_spot
        if spot is not None and spot in self._held:
            try:
                session = self.lot.allocate_spot(spot, vehicle, t)
            except NoCompatibleSpot:
                session = None  # e.g. a van on a permit whose spot is compact: general spot
            except InvalidTransition:
                session = None  # the assigned spot is closed (a closure, a feed): general spot
            if session is not None:
                self._unhold(spot, t)
                self.stats.assigned_entries += 1
                return self._admitted(plate, permit, session)
        if spot is not None:
            self.stats.assigned_busy += 1
        session = self.lot.allocate(vehicle, t)  # LotFull / NoCompatibleSpot propagate
        return self._admitted(plate, permit, session)

    def _admitted(self, plate: str, permit: MonthlyPermit, session: Session) -> Session:
        self._inside[plate] = (session.ticket, permit)
        self._tickets[session.ticket] = (plate, permit)
        self.stats.entries += 1
        return session

    def is_permit_ticket(self, ticket: int) -> bool:
        return ticket in self._tickets

    def exit(self, ticket: int, t: float) -> Session:
        """Release a permit holder's session: no charge; an assigned spot is held again."""
        self.advance(t)
        if ticket not in self._tickets:
            raise UnknownTicket(f"ticket {ticket!r} is not a permit holder's")
        session = self.lot.release(ticket, t)  # refuses an exit before entry, keeps state
        self.settle_exit(session, t)
        return session

    def settle_exit(self, session: Session, t: float) -> int:
        """The permit's part of an exit whose session the lot has already released and priced.

        For a caller that releases through the lot itself (the simulator releases every car
        the same way): forget the plate, waive the tariff amount (returned, in cents, and set
        the session's amount to 0) and hold the spot again if it is assigned. Call it in the
        same instant as the release, so nobody slips into the freed assigned spot.
        """
        ticket = session.ticket
        if ticket not in self._tickets:
            raise UnknownTicket(f"ticket {ticket!r} is not a permit holder's")
        if session.open:
            raise InvalidTransition(f"ticket {ticket!r} is still open: release it first")
        self.advance(t)
        plate, _ = self._tickets.pop(ticket)
        del self._inside[plate]
        waived = session.amount_cents or 0
        self.stats.waived_cents += waived
        session.amount_cents = 0
        self.stats.exits += 1
        spot = session.spot.index
        if self._owner_at(spot, t) is not None:
            self._hold(spot, t)  # released and re-held at one instant: nobody slips in
        return waived


# =========================================================================== accessible bays


@dataclass(frozen=True, slots=True)
class HandicapEnforcement:
    """How hard accessible bays are enforced: chance an illegal stay is caught, and the fine."""

    probability: float
    fine_cents: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.probability <= 1.0:
            raise ValueError(f"enforcement probability must be in [0, 1], got {self.probability}")
        _check_cents("fine_cents", self.fine_cents)


@dataclass
class EnforcementStats:
    inspected: int = 0  # stays in HANDICAP bays looked at
    violations: int = 0  # of those, without a permit (caught or not)
    caught: int = 0
    fines_cents: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class HandicapEnforcer:
    """Counts permit violations in HANDICAP bays and the ones enforcement catches."""

    def __init__(self, policy: HandicapEnforcement) -> None:
        self.policy = policy
        self.stats = EnforcementStats()

    @staticmethod
    def is_violation(session: Session) -> bool:
        """A vehicle without a permit in a HANDICAP bay."""
        return session.spot.type is SpotType.HANDICAP and not session.vehicle.handicap

    def park_illegally(self, lot: Lot, vehicle: Vehicle, t: float) -> Session | None:
        """A driver without a permit takes the best free HANDICAP bay anyway (None if none)."""
        spot = lot.hold_spot(SpotType.HANDICAP, t)
        if spot is None:
            return None
        try:
            return lot.allocate_spot(spot.index, vehicle, t, enforce_rules=False)
        except NoCompatibleSpot:
            lot.set_status(spot.index, SpotStatus.AVAILABLE, t)
            return None

    def inspect(self, session: Session, u: float) -> bool:
        """Inspect one stay with a uniform draw ``u`` in [0, 1); True if fined.

        Only HANDICAP-bay stays count as inspected. A violation is caught iff
        ``u < probability``: so each illegal stay is caught with exactly that probability.
        """
        if not 0.0 <= u < 1.0:
            raise ValueError(f"u must be a uniform draw in [0, 1), got {u}")
        if session.spot.type is not SpotType.HANDICAP:
            return False
        stats = self.stats
        stats.inspected += 1
        if session.vehicle.handicap:
            return False
        stats.violations += 1
        if u < self.policy.probability:
            stats.caught += 1
            stats.fines_cents += self.policy.fine_cents
            return True
        return False


# =========================================================================== EV charging


@dataclass(frozen=True, slots=True)
class ChargingPolicy:
    """Charger power and what charging costs, in cents (per-hour fees per started minute)."""

    power_kw: float
    fee_cents_per_kwh: int = 0
    fee_cents_per_hour: int = 0
    idle_fee_cents_per_hour: int = 0
    idle_grace_s: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.power_kw) and self.power_kw > 0):
            raise ValueError(f"power_kw must be > 0, got {self.power_kw}")
        for name in ("fee_cents_per_kwh", "fee_cents_per_hour", "idle_fee_cents_per_hour"):
            _check_cents(name, getattr(self, name))
        if not (math.isfinite(self.idle_grace_s) and self.idle_grace_s >= 0):
            raise ValueError(f"idle_grace_s must be >= 0, got {self.idle_grace_s}")


@dataclass(frozen=True, slots=True)
class ChargeBill:
    """One charging session, settled."""

    energy_kwh: float  # delivered
    charge_s: float  # time actually charging
    idle_s: float  # plugged in (parked at the charger) after charging ended
    billable_idle_s: float  # idle beyond the grace period
    energy_fee_cents: int
    time_fee_cents: int
    idle_fee_cents: int

    @property
    def total_cents(self) -> int:
        return self.energy_fee_cents + self.time_fee_cents + self.idle_fee_cents

    @property
    def idle_minutes(self) -> float:
        return self.idle_s / 60.0


def _per_started_minute(seconds: float, cents_per_hour: int) -> int:
    if seconds <= 0 or cents_per_hour == 0:
        return 0
    minutes = math.ceil(seconds / 60.0 - 1e-9)
    return _half_up(Decimal(minutes) * cents_per_hour / 60)


def charge_bill(
    policy: ChargingPolicy,
    energy_needed_kwh: float,
    plugged_s: float,
    power_kw: float | None = None,
) -> ChargeBill:
    """Settle a car that wanted ``energy_needed_kwh`` and stayed ``plugged_s`` at the charger.

    Charging runs at ``power_kw`` (default: the policy's; pass ``min(charger, car)`` if the car
    takes less) for ``energy / power`` hours or until the car leaves; the rest of the stay is
    idle. Energy is billed on what was delivered.
    """
    power = policy.power_kw if power_kw is None else power_kw
    if not (math.isfinite(power) and power > 0):
        raise ValueError(f"power_kw must be > 0, got {power}")
    if not (math.isfinite(energy_needed_kwh) and energy_needed_kwh >= 0):
        raise ValueError(f"energy_needed_kwh must be >= 0, got {energy_needed_kwh}")
    if not (math.isfinite(plugged_s) and plugged_s >= 0):
        raise ValueError(f"plugged_s must be >= 0, got {plugged_s}")
    full_s = energy_needed_kwh / power * 3600.0
    charge_s = min(full_s, plugged_s)
    energy = energy_needed_kwh if charge_s == full_s else power * charge_s / 3600.0
    idle_s = plugged_s - charge_s
    billable = max(0.0, idle_s - policy.idle_grace_s)
    return ChargeBill(
        energy_kwh=energy,
        charge_s=charge_s,
        idle_s=idle_s,
        billable_idle_s=billable,
        energy_fee_cents=_half_up(Decimal(str(energy)) * policy.fee_cents_per_kwh),
        time_fee_cents=_per_started_minute(charge_s, policy.fee_cents_per_hour),
        idle_fee_cents=_per_started_minute(billable, policy.idle_fee_cents_per_hour),
    )


@dataclass(slots=True)
class ChargingSession:
    ticket: int
    energy_needed_kwh: float
    power_kw: float
    plugged_t: float

    @property
    def charge_end_t(self) -> float:
        return self.plugged_t + self.energy_needed_kwh / self.power_kw * 3600.0


@dataclass
class ChargingStats:
    sessions: int = 0
    energy_kwh: float = 0.0
    charge_hours: float = 0.0
    idle_minutes: float = 0.0
    billable_idle_minutes: float = 0.0
    energy_fee_cents: int = 0
    time_fee_cents: int = 0
    idle_fee_cents: int = 0

    @property
    def revenue_cents(self) -> int:
        return self.energy_fee_cents + self.time_fee_cents + self.idle_fee_cents

    def as_dict(self) -> dict[str, float]:
        out: dict[str, float] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["revenue_cents"] = self.revenue_cents
        return out


class ChargingStations:
    """Charging sessions at a lot's EV bays, by parking ticket; totals for the planner."""

    def __init__(self, policy: ChargingPolicy) -> None:
        self.policy = policy
        self.stats = ChargingStats()
        self._open: dict[int, ChargingSession] = {}
        self.bills: list[ChargeBill] = []

    def plug_in(
        self,
        session: Session,
        energy_needed_kwh: float,
        t: float,
        vehicle_max_kw: float | None = None,
    ) -> ChargingSession:
        """Start charging the car of ``session`` (it must be parked in an EV bay)."""
        if session.spot.type is not SpotType.EV:
            raise NoCompatibleSpot(f"spot {session.spot.id} has no charger")
        if session.ticket in self._open:
            raise InvalidTransition(f"ticket {session.ticket} is already plugged in")
        if not (math.isfinite(energy_needed_kwh) and energy_needed_kwh >= 0):
            raise ValueError(f"energy_needed_kwh must be >= 0, got {energy_needed_kwh}")
        power = self.policy.power_kw
        if vehicle_max_kw is not None:
            power = min(power, vehicle_max_kw)
        charging = ChargingSession(session.ticket, energy_needed_kwh, power, t)
        self._open[session.ticket] = charging
        return charging

    def unplug(self, ticket: int, t: float) -> ChargeBill:
        """The car leaves the charger at ``t``: settle and count it."""
        charging = self._open.pop(ticket)
        if not t >= charging.plugged_t:
            self._open[ticket] = charging
            raise ValueError(f"unplug at {t} before plug-in at {charging.plugged_t}")
        bill = charge_bill(
            self.policy, charging.energy_needed_kwh, t - charging.plugged_t, charging.power_kw
        )
        s = self.stats
        s.sessions += 1
        s.energy_kwh += bill.energy_kwh
        s.charge_hours += bill.charge_s / 3600.0
        s.idle_minutes += bill.idle_s / 60.0
        s.billable_idle_minutes += bill.billable_idle_s / 60.0
        s.energy_fee_cents += bill.energy_fee_cents
        s.time_fee_cents += bill.time_fee_cents
        s.idle_fee_cents += bill.idle_fee_cents
        self.bills.append(bill)
        return bill

    def idle_now(self, t: float) -> int:
        """Cars done charging but still plugged in at ``t`` (O(open sessions): few EV bays)."""
        return sum(1 for c in self._open.values() if c.charge_end_t <= t)

    @property
    def plugged_in(self) -> int:
        return len(self._open)
