"""The lot state machine: compatibility, refusals, counters, spot status, pricing hook.

Compatibility is checked against a table written out here from the rules (not derived from
``SPOT_CAPACITY``), so a wrong capacity in the core shows up as a failure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from itertools import product

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from twin.core.allocation import STRATEGIES
from twin.core.errors import (
    DoubleExit,
    InvalidTransition,
    LotFull,
    NoCompatibleSpot,
    ParkingError,
    UnknownTicket,
)
from twin.core.facility import Level, Spot, build_spots
from twin.core.lot import Lot, Session, compatible_tiers
from twin.core.pricing import DynamicPricing, PriceContext, RateTable, Tariff
from twin.core.types import SpotStatus, SpotType, Vehicle, VehicleClass

ST = SpotType
VC = VehicleClass
AVAILABLE, OCCUPIED = SpotStatus.AVAILABLE, SpotStatus.OCCUPIED
GENERAL = (ST.MOTORCYCLE, ST.COMPACT, ST.REGULAR, ST.LARGE)

#: Vehicle classes each spot type physically takes, written out by hand from the rules:
#: a spot takes any vehicle no larger than itself; HANDICAP bays are van-width; EV bays are
#: regular-sized bays with a charger.
FITS: dict[SpotType, frozenset[VehicleClass]] = {
    ST.MOTORCYCLE: frozenset({VC.MOTORCYCLE}),
    ST.COMPACT: frozenset({VC.MOTORCYCLE, VC.COMPACT}),
    ST.REGULAR: frozenset({VC.MOTORCYCLE, VC.COMPACT, VC.REGULAR}),
    ST.LARGE: frozenset(VC),
    ST.HANDICAP: frozenset(VC),
    ST.EV: frozenset({VC.MOTORCYCLE, VC.COMPACT, VC.REGULAR}),
}

#: Strategies whose choice is a fixed order (random_free draws; it has tests of its own).
ORDERED = sorted(name for name, cls in STRATEGIES.items() if not cls.random)


def may_use(stype: SpotType, v: Vehicle, ev_open_to_all: bool) -> bool:
    """Reference compatibility rule for one spot type and one vehicle."""
    if v.vclass not in FITS[stype]:
        return False
    if stype == ST.HANDICAP:
        return v.handicap
    if stype == ST.EV:
        return v.ev or ev_open_to_all
    return True


def make_spots(spec: list[tuple[SpotType, float, int]]) -> tuple[list[Spot], list[Level]]:
    """Spots from ``(type, distance, level)`` triples, indexed in list order."""
    n_levels = max(level for _, _, level in spec) + 1
    levels = [Level(i, f"L{i}") for i in range(n_levels)]
    spots = [
        Spot(index=i, id=f"S{i}", level=level, type=stype, distance=dist)
        for i, (stype, dist, level) in enumerate(spec)
    ]
    return spots, levels


def lot_of(spec, strategy="nearest", **kw) -> Lot:
    spots, levels = make_spots(spec)
    return Lot(spots, levels, strategy=strategy, **kw)


def recount_matches(lot: Lot) -> None:
    """Every counter the lot keeps equals a recount from the spots' statuses."""
    n_levels = len(lot.levels)
    available = [[0] * len(ST) for _ in range(n_levels)]
    occ_level = [0] * n_levels
    occ_type = [0] * len(ST)
    for s in lot.spots:
        if s.status == AVAILABLE:
            available[s.level][s.type] += 1
        elif s.status == OCCUPIED:
            occ_level[s.level] += 1
            occ_type[s.type] += 1
    assert lot.available == available
    assert lot.occupied_by_level == occ_level
    assert lot.occupied_by_type == occ_type
    assert lot.n_available == sum(map(sum, available))
    assert lot.n_occupied == sum(occ_level)
    assert lot.occupancy() == pytest.approx(sum(occ_level) / len(lot.spots))


def fill(lot: Lot, vehicle: Vehicle, t: float = 0.0) -> list[SpotType]:
    """Allocate the same kind of vehicle until refused; the types it got, in order."""
    got = []
    while True:
        try:
            got.append(lot.allocate(vehicle, t).spot.type)
        except ParkingError:
            return got


# --------------------------------------------------------------------- compatibility


@pytest.mark.parametrize(
    ("vclass", "handicap", "ev", "ev_open", "by_size"),
    list(product(VC, (False, True), (False, True), (False, True), (False, True))),
)
def test_compatible_tiers_allow_exactly_the_compatible_types(
    vclass, handicap, ev, ev_open, by_size
):
    v = Vehicle("x", vclass, handicap, ev)
    tiers = compatible_tiers(int(vclass), handicap, ev, ev_open, by_size)
    flat = [t for tier in tiers for t in tier]
    assert len(flat) == len(set(flat)), f"a type appears in two tiers: {tiers}"
    assert all(tiers), "no empty tiers"
    assert set(flat) == {t for t in ST if may_use(t, v, ev_open)}

    def tier_of(stype):
        return next(i for i, tier in enumerate(tiers) if stype in tier)

    general = [t for t in GENERAL if t in flat]
    if handicap:
        assert all(tier_of(ST.HANDICAP) < tier_of(g) for g in general)
    if ST.EV in flat:
        if ev:
            assert tier_of(ST.EV) == 0, "EVs are offered chargers first"
        else:
            assert tiers[-1] == (ST.EV,), "non-EVs take chargers only as a last resort"
            assert all(tier_of(ST.EV) > tier_of(t) for t in flat if t != ST.EV)
    if by_size:
        # best-fit: one tier per general size, smallest first
        assert [tier_of(g) for g in general] == sorted(tier_of(g) for g in general)
        assert len({tier_of(g) for g in general}) == len(general)
    elif general:
        assert len({tier_of(g) for g in general}) == 1


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("stype", list(ST))
@pytest.mark.parametrize("vclass", list(VC))
def test_single_spot_type_lot_takes_only_vehicles_that_fit(strategy, stype, vclass):
    # permit holder and EV, so only size decides
    v = Vehicle(1, vclass, handicap=True, ev=True)
    lot = lot_of([(stype, 1.0, 0), (stype, 2.0, 0)], strategy)
    if vclass in FITS[stype]:
        assert fill(lot, v) == [stype, stype]
    else:
        with pytest.raises(NoCompatibleSpot):
            lot.allocate(v, 0.0)
        assert lot.n_available == 2 and lot.n_occupied == 0


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_large_vehicle_never_in_compact_or_regular(strategy):
    lot = lot_of(
        [(ST.COMPACT, 1.0, 0), (ST.REGULAR, 2.0, 0), (ST.LARGE, 9.0, 0), (ST.EV, 0.5, 0)],
        strategy,
        ev_open_to_all=True,
    )
    assert fill(lot, Vehicle(1, VC.LARGE, ev=True)) == [ST.LARGE]
    with pytest.raises(NoCompatibleSpot):
        lot.allocate(Vehicle(2, VC.LARGE), 0.0)


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_motorcycle_may_take_any_general_spot(strategy):
    lot = lot_of(
        [
            (ST.LARGE, 1.0, 0),
            (ST.REGULAR, 2.0, 0),
            (ST.COMPACT, 3.0, 0),
            (ST.MOTORCYCLE, 4.0, 0),
            (ST.HANDICAP, 0.1, 0),
            (ST.EV, 0.2, 0),
        ],
        strategy,
    )
    got = fill(lot, Vehicle(1, VC.MOTORCYCLE))
    assert sorted(got) == sorted(GENERAL)
    assert lot.n_available == 2  # HANDICAP and EV left for those entitled


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_handicap_bays_only_with_permit(strategy):
    lot = lot_of([(ST.HANDICAP, 1.0, 0), (ST.HANDICAP, 2.0, 0), (ST.REGULAR, 3.0, 0)], strategy)
    assert lot.allocate(Vehicle(1), 0.0).spot.type == ST.REGULAR
    # now only HANDICAP spots are free: a non-permit vehicle is refused, not told "full"
    for vclass in VC:
        with pytest.raises(NoCompatibleSpot):
            lot.allocate(Vehicle(2, vclass), 0.0)
        assert not lot.has_space_for(Vehicle(2, vclass))
    assert lot.n_available == 2
    assert lot.allocate(Vehicle(3, VC.LARGE, handicap=True), 0.0).spot.type == ST.HANDICAP


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_permit_holders_get_handicap_bays_first(strategy):
    # the accessible bays are the farthest and have the highest numbers, so no strategy would
    # pick them for any reason other than the permit
    lot = lot_of(
        [(ST.REGULAR, 1.0, 0), (ST.LARGE, 2.0, 0), (ST.HANDICAP, 50.0, 0), (ST.HANDICAP, 60.0, 0)],
        strategy,
    )
    permit = Vehicle(1, VC.REGULAR, handicap=True)
    assert fill(lot, permit) == [ST.HANDICAP, ST.HANDICAP, ST.REGULAR, ST.LARGE]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("ev_open", [False, True])
def test_evs_get_charger_bays_first(strategy, ev_open):
    lot = lot_of(
        [(ST.COMPACT, 1.0, 0), (ST.REGULAR, 2.0, 0), (ST.EV, 70.0, 0), (ST.EV, 80.0, 0)],
        strategy,
        ev_open_to_all=ev_open,
    )
    assert fill(lot, Vehicle(1, VC.COMPACT, ev=True)) == [ST.EV, ST.EV, ST.COMPACT, ST.REGULAR]


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_non_ev_never_uses_charger_when_lot_keeps_them(strategy):
    lot = lot_of([(ST.EV, 0.5, 0), (ST.EV, 0.6, 0), (ST.REGULAR, 9.0, 0)], strategy)
    assert fill(lot, Vehicle(1, VC.REGULAR)) == [ST.REGULAR]
    with pytest.raises(NoCompatibleSpot):
        lot.allocate(Vehicle(2, VC.MOTORCYCLE), 0.0)
    assert lot.allocate(Vehicle(3, ev=True), 0.0).spot.type == ST.EV


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_non_ev_uses_charger_only_after_every_general_spot(strategy):
    # chargers are nearest and lowest-numbered: only the last-resort rule keeps them back
    lot = lot_of(
        [
            (ST.EV, 0.5, 0),
            (ST.EV, 0.6, 0),
            (ST.MOTORCYCLE, 5.0, 0),
            (ST.COMPACT, 6.0, 0),
            (ST.REGULAR, 7.0, 0),
            (ST.LARGE, 8.0, 0),
            (ST.HANDICAP, 0.1, 0),
        ],
        strategy,
        ev_open_to_all=True,
    )
    got = fill(lot, Vehicle(1, VC.MOTORCYCLE))
    assert sorted(got[:4]) == sorted(GENERAL)
    assert got[4:] == [ST.EV, ST.EV]
    assert lot.n_available == 1  # the HANDICAP bay


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_ev_open_after_general_for_regular_car(strategy):
    lot = lot_of(
        [(ST.EV, 0.5, 0), (ST.COMPACT, 1.0, 0), (ST.REGULAR, 9.0, 0), (ST.LARGE, 8.0, 0)],
        strategy,
        ev_open_to_all=True,
    )
    # a regular car never gets the compact bay; it takes both general bays it fits, then the EV
    got = fill(lot, Vehicle(1, VC.REGULAR))
    assert sorted(got[:2]) == [ST.REGULAR, ST.LARGE]
    assert got[2:] == [ST.EV]
    assert lot.spots[1].status == AVAILABLE


# --------------------------------------------------------------------- distinct refusals


def test_refusals_are_distinct_exception_types():
    kinds = [LotFull, NoCompatibleSpot, UnknownTicket, DoubleExit, InvalidTransition]
    for a in kinds:
        assert issubclass(a, ParkingError)
        for b in kinds:
            if a is not b:
                assert not issubclass(a, b)


def test_lot_full_when_nothing_available():
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.HANDICAP, 2.0, 0)])
    lot.allocate(Vehicle(1), 0.0)
    lot.allocate(Vehicle(2, handicap=True), 0.0)
    for v in (Vehicle(3), Vehicle(4, handicap=True, ev=True), Vehicle(5, VC.MOTORCYCLE)):
        with pytest.raises(LotFull):
            lot.allocate(v, 1.0)
    assert lot.open_sessions == 2


def test_lot_full_when_free_spots_are_all_out_of_service():
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0), (ST.LARGE, 3.0, 0)])
    lot.allocate(Vehicle(1), 0.0)
    lot.set_status(1, SpotStatus.MAINTENANCE, 0.0)
    lot.set_status(2, SpotStatus.RESERVED, 0.0)
    with pytest.raises(LotFull):
        lot.allocate(Vehicle(2, VC.MOTORCYCLE), 1.0)


def test_no_compatible_spot_is_not_lot_full():
    lot = lot_of([(ST.MOTORCYCLE, 1.0, 0), (ST.COMPACT, 2.0, 0)])
    with pytest.raises(NoCompatibleSpot) as exc:
        lot.allocate(Vehicle(1, VC.REGULAR), 0.0)
    assert not isinstance(exc.value, LotFull)
    assert lot.open_sessions == 0 and lot.n_available == 2
    recount_matches(lot)


@pytest.mark.parametrize("ticket", [999, -1, "abc", 1, None, 0.5])
def test_unknown_ticket(ticket):
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0)])
    s = lot.allocate(Vehicle(1), 0.0)
    assert s.ticket == 0
    with pytest.raises(UnknownTicket):
        lot.release(ticket, 10.0)
    with pytest.raises(UnknownTicket):
        lot.session(ticket)
    assert lot.session(0) is s and s.open  # the real session is untouched


def test_unknown_ticket_on_fresh_lot():
    lot = lot_of([(ST.REGULAR, 1.0, 0)])
    with pytest.raises(UnknownTicket):
        lot.release(0, 0.0)


def test_double_exit():
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0)])
    a = lot.allocate(Vehicle("a"), 0.0)
    b = lot.allocate(Vehicle("b"), 1.0)
    closed = lot.release(a.ticket, 5.0)
    assert closed is a and not a.open and a.exit_t == 5.0
    with pytest.raises(DoubleExit):
        lot.release(a.ticket, 6.0)
    with pytest.raises(UnknownTicket):  # a closed ticket has no open session
        lot.session(a.ticket)
    # the second exit changed nothing: the spot is free once, b is still parked
    assert a.exit_t == 5.0
    assert lot.n_available == 1 and lot.n_occupied == 1 and b.open
    # the freed spot is handed out again, and exactly once
    c = lot.allocate(Vehicle("c"), 7.0)
    assert c.spot is a.spot and c.ticket == 2
    with pytest.raises(LotFull):
        lot.allocate(Vehicle("d"), 7.0)
    recount_matches(lot)


@pytest.mark.parametrize("tariff", [None, Tariff(name="t", default=RateTable(period_cents=100))])
@pytest.mark.parametrize("bad_t", [99.0, -1.0, math.nan])
def test_release_before_entry_is_refused_and_session_stays_open(bad_t, tariff):
    # NaN is not a time after entry either: it must not close the session (with a tariff it
    # used to free the spot and close the ticket, then raise from pricing)
    lot = lot_of([(ST.REGULAR, 1.0, 0)], tariff=tariff)
    s = lot.allocate(Vehicle(1), 100.0)
    with pytest.raises(ValueError):
        lot.release(s.ticket, bad_t)
    assert s.open and s.exit_t is None and s.amount_cents is None
    assert lot.session(s.ticket) is s
    assert s.spot.status == OCCUPIED and lot.n_occupied == 1 and lot.n_available == 0
    recount_matches(lot)
    assert lot.release(s.ticket, 100.0) is s  # zero-length stay is fine
    assert not s.open and s.spot.status == AVAILABLE


# --------------------------------------------------------------------- counters


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_counters_after_a_scripted_sequence(strategy):
    levels = [Level(0, "G"), Level(1, "P1", 20.0)]
    counts = {ST.HANDICAP: 1, ST.EV: 2, ST.MOTORCYCLE: 1, ST.COMPACT: 2, ST.REGULAR: 3}
    spots = build_spots([(levels[0], counts), (levels[1], {**counts, ST.LARGE: 2})])
    lot = Lot(spots, levels, strategy=strategy, ev_open_to_all=True)
    recount_matches(lot)
    assert lot.n_available == 20 and lot.capacity == 20
    t = 0.0
    tickets = []
    for v in [
        Vehicle(1),
        Vehicle(2, VC.LARGE),
        Vehicle(3, VC.MOTORCYCLE),
        Vehicle(4, ev=True),
        Vehicle(5, handicap=True),
        Vehicle(6, VC.COMPACT),
    ]:
        t += 1
        tickets.append(lot.allocate(v, t).ticket)
        recount_matches(lot)
    free = [s.index for s in lot.spots if s.status == AVAILABLE]
    lot.set_status(free[0], SpotStatus.MAINTENANCE, t)
    lot.set_status(free[1], SpotStatus.RESERVED, t)
    recount_matches(lot)
    lot.set_status(free[1], SpotStatus.MAINTENANCE, t)  # RESERVED -> MAINTENANCE
    recount_matches(lot)
    lot.release(tickets[1], t + 1)
    lot.release(tickets[3], t + 2)
    recount_matches(lot)
    lot.set_status(free[0], SpotStatus.AVAILABLE, t + 3)
    recount_matches(lot)
    for k in range(30):
        with contextlib.suppress(ParkingError):
            lot.allocate(Vehicle(100 + k, VC(k % 4)), t + 4)
        recount_matches(lot)
    assert lot.n_occupied == lot.open_sessions
    assert lot.n_occupied + lot.n_available + sum(
        s.status in (SpotStatus.MAINTENANCE, SpotStatus.RESERVED) for s in lot.spots
    ) == len(lot.spots)


# --------------------------------------------------------------------- set_status


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_statuses_given_at_construction_are_honoured(strategy):
    spots, levels = make_spots([(ST.REGULAR, float(i), i % 2) for i in range(6)])
    spots[0].status = SpotStatus.MAINTENANCE
    spots[1].status = SpotStatus.RESERVED
    spots[2].status = OCCUPIED  # e.g. a car already parked when the twin starts
    lot = Lot(spots, levels, strategy=strategy)
    recount_matches(lot)
    assert lot.n_occupied == 1 and lot.n_available == 3
    got = sorted(lot.allocate(Vehicle(k), 0.0).spot.index for k in range(3))
    assert got == [3, 4, 5]
    with pytest.raises(LotFull):
        lot.allocate(Vehicle(9), 0.0)
    lot.set_status(1, AVAILABLE, 1.0)
    assert lot.allocate(Vehicle(10), 1.0).spot.index == 1


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
@pytest.mark.parametrize("status", [SpotStatus.MAINTENANCE, SpotStatus.RESERVED])
def test_out_of_service_spots_are_never_allocated(strategy, status):
    lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(6)], strategy)
    for i in (0, 2, 4):
        lot.set_status(i, status, 0.0)
    got = [lot.allocate(Vehicle(k), 1.0).spot.index for k in range(3)]
    assert sorted(got) == [1, 3, 5]
    with pytest.raises(LotFull):
        lot.allocate(Vehicle(9), 1.0)
    assert all(lot.spots[i].status == status for i in (0, 2, 4))


@pytest.mark.parametrize("strategy", ORDERED)
def test_back_to_available_while_stale_heap_entry_still_there(strategy):
    lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(4)], strategy)
    lot.set_status(0, SpotStatus.MAINTENANCE, 0.0)
    # nothing has been allocated yet, so the heap still holds spot 0's entry
    assert lot.spots[0].indexed
    lot.set_status(0, SpotStatus.AVAILABLE, 1.0)
    # spot 0 is best under every strategy on a one-level lot
    assert lot.allocate(Vehicle(1), 2.0).spot.index == 0
    assert len(fill(lot, Vehicle(2))) == 3
    assert all(s.status == OCCUPIED for s in lot.spots)
    assert lot.n_occupied == 4 and lot.open_sessions == 4
    # no spot ever got two heap entries
    assert lot.strategy.index_entries() <= len(lot.spots)


@pytest.mark.parametrize("strategy", ORDERED)
def test_back_to_available_after_stale_entry_was_discarded(strategy):
    lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(4)], strategy)
    lot.set_status(0, SpotStatus.RESERVED, 0.0)
    lot.allocate(Vehicle(1), 1.0)  # discards spot 0's stale entry on the way to spot 1
    assert not lot.spots[0].indexed
    lot.set_status(0, SpotStatus.AVAILABLE, 2.0)
    assert lot.allocate(Vehicle(2), 3.0).spot.index == 0
    assert lot.allocate(Vehicle(3), 3.0).spot.index in (2, 3)


@pytest.mark.parametrize("strategy", ORDERED)
def test_repeated_toggles_never_duplicate_allocations(strategy):
    lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(5)], strategy)
    for k in range(20):
        for i in range(5):
            lot.set_status(i, SpotStatus.MAINTENANCE, 0.0)
        if k % 2:  # let an allocation attempt discard the stale entries
            with pytest.raises(LotFull):
                lot.allocate(Vehicle("x"), 0.0)
        for i in range(5):
            lot.set_status(i, SpotStatus.AVAILABLE, 0.0)
        s = lot.allocate(Vehicle("x"), 0.0)
        assert s.spot.index == 0
        lot.release(s.ticket, 1.0)
    assert lot.strategy.index_entries() <= len(lot.spots)
    got = [lot.allocate(Vehicle(k), 2.0).spot.index for k in range(5)]
    assert got == [0, 1, 2, 3, 4]
    with pytest.raises(LotFull):
        lot.allocate(Vehicle(9), 2.0)


@pytest.mark.parametrize("status", [SpotStatus.MAINTENANCE, SpotStatus.RESERVED, AVAILABLE])
def test_occupied_spot_cannot_change_status(status):
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0)])
    s = lot.allocate(Vehicle(1), 0.0)
    with pytest.raises(InvalidTransition):
        lot.set_status(s.spot.index, status, 1.0)
    assert s.spot.status == OCCUPIED and s.open
    recount_matches(lot)
    # and the spot is not handed out twice
    other = lot.allocate(Vehicle(2), 1.0)
    assert other.spot is not s.spot
    with pytest.raises(LotFull):
        lot.allocate(Vehicle(3), 1.0)


def test_free_spot_cannot_be_set_occupied_directly():
    lot = lot_of([(ST.REGULAR, 1.0, 0)])
    with pytest.raises(InvalidTransition):
        lot.set_status(0, OCCUPIED, 0.0)
    assert lot.spots[0].status == AVAILABLE
    recount_matches(lot)


# --------------------------------------------------------------------- pricing hook


def test_release_prices_the_stay_with_the_tariff():
    tariff = Tariff(name="t", default=RateTable(period_minutes=60, period_cents=200))
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0)], tariff=tariff)
    a = lot.allocate(Vehicle("a"), 1000.0)
    b = lot.allocate(Vehicle("b"), 1000.0)
    assert a.amount_cents is None
    lot.release(a.ticket, 1000.0 + 2.5 * 3600)  # 3 started hours
    assert a.amount_cents == 600 == tariff.price(a.entry_t, a.exit_t)
    lot.release(b.ticket, 1000.0 + 3600)  # exactly one hour
    assert b.amount_cents == 200
    assert lot.price(b, 1000.0 + 3601) == 400  # a quote does not change the session
    assert b.amount_cents == 200


def test_no_tariff_leaves_amount_unset():
    lot = lot_of([(ST.REGULAR, 1.0, 0)])
    s = lot.allocate(Vehicle(1), 0.0)
    lot.release(s.ticket, 7200.0)
    assert s.amount_cents is None
    assert lot.price(s, 7200.0) == 0


def test_session_remembers_occupancy_just_before_entry():
    lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(4)])
    lot.set_status(3, SpotStatus.MAINTENANCE, 0.0)  # out of service is not occupied
    s0 = lot.allocate(Vehicle(0), 0.0)
    s1 = lot.allocate(Vehicle(1), 1.0)
    s2 = lot.allocate(Vehicle(2), 2.0)
    assert [s.occupancy_at_entry for s in (s0, s1, s2)] == [0.0, 0.25, 0.5]
    lot.release(s0.ticket, 3.0)
    s3 = lot.allocate(Vehicle(3), 4.0)
    assert s3.occupancy_at_entry == 0.5
    assert s1.occupancy_at_entry == 0.25  # unchanged by later traffic


def test_dynamic_price_uses_occupancy_at_entry_not_at_exit():
    tariff = Tariff(
        name="dyn",
        default=RateTable(period_minutes=60, period_cents=100),
        dynamic=DynamicPricing(occupancy_bands=((0.5, 2.0),)),
    )
    lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(4)], tariff=tariff)
    early = lot.allocate(Vehicle("early"), 0.0)  # entered at 0 % occupancy
    lot.allocate(Vehicle("x"), 0.0)
    late = lot.allocate(Vehicle("late"), 0.0)  # entered at 50 %
    lot.allocate(Vehicle("y"), 0.0)
    # early leaves while the lot is full, late leaves when it is nearly empty
    lot.release(early.ticket, 3600.0)
    lot.release(1, 3600.0)
    lot.release(3, 3600.0)
    lot.release(late.ticket, 3600.0)
    high = tariff.price(0.0, 3600.0, PriceContext(occupancy=0.5))
    low = tariff.price(0.0, 3600.0, PriceContext(occupancy=0.0))
    assert high != low
    assert early.amount_cents == low
    assert late.amount_cents == high
    # a quote prices the same way as the final charge
    assert lot.price(late, 3600.0) == high
    assert lot.price(early, 3600.0) == low


# --------------------------------------------------------------------- stateful


def test_recycled_session_is_indistinguishable_from_a_new_one() -> None:
    """Every field of a reused session is set afresh (a field added to Session and not reset
    on reuse fails this), and its ticket is the next one."""
    spec = [(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0), (ST.LARGE, 3.0, 0)]
    tariff = Tariff("hourly", RateTable(period_minutes=60, period_cents=200))
    fresh, reuse = lot_of(spec, tariff=tariff), lot_of(spec, tariff=tariff)
    for lot in (fresh, reuse):
        first = lot.allocate(Vehicle("a", VC.LARGE), 0.0)
        lot.allocate(Vehicle("b"), 10.0)
        closed = lot.release(first.ticket, 4000.0)
        assert closed.amount_cents == 400 and closed.exit_t == 4000.0
    old = closed
    reuse.recycle(old)
    new = reuse.allocate(Vehicle("c", VC.COMPACT, ev=True), 5000.0)
    assert new is old
    expected = fresh.allocate(Vehicle("c", VC.COMPACT, ev=True), 5000.0)
    assert new is not expected
    for f in dataclasses.fields(Session):
        mine, theirs = getattr(new, f.name), getattr(expected, f.name)
        if f.name == "spot":  # a spot of the other lot: the same bay
            mine, theirs = mine.index, theirs.index
        assert mine == theirs, f.name
    assert new.open and new.ticket == 2 and new.amount_cents is None
    assert reuse.release(new.ticket, 5000.0 + 60).amount_cents == 200


def test_recycle_refuses_open_and_twice_recycled_sessions() -> None:
    lot = lot_of([(ST.REGULAR, 1.0, 0), (ST.REGULAR, 2.0, 0)])
    s = lot.allocate(Vehicle("a"), 0.0)
    with pytest.raises(InvalidTransition, match="still open"):
        lot.recycle(s)
    lot.release(s.ticket, 1.0)
    lot.recycle(s)
    with pytest.raises(InvalidTransition, match="recycled already"):
        lot.recycle(s)
    # handed out once only: the next two cars get two different sessions
    a, b = lot.allocate(Vehicle("b"), 2.0), lot.allocate(Vehicle("c"), 2.0)
    assert a is s and b is not s and a.spot is not b.spot


class LotMachine(RuleBasedStateMachine):
    """Random traffic against a randomly shaped lot, checked against a model kept here."""

    @initialize(
        shape=st.lists(
            st.tuples(
                st.sampled_from([0.0, 5.0, 10.0]),
                st.lists(st.integers(0, 3), min_size=6, max_size=6),
            ),
            min_size=1,
            max_size=3,
        ).filter(lambda lv: any(sum(c) for _, c in lv)),
        strategy=st.sampled_from(sorted(STRATEGIES)),
        ev_open=st.booleans(),
    )
    def build(self, shape, strategy, ev_open):
        levels = [Level(i, f"L{i}", d) for i, (d, _) in enumerate(shape)]
        per_level = [dict(zip(ST, counts, strict=True)) for _, counts in shape]
        spots = build_spots(list(zip(levels, per_level, strict=True)))
        self.lot = Lot(spots, levels, strategy=strategy, ev_open_to_all=ev_open)
        self.ev_open = ev_open
        self.open: dict[int, int] = {}  # ticket -> spot index
        self.closed: list[int] = []
        self.t = 0.0

    def _tick(self) -> float:
        self.t += 1.0
        return self.t

    def _try_allocate(self, v: Vehicle) -> bool:
        """Allocate ``v``; it must succeed iff a brute-force scan finds a compatible free spot."""
        lot = self.lot
        free = [s for s in lot.spots if s.status == AVAILABLE]
        fits = [s for s in free if may_use(s.type, v, self.ev_open)]
        assert lot.has_space_for(v) == bool(fits)
        before = lot.n_occupied
        if not fits:
            with pytest.raises(NoCompatibleSpot if free else LotFull):
                lot.allocate(v, self._tick())
            assert lot.n_occupied == before
            return False
        s = lot.allocate(v, self._tick())
        assert s.spot in fits, "allocated spot was not free and compatible"
        assert s.spot.status == OCCUPIED
        assert s.ticket not in self.open and s.ticket not in self.closed
        assert s.occupancy_at_entry == before / len(lot.spots)
        self.open[s.ticket] = s.spot.index
        return True

    @rule(vclass=st.sampled_from(list(VC)), handicap=st.booleans(), ev=st.booleans())
    def allocate(self, vclass, handicap, ev):
        self._try_allocate(Vehicle("v", vclass, handicap, ev))

    @rule(vclass=st.sampled_from(list(VC)), handicap=st.booleans(), ev=st.booleans())
    def fill_up(self, vclass, handicap, ev):
        # the same kind of vehicle until refused: drives the lot to the edge where the only
        # compatible free spots are last-resort ones, and exposes spots lost from the index
        v = Vehicle("fill", vclass, handicap, ev)
        for _ in range(len(self.lot.spots) + 1):
            if not self._try_allocate(v):
                break
        assert not any(
            s.status == AVAILABLE and may_use(s.type, v, self.ev_open) for s in self.lot.spots
        )

    @precondition(lambda self: self.open)
    @rule(data=st.data())
    def release_open(self, data):
        ticket = data.draw(st.sampled_from(sorted(self.open)))
        s = self.lot.release(ticket, self._tick())
        assert s.ticket == ticket and not s.open and s.exit_t == self.t
        assert s.spot.index == self.open.pop(ticket)
        assert s.spot.status == AVAILABLE
        self.closed.append(ticket)
        if data.draw(st.booleans(), label="recycle"):
            self.lot.recycle(s)  # as the simulator does: the object comes back as a new car's

    @precondition(lambda self: self.closed)
    @rule(data=st.data())
    def release_closed(self, data):
        ticket = data.draw(st.sampled_from(self.closed))
        with pytest.raises(DoubleExit):
            self.lot.release(ticket, self._tick())

    @rule(ticket=st.one_of(st.integers(-5, -1), st.integers(10_000, 10_010), st.just("abc")))
    def release_unknown(self, ticket):
        with pytest.raises(UnknownTicket):
            self.lot.release(ticket, self._tick())

    @rule(data=st.data(), status=st.sampled_from([SpotStatus.MAINTENANCE, SpotStatus.RESERVED]))
    def toggle(self, data, status):
        lot = self.lot
        i = data.draw(st.integers(0, len(lot.spots) - 1))
        spot = lot.spots[i]
        if spot.status == OCCUPIED:
            with pytest.raises(InvalidTransition):
                lot.set_status(i, status, self.t)
            assert spot.status == OCCUPIED
        elif spot.status == AVAILABLE:
            lot.set_status(i, status, self.t)
            assert spot.status == status
        else:
            lot.set_status(i, AVAILABLE, self.t)
            assert spot.status == AVAILABLE

    @invariant()
    def one_session_per_spot(self):
        if not hasattr(self, "lot"):
            return
        held = list(self.open.values())
        assert len(held) == len(set(held))
        assert self.lot.open_sessions == len(self.open)
        for ticket, index in self.open.items():
            s = self.lot.session(ticket)
            assert s.open and s.spot.index == index
            assert s.spot.status == OCCUPIED

    @invariant()
    def occupied_spots_are_open_sessions(self):
        if not hasattr(self, "lot"):
            return
        occupied = {s.index for s in self.lot.spots if s.status == OCCUPIED}
        assert occupied == set(self.open.values())

    @invariant()
    def counters_match_recount(self):
        if hasattr(self, "lot"):
            recount_matches(self.lot)


LotMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
)
test_lot_state_machine = LotMachine.TestCase
