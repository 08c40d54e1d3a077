"""Reservations: booking a spot type in a lot for a time window in advance.

Pure production logic like the rest of :mod:`twin.core`: time is passed in (core seconds), money
is ``int`` cents, nothing here reads a clock or draws a random number. The simulator and a live
booking service drive the same :class:`ReservationBook`.

Lifecycle
---------
::

    PENDING ──confirm (payment authorised)──▶ CONFIRMED ──arrive──▶ ARRIVED ──depart──▶ COMPLETED
       │  └─ payment declined / not confirmed in time ─▶ EXPIRED        │
       └─ cancel ─▶ CANCELLED ◀─ cancel (or bumped: no spot at arrival) ┤
                                        no arrival before start + grace ┴▶ NO_SHOW

Every other transition raises :class:`InvalidReservationTransition` (see :data:`TRANSITIONS`).
``COMPLETED`` (the holder left and paid) is the one state beyond the reference design's list:
without it a second exit on one reservation could not be refused.

Time rules
----------
* Every public method taking ``t`` first calls :meth:`ReservationBook.advance`, which processes
  due events (hold starts, no-show deadlines, pending expiries) **at their own times** in time
  order. Time never goes backwards (``ValueError``). A simulator should call ``advance`` at
  :meth:`ReservationBook.next_event_time` so held spots come back exactly when due.
* The grace period is ``[start, start + grace)``: a holder arriving at ``start + grace`` or later
  is a no-show, and the held spot is AVAILABLE again from ``start + grace`` exactly.
* A reservation *holds a specific spot* (RESERVED on the lot, so walk-ins cannot get it) from
  ``start - hold_lead`` to its arrival, cancellation or ``start + grace``. If no spot of the type
  is free then (walk-ins fill it), the reservation waits for one: the next spot of that type
  that frees (:meth:`ReservationBook.on_spot_freed`) or a hold ending elsewhere goes to it. A
  holder who arrives with no spot held takes any free spot of the type; if there is none they
  are *bumped* (CANCELLED, authorisation voided, counted) -- the cost of overbooking.

Capacity (why a booking is refused)
-----------------------------------
A booking for type ``T`` over ``[start, end)`` occupies capacity over its *capacity window*
``[max(now, start - hold_lead), max(end, start + grace))``. With ``C`` the spots of type ``T``
the lot can give (see :meth:`ReservationBook.refresh_capacity`), ``share`` its reserved-share cap,
``f`` the overbooking factor and ``peak`` the largest number of live (PENDING, CONFIRMED,
ARRIVED) reservations of type ``T`` at any instant of the window, the booking is accepted iff::

    peak + 1 <= floor(f * floor(share * C))                (else CAP_REACHED)
    peak + 1 <= floor(f * (C - forecast(T, a, b)))        (else EXPECTED_FULL)

``forecast(T, a, b)`` is the expected peak number of spots of type ``T`` taken by drivers
*without* a reservation during ``[a, b)``, passed in by the caller (a profile, a model); without
one, the lot's current state is used (spots of ``T`` occupied now, minus reservation holders
parked now). Physically, at most ``floor(share * C)`` spots of a type are ever held at once,
whatever the overbooking factor: extra holds wait.

``peak`` comes from a per-type :class:`ConcurrencyIndex`, a treap keyed by window boundaries
carrying sweep-line sums, so a booking check is O(log n) in live reservations -- never a scan.

Money (against the :class:`PaymentGateway` protocol)
----------------------------------------------------
* Confirming authorises ``max(quote, deposit + no_show_penalty)`` on the account (a hold, no
  money taken). A declined authorisation turns the booking EXPIRED.
* Exit: the final price (the lot's tariff for the actual stay) is captured -- the deposit counts
  towards it, it is not charged on top. Above the authorised amount, the rest is authorised and
  captured separately ("top-up").
* No-show: ``deposit + no_show_penalty`` is captured and the account gets a strike; at
  ``strike_threshold`` strikes the account cannot book any more.
* Cancel at least ``free_cancel_before_s`` before start: the hold is voided (full refund of the
  deposit). Later: ``deposit - round(deposit * late_cancel_refund_share)`` is captured and the
  rest refunded. The gateway has no refund call because nothing was taken at booking: a refund
  is the part of the deposit *not captured*.
* Idempotency keys are ``res-<id>/<operation>``, so a retried call never charges twice.
* Without a gateway (``payments=None``, planning runs) the same amounts are booked in the
  statistics as if every request succeeded.

Units from a claim store
------------------------
With ``units_from_store=True`` every unit of the lot a hold takes comes from a shared claim
store (:mod:`twin.core.locking`, run by the caller) instead of straight from the lot, so app
reservations and entry lanes race for the last units through the same store. The book still
decides *when* a reservation wants a spot and what a refusal means; the store only grants or
refuses the unit:

* a hold that would start (with room under its type's cap and a free spot of the type) asks
  for a unit instead of taking the spot: :meth:`ReservationBook.request_units` lists the
  reservations that want one now; the caller claims and answers with
  :meth:`ReservationBook.unit_granted` (the hold takes a spot, or ``False``: no spot of the
  type is free any more, the unit goes back) or :meth:`ReservationBook.unit_refused` (the
  reservation waits for a spot, as it does when the lot has none);
* a spot a walk-in frees is not handed to a waiting hold directly (:meth:`on_spot_freed` does
  nothing): the walk-in's unit goes back to the store and the waiting hold claims one;
* a hold that ends without its holder (cancellation, no-show) hands its spot, with its unit,
  to the next reservation waiting for one of that type (the book's choice, as without a
  store), or gives the unit back; a holder who leaves gives it back:
  :meth:`ReservationBook.unit_moves` lists both. A holder who arrives keeps the hold's unit
  for the stay;
* a holder who arrives without a held spot needs a unit of their own: the caller claims it
  first and calls :meth:`arrive` only when granted; refused, :meth:`bump` does what a full lot
  does to them.

The modules: :mod:`~twin.core.reservations_types` (states, errors, gateway, policy, records),
:mod:`~twin.core.reservations_index` (the concurrency index) and, here, the book. Everything is
importable from ``twin.core.reservations`` as before.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Iterator
from decimal import Decimal
from heapq import heappop, heappush

from twin.core.errors import NoCompatibleSpot
from twin.core.lot import Lot, Session
from twin.core.reservations_index import ConcurrencyIndex
from twin.core.reservations_types import (
    RS,
    TRANSITIONS,
    ArrivalTooEarly,
    AuthorizationResult,
    BookingRejected,
    CaptureResult,
    GatewayResult,
    InvalidReservationTransition,
    OccupancyForecast,
    PaymentGateway,
    ProcessorGateway,
    RejectReason,
    Reservation,
    ReservationError,
    ReservationNotHonoured,
    ReservationPolicy,
    ReservationStats,
    ReservationStatus,
    UnknownReservation,
    check_cents,
    half_up,
)
from twin.core.types import SpotStatus, SpotType, Vehicle

__all__ = [
    "RS",
    "TRANSITIONS",
    "ArrivalTooEarly",
    "AuthorizationResult",
    "BookingRejected",
    "CaptureResult",
    "ConcurrencyIndex",
    "GatewayResult",
    "InvalidReservationTransition",
    "OccupancyForecast",
    "PaymentGateway",
    "ProcessorGateway",
    "RejectReason",
    "Reservation",
    "ReservationBook",
    "ReservationError",
    "ReservationNotHonoured",
    "ReservationPolicy",
    "ReservationStats",
    "ReservationStatus",
    "UnknownReservation",
]


# --------------------------------------------------------------------------- the book

_EXPIRE, _HOLD, _NO_SHOW = 0, 1, 2  # event kinds; at equal times in this order


class ReservationBook:
    """All reservations of one lot: booking checks, spot holds, lifecycle, money, statistics.

    ``refresh_capacity`` is called once here: spots of a type that are RESERVED or in
    MAINTENANCE now (e.g. assigned permit spots) are not counted as reservable. Call it again
    after taking spots in or out of service.
    """

    def __init__(
        self,
        lot: Lot,
        policy: ReservationPolicy,
        payments: PaymentGateway | None = None,
        forecast: OccupancyForecast | None = None,
        units_from_store: bool = False,
    ) -> None:
        self.lot = lot
        self.units_from_store = units_from_store
        #: units mode: (reservation, to) per unit that changed hands (to: None, the store)
        self._moves: list[tuple[int, int | None]] = []
        self._waits_counted: set[int] = set()  # units mode: hold waits counted once each
        self.policy = policy
        self.payments = payments
        self.forecast = forecast
        self.stats = ReservationStats()
        self.strikes: Counter[str] = Counter()
        n_types = len(SpotType)
        self._index = [ConcurrencyIndex(seed=int(st)) for st in SpotType]
        self._waiting: list[deque[Reservation]] = [deque() for _ in range(n_types)]
        self._held = [0] * n_types  # spots held by this book, per type
        self._parked = [0] * n_types  # reservation holders parked now, per type
        self._capacity = [0] * n_types
        self._cap = [0] * n_types
        self._reservations: dict[int, Reservation] = {}
        self._by_account: dict[str, deque[float]] = {}
        self._events: list[tuple[float, int, int, int]] = []
        self._seq = 0
        self._now = -math.inf
        self._open_holds = 0
        self._open_hold_t_sum = 0.0
        self.refresh_capacity()

    # -- capacity ---------------------------------------------------------------------------
    def refresh_capacity(self) -> None:
        """Recount reservable spots per type: AVAILABLE, OCCUPIED or held by this book. O(n)."""
        n_types = len(SpotType)
        capacity = [0] * n_types
        ours = {r.spot_index for r in self._holding()}
        usable = (SpotStatus.AVAILABLE, SpotStatus.OCCUPIED)
        for spot in self.lot.spots:
            if spot.status in usable or spot.index in ours:
                capacity[spot.type] += 1
        self._capacity = capacity
        shares = self.policy.reserved_share
        self._cap = [math.floor(shares.get(st, 0.0) * capacity[st] + 1e-9) for st in SpotType]

    def _holding(self) -> Iterator[Reservation]:
        return (r for r in self._reservations.values() if r.hold_t is not None)

    def capacity(self, spot_type: SpotType) -> int:
        """Spots of the type reservations may draw on."""
        return self._capacity[spot_type]

    def hold_cap(self, spot_type: SpotType) -> int:
        """Most spots of the type held at once: ``floor(share * capacity)``."""
        return self._cap[spot_type]

    def held(self, spot_type: SpotType) -> int:
        """Spots of the type held (RESERVED) for reservations now."""
        return self._held[spot_type]

    def live_count(self, spot_type: SpotType, t: float) -> int:
        """Live reservations whose capacity window contains ``t``."""
        return self._index[spot_type].count_at(t)

    # -- lookups ----------------------------------------------------------------------------
    def get(self, reservation_id: int) -> Reservation:
        try:
            return self._reservations[reservation_id]
        except KeyError:
            raise UnknownReservation(f"no reservation {reservation_id!r}") from None

    def __iter__(self) -> Iterator[Reservation]:
        return iter(self._reservations.values())

    def __len__(self) -> int:
        return len(self._reservations)

    # -- booking ----------------------------------------------------------------------------
    def create_reservation(
        self,
        account: str,
        spot_type: SpotType | int,
        start: float,
        end: float,
        t: float,
        quote_cents: int = 0,
        confirm: bool = True,
    ) -> Reservation:
        """Book ``spot_type`` for ``[start, end)`` at time ``t``; raise :class:`BookingRejected`.

        With ``confirm`` (default) the payment hold is authorised at once and the reservation
        comes back CONFIRMED; otherwise it stays PENDING, holding capacity for ``pending_ttl``
        until :meth:`confirm`. ``quote_cents`` is the price quoted for the window (authorised
        if larger than deposit + penalty).
        """
        check_cents("quote_cents", quote_cents)
        stype = SpotType(spot_type)
        self.advance(t)
        stats, policy = self.stats, self.policy
        stats.requested += 1

        def reject(reason: RejectReason, message: str) -> BookingRejected:
            stats.rejected[reason.value] += 1
            return BookingRejected(reason, message)

        if not (math.isfinite(start) and math.isfinite(end)) or start < t or end <= start:
            raise reject(RejectReason.INVALID_WINDOW, f"window [{start}, {end}) booked at {t}")
        if policy.max_lead_s is not None and start - t > policy.max_lead_s:
            raise reject(RejectReason.TOO_FAR_AHEAD, f"start {start} is beyond the horizon")
        cap = self._cap[stype]
        if cap == 0:
            raise reject(RejectReason.NOT_RESERVABLE, f"no {stype.name} spots are reservable")
        threshold = policy.strike_threshold
        if threshold is not None and self.strikes[account] >= threshold:
            raise reject(RejectReason.BLOCKED, f"account {account} has {threshold} no-shows")
        recent = self._by_account.get(account)
        if policy.rate_limit_max is not None and recent is not None:
            while recent and recent[0] <= t - policy.rate_limit_window_s:
                recent.popleft()
            if len(recent) >= policy.rate_limit_max:
                raise reject(RejectReason.RATE_LIMITED, f"account {account} booked too often")
        a = max(t, start - policy.hold_lead_s)
        b = max(end, start + policy.grace_s)
        index = self._index[stype]
        peak = index.peak(a, b)
        factor = policy.overbooking_factor
        if peak + 1 > math.floor(factor * cap + 1e-9):
            raise reject(RejectReason.CAP_REACHED, f"{peak} {stype.name} reservations already")
        expected = self._expected_walk_ins(stype, a, b)
        room = self._capacity[stype] - expected
        if peak + 1 > math.floor(factor * room + 1e-9):
            raise reject(RejectReason.EXPECTED_FULL, f"{expected:g} {stype.name} walk-ins expected")
        res = Reservation(len(self._reservations), account, stype, start, end, t, quote_cents)
        res.window = (a, b)
        res.handle = index.add(a, b)
        self._reservations[res.id] = res
        res.deadline = start + policy.grace_s
        if policy.rate_limit_max is not None:
            self._by_account.setdefault(account, deque()).append(t)
        stats.accepted += 1
        self._schedule(min(t + policy.pending_ttl_s, start + policy.grace_s), _EXPIRE, res)
        if confirm:
            self.confirm(res.id, t)
        return res

    def _expected_walk_ins(self, stype: SpotType, a: float, b: float) -> float:
        if self.forecast is not None:
            return float(self.forecast(stype, a, b))
        return float(self.lot.occupied_by_type[stype] - self._parked[stype])

    def confirm(self, reservation_id: int, t: float) -> Reservation:
        """Authorise the payment hold: PENDING -> CONFIRMED, or EXPIRED if declined."""
        self.advance(t)
        res = self.get(reservation_id)
        self._check(res, RS.CONFIRMED)
        amount = max(res.quote_cents, self.policy.deposit_cents + self.policy.no_show_penalty_cents)
        if amount > 0 and self.payments is not None:
            result = self.payments.authorize(f"res-{res.id}/authorize", res.account, amount, t)
            if not result.ok or result.authorization_id is None:
                self._set(res, RS.EXPIRED, t, "payment declined")
                self.stats.payment_declined += 1
                self.stats.expired += 1
                # for the customer the booking was refused: keep requested = accepted + rejected
                self.stats.accepted -= 1
                self.stats.rejected[RejectReason.PAYMENT_DECLINED.value] += 1
                raise BookingRejected(
                    RejectReason.PAYMENT_DECLINED, f"authorisation of {amount} cents refused", res
                )
            res.authorization_id = result.authorization_id
        res.authorized_cents = amount
        self._set(res, RS.CONFIRMED, t)
        self.stats.confirmed += 1
        hold_at = res.start - self.policy.hold_lead_s
        if hold_at <= t:
            self._start_hold(res, t)
        else:
            self._schedule(hold_at, _HOLD, res)
        self._schedule(res.deadline, _NO_SHOW, res)
        return res

    # -- time -------------------------------------------------------------------------------
    @property
    def now(self) -> float:
        """The latest time the book has been advanced to."""
        return self._now

    def _schedule(self, at: float, kind: int, res: Reservation) -> None:
        heappush(self._events, (at, kind, self._seq, res.id))
        self._seq += 1

    def _due(self, kind: int, res: Reservation) -> bool:
        if kind == _EXPIRE:
            return res.status is RS.PENDING
        if kind == _HOLD:
            return res.status is RS.CONFIRMED and res.hold_t is None and not res.waiting
        return res.status is RS.CONFIRMED

    def next_event_time(self) -> float | None:
        """When :meth:`advance` next has something to do (None: nothing scheduled)."""
        events = self._events
        while events:
            at, kind, _, rid = events[0]
            if self._due(kind, self._reservations[rid]):
                return at
            heappop(events)
        return None

    def advance(self, t: float) -> list[tuple[float, str, Reservation]]:
        """Process every event due at or before ``t``, each at its own time, in order.

        Returns what happened (time, ``"expired"``/``"hold"``/``"no_show"``, reservation) so a
        simulator can log it and offer released spots to waiting walk-ins.
        """
        if not t >= self._now:  # also refuses NaN
            raise ValueError(f"time went backwards: {t} after {self._now}")
        if not math.isfinite(t):
            raise ValueError(f"time must be finite, got {t}")
        self._now = t
        done: list[tuple[float, str, Reservation]] = []
        events = self._events
        while events and events[0][0] <= t:
            at, kind, _, rid = heappop(events)
            res = self._reservations[rid]
            if not self._due(kind, res):
                continue
            if kind == _EXPIRE:
                self._set(res, RS.EXPIRED, at, "not confirmed in time")
                self.stats.expired += 1
                done.append((at, "expired", res))
            elif kind == _HOLD:
                self._start_hold(res, at)
                done.append((at, "hold", res))
            else:
                self._no_show(res, at)
                done.append((at, "no_show", res))
        return done

    # -- holds ------------------------------------------------------------------------------
    def _start_hold(self, res: Reservation, t: float) -> None:
        stype = res.spot_type
        if self.units_from_store:  # wait for a unit from the store (request_units)
            res.waiting = True
            self._waiting[stype].append(res)
            if self._held[stype] >= self._cap[stype] or not self._free(stype):
                self._count_wait(res)  # no spot for it now, as without a store
            return
        spot = self.lot.hold_spot(stype, t) if self._held[stype] < self._cap[stype] else None
        if spot is None:
            res.waiting = True
            self._waiting[stype].append(res)
            self.stats.hold_waits += 1
            return
        self._attach(res, spot.index, t)

    def _attach(self, res: Reservation, spot_index: int, t: float) -> None:
        res.spot_index, res.hold_t, res.waiting = spot_index, t, False
        if res.held_from is None:
            res.held_from = t
        self._held[res.spot_type] += 1
        self._open_holds += 1
        self._open_hold_t_sum += t

    def _end_hold(self, res: Reservation, t: float) -> int:
        """Close the hold's idle-time account; the spot stays RESERVED (caller decides)."""
        assert res.hold_t is not None and res.spot_index is not None
        self.stats.held_idle_s += t - res.hold_t
        self._held[res.spot_type] -= 1
        self._open_holds -= 1
        self._open_hold_t_sum -= res.hold_t
        res.hold_t = None
        return res.spot_index

    def _next_waiting(self, stype: SpotType) -> Reservation | None:
        queue = self._waiting[stype]
        while queue:
            res = queue[0]
            if res.waiting and res.status is RS.CONFIRMED:
                return res
            queue.popleft()
        return None

    def _give_back(self, spot_index: int, t: float, rid: int = -1) -> None:
        """A held spot is no longer needed: to the next waiting reservation, or to walk-ins.
        Units mode: the unit of reservation ``rid`` goes with the spot (a move)."""
        spot = self.lot.spots[spot_index]
        nxt = self._next_waiting(spot.type)
        if nxt is not None and self._held[spot.type] < self._cap[spot.type]:
            self._waiting[spot.type].popleft()
            self._attach(nxt, spot_index, t)
            if self.units_from_store:
                self._moves.append((rid, nxt.id))
        else:
            self.lot.set_status(spot_index, SpotStatus.AVAILABLE, t)
            if self.units_from_store:
                self._moves.append((rid, None))

    def _release_hold(self, res: Reservation, t: float) -> None:
        if res.hold_t is not None:
            self._give_back(self._end_hold(res, t), t, res.id)
        res.waiting = False

    def on_spot_freed(self, spot_index: int, t: float) -> bool:
        """Hook: a spot became AVAILABLE (a car left). Gives it to a waiting hold if any.

        The simulator calls this after every release when reservations are on; it is O(1)
        when nothing waits. Returns whether the spot was taken for a reservation.
        """
        self.advance(t)
        if self.units_from_store:  # a waiting hold asks the store (request_units)
            return False
        spot = self.lot.spots[spot_index]
        if spot.status is not SpotStatus.AVAILABLE or self._held[spot.type] >= self._cap[spot.type]:
            return False
        res = self._next_waiting(spot.type)
        if res is None:
            return False
        self._waiting[spot.type].popleft()
        self.lot.set_status(spot_index, SpotStatus.RESERVED, t)
        self._attach(res, spot_index, t)
        return True

    # -- units from a claim store (units_from_store=True) ------------------------------------
    def request_units(self, t: float) -> list[int]:
        """Reservations that want a unit from the store now: waiting holds, oldest first per
        type, as many as the type's cap and free spots allow (less the units asked for and
        not yet answered). Each is marked pending until :meth:`unit_granted` or
        :meth:`unit_refused`. Empty unless ``units_from_store``; O(types) when nothing waits."""
        self.advance(t)
        out: list[int] = []
        if not self.units_from_store:
            return out
        for stype in SpotType:
            queue = self._waiting[stype]
            if not queue:
                continue
            room = min(self._cap[stype] - self._held[stype], self._free(stype))
            room -= sum(1 for r in queue if r.unit_pending)
            for res in queue:
                if room <= 0:
                    break
                if res.waiting and res.status is RS.CONFIRMED and not res.unit_pending:
                    res.unit_pending = True
                    out.append(res.id)
                    room -= 1
        return out

    def unit_granted(self, reservation_id: int, t: float) -> bool:
        """The store granted the unit asked for: the hold takes a spot now. ``False``: the
        reservation no longer wants one (it arrived, was cancelled, got a spot meanwhile) or no
        spot of its type is free; the caller gives the unit back."""
        self.advance(t)
        res = self.get(reservation_id)
        res.unit_pending = False
        stype = res.spot_type
        if res.status is not RS.CONFIRMED or not res.waiting or res.hold_t is not None:
            return False
        if self._held[stype] >= self._cap[stype]:
            return False
        spot = self.lot.hold_spot(stype, t)
        if spot is None:
            self._count_wait(res)
            return False
        self._attach(res, spot.index, t)
        return True

    def unit_refused(self, reservation_id: int, t: float) -> None:
        """The store refused (or failed) the unit: the hold keeps waiting, as for a full lot."""
        self.advance(t)
        res = self.get(reservation_id)
        res.unit_pending = False
        if res.waiting:
            self._count_wait(res)

    def _free(self, stype: SpotType) -> int:
        """AVAILABLE spots of the type in the lot now."""
        return sum(row[stype] for row in self.lot.available)

    def _count_wait(self, res: Reservation) -> None:
        if res.id not in self._waits_counted:
            self._waits_counted.add(res.id)
            self.stats.hold_waits += 1

    def unit_moves(self) -> list[tuple[int, int | None]]:
        """Units that changed hands since the last call, in order, as ``(reservation, to)``:
        ``to`` None, the unit goes back to the store (a hold ended unused and no reservation
        waits for its spot, a holder left); else the hold's spot, and its unit, went to the
        waiting reservation ``to``. The list is emptied."""
        out, self._moves = self._moves, []
        return out

    def note_walk_in_refused(self, vehicle: Vehicle, t: float) -> bool:
        """Hook: the lot refused ``vehicle`` at ``t``. Counts it if a held spot would have fit.

        O(types). Returns whether holds turned this driver away.
        """
        self.advance(t)
        held = self._held
        for tier in self.lot.tiers(vehicle):
            for stype in tier:
                if held[stype]:
                    self.stats.walk_ins_turned_away += 1
                    return True
        return False

    def idle_spot_hours(self, t: float) -> float:
        """Held-but-unoccupied spot-hours up to ``t``, holds still open included."""
        open_part = self._open_holds * t - self._open_hold_t_sum
        return (self.stats.held_idle_s + open_part) / 3600.0

    # -- lifecycle --------------------------------------------------------------------------
    def _check(self, res: Reservation, new: ReservationStatus) -> None:
        if new not in TRANSITIONS[res.status]:
            raise InvalidReservationTransition(
                f"reservation {res.id}: {res.status.name} -> {new.name} is not allowed"
            )

    def _set(self, res: Reservation, new: ReservationStatus, t: float, note: str = "") -> None:
        self._check(res, new)
        res.status = new
        if note:
            res.note = note
        if not new.live:
            res.closed_t = t
            if res.handle is not None:
                self._index[res.spot_type].remove(res.handle)
                res.handle = None

    def arrive(self, reservation_id: int, vehicle: Vehicle, t: float) -> Session:
        """The holder is at the gate: park them in their held spot (or any free one of the type).

        Raises :class:`InvalidReservationTransition` if the reservation is not CONFIRMED (e.g.
        a no-show already), :class:`ArrivalTooEarly` before ``start - early_arrival``,
        :class:`~twin.core.errors.NoCompatibleSpot` if the vehicle may not use the booked type
        (nothing changes), :class:`ReservationNotHonoured` if no spot can be given (bumped).
        """
        self.advance(t)
        res = self.get(reservation_id)
        self._check(res, RS.ARRIVED)
        if t < res.start - self.policy.early_s:
            raise ArrivalTooEarly(
                f"reservation {res.id} starts at {res.start}; arrivals from "
                f"{res.start - self.policy.early_s}"
            )
        lot = self.lot
        if not any(res.spot_type in tier for tier in lot.tiers(vehicle)):
            raise NoCompatibleSpot(f"vehicle {vehicle.id} may not use a {res.spot_type.name} spot")
        spot_index = None
        if res.hold_t is not None:
            spot_index = self._end_hold(res, t)
            if lot.spots[spot_index].status is SpotStatus.MAINTENANCE:
                # closed over the hold (a closure, a feed): the hold ends, the spot stays
                # closed, and the holder gets another spot of the type if one is free
                lot.set_status(spot_index, SpotStatus.AVAILABLE, t)
                spot_index = None
        else:
            res.waiting = False
        if spot_index is None:
            spot = lot.hold_spot(res.spot_type, t)
            if spot is None:
                self._bump(res, t)
            spot_index = res.spot_index = spot.index
        session = lot.allocate_spot(spot_index, vehicle, t)
        res.ticket, res.arrived_t = session.ticket, t
        self._set(res, RS.ARRIVED, t)
        self._parked[res.spot_type] += 1
        self.stats.arrivals += 1
        return session

    def _bump(self, res: Reservation, t: float) -> None:
        """No spot for the holder at arrival: CANCELLED, authorisation voided, counted."""
        self._void(res, t)
        self._set(res, RS.CANCELLED, t, "bumped: no spot at arrival")
        self.stats.bumped += 1
        raise ReservationNotHonoured(
            f"reservation {res.id}: no {res.spot_type.name} spot free at {t}"
        )

    def bump(self, reservation_id: int, t: float) -> None:
        """Units mode: the store refused the unit of a holder at the gate without a held spot;
        they are bumped as at a full lot (raises :class:`ReservationNotHonoured`, like
        :meth:`arrive`). :class:`InvalidReservationTransition` if no longer CONFIRMED."""
        self.advance(t)
        res = self.get(reservation_id)
        self._check(res, RS.ARRIVED)
        res.waiting = False
        self._bump(res, t)

    def depart(self, reservation_id: int, t: float) -> Session:
        """The holder leaves: release the spot, capture the final price (tariff of the stay)."""
        self.advance(t)
        res = self.get(reservation_id)
        self._check(res, RS.COMPLETED)
        assert res.ticket is not None
        session = self.lot.release(res.ticket, t)
        amount = session.amount_cents or 0
        self.stats.exit_revenue_cents += self._collect(res, amount, t, "exit")
        self._parked[res.spot_type] -= 1
        if self.units_from_store:
            self._moves.append((res.id, None))
        self._set(res, RS.COMPLETED, t)
        self.stats.completed += 1
        self.on_spot_freed(session.spot.index, t)
        return session

    def cancel(self, reservation_id: int, t: float) -> int:
        """The holder cancels at ``t``; returns the cents refunded (deposit not captured)."""
        self.advance(t)
        res = self.get(reservation_id)
        self._check(res, RS.CANCELLED)
        refund = 0
        if res.status is RS.CONFIRMED:
            deposit = self.policy.deposit_cents
            if t <= res.start - self.policy.free_cancel_before_s:
                retained = 0
            else:
                share = Decimal(str(self.policy.late_cancel_refund_share))
                retained = deposit - half_up(deposit * share)
                self.stats.late_cancellations += 1
            self.stats.deposit_revenue_cents += self._collect(res, retained, t, "cancel")
            refund = deposit - retained
            res.refunded_cents = refund
            self.stats.refunded_cents += refund
            self._release_hold(res, t)
        self._set(res, RS.CANCELLED, t, "cancelled by holder")
        self.stats.cancellations += 1
        return refund

    def _no_show(self, res: Reservation, t: float) -> None:
        policy = self.policy
        self._release_hold(res, t)
        deposit, penalty = policy.deposit_cents, policy.no_show_penalty_cents
        got = self._collect(res, deposit + penalty, t, "no-show")
        # split what was collected: the deposit first, then the penalty
        self.stats.deposit_revenue_cents += min(got, deposit)
        self.stats.penalty_revenue_cents += got - min(got, deposit)
        self.strikes[res.account] += 1
        self._set(res, RS.NO_SHOW, t, "did not arrive before start + grace")
        self.stats.no_shows += 1

    # -- money ------------------------------------------------------------------------------
    def _void(self, res: Reservation, t: float) -> None:
        if self.payments is not None and res.authorization_id is not None:
            self.payments.void(f"res-{res.id}/void", res.authorization_id, t)

    def _collect(self, res: Reservation, amount: int, t: float, what: str) -> int:
        """Capture ``amount`` for the reservation (void if 0); returns the cents collected."""
        if amount <= 0:
            self._void(res, t)
            return 0
        if self.payments is None:
            res.captured_cents += amount
            return amount
        got = 0
        from_hold = min(amount, res.authorized_cents) if res.authorization_id else 0
        if from_hold:
            key = f"res-{res.id}/{what}/capture"
            if self.payments.capture(key, res.authorization_id, from_hold, t).ok:  # type: ignore[arg-type]
                got += from_hold
        rest = amount - from_hold
        if rest > 0:
            auth = self.payments.authorize(f"res-{res.id}/{what}/topup", res.account, rest, t)
            if auth.ok and auth.authorization_id is not None:
                key = f"res-{res.id}/{what}/topup-capture"
                if self.payments.capture(key, auth.authorization_id, rest, t).ok:
                    got += rest
        res.captured_cents += got
        self.stats.unpaid_cents += amount - got
        return got
