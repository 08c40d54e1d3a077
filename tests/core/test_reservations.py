"""Reservations: the concurrency index, booking rules, lifecycle, spot holds, money and stats.

Expected figures are worked out by hand from the rules in ``twin/core/reservations.py``'s
docstring (or checked against brute-force references), never read back from the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from twin.core.errors import InvalidTransition, LotFull, NoCompatibleSpot, ParkingError
from twin.core.facility import Level, build_spots
from twin.core.lot import Lot
from twin.core.pricing import RateTable, Tariff
from twin.core.reservations import (
    TRANSITIONS,
    ArrivalTooEarly,
    BookingRejected,
    ConcurrencyIndex,
    InvalidReservationTransition,
    ProcessorGateway,
    RejectReason,
    ReservationBook,
    ReservationNotHonoured,
    ReservationPolicy,
    ReservationStatus,
    UnknownReservation,
)
from twin.core.types import SpotStatus, SpotType, Vehicle, VehicleClass
from twin.scenario.reservations import ReservationsSpec

ST = SpotType
RS = ReservationStatus
REG = ST.REGULAR
H = 3600.0
MIN = 60.0


# --------------------------------------------------------------------------- helpers


def make_lot(counts: dict[SpotType, int] | None = None, strategy: str = "nearest", **kw) -> Lot:
    levels = [Level(0, "L0"), Level(1, "L1", 60.0)]
    counts = counts or {REG: 10}
    half = {t: n // 2 for t, n in counts.items()}
    rest = {t: n - n // 2 for t, n in counts.items()}
    spots = build_spots([(levels[0], rest), (levels[1], half)])
    return Lot(spots, levels, strategy=strategy, **kw)


def assert_counters(lot: Lot) -> None:
    """Every counter of the lot equals a recount of the spots' statuses."""
    n_types = len(SpotType)
    avail = [[0] * n_types for _ in lot.levels]
    occ_level = [0] * len(lot.levels)
    occ_type = [0] * n_types
    for s in lot.spots:
        if s.status is SpotStatus.AVAILABLE:
            avail[s.level][s.type] += 1
        elif s.status is SpotStatus.OCCUPIED:
            occ_level[s.level] += 1
            occ_type[s.type] += 1
    assert lot.available == avail
    assert lot.occupied_by_level == occ_level
    assert lot.occupied_by_type == occ_type
    assert lot.n_available == sum(map(sum, avail))


@dataclass(frozen=True)
class Res:
    ok: bool
    authorization_id: str | None = None


@dataclass
class FakeGateway:
    """A strict card processor: one capture per authorization, at most the amount held.

    Violations raise AssertionError so a wrong money flow fails the test. Idempotent: the same
    key returns the first answer.
    """

    decline: set[str] = field(default_factory=set)
    fail_captures: bool = False
    calls: list[tuple] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)
    state: dict[str, str] = field(default_factory=dict)
    captured: dict[str, int] = field(default_factory=dict)
    answers: dict[str, Res] = field(default_factory=dict)

    def authorize(self, key: str, account: str, amount: int, t: float) -> Res:
        self.calls.append(("authorize", key, account, amount))
        if key in self.answers:
            return self.answers[key]
        assert amount > 0
        if account in self.decline:
            res = Res(False)
        else:
            auth = f"A{len(self.held)}"
            self.held[auth], self.state[auth] = amount, "authorized"
            res = Res(True, auth)
        self.answers[key] = res
        return res

    def capture(self, key: str, auth: str, amount: int, t: float) -> Res:
        self.calls.append(("capture", key, auth, amount))
        if key in self.answers:
            return self.answers[key]
        assert self.state[auth] == "authorized", f"capture on {self.state[auth]} {auth}"
        assert 0 < amount <= self.held[auth], f"capture {amount} > held {self.held[auth]}"
        if self.fail_captures:
            res = Res(False)
        else:
            self.state[auth], self.captured[auth] = "captured", amount
            res = Res(True)
        self.answers[key] = res
        return res

    def void(self, key: str, auth: str, t: float) -> Res:
        self.calls.append(("void", key, auth))
        assert self.state[auth] == "authorized", f"void on {self.state[auth]} {auth}"
        self.state[auth] = "voided"
        return Res(True)

    @property
    def total_captured(self) -> int:
        return sum(self.captured.values())

    def dangling(self) -> list[str]:
        return [a for a, s in self.state.items() if s == "authorized"]


def policy(**kw) -> ReservationPolicy:
    base = dict(reserved_share={REG: 0.3}, grace_s=15 * MIN, hold_lead_s=15 * MIN)
    base.update(kw)
    return ReservationPolicy(**base)


def book_of(lot: Lot | None = None, **kw) -> ReservationBook:
    payments = kw.pop("payments", None)
    forecast = kw.pop("forecast", None)
    return ReservationBook(lot or make_lot(), policy(**kw), payments=payments, forecast=forecast)


CAR = Vehicle("car")


# --------------------------------------------------------------------------- concurrency index


def brute_peak(intervals: list[tuple[float, float]], a: float, b: float) -> int:
    points = {a} | {s for s, _ in intervals if a < s < b}
    return max(sum(1 for s, e in intervals if s <= x < e) for x in points)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_concurrency_index_matches_brute_force(data):
    idx = ConcurrencyIndex()
    live: dict[int, tuple[float, float]] = {}
    times = st.integers(0, 30).map(float)
    for _ in range(data.draw(st.integers(1, 40))):
        if live and data.draw(st.booleans()):
            handle = data.draw(st.sampled_from(sorted(live)))
            idx.remove(handle)
            del live[handle]
        else:
            s = data.draw(times)
            e = s + data.draw(st.integers(1, 10))
            live[idx.add(s, e)] = (s, e)
        a = data.draw(times)
        b = a + data.draw(st.integers(0, 12))
        assert idx.peak(a, b) == brute_peak(list(live.values()), a, b)
        assert idx.count_at(a) == sum(1 for s, e in live.values() if s <= a < e)
    assert len(idx) == len(live)


def test_concurrency_index_half_open_and_depth_stays_logarithmic():
    idx = ConcurrencyIndex()
    idx.add(0.0, 10.0)
    idx.add(10.0, 20.0)  # back to back: never two at once
    assert idx.peak(0.0, 20.0) == 1
    assert idx.count_at(10.0) == 1 and idx.count_at(20.0) == 0
    with pytest.raises(ValueError):
        idx.add(5.0, 5.0)
    # sorted inserts would make a plain BST a list; the treap stays shallow (no scans)
    for i in range(3000):
        idx.add(100.0 + i, 101.5 + i)

    def depth(n) -> int:
        return 0 if n is None else 1 + max(depth(n.left), depth(n.right))

    assert depth(idx._root) < 60  # log2(6004) ~ 12.6; a degenerate tree would be 6004
    assert idx.peak(100.0, 4000.0) == 2


# --------------------------------------------------------------------------- lot additions


def test_hold_spot_takes_the_nearest_free_spot_of_the_type_out_of_allocation():
    lot = make_lot({REG: 4, ST.COMPACT: 2})
    regular = [s for s in lot.spots if s.type is REG]
    nearest = min(regular, key=lambda s: (s.distance, s.index))
    spot = lot.hold_spot(REG, 0.0)
    assert spot is nearest and spot.status is SpotStatus.RESERVED
    assert_counters(lot)
    cars = [Vehicle(i) for i in range(3)] + [Vehicle(i, VehicleClass.COMPACT) for i in (3, 4)]
    got = {lot.allocate(v, 0.0).spot.index for v in cars}  # 3 regular + 2 compact spots
    assert spot.index not in got
    with pytest.raises(LotFull):
        lot.allocate(Vehicle("x"), 0.0)
    assert lot.hold_spot(REG, 0.0) is None
    assert lot.hold_spot(ST.EV, 0.0) is None  # a type the lot does not have


@pytest.mark.parametrize("strategy", ["nearest", "first_fit", "best_fit", "spread"])
def test_allocate_spot_on_a_held_or_free_spot_and_release_keep_the_index_sound(strategy):
    lot = make_lot({REG: 3}, strategy=strategy)
    held = lot.hold_spot(REG, 0.0)
    s1 = lot.allocate_spot(held.index, CAR, 1.0)
    assert s1.spot is held and held.status is SpotStatus.OCCUPIED and s1.entry_t == 1.0
    free = next(s for s in lot.spots if s.status is SpotStatus.AVAILABLE)
    s2 = lot.allocate_spot(free.index, Vehicle("b"), 2.0)  # an AVAILABLE spot named directly
    assert_counters(lot)
    s3 = lot.allocate(Vehicle("c"), 3.0)
    assert s3.spot.index not in (held.index, free.index)
    with pytest.raises(LotFull):
        lot.allocate(Vehicle("d"), 3.0)
    lot.release(s2.ticket, 4.0)  # its stale heap entry must not hand it out twice
    assert lot.allocate(Vehicle("e"), 5.0).spot is free
    with pytest.raises(LotFull):
        lot.allocate(Vehicle("f"), 5.0)
    lot.release(s1.ticket, 6.0)
    assert held.status is SpotStatus.AVAILABLE
    assert_counters(lot)
    assert {s.ticket for s in (s1, s2, s3)} == {0, 1, 2}


def test_allocate_spot_refusals():
    lot = make_lot({REG: 1, ST.HANDICAP: 1, ST.COMPACT: 1})
    idx = {s.type: s.index for s in lot.spots}
    lot.set_status(idx[REG], SpotStatus.MAINTENANCE, 0.0)
    with pytest.raises(InvalidTransition):
        lot.allocate_spot(idx[REG], CAR, 0.0)
    with pytest.raises(NoCompatibleSpot):  # rules: no permit, no HANDICAP bay
        lot.allocate_spot(idx[ST.HANDICAP], CAR, 0.0)
    van = Vehicle("van", VehicleClass.LARGE)
    with pytest.raises(NoCompatibleSpot):  # physics: never, even ignoring the signs
        lot.allocate_spot(idx[ST.COMPACT], van, 0.0, enforce_rules=False)
    s = lot.allocate_spot(idx[ST.HANDICAP], CAR, 0.0, enforce_rules=False)
    with pytest.raises(InvalidTransition):
        lot.allocate_spot(idx[ST.HANDICAP], Vehicle("p", handicap=True), 0.0)
    with pytest.raises(IndexError):
        lot.allocate_spot(99, CAR, 0.0)
    assert s.spot.type is ST.HANDICAP
    assert_counters(lot)


# --------------------------------------------------------------------------- lifecycle

EXPECTED_TRANSITIONS = {  # written out from the design, not copied from the module
    RS.PENDING: {RS.CONFIRMED, RS.CANCELLED, RS.EXPIRED},
    RS.CONFIRMED: {RS.ARRIVED, RS.NO_SHOW, RS.CANCELLED},
    RS.ARRIVED: {RS.COMPLETED},
    RS.COMPLETED: set(),
    RS.NO_SHOW: set(),
    RS.CANCELLED: set(),
    RS.EXPIRED: set(),
}


def test_transition_table_is_the_designed_one():
    assert {k: set(v) for k, v in TRANSITIONS.items()} == EXPECTED_TRANSITIONS


def reservation_in(state: ReservationStatus):
    """A fresh book (at t = 0) and a reservation in ``state``; start 2 h, end 4 h."""
    gw = FakeGateway(decline={"bad"})
    book = book_of(payments=gw, deposit_cents=500)
    account = "bad" if state is RS.EXPIRED else "u"
    try:
        res = book.create_reservation(
            account, REG, 2 * H, 4 * H, 0.0, confirm=state is not RS.PENDING
        )
    except BookingRejected as exc:
        res = exc.reservation
    if state is RS.ARRIVED or state is RS.COMPLETED:
        book.arrive(res.id, CAR, 2 * H)
        if state is RS.COMPLETED:
            book.depart(res.id, 3 * H)
    elif state is RS.NO_SHOW:
        book.advance(2 * H + 15 * MIN)
    elif state is RS.CANCELLED:
        book.cancel(res.id, 0.0)
    assert res.status is state
    return book, res


OPS = {  # operation -> the status it moves to
    "confirm": RS.CONFIRMED,
    "arrive": RS.ARRIVED,
    "depart": RS.COMPLETED,
    "cancel": RS.CANCELLED,
}


def run_op(book: ReservationBook, op: str, rid: int, legal: bool) -> None:
    """Run ``op``; an illegal one runs at the book's current time so no event interferes."""
    t = book.now
    if op == "confirm":
        book.confirm(rid, t)
    elif op == "arrive":
        book.arrive(rid, Vehicle("x"), max(t, 2 * H) if legal else t)
    elif op == "depart":
        book.depart(rid, max(t, 3 * H) if legal else t)
    else:
        book.cancel(rid, t)


@pytest.mark.parametrize("state", list(RS))
@pytest.mark.parametrize("op", list(OPS))
def test_every_transition_is_legal_exactly_when_the_table_says(state, op):
    book, res = reservation_in(state)
    legal = OPS[op] in EXPECTED_TRANSITIONS[state]
    if legal:
        run_op(book, op, res.id, legal=True)
        assert res.status is OPS[op]
    else:
        before = (res.status, res.spot_index, res.hold_t, res.captured_cents)
        with pytest.raises(InvalidReservationTransition):
            run_op(book, op, res.id, legal=False)
        assert (res.status, res.spot_index, res.hold_t, res.captured_cents) == before
        assert isinstance(InvalidReservationTransition("x"), InvalidTransition)


def test_unknown_reservation_and_time_going_backwards():
    book = book_of()
    with pytest.raises(UnknownReservation):
        book.cancel(7, 0.0)
    book.advance(100.0)
    with pytest.raises(ValueError, match="backwards"):
        book.advance(99.0)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            book.advance(bad)


def test_pending_booking_expires_after_its_ttl_and_frees_capacity():
    book = book_of(reserved_share={REG: 0.1}, pending_ttl_s=600.0)  # cap = 1 spot
    res = book.create_reservation("u", REG, 3 * H, 4 * H, 0.0, confirm=False)
    assert res.status is RS.PENDING
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("v", REG, 3 * H, 4 * H, 599.0)
    assert exc.value.reason is RejectReason.CAP_REACHED
    assert book.next_event_time() == 600.0
    other = book.create_reservation("v", REG, 3 * H, 4 * H, 600.0)  # expired at 600 exactly
    assert res.status is RS.EXPIRED and res.closed_t == 600.0
    assert other.status is RS.CONFIRMED
    with pytest.raises(InvalidReservationTransition):
        book.confirm(res.id, 700.0)
    assert book.stats.expired == 1


# --------------------------------------------------------------------------- booking rules


def test_share_cap_overlap_and_back_to_back_windows():
    book = book_of()  # 10 REGULAR, share 0.3 -> 3 at once; hold lead 15 min, grace 15 min
    for i in range(3):
        book.create_reservation(f"u{i}", REG, 2 * H, 4 * H, 0.0)
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("x", REG, 3 * H, 5 * H, 0.0)
    assert exc.value.reason is RejectReason.CAP_REACHED
    # capacity window starts 15 min before start: 4h15 -> hold from 4h00 == previous end: fits
    book.create_reservation("x", REG, 4 * H + 15 * MIN, 5 * H, 0.0)
    # one second earlier overlaps
    with pytest.raises(BookingRejected):
        book.create_reservation("y", REG, 4 * H + 15 * MIN - 1, 5 * H, 0.0)
    # a window shorter than the grace period still blocks until start + grace
    book2 = book_of(reserved_share={REG: 0.1})
    book2.create_reservation("a", REG, H, H + 60, 0.0)
    with pytest.raises(BookingRejected):
        book2.create_reservation("b", REG, H + 10 * MIN + 15 * MIN, 2 * H, 0.0)
    book2.create_reservation("b", REG, H + 15 * MIN + 15 * MIN, 2 * H, 0.0)
    s = book.stats
    assert (s.requested, s.accepted, s.rejected["cap_reached"]) == (6, 4, 2)


@pytest.mark.parametrize(("factor", "accepted"), [(1.0, 3), (1.34, 4), (1.5, 4), (2.0, 6)])
def test_overbooking_factor_scales_the_cap(factor, accepted):
    book = book_of(overbooking_factor=factor)  # floor(factor * 3)
    n = 0
    for i in range(10):
        try:
            book.create_reservation(f"u{i}", REG, 2 * H, 3 * H, 0.0)
            n += 1
        except BookingRejected as exc:
            assert exc.reason is RejectReason.CAP_REACHED
    assert n == accepted == math.floor(factor * 3)


def test_forecast_occupancy_limits_bookings_and_gets_the_capacity_window():
    calls = []

    def forecast(stype, a, b):
        calls.append((stype, a, b))
        return 9.0  # of 10 REGULAR spots, 9 expected taken by walk-ins

    book = book_of(forecast=forecast)
    book.create_reservation("u", REG, 2 * H, 3 * H, 10.0)
    assert calls == [(REG, 2 * H - 15 * MIN, 3 * H)]
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("v", REG, 2 * H, 3 * H, 20.0)
    assert exc.value.reason is RejectReason.EXPECTED_FULL
    # booked close to the start the window begins now; short windows end at start + grace
    book.create_reservation("w", REG, 5 * H, 5 * H + 60, 5 * H - 60)
    assert calls[-1] == (REG, 5 * H - 60, 5 * H + 15 * MIN)


def test_without_forecast_the_current_walk_in_occupancy_counts():
    lot = make_lot()
    for i in range(8):
        lot.allocate(Vehicle(i), 0.0)
    book = book_of(lot, reserved_share={REG: 1.0})  # room = 10 - 8 = 2
    book.create_reservation("a", REG, 2 * H, 3 * H, 0.0)
    book.create_reservation("b", REG, 2 * H, 3 * H, 0.0)
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("c", REG, 2 * H, 3 * H, 0.0)
    assert exc.value.reason is RejectReason.EXPECTED_FULL
    # a parked reservation holder is not a walk-in: it is not counted twice
    book.arrive(0, CAR, 2 * H)
    assert book.stats.arrivals == 1
    lot.release(0, 2 * H)  # a walk-in leaves: 7 walk-ins + 1 holder parked
    book.create_reservation("c", REG, 2 * H + 30 * MIN, 3 * H, 2 * H)


def test_request_validation_reasons():
    book = book_of(max_lead_s=7 * 24 * H)
    cases = [
        ((REG, 10.0, 20.0, 100.0), RejectReason.INVALID_WINDOW),  # start in the past
        ((REG, 2 * H, 2 * H, 100.0), RejectReason.INVALID_WINDOW),  # empty window
        ((REG, math.inf, math.inf, 100.0), RejectReason.INVALID_WINDOW),
        ((REG, 8 * 24 * H, 9 * 24 * H, 100.0), RejectReason.TOO_FAR_AHEAD),
        ((ST.EV, 2 * H, 3 * H, 100.0), RejectReason.NOT_RESERVABLE),
    ]
    for (stype, start, end, t), reason in cases:
        with pytest.raises(BookingRejected) as exc:
            book.create_reservation("u", stype, start, end, t)
        assert exc.value.reason is reason
    s = book.stats
    assert s.requested == 5 and s.accepted == 0 and sum(s.rejected.values()) == 5
    assert s.as_dict()["rejected_invalid_window"] == 3


def test_rate_limit_is_a_sliding_window_per_account():
    book = book_of(rate_limit_max=2, rate_limit_window_s=24 * H, reserved_share={REG: 1.0})
    book.create_reservation("u", REG, 30 * H, 31 * H, 0.0)
    book.create_reservation("u", REG, 32 * H, 33 * H, 10 * H)
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("u", REG, 34 * H, 35 * H, 24 * H - 1)
    assert exc.value.reason is RejectReason.RATE_LIMITED
    book.create_reservation("v", REG, 34 * H, 35 * H, 24 * H - 1)  # other accounts unaffected
    book.create_reservation("u", REG, 36 * H, 37 * H, 24 * H)  # the first booking aged out
    with pytest.raises(BookingRejected):
        book.create_reservation("u", REG, 38 * H, 39 * H, 24 * H + 1)
    assert book.stats.rejected["rate_limited"] == 2


def test_no_show_strikes_block_the_account():
    book = book_of(strike_threshold=2)
    t = 0.0
    for k in range(2):
        res = book.create_reservation("u", REG, (2 + 3 * k) * H, (3 + 3 * k) * H, t)
        t = res.deadline
        book.advance(t)
        assert res.status is RS.NO_SHOW
    assert book.strikes["u"] == 2
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("u", REG, 20 * H, 21 * H, book.now)
    assert exc.value.reason is RejectReason.BLOCKED
    book.create_reservation("v", REG, 20 * H, 21 * H, book.now)
    # a cancellation is not a strike
    book2 = book_of(strike_threshold=1)
    r = book2.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    book2.cancel(r.id, 10.0)
    book2.create_reservation("u", REG, 5 * H, 6 * H, 20.0)


# --------------------------------------------------------------------------- holds & no-shows


def test_hold_starts_at_start_minus_lead_and_no_show_releases_at_start_plus_grace_exactly():
    lot = make_lot({REG: 1})
    book = book_of(lot, reserved_share={REG: 1.0})
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    spot = lot.spots[0]
    book.advance(2 * H - 15 * MIN - 1e-6)
    assert spot.status is SpotStatus.AVAILABLE and res.hold_t is None
    book.advance(2 * H - 15 * MIN)
    assert spot.status is SpotStatus.RESERVED and res.spot_index == 0
    with pytest.raises(LotFull):  # the only spot is held: a walk-in is turned away
        lot.allocate(Vehicle("walk"), 2 * H)
    assert book.note_walk_in_refused(Vehicle("walk"), 2 * H)
    deadline = 2 * H + 15 * MIN
    assert book.next_event_time() == deadline
    book.advance(deadline - 1e-6)
    assert res.status is RS.CONFIRMED and spot.status is SpotStatus.RESERVED
    book.advance(deadline)
    assert res.status is RS.NO_SHOW and res.closed_t == deadline
    assert spot.status is SpotStatus.AVAILABLE
    assert lot.allocate(Vehicle("walk"), deadline).spot is spot
    assert book.stats.held_idle_s == pytest.approx(30 * MIN)
    assert book.stats.walk_ins_turned_away == 1


def test_arrival_at_the_deadline_is_a_no_show_just_before_is_not():
    book = book_of()
    late = book.create_reservation("a", REG, 2 * H, 3 * H, 0.0)
    ok = book.create_reservation("b", REG, 2 * H, 3 * H, 0.0)
    book.arrive(ok.id, CAR, ok.deadline - 1e-3)
    with pytest.raises(InvalidReservationTransition):
        book.arrive(late.id, Vehicle("late"), late.deadline)  # advance runs first: NO_SHOW
    assert late.status is RS.NO_SHOW and ok.status is RS.ARRIVED


def test_early_arrival_rules():
    book = book_of(early_arrival_s=30 * MIN)
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    with pytest.raises(ArrivalTooEarly):
        book.arrive(res.id, CAR, 2 * H - 30 * MIN - 1)
    assert res.status is RS.CONFIRMED  # nothing changed
    session = book.arrive(res.id, CAR, 2 * H - 30 * MIN)  # before the hold: any free spot
    assert res.status is RS.ARRIVED and session.spot.type is REG
    assert book.stats.held_idle_s == 0.0
    # the hold event that was scheduled does nothing now
    book.advance(2 * H)
    assert sum(s.status is SpotStatus.RESERVED for s in book.lot.spots) == 0


def test_vehicle_that_may_not_use_the_booked_type_is_refused_without_state_change():
    lot = make_lot({REG: 2, ST.EV: 2})
    book = book_of(lot, reserved_share={ST.EV: 0.5})
    res = book.create_reservation("u", ST.EV, H, 2 * H, 0.0)
    book.advance(H)
    with pytest.raises(NoCompatibleSpot):
        book.arrive(res.id, Vehicle("petrol"), H)
    assert res.status is RS.CONFIRMED and res.hold_t is not None
    session = book.arrive(res.id, Vehicle("ev", ev=True), H)
    assert session.spot.index == res.spot_index and session.spot.type is ST.EV


def test_waiting_hold_gets_the_next_freed_spot_and_bumping_when_none():
    lot = make_lot({REG: 2})
    book = book_of(lot, reserved_share={REG: 1.0}, forecast=lambda *a: 0.0)
    a = book.create_reservation("a", REG, 2 * H, 3 * H, 0.0)
    b = book.create_reservation("b", REG, 2 * H, 3 * H, 0.0)
    walk = [lot.allocate(Vehicle(f"w{i}"), H) for i in range(2)]  # walk-ins fill the lot
    book.advance(2 * H - 15 * MIN)
    assert a.hold_t is None and a.waiting and b.waiting
    assert book.stats.hold_waits == 2
    lot.release(walk[0].ticket, 2 * H - 10 * MIN)
    assert book.on_spot_freed(walk[0].spot.index, 2 * H - 10 * MIN)
    assert a.spot_index == walk[0].spot.index and a.hold_t == 2 * H - 10 * MIN  # FIFO
    assert lot.spots[a.spot_index].status is SpotStatus.RESERVED
    with pytest.raises(ReservationNotHonoured):
        book.arrive(b.id, Vehicle("b"), 2 * H)  # nothing free: bumped
    assert b.status is RS.CANCELLED and book.stats.bumped == 1
    # a freed spot with nobody waiting stays with the walk-ins
    lot.release(walk[1].ticket, 2 * H + 1)
    assert not book.on_spot_freed(walk[1].spot.index, 2 * H + 1)
    assert lot.spots[walk[1].spot.index].status is SpotStatus.AVAILABLE


def test_a_cancelled_hold_passes_its_spot_to_a_waiting_reservation():
    lot = make_lot({REG: 2})
    book = book_of(lot, reserved_share={REG: 0.5}, overbooking_factor=2.0)  # 1 held at once
    a = book.create_reservation("a", REG, 2 * H, 3 * H, 0.0)
    b = book.create_reservation("b", REG, 2 * H, 3 * H, 0.0)
    book.advance(2 * H - 15 * MIN)
    assert a.hold_t is not None and b.waiting  # the share cap keeps it at one hold
    assert book.held(REG) == 1
    spot = a.spot_index
    book.cancel(a.id, 2 * H - 5 * MIN)
    assert b.spot_index == spot and b.hold_t == 2 * H - 5 * MIN
    assert lot.spots[spot].status is SpotStatus.RESERVED and book.held(REG) == 1
    assert book.stats.held_idle_s == pytest.approx(10 * MIN)


def test_walk_in_refusal_counted_only_if_a_held_spot_would_fit():
    lot = make_lot({REG: 1, ST.LARGE: 1})
    book = book_of(lot, reserved_share={REG: 1.0})
    book.create_reservation("u", REG, H, 2 * H, 0.0)
    book.advance(H)
    lot.allocate(Vehicle("big", VehicleClass.LARGE), H)
    van = Vehicle("van", VehicleClass.LARGE)
    with pytest.raises(LotFull):
        lot.allocate(van, H)
    assert not book.note_walk_in_refused(van, H)  # a van could never use the REGULAR hold
    assert book.note_walk_in_refused(Vehicle("car"), H)
    assert book.stats.walk_ins_turned_away == 1


# --------------------------------------------------------------------------- idle accounting


def test_idle_spot_hours_for_arrival_cancel_and_no_show():
    book = book_of(free_cancel_before_s=0.0)
    arrive = book.create_reservation("a", REG, 2 * H, 3 * H, 0.0)
    cancel = book.create_reservation("c", REG, 2 * H, 3 * H, 0.0)
    noshow = book.create_reservation("n", REG, 2 * H, 3 * H, 0.0)
    book.advance(2 * H - 15 * MIN)
    assert book.idle_spot_hours(2 * H - 15 * MIN) == 0.0
    # open holds count up to t: 3 holds x 10 min
    assert book.idle_spot_hours(2 * H - 5 * MIN) == pytest.approx(3 * 10 / 60)
    book.cancel(cancel.id, 2 * H - 10 * MIN)  # held 5 min
    book.arrive(arrive.id, CAR, 2 * H + 5 * MIN)  # held 20 min
    book.advance(noshow.deadline)  # held 30 min
    assert book.stats.held_idle_s == pytest.approx((20 + 5 + 30) * MIN)
    assert book.stats.held_idle_hours == pytest.approx(55 / 60)
    assert book.idle_spot_hours(5 * H) == pytest.approx(55 / 60)  # nothing open any more


# --------------------------------------------------------------------------- money


def tariff_3_per_hour() -> Tariff:
    return Tariff("t", RateTable(period_minutes=60, period_cents=300))


def money_book(**kw):
    gw = kw.pop("payments", None) or FakeGateway(decline={"broke"})
    lot = make_lot(tariff=tariff_3_per_hour())
    base = dict(deposit_cents=500, no_show_penalty_cents=300, free_cancel_before_s=H)
    base.update(kw)
    return book_of(lot, payments=gw, **base), gw


def test_confirmation_authorises_deposit_plus_penalty_or_the_quote():
    book, gw = money_book()
    r1 = book.create_reservation("u", REG, 5 * H, 6 * H, 0.0)
    r2 = book.create_reservation("v", REG, 5 * H, 6 * H, 0.0, quote_cents=1200)
    assert gw.calls[0] == ("authorize", f"res-{r1.id}/authorize", "u", 800)
    assert gw.calls[1] == ("authorize", f"res-{r2.id}/authorize", "v", 1200)
    assert r1.authorized_cents == 800 and r1.authorization_id == "A0"


def test_no_show_captures_deposit_and_penalty_and_strikes():
    book, gw = money_book()
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    book.advance(res.deadline)
    assert gw.captured == {"A0": 800}
    s = book.stats
    assert (s.deposit_revenue_cents, s.penalty_revenue_cents, s.refunded_cents) == (500, 300, 0)
    assert book.strikes["u"] == 1 and gw.dangling() == []


def test_early_cancel_voids_and_refunds_the_whole_deposit():
    book, gw = money_book()
    res = book.create_reservation("u", REG, 5 * H, 6 * H, 0.0)
    assert book.cancel(res.id, 4 * H) == 500  # exactly free_cancel_before (1 h) before start
    assert gw.state == {"A0": "voided"} and gw.total_captured == 0
    assert book.stats.refunded_cents == 500 and book.stats.late_cancellations == 0


def test_late_cancel_keeps_part_of_the_deposit():
    book, gw = money_book(late_cancel_refund_share=0.4)
    res = book.create_reservation("u", REG, 5 * H, 6 * H, 0.0)
    assert book.cancel(res.id, 4 * H + 1) == 200  # 40 % of 500 back
    assert gw.captured == {"A0": 300}
    s = book.stats
    assert (s.deposit_revenue_cents, s.refunded_cents, s.late_cancellations) == (300, 200, 1)
    assert res.refunded_cents == 200 and res.captured_cents == 300


def test_exit_captures_the_tariff_price_within_the_hold():
    book, gw = money_book()
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    book.arrive(res.id, CAR, 2 * H)
    session = book.depart(res.id, 4 * H)  # 2 h at $3 = 600 <= 800 authorised
    assert session.amount_cents == 600
    assert gw.captured == {"A0": 600}
    assert book.stats.exit_revenue_cents == 600 and res.status is RS.COMPLETED
    assert book.stats.deposit_revenue_cents == 0  # the deposit counts towards the price


def test_exit_above_the_hold_is_topped_up():
    book, gw = money_book()
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    book.arrive(res.id, CAR, 2 * H)
    book.depart(res.id, 6 * H)  # 4 h = 1200 > 800
    assert gw.captured == {"A0": 800, "A1": 400}
    assert ("authorize", f"res-{res.id}/exit/topup", "u", 400) in gw.calls
    assert book.stats.exit_revenue_cents == 1200 and book.stats.unpaid_cents == 0


def test_declined_payment_expires_the_booking_and_frees_capacity():
    book, _ = money_book(reserved_share={REG: 0.1})
    with pytest.raises(BookingRejected) as exc:
        book.create_reservation("broke", REG, 2 * H, 3 * H, 0.0)
    assert exc.value.reason is RejectReason.PAYMENT_DECLINED
    assert exc.value.reservation.status is RS.EXPIRED
    book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)  # the one reservable spot is free
    s = book.stats
    # the declined booking counts as rejected for the customer, not as accepted
    assert (s.payment_declined, s.expired, s.accepted, s.confirmed) == (1, 1, 1, 1)
    assert s.rejected[RejectReason.PAYMENT_DECLINED.value] == 1
    assert s.requested == s.accepted + sum(s.rejected.values())


def test_failed_captures_are_counted_unpaid():
    book, _ = money_book(payments=FakeGateway(fail_captures=True))
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    book.advance(res.deadline)
    assert book.stats.unpaid_cents == 800
    assert book.stats.deposit_revenue_cents == 0 and book.stats.penalty_revenue_cents == 0


def test_bumped_holder_gets_the_hold_voided():
    lot = make_lot({REG: 1}, tariff=tariff_3_per_hour())
    gw = FakeGateway()
    book = book_of(
        lot, payments=gw, deposit_cents=500, reserved_share={REG: 1.0}, forecast=lambda *a: 0.0
    )
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    lot.allocate(Vehicle("walk"), H)
    with pytest.raises(ReservationNotHonoured):
        book.arrive(res.id, CAR, 2 * H)
    assert gw.state == {"A0": "voided"} and gw.total_captured == 0


def test_without_a_gateway_amounts_are_booked_as_collected():
    lot = make_lot(tariff=tariff_3_per_hour())
    book = book_of(lot, deposit_cents=500, no_show_penalty_cents=300)
    a = book.create_reservation("a", REG, 2 * H, 3 * H, 0.0)
    b = book.create_reservation("b", REG, 2 * H, 3 * H, 0.0)
    book.arrive(a.id, CAR, 2 * H)
    book.advance(b.deadline)
    book.depart(a.id, 5 * H)
    s = book.stats
    assert (s.exit_revenue_cents, s.deposit_revenue_cents, s.penalty_revenue_cents) == (
        900,
        500,
        300,
    )


def test_every_idempotency_key_is_used_for_one_request_only():
    book, gw = money_book(late_cancel_refund_share=0.5)
    ids = [book.create_reservation(f"u{i}", REG, 2 * H, 3 * H, 0.0).id for i in range(3)]
    book.arrive(ids[0], CAR, 2 * H)
    book.cancel(ids[1], 2 * H)
    book.advance(2 * H + 15 * MIN)
    book.depart(ids[0], 7 * H)
    keys = [c[1] for c in gw.calls]
    assert len(keys) == len(set(keys))
    assert gw.dangling() == []  # no card left with money blocked


def test_processor_gateway_adapts_the_payments_module():
    payments = pytest.importorskip("twin.core.payments")
    proc = payments.PaymentProcessor()
    lot = make_lot(tariff=tariff_3_per_hour())
    book = book_of(
        lot, payments=ProcessorGateway(proc), deposit_cents=500, no_show_penalty_cents=300
    )
    res = book.create_reservation("u", REG, 2 * H, 3 * H, 0.0)
    book.advance(res.deadline)
    assert proc.captured_cents("u") == 800
    assert proc.open_authorizations() == []
    # a partial approval (card limit) is not enough for a reservation: voided, not ok
    gw = ProcessorGateway(proc)
    orig = proc.authorize
    proc.authorize = lambda k, a, c, t: orig(k, a, c, t, payments.Condition(limit_cents=100))
    assert not gw.authorize("k-partial", "v", 800, 0.0).ok
    assert proc.open_authorizations() == []


# --------------------------------------------------------------------------- invariants


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_random_traffic_never_double_books_a_spot(data):
    strategy = data.draw(st.sampled_from(["nearest", "spread", "best_fit"]))
    lot = make_lot({REG: 4, ST.COMPACT: 2}, strategy=strategy)
    factor = data.draw(st.sampled_from([1.0, 1.5, 2.0]))
    # no forecast: walk-ins are ignored at booking, so holds wait and holders get bumped
    forecast = data.draw(st.sampled_from([None, lambda *a: 0.0]))
    book = ReservationBook(
        lot,
        policy(reserved_share={REG: 0.5}, overbooking_factor=factor, free_cancel_before_s=0.0),
        payments=FakeGateway(),
        forecast=forecast,
    )
    ops = ["book", "book", "walk_in", "walk_in", "leave", "arrive", "arrive", "depart", "cancel"]
    walk_ins: list[int] = []
    t = 0.0
    for step in range(data.draw(st.integers(5, 45))):
        t += data.draw(st.sampled_from([0.0, 60.0, 300.0, 600.0, 1200.0]))
        book.advance(t)  # as the simulator does at next_event_time(), before walk-ins move
        op = data.draw(st.sampled_from([*ops, "tick"]))
        live = [r for r in book if r.status.live]
        if op == "book":
            start = t + data.draw(st.sampled_from([0.0, 300.0, 900.0, 1800.0, 3600.0]))
            with _maybe(BookingRejected):
                book.create_reservation(f"a{step % 3}", REG, start, start + 3600.0, t)
        elif op == "walk_in":
            try:
                walk_ins.append(lot.allocate(Vehicle(f"w{step}"), t).ticket)
            except ParkingError:
                book.note_walk_in_refused(Vehicle(f"w{step}"), t)
        elif op == "leave" and walk_ins:
            ticket = walk_ins.pop(data.draw(st.integers(0, len(walk_ins) - 1)))
            session = lot.release(ticket, t)
            book.on_spot_freed(session.spot.index, t)
        elif op == "arrive" and live:
            res = data.draw(st.sampled_from(live))
            with _maybe(ParkingError):
                book.arrive(res.id, Vehicle(f"r{res.id}"), t)
        elif op == "depart":
            parked = [r for r in live if r.status is RS.ARRIVED]
            if parked:
                book.depart(data.draw(st.sampled_from(parked)).id, t)
        elif op == "cancel" and live:
            with _maybe(InvalidReservationTransition):
                book.cancel(data.draw(st.sampled_from(live)).id, t)
        else:
            book.advance(t)
        check_invariants(book, t, factor)
    st_ = book.stats
    for name in ("no_shows", "bumped", "hold_waits", "walk_ins_turned_away", "completed"):
        if getattr(st_, name):
            event(f"had {name}")


class _maybe:
    """Context manager swallowing one expected exception type (the op may be refused)."""

    def __init__(self, exc: type[BaseException]) -> None:
        self.exc = exc

    def __enter__(self) -> None:
        return None

    def __exit__(self, et, ev, tb) -> bool:
        return et is not None and issubclass(et, self.exc)


def check_invariants(book: ReservationBook, t: float, factor: float) -> None:
    lot = book.lot
    holding = [r for r in book if r.hold_t is not None]
    spots = [r.spot_index for r in holding]
    assert len(spots) == len(set(spots)), "one spot held for two reservations"
    for r in holding:
        assert r.status is RS.CONFIRMED
        assert lot.spots[r.spot_index].status is SpotStatus.RESERVED
        assert lot.spots[r.spot_index].type is r.spot_type
    n_reserved = sum(s.status is SpotStatus.RESERVED for s in lot.spots)
    assert n_reserved == len(holding), "a RESERVED spot nobody holds (leak)"
    assert book.held(REG) == len(holding) <= book.hold_cap(REG)
    for r in book:
        if r.status is RS.ARRIVED:
            session = lot.session(r.ticket)
            assert session.spot.index == r.spot_index and session.spot.type is REG
    assert_counters(lot)
    live = [r.window for r in book if r.status.live]
    limit = math.floor(factor * book.hold_cap(REG) + 1e-9)
    for a, _ in live:
        assert sum(1 for s, e in live if s <= a < e) <= limit
    s = book.stats
    assert s.requested == s.accepted + sum(s.rejected.values())
    nxt = book.next_event_time()
    assert nxt is None or nxt > t


# --------------------------------------------------------------------------- policy & spec


def test_policy_validation():
    with pytest.raises(ValueError, match="overbooking_factor"):
        policy(overbooking_factor=0.9)
    with pytest.raises(ValueError, match="reserved_share"):
        policy(reserved_share={REG: 1.5})
    with pytest.raises(ValueError, match="deposit_cents"):
        policy(deposit_cents=2.5)
    with pytest.raises(ValueError, match="strike_threshold"):
        policy(strike_threshold=0)
    with pytest.raises(ValueError, match="grace_s"):
        policy(grace_s=-1)


SPEC = {
    "rate_per_hour": 4,
    "lead_time": {"type": "exponential", "mean": 24, "unit": "h"},
    "window": {"type": "uniform", "low": 1, "high": 4, "unit": "h"},
    "reserved_share": {"REGULAR": 0.25},
    "deposit": "5.00",
    "no_show_penalty": 10,
    "grace_min": 20,
    "hold_lead_min": 10,
    "free_cancel_before_h": 2,
    "late_cancel_refund_share": 0.5,
    "rate_limit": {"max_bookings": 3, "per_hours": 12},
    "strike_threshold": 3,
    "overbooking_factor": 1.2,
}


def test_spec_builds_the_core_policy_in_seconds_and_cents():
    p = ReservationsSpec.model_validate(SPEC).policy()
    assert p.reserved_share == {REG: 0.25}
    assert (p.deposit_cents, p.no_show_penalty_cents) == (500, 1000)
    assert (p.grace_s, p.hold_lead_s, p.free_cancel_before_s) == (1200.0, 600.0, 7200.0)
    assert (p.rate_limit_max, p.rate_limit_window_s, p.strike_threshold) == (3, 43200.0, 3)
    assert p.overbooking_factor == 1.2 and p.early_s == 600.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"profile": {"all": [1.0] * 24}}, "exactly one of 'rate_per_hour' or 'profile'"),
        ({"cancel_probability": 0.7, "no_show_probability": 0.4}, "exceeds 1"),
        ({"spot_types": {"EV": 1.0}}, "would all be refused"),
        ({"spot_types": {"REGULAR": 0.5}}, "sum to 1"),
        ({"reserved_share": {}}, "at least one spot type"),
        ({"overbooking_factor": 0.5}, "greater than or equal to 1"),
        ({"deposit": "1.234"}, "2 decimal places"),
        ({"vehicle_class": "LARGE"}, "does not fit"),
        (
            {"arrival_offset": {"early_share": 0.3, "late": {"type": "constant", "value": 5}}},
            "needs an 'early' distribution",
        ),
        ({"depposit": 5}, "Extra inputs"),
    ],
)
def test_spec_errors_are_clear(change, message):
    data = {**SPEC, **change}
    with pytest.raises(ValidationError, match=message):
        ReservationsSpec.model_validate(data)
