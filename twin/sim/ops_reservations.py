"""Reservations in the SimPy model: a booking stream driving the core :class:`ReservationBook`.

The scenario's ``operations.reservations`` section (:class:`ReservationsSpec`) describes who
books (rate or hourly profile, lead time, window, spot type, account) and what each booking
will do (cancel, not show, arrive early or late, stay). Everything random is drawn in bulk at
:meth:`ReservationsComponent.start`, one named stream per purpose, so the walk-in demand and
every other component see the same numbers whatever the reservation rules are (common random
numbers: a change of overbooking factor is compared on the same bookings).

Reservation holders are not model drivers. They live in the component's own events:

* booking request at ``t`` for ``[t + lead, t + lead + window)``: ``book.create_reservation``;
  an accepted booking schedules its holder's fate;
* cancellation (``cancel_probability``): ``book.cancel`` at its drawn time;
* arrival (the rest, minus ``no_show_probability``): ``book.arrive`` parks the holder in the held
  spot through ``Lot.allocate_spot``; the departure (``book.depart``) releases the spot through
  ``Lot.release`` and prices it with the lot's tariff (the deposit counts towards it);
* no-show: nothing to schedule; the book's own timer releases the held spot at
  ``start + grace``.

The book's timers (hold starts, no-show deadlines) run at :meth:`ReservationBook.next_event_time`
through ``ctx.call_at``, and scheduled events run before arrivals at equal times, so a spot
released at ``start + grace`` is free for a walk-in arriving at that instant. Walk-ins see held
and occupied spots through the shared :class:`~twin.core.lot.Lot`; the model's hooks tell the
book about walk-ins refused (``note_walk_in_refused``) and about every spot a walk-in frees
(``on_spot_freed``, which hands it to a hold waiting for one).

Money. With ``operations.payments`` on as well, the book pays through the payments
component's card processor (:class:`~twin.core.reservations.ProcessorGateway`), so holds,
captures, top-ups, voids and no-show captures are requests the same processor sees next to the
exit lanes' payments: confirming authorises ``max(quote, deposit + penalty)`` on the booking's
card, the holder's exit captures the stay's price from that hold (the seed's mitigation: an
authorization hold at booking, captured at exit), a no-show captures deposit + penalty, a free
cancellation or a bump voids it. The card of each booking is pre-drawn from the payments
settings (stream ``reservations/payments``: decline, card limit; slot 0 for the booking's hold,
slot 1 for a top-up at exit). A declined hold, or one only partly approved (voided at once),
refuses the booking with reason ``payment_declined``. Bookings are made online, so the exit
terminals' network outages and latency do not touch them. Without ``operations.payments`` the
book keeps no gateway and books every amount as collected.

Figures cover ``[warm-up, horizon)`` like the model's own: the book's counters are read at the
warm-up instant and subtracted at the end.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from twin.core.clock import HOUR, Calendar
from twin.core.locking import Status as ClaimStatus
from twin.core.payments import OK, Condition, PaymentResult, Status
from twin.core.reservations import (
    RS,
    BookingRejected,
    InvalidReservationTransition,
    ProcessorGateway,
    RejectReason,
    ReservationBook,
    ReservationNotHonoured,
)
from twin.core.types import SpotType, Vehicle, VehicleClass
from twin.scenario.reservations import ReservationsSpec
from twin.sim.build import calendar_for
from twin.sim.components import Component, ModelContext, register
from twin.sim.demand import poisson_arrivals, slot_horizon
from twin.sim.rng import Streams

if TYPE_CHECKING:
    from twin.core.lot import Lot, Session
    from twin.core.payments import PaymentProcessor
    from twin.scenario.model import Scenario
    from twin.scenario.payments import ConditionDraws

#: What an accepted booking will do (drawn per booking, whether or not it is accepted).
SHOW, CANCEL, NO_SHOW = 0, 1, 2
FATES = ("show", "cancel", "no_show")


@dataclass
class Bookings:
    """The booking stream of one replication, one entry per request, in request order.

    Times are core seconds. ``arrive_t``/``leave_t`` are what the holder does if the booking
    is accepted and its fate is SHOW; ``cancel_t`` if its fate is CANCEL.
    """

    request_t: np.ndarray
    start: np.ndarray
    end: np.ndarray
    spot_type: np.ndarray  # int8, SpotType value
    account: np.ndarray  # int64, index of the booking customer
    fate: np.ndarray  # int8: SHOW, CANCEL, NO_SHOW
    cancel_t: np.ndarray
    arrive_t: np.ndarray
    leave_t: np.ndarray

    def __len__(self) -> int:
        return len(self.request_t)


def booking_times(
    spec: ReservationsSpec, calendar: Calendar, horizon_s: float, gen: np.random.Generator
) -> np.ndarray:
    """Booking request instants in ``[0, horizon)``: a Poisson stream, constant or by hour.

    Slots follow wall-clock hours (as the walk-in demand's do), so a profile's 09:00 value
    applies from 09:00 even when the scenario starts mid-hour.
    """
    offset = calendar.seconds_of_day(0.0) % HOUR
    first_edge = HOUR - offset if offset else HOUR
    # drawn to the end of the hour holding the horizon, then cut: a longer horizon keeps the
    # requests of a shorter one (see twin.sim.demand)
    until = slot_horizon(calendar, horizon_s)
    edges = np.unique(np.concatenate(([0.0], np.arange(first_edge, until, HOUR), [until])))
    starts = edges[:-1]
    if spec.rate_per_hour is not None:
        per_hour = np.full(len(starts), spec.rate_per_hour, dtype=float)
    else:
        assert spec.profile is not None  # the spec validates exactly one source
        week = np.array([spec.profile.for_day(d) for d in range(7)], dtype=float)
        per_hour = np.array([week[calendar.weekday(t), calendar.hour(t)] for t in starts])
    times = poisson_arrivals(edges, per_hour / HOUR, gen)
    return times[: np.searchsorted(times, horizon_s, side="left")]


def draw_bookings(
    spec: ReservationsSpec, streams: Streams, calendar: Calendar, horizon_s: float
) -> Bookings:
    """Draw every booking request and its holder's behaviour in bulk, one stream per purpose.

    Rules applied here (the core's rules apply later, when the booking is judged):

    * a cancellation comes ``cancel_before_start`` before the start (not before the booking
      itself), or uniformly between booking and start when no distribution is given;
    * an early holder never arrives before ``start - early_arrival`` (the book would refuse
      them; in the model they wait at the gate until then) nor before booking;
    * the stay lasts ``dwell`` after arrival, or until the window ends.
    """
    policy = spec.policy()
    request_t = booking_times(spec, calendar, horizon_s, streams.get("reservations/requests"))
    n = len(request_t)
    start = request_t + np.maximum(
        spec.lead_time.sample_seconds(streams.get("reservations/lead"), n), 0.0
    )
    window = spec.window.sample_seconds(streams.get("reservations/window"), n)
    # a zero-length window is not a booking the core accepts; one second is the shortest
    end = start + np.maximum(window, 1.0)
    types = [SpotType[name] for name in spec.spot_types]
    shares = np.array(list(spec.spot_types.values()), dtype=float)
    pick = streams.get("reservations/type").choice(len(types), size=n, p=shares / shares.sum())
    spot_type = np.array([int(t) for t in types], dtype=np.int8)[pick]
    account = streams.get("reservations/account").integers(0, spec.accounts, size=n)
    u = streams.get("reservations/fate").random(n)
    fate = np.full(n, SHOW, dtype=np.int8)
    fate[u < spec.cancel_probability + spec.no_show_probability] = NO_SHOW
    fate[u < spec.cancel_probability] = CANCEL
    cancel_gen = streams.get("reservations/cancel")
    if spec.cancel_before_start is not None:
        before = spec.cancel_before_start.sample_seconds(cancel_gen, n)
        cancel_t = np.maximum(start - before, request_t)
    else:
        cancel_t = request_t + cancel_gen.random(n) * (start - request_t)
    offset = np.zeros(n)
    if spec.arrival_offset is not None:
        side = spec.arrival_offset
        early = streams.get("reservations/early_side").random(n) < side.early_share
        if side.early is not None:
            how_early = side.early.sample_seconds(streams.get("reservations/early"), n)
            offset = np.where(early, -how_early, offset)
        if side.late is not None:
            how_late = side.late.sample_seconds(streams.get("reservations/late"), n)
            offset = np.where(early, offset, how_late)
    arrive_t = np.maximum.reduce([start + offset, start - policy.early_s, request_t])
    if spec.dwell is not None:
        leave_t = arrive_t + spec.dwell.sample_seconds(streams.get("reservations/dwell"), n)
    else:
        leave_t = np.maximum(end, arrive_t)
    return Bookings(
        request_t=request_t,
        start=start,
        end=end,
        spot_type=spot_type,
        account=account,
        fate=fate,
        cancel_t=cancel_t,
        arrive_t=arrive_t,
        leave_t=leave_t,
    )


class BookingCards:
    """The payments component's processor as the reservation book reaches it.

    Sits between :class:`~twin.core.reservations.ProcessorGateway` and the processor: it adds
    the booking's pre-drawn card to each authorization (slot 0: the booking's hold, slot 1: a
    top-up at exit) and counts the requests. The processor is looked up at the first request,
    because the payments component starts after this one.
    """

    #: Requests per booking with a drawn card: the hold, a top-up.
    SLOTS = 2

    def __init__(
        self,
        resolve: Callable[[], PaymentProcessor],
        draws: ConditionDraws,
        booking_of: Callable[[int], int],
    ) -> None:
        self._resolve = resolve
        self._processor: PaymentProcessor | None = None
        self.draws = draws
        self._booking_of = booking_of
        self.counts = dict.fromkeys(
            ("authorizations", "declined", "captures", "captured_cents", "voids"), 0
        )

    @property
    def processor(self) -> PaymentProcessor:
        if self._processor is None:
            self._processor = self._resolve()
        return self._processor

    def condition(self, key: str) -> Condition:
        """The card of the booking the key ``res-<id>/...`` belongs to, over a working network."""
        j = self._booking_of(int(key[4 : key.index("/")]))
        slot = 0 if key.endswith("/authorize") else 1
        c = self.draws.condition(j * self.SLOTS + slot)
        return Condition(declined=c.declined, limit_cents=c.limit_cents)

    def authorize(
        self, key: str, account: str, amount_cents: int, t: float, cond: Condition | None = None
    ) -> PaymentResult:
        result = self.processor.authorize(key, account, amount_cents, t, self.condition(key))
        self.counts["authorizations"] += 1
        self.counts["declined"] += result.status is not Status.APPROVED
        return result

    def capture(
        self, key: str, authorization_id: str, amount_cents: int, t: float, cond: Condition = OK
    ) -> PaymentResult:
        result = self.processor.capture(key, authorization_id, amount_cents, t, cond)
        if result.status is Status.APPROVED:
            self.counts["captures"] += 1
            self.counts["captured_cents"] += result.amount_cents
        return result

    def void(
        self, key: str, authorization_id: str, t: float, cond: Condition = OK
    ) -> PaymentResult:
        result = self.processor.void(key, authorization_id, t, cond)
        self.counts["voids"] += result.status is Status.APPROVED
        return result


#: Counters read from the book at the warm-up instant and at the end (cumulative ones only).
_COUNTERS = (
    "requested",
    "accepted",
    "payment_declined",
    "cancellations",
    "late_cancellations",
    "no_shows",
    "arrivals",
    "completed",
    "bumped",
    "hold_waits",
    "walk_ins_turned_away",
    "deposit_revenue_cents",
    "penalty_revenue_cents",
    "exit_revenue_cents",
    "refunded_cents",
    "unpaid_cents",
    *(f"rejected_{reason.value}" for reason in RejectReason),
)


@register("reservations", order=20)
class ReservationsComponent(Component):
    """Advance bookings in one lot: holds, holders' visits, no-shows, money and figures."""

    name = "reservations"

    def __init__(self, spec: ReservationsSpec, scenario: Scenario) -> None:
        self.spec = spec
        names = [lot.name for lot in scenario.lot_specs]
        if spec.lot is None:
            self.k = 0
        elif spec.lot in names:
            self.k = names.index(spec.lot)
        else:
            raise ValueError(
                f"operations.reservations.lot: unknown lot {spec.lot!r} (lots: {', '.join(names)})"
            )
        self.policy = spec.policy()

    # -- set-up -----------------------------------------------------------------------------
    def start(self, ctx: ModelContext) -> None:
        """Build the book on the shared lot, draw the bookings, schedule the first request.

        The book is built here, not in ``__init__``: components start in a fixed order with
        permits first, so spots assigned to permit holders are already RESERVED and the book
        does not count them as reservable (step 1 of the integration checklist).
        """
        super().start(ctx)
        sc = ctx.scenario
        self.lot: Lot = ctx.lots[self.k]
        draws = draw_bookings(self.spec, ctx.streams, calendar_for(sc), ctx.horizon)
        self.draws = draws
        n = len(draws)
        self._booking_now = -1  # the booking whose request is being judged
        self._booking_of_rid: dict[int, int] = {}
        pay_spec = sc.operations.payments if sc.operations is not None else None
        self.cards: BookingCards | None = None
        if pay_spec is not None:
            cards = pay_spec.sample_condition_draws(
                ctx.streams.get("reservations/payments"), n * BookingCards.SLOTS
            )
            self.cards = BookingCards(
                self._payments_processor,
                cards,
                lambda rid: self._booking_of_rid.get(rid, self._booking_now),
            )
        gateway = ProcessorGateway(self.cards) if self.cards is not None else None
        # with claims: the book's holds and holders take their units from the claim store
        self.claims = ctx.component("claims")
        self.book = ReservationBook(
            self.lot, self.policy, payments=gateway, units_from_store=self.claims is not None
        )
        self._unit: dict[int, int] = {}  # reservation id -> claim id of the unit it holds
        if self.claims is not None:
            k = self.k
            self.claims.also_taken.append(lambda lot: self._held_now() if lot == k else 0)
            self.claims.on_unit_freed.append(lambda lot, t: self._units(t) if lot == k else None)
        # Python lists: the callbacks index them one booking at a time
        self._request_t = draws.request_t.tolist()
        self._start = draws.start.tolist()
        self._end = draws.end.tolist()
        self._type = draws.spot_type.tolist()
        self._account = [f"acct{a}" for a in draws.account.tolist()]
        self._fate = draws.fate.tolist()
        self._cancel_t = draws.cancel_t.tolist()
        self._arrive_t = draws.arrive_t.tolist()
        self._leave_t = draws.leave_t.tolist()
        self._rid: list[int] = [-1] * n  # reservation id per request, -1 if refused
        self._rejected: list[str] = [""] * n
        self._quote: list[int] = [0] * n
        self._arrived = np.full(n, np.nan)  # when the holder parked
        self._left = np.full(n, np.nan)  # when the holder left the spot
        self._late = 0  # holders who came at or after start + grace (no-shows already)
        self._next = 0
        self._timer_at = math.inf
        cls = VehicleClass[self.spec.vehicle_class]
        # a holder of an EV or HANDICAP booking must be allowed to use the bay they booked
        self._holder = {
            stype: Vehicle(
                f"res:{stype.name}",
                cls,
                handicap=stype is SpotType.HANDICAP,
                ev=stype is SpotType.EV,
            )
            for stype in SpotType
        }
        # walk-ins refused: the book asks which spot types would have fitted the driver
        fleet = [
            Vehicle(f"sim:{c.name}", c, bool(h), bool(e))
            for c in VehicleClass
            for h in (0, 1)
            for e in (0, 1)
        ]
        d = ctx.drivers
        profile = d.vclass.astype(np.int64) * 4 + d.handicap * 2 + d.ev
        self._vehicle_of: Callable[[int], Vehicle] = lambda i: fleet[int(profile[i])]
        raw = sc.warmup_hours
        self.t0 = 0.0 if raw == "auto" else min(float(raw) * 3600.0, ctx.horizon)
        self._base = dict.fromkeys(self._counters(0.0), 0.0)
        if self.t0 > 0:
            ctx.call_at(self.t0, self._snapshot)
        if n:
            ctx.call_at(self._request_t[0], self._request)

    def _payments_processor(self) -> PaymentProcessor:
        """The payments component's processor (it starts after this component)."""
        payments = self.ctx.component("payments")
        if payments is None:
            raise RuntimeError("operations.payments is set but its component is not running")
        return payments.processor  # type: ignore[attr-defined]

    # -- the book's clock -------------------------------------------------------------------
    def _sync(self) -> None:
        """Make sure a tick is scheduled at the book's next due event (hold, no-show)."""
        nt = self.book.next_event_time()
        if nt is not None and nt < self._timer_at and nt < self.ctx.horizon:
            self._timer_at = nt
            self.ctx.call_at(max(nt, self.ctx.env.now), self._tick)

    def _tick(self, t: float) -> None:
        if t >= self._timer_at:
            self._timer_at = math.inf
        self.book.advance(t)  # may end holds (no-shows): spots come free for walk-ins
        self._units(t)
        self.ctx.spot_freed(self.k, t)
        self._sync()

    # -- the booking stream -----------------------------------------------------------------
    def _request(self, t: float) -> None:
        """One booking request; chains the next one so only one request waits in the heap."""
        j = self._next
        self._next += 1
        if self._next < len(self._request_t):
            self.ctx.call_at(self._request_t[self._next], self._request)
        start, end = self._start[j], self._end[j]
        tariff = self.lot.tariff
        quote = tariff.price(start, end) if tariff is not None else 0
        self._quote[j] = quote
        self._booking_now = j
        try:
            res = self.book.create_reservation(
                self._account[j], SpotType(self._type[j]), start, end, t, quote_cents=quote
            )
        except BookingRejected as exc:
            self._rejected[j] = exc.reason.value
            return
        finally:
            self._units(t)
            self._sync()
        self._rid[j] = res.id
        self._booking_of_rid[res.id] = j
        fate = self._fate[j]
        if fate == CANCEL:
            self._at(self._cancel_t[j], lambda now: self._cancel(res.id, now))
        elif fate == SHOW:
            self._at(self._arrive_t[j], lambda now: self._arrive(j, now))
        # NO_SHOW: the book's timer ends the hold at start + grace

    def _at(self, t: float, fn: Callable[[float], object]) -> None:
        if t < self.ctx.horizon:
            self.ctx.call_at(max(t, self.ctx.env.now), fn)

    def _cancel(self, rid: int, t: float) -> None:
        self.book.cancel(rid, t)
        self._units(t)

    def _arrive(self, j: int, t: float) -> None:
        """The holder reaches the gate: park in the held spot, or be bumped, or be too late.

        With claims, a holder with no spot held claims a unit at the gate first
        (:meth:`_arrival_answered`); one with a held spot parks on the hold's unit."""
        claims = self.claims
        if claims is not None:
            res = self.book.get(self._rid[j])
            if res.status is RS.CONFIRMED and res.hold_t is None:
                claims.claim_unit(
                    self.k, t, lambda cid, status, now: self._arrival_answered(j, cid, status, now)
                )
                return
        self._park_holder(j, t)
        self._units(t)

    def _park_holder(self, j: int, t: float) -> bool:
        """The book parks the holder (in the held spot, or any free one of the type)."""
        rid = self._rid[j]
        try:
            session = self.book.arrive(rid, self._holder[SpotType(self._type[j])], t)
        except ReservationNotHonoured:  # no spot of the type: bumped (the book counts it)
            self._drop_unit(rid, t)
            return False
        except InvalidReservationTransition:  # came at or after start + grace: a no-show
            self._late += 1
            return False
        self._arrived[j] = t
        self.ctx.external_park(self.k, session, t)
        if self.claims is not None:
            self.claims.check_parked(self.k)
        self._at(max(self._leave_t[j], t), lambda now: self._depart(j, now))
        return True

    def _depart(self, j: int, t: float) -> None:
        """The holder leaves: the book releases the spot and captures the tariff price."""
        session = self.book.depart(self._rid[j], t)
        self._left[j] = t
        self.ctx.external_leave(self.k, session, t)
        self._units(t)
        self.ctx.spot_freed(self.k, t)

    # -- units from the claim store (claims: on) --------------------------------------------
    @property
    def units(self) -> dict[int, int]:
        """With claims: reservation id -> claim id of the store unit it holds (a hold, or a
        holder parked)."""
        return dict(self._unit)

    def _held_now(self) -> int:
        """Spots the book holds now (RESERVED for reservations): each holds a unit."""
        return sum(self.book.held(stype) for stype in SpotType)

    def _units(self, t: float) -> None:
        """Give back the units the book let go, and claim units for the holds that want one."""
        claims = self.claims
        if claims is None:
            return
        wanted = self.book.request_units(t)
        for rid, to in self.book.unit_moves():
            if to is None:
                self._drop_unit(rid, t)
            elif rid in self._unit:  # a hold's spot and unit went to a waiting reservation
                self._unit[to] = self._unit.pop(rid)
        for rid in wanted:
            claims.claim_unit(
                self.k,
                t,
                lambda cid, status, now, rid=rid: self._hold_answered(rid, cid, status, now),
            )

    def _drop_unit(self, rid: int, t: float) -> None:
        cid = self._unit.pop(rid, None)
        if cid is not None and self.claims is not None:
            self.claims.give_back_unit(cid, t)

    def _hold_answered(self, rid: int, cid: int, status: ClaimStatus, t: float) -> None:
        """The store answered a hold's claim: the book takes a spot, or the hold waits on."""
        claims = self.claims
        assert claims is not None
        if status is ClaimStatus.GRANTED:
            if self.book.unit_granted(rid, t):
                self._unit[rid] = cid
                claims.check_parked(self.k)
            else:  # no longer wanted, or no spot of the type free after all
                claims.give_back_unit(cid, t, unused=True)
        else:
            self.book.unit_refused(rid, t)
        self._units(t)
        self._sync()

    def _arrival_answered(self, j: int, cid: int, status: ClaimStatus, t: float) -> None:
        """The store answered the claim of a holder at the gate without a held spot."""
        claims = self.claims
        assert claims is not None
        rid = self._rid[j]
        if status is not ClaimStatus.GRANTED:  # refused or failed: as at a full lot
            try:
                self.book.bump(rid, t)
            except ReservationNotHonoured:
                pass
            except InvalidReservationTransition:  # a no-show meanwhile
                self._late += 1
        elif self._park_holder(j, t) and rid not in self._unit:
            self._unit[rid] = cid
        else:  # bumped, too late, or parked on a hold granted meanwhile
            claims.give_back_unit(cid, t, unused=True)
        self._units(t)
        self._sync()

    # -- the model's hooks ------------------------------------------------------------------
    def on_refused(self, i: int, k: int, t: float) -> None:
        if k == self.k:
            self.book.note_walk_in_refused(self._vehicle_of(i), t)
            self._units(t)

    def on_leave(self, i: int, k: int, session: Session, t: float) -> float:
        """A walk-in's spot may be what a waiting hold needs: the book takes it at once, or,
        with claims, the walk-in's unit goes back to the store first and a waiting hold
        claims it before the walk-ins' line does (the book's priority without a store)."""
        if k == self.k:
            if self.claims is None:
                self.book.on_spot_freed(session.spot.index, t)
            else:
                self.claims.give_back(i, t)  # now, so the hold's claim comes after it
                self._units(t)
        return 0.0

    # -- figures ----------------------------------------------------------------------------
    def _counters(self, t: float) -> dict[str, float]:
        stats = self.book.stats.as_dict()
        out = {key: float(stats[key]) for key in _COUNTERS}
        out["late_arrivals"] = float(self._late)
        out["idle_spot_hours"] = self.book.idle_spot_hours(t)
        if self.cards is not None:
            out.update({f"card_{k}": float(v) for k, v in self.cards.counts.items()})
        return out

    def _snapshot(self, t: float) -> None:
        self.book.advance(t)  # holds due up to the warm-up count before it
        self._units(t)
        self._base = self._counters(t)

    def finish(self, t: float) -> dict[str, float]:
        """Figures over ``[warm-up, horizon)``; rates are NaN when nothing was counted."""
        now = self._counters(t)
        c = {key: now[key] - self._base[key] for key in now}
        days = (t - self.t0) / 86400.0

        def pct(part: float, whole: float) -> float:
            return 100.0 * part / whole if whole else math.nan

        resolved = c["arrivals"] + c["no_shows"] + c["bumped"] + c["cancellations"]
        exit_rev = c["exit_revenue_cents"] / 100.0
        deposits = c["deposit_revenue_cents"] / 100.0
        penalties = c["penalty_revenue_cents"] / 100.0
        revenue = exit_rev + deposits + penalties
        arrived, left = self._arrived, self._left
        parked = ~np.isnan(arrived)
        stay_end = np.where(np.isnan(left), t, left)[parked]
        overlap = np.clip(stay_end, self.t0, t) - np.clip(arrived[parked], self.t0, t)
        declined = c["payment_declined"]  # the book counts these as rejected, not accepted
        accepted = c["accepted"]
        out = {
            "requested": c["requested"],
            "accepted": accepted,
            "acceptance_pct": pct(accepted, c["requested"]),
            "requests_per_day": c["requested"] / days,
            "cancellations": c["cancellations"],
            "late_cancellations": c["late_cancellations"],
            "cancel_pct": pct(c["cancellations"], resolved),
            "no_shows": c["no_shows"],
            "no_show_pct": pct(c["no_shows"], resolved),
            "late_arrivals": c["late_arrivals"],
            "arrivals": c["arrivals"],
            "bumped": c["bumped"],
            "bumped_pct": pct(c["bumped"], c["arrivals"] + c["bumped"]),
            "hold_waits": c["hold_waits"],
            "idle_spot_hours": c["idle_spot_hours"],
            "idle_spot_hours_per_day": c["idle_spot_hours"] / days,
            "walk_ins_turned_away": c["walk_ins_turned_away"],
            "walk_ins_turned_away_per_day": c["walk_ins_turned_away"] / days,
            "holders_parked.mean": float(overlap.sum()) / (t - self.t0),
            "exit_revenue": exit_rev,
            "deposit_revenue": deposits,
            "penalty_revenue": penalties,
            "revenue": revenue,
            "revenue_per_day": revenue / days,
            "refunded": c["refunded_cents"] / 100.0,
            "unpaid": c["unpaid_cents"] / 100.0,
        }
        for reason in RejectReason:
            out[f"rejected.{reason.value}"] = c[f"rejected_{reason.value}"]
        if self.cards is not None:  # requests to the payments component's processor
            out["declined_holds"] = declined
            out["authorizations"] = c["card_authorizations"]
            out["authorizations_declined"] = c["card_declined"]
            out["captures"] = c["card_captures"]
            out["captured"] = c["card_captured_cents"] / 100.0
            out["voids"] = c["card_voids"]
        return out

    def frames(self) -> dict[str, pd.DataFrame]:
        """``bookings``: one row per request, with what the rules and the holder made of it."""
        d = self.draws
        n = len(d)
        status, spot, held_from, closed, captured, refunded = [], [], [], [], [], []
        authorization: list[str] = []
        for j in range(n):
            rid = self._rid[j]
            if rid < 0:
                status.append(f"rejected:{self._rejected[j]}" if self._rejected[j] else "future")
                spot.append(None)
                held_from.append(math.nan)
                closed.append(math.nan)
                captured.append(0)
                refunded.append(0)
                authorization.append("")
                continue
            res = self.book.get(rid)
            status.append(res.status.value)
            spot.append(None if res.spot_index is None else self.lot.spots[res.spot_index].id)
            held_from.append(math.nan if res.held_from is None else res.held_from)
            closed.append(math.nan if res.closed_t is None else res.closed_t)
            captured.append(res.captured_cents)
            refunded.append(res.refunded_cents)
            authorization.append(res.authorization_id or "")
        return {
            "bookings": pd.DataFrame(
                {
                    "request_t": d.request_t,
                    # a request that never became a reservation has none (not -1)
                    "reservation": pd.array(
                        [r if r >= 0 else None for r in self._rid], dtype="Int64"
                    ),
                    "account": d.account,
                    "spot_type": pd.Categorical(
                        [SpotType(v).name for v in d.spot_type.tolist()],
                        categories=[t.name for t in SpotType],
                    ),
                    "start": d.start,
                    "end": d.end,
                    "fate": pd.Categorical([FATES[f] for f in d.fate.tolist()], categories=FATES),
                    "status": status,
                    "quote_cents": np.asarray(self._quote, dtype=np.int64),
                    "spot": pd.array(spot, dtype="str"),  # spot id, as in every frame
                    "held_from": np.asarray(held_from, dtype=float),
                    "arrived_t": self._arrived,
                    "left_t": self._left,
                    "closed_t": np.asarray(closed, dtype=float),
                    "captured_cents": np.asarray(captured, dtype=np.int64),
                    "refunded_cents": np.asarray(refunded, dtype=np.int64),
                    "authorization_id": authorization,
                }
            )
        }
