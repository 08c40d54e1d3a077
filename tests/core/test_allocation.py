"""Allocation strategies against brute-force references written here.

The references scan every spot (tests may; the core must not): they restate each strategy's rule
from its description, so any disagreement with the heap-based core is a failure.
"""

from __future__ import annotations

import contextlib
import random
from fractions import Fraction

import pytest
from test_core_lot import FITS  # the hand-written table of which bay takes which vehicle

from twin.core.allocation import STRATEGIES, make_strategy
from twin.core.errors import LotFull, NoCompatibleSpot, ParkingError
from twin.core.facility import Level, Spot, build_spots
from twin.core.lot import Lot
from twin.core.types import SpotStatus, SpotType, Vehicle, VehicleClass

ST = SpotType
VC = VehicleClass
AVAILABLE, OCCUPIED = SpotStatus.AVAILABLE, SpotStatus.OCCUPIED
GENERAL = (ST.MOTORCYCLE, ST.COMPACT, ST.REGULAR, ST.LARGE)  # smallest first

#: Strategies whose choice is a fixed order (random_free draws; it has tests of its own).
ORDERED = sorted(name for name, cls in STRATEGIES.items() if not cls.random)


# --------------------------------------------------------------------- references


def ref_tiers(v: Vehicle, ev_open: bool, by_size: bool) -> list[set[SpotType]]:
    """Preference tiers from the rules: chargers first for EVs, accessible bays first for
    permit holders, then general bays (one tier, or one per size smallest first for best-fit),
    chargers last for non-EVs when the lot opens them to all."""
    tiers: list[set[SpotType]] = []
    ev_fits = v.vclass in FITS[ST.EV]
    if v.ev and ev_fits:
        tiers.append({ST.EV})
    if v.handicap:
        tiers.append({ST.HANDICAP})
    general = [t for t in GENERAL if v.vclass in FITS[t]]
    if by_size:
        tiers.extend({t} for t in general)
    elif general:
        tiers.append(set(general))
    if not v.ev and ev_open and ev_fits:
        tiers.append({ST.EV})
    return tiers


def nearest(spots):
    return min(spots, key=lambda s: (s.distance, s.index))


def ref_choice(lot: Lot, v: Vehicle, strategy: str) -> Spot | None:
    """The spot ``strategy`` must give ``v`` now, by scanning the whole lot."""
    free = [s for s in lot.spots if s.status == AVAILABLE]
    for tier in ref_tiers(v, lot.ev_open_to_all, by_size=strategy == "best_fit"):
        cands = [s for s in free if s.type in tier]
        if not cands:
            continue
        if strategy in ("nearest", "best_fit"):
            return nearest(cands)
        if strategy == "first_fit":
            return min(cands, key=lambda s: s.index)
        if strategy == "spread":
            cap = [0] * len(lot.levels)
            occ = [0] * len(lot.levels)
            for s in lot.spots:
                cap[s.level] += 1
                occ[s.level] += s.status == OCCUPIED
            level = min({s.level for s in cands}, key=lambda lv: (Fraction(occ[lv], cap[lv]), lv))
            return nearest(s for s in cands if s.level == level)
        raise AssertionError(f"no reference for {strategy}")
    return None


def lot_of(spec, strategy, **kw) -> Lot:
    """Lot from ``(type, distance, level)`` triples, indexed in list order."""
    n_levels = max(level for _, _, level in spec) + 1
    spots = [
        Spot(index=i, id=f"S{i}", level=level, type=stype, distance=dist)
        for i, (stype, dist, level) in enumerate(spec)
    ]
    return Lot(spots, [Level(i, f"L{i}") for i in range(n_levels)], strategy=strategy, **kw)


def take(lot: Lot, v: Vehicle, n: int | None = None) -> list[int]:
    """Spot indexes handed to ``n`` copies of ``v`` (until refused if ``n`` is None)."""
    got = []
    while n is None or len(got) < n:
        try:
            got.append(lot.allocate(v, 0.0).spot.index)
        except ParkingError:
            if n is not None:
                raise
            break
    return got


def test_strategies_registry_and_unknown_name():
    assert set(STRATEGIES) == {"nearest", "first_fit", "best_fit", "spread", "random_free"}
    for name in STRATEGIES:
        assert make_strategy(name).name == name
    with pytest.raises(ValueError, match="unknown allocation strategy"):
        make_strategy("random")


# --------------------------------------------------------------------- nearest / first fit

MIXED = [
    (ST.REGULAR, 5.0, 0),  # 0
    (ST.REGULAR, 3.0, 0),  # 1
    (ST.LARGE, 9.0, 0),  # 2
    (ST.REGULAR, 3.0, 0),  # 3  ties with 1 on distance
    (ST.LARGE, 2.0, 0),  # 4
    (ST.COMPACT, 0.5, 0),  # 5  never for a regular car
]


def test_nearest_takes_minimum_distance_ties_by_index():
    lot = lot_of(MIXED, "nearest")
    assert take(lot, Vehicle(1, VC.REGULAR)) == [4, 1, 3, 0, 2]
    with pytest.raises(NoCompatibleSpot):
        lot.allocate(Vehicle(2), 0.0)


def test_nearest_refills_the_freed_nearest_spot():
    lot = lot_of(MIXED, "nearest")
    sessions = [lot.allocate(Vehicle(k), 0.0) for k in range(3)]  # spots 4, 1, 3
    lot.release(sessions[1].ticket, 1.0)  # spot 1 free again
    assert lot.allocate(Vehicle(9), 2.0).spot.index == 1
    lot.release(sessions[0].ticket, 3.0)
    assert lot.allocate(Vehicle(10), 4.0).spot.index == 4


def test_first_fit_takes_minimum_index():
    lot = lot_of(MIXED, "first_fit")
    assert take(lot, Vehicle(1, VC.REGULAR)) == [0, 1, 2, 3, 4]
    lot.release(2, 1.0)  # ticket 2 holds spot 2
    lot.release(0, 1.0)  # ticket 0 holds spot 0
    assert take(lot, Vehicle(2, VC.MOTORCYCLE)) == [0, 2, 5]


# --------------------------------------------------------------------- best fit

BY_SIZE = [
    (ST.LARGE, 0.5, 0),  # 0
    (ST.LARGE, 0.6, 0),  # 1
    (ST.REGULAR, 1.0, 0),  # 2
    (ST.REGULAR, 2.0, 0),  # 3
    (ST.COMPACT, 4.0, 0),  # 4
    (ST.COMPACT, 3.0, 0),  # 5
    (ST.MOTORCYCLE, 6.0, 0),  # 6
    (ST.MOTORCYCLE, 5.0, 0),  # 7
]


def test_best_fit_compact_car_smallest_type_first():
    lot = lot_of(BY_SIZE, "best_fit")
    assert take(lot, Vehicle(1, VC.COMPACT)) == [5, 4, 2, 3, 0, 1]
    with pytest.raises(NoCompatibleSpot):  # only motorcycle bays left
        lot.allocate(Vehicle(2, VC.COMPACT), 0.0)


def test_best_fit_motorcycle_gets_motorcycle_bays_first():
    lot = lot_of(BY_SIZE, "best_fit")
    assert take(lot, Vehicle(1, VC.MOTORCYCLE)) == [7, 6, 5, 4, 2, 3, 0, 1]


def test_best_fit_returns_to_smaller_type_when_one_frees_up():
    lot = lot_of(BY_SIZE, "best_fit")
    first = [lot.allocate(Vehicle(k, VC.COMPACT), 0.0) for k in range(3)]
    assert [s.spot.type for s in first] == [ST.COMPACT, ST.COMPACT, ST.REGULAR]
    lot.release(first[1].ticket, 1.0)
    assert lot.allocate(Vehicle(9, VC.COMPACT), 2.0).spot.index == 4
    # contrast: nearest would have put the first compact car in the nearest LARGE bay
    assert lot_of(BY_SIZE, "nearest").allocate(Vehicle(1, VC.COMPACT), 0.0).spot.index == 0


def test_best_fit_large_vehicle_only_large():
    lot = lot_of(BY_SIZE, "best_fit")
    assert take(lot, Vehicle(1, VC.LARGE)) == [0, 1]


# --------------------------------------------------------------------- spread


def three_levels(per_level: int = 10, strategy: str = "spread") -> Lot:
    # the top level is nearest to the gate, so level order is not distance order
    levels = [Level(i, f"L{i}", entrance_distance=100.0 - 40.0 * i) for i in range(3)]
    spots = build_spots([(lv, {ST.REGULAR: per_level}) for lv in levels])
    return Lot(spots, levels, strategy=strategy)


def level_counts(lot: Lot) -> list[int]:
    return [sum(s.level == lv and s.status == OCCUPIED for s in lot.spots) for lv in range(3)]


def test_spread_keeps_equal_levels_within_one():
    lot = three_levels()
    for k in range(30):
        s = lot.allocate(Vehicle(k), float(k))
        counts = level_counts(lot)
        assert max(counts) - min(counts) <= 1, counts
        if k < 3:
            assert s.spot.level == k  # ties go to the lower level index, not the nearer one
    assert level_counts(lot) == [10, 10, 10]


def test_spread_is_nearest_within_the_level():
    lot = three_levels()
    s = lot.allocate(Vehicle(0), 0.0)
    assert s.spot is nearest(x for x in lot.spots if x.level == 0)
    assert s.spot.distance == 100.0


def test_spread_after_releases_goes_back_to_emptied_level():
    lot = three_levels()
    sessions = [lot.allocate(Vehicle(k), 0.0) for k in range(9)]
    for s in sessions:
        if s.spot.level == 2:
            lot.release(s.ticket, 1.0)
    assert level_counts(lot) == [3, 3, 0]
    got = [lot.allocate(Vehicle(100 + k), 2.0).spot.level for k in range(4)]
    assert got == [2, 2, 2, 0]


def test_spread_uses_fraction_occupied_not_count():
    levels = [Level(0, "big"), Level(1, "small")]
    spots = build_spots([(levels[0], {ST.REGULAR: 10}), (levels[1], {ST.REGULAR: 5})])
    lot = Lot(spots, levels, strategy="spread")
    got = [lot.allocate(Vehicle(k), 0.0).spot.level for k in range(15)]
    # reference: least occupied fraction first, ties to level 0
    occ, cap, want = [0, 0], [10, 5], []
    for _ in range(15):
        lv = min((lv for lv in (0, 1) if occ[lv] < cap[lv]), key=lambda lv: (occ[lv] / cap[lv], lv))
        occ[lv] += 1
        want.append(lv)
    assert got == want
    assert got[:3] == [0, 1, 0]


def test_spread_skips_levels_without_a_compatible_free_spot():
    spec = [(ST.COMPACT, 1.0, 0)] * 4 + [(ST.LARGE, 1.0, 1)] * 4 + [(ST.LARGE, 1.0, 2)] * 4
    lot = lot_of(spec, "spread")
    lot.allocate(Vehicle("a", VC.LARGE), 0.0)  # level 1 (level 0 has no LARGE bay)
    assert level_counts(lot) == [0, 1, 0]
    assert lot.allocate(Vehicle("b", VC.LARGE), 0.0).spot.level == 2
    assert lot.allocate(Vehicle("c", VC.LARGE), 0.0).spot.level == 1
    assert lot.allocate(Vehicle("d", VC.COMPACT), 0.0).spot.level == 0


def test_spread_counts_only_occupied_not_maintenance():
    lot = three_levels(per_level=4)
    for s in lot.spots:
        if s.level == 0 and s.index % 4 != 3:
            lot.set_status(s.index, SpotStatus.MAINTENANCE, 0.0)
    # level 0 is 0 % occupied (3 bays in maintenance, one free), so it still wins the tie
    assert lot.allocate(Vehicle(1), 0.0).spot.index == 3
    assert lot.allocate(Vehicle(2), 0.0).spot.level == 1


# --------------------------------------------------------------------- randomised


def random_lot(rng: random.Random, strategy: str, ev_open: bool) -> Lot:
    n_levels = rng.randint(1, 3)
    n = rng.randint(8, 40)
    types = list(ST)
    weights = [1, 2, 4, 2, 1, 1]
    spec = [
        (rng.choices(types, weights)[0], float(rng.randint(0, 8)), rng.randrange(n_levels))
        for _ in range(n)
    ]
    spec.append((ST.REGULAR, 0.0, n_levels - 1))  # every level index is used
    return lot_of(spec, strategy, ev_open_to_all=ev_open)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("strategy", ORDERED)
def test_random_traffic_matches_reference(strategy, seed):
    rng = random.Random(f"{strategy}-{seed}")
    lot = random_lot(rng, strategy, ev_open=seed % 2 == 1)
    open_tickets: list[int] = []
    compared = 0
    t = 0.0
    for _ in range(400):
        t += 1.0
        op = rng.random()
        if op < 0.5:
            v = Vehicle("v", rng.choice(list(VC)), rng.random() < 0.25, rng.random() < 0.3)
            want = ref_choice(lot, v, strategy)
            if want is None:
                free = any(s.status == AVAILABLE for s in lot.spots)
                with pytest.raises(NoCompatibleSpot if free else LotFull):
                    lot.allocate(v, t)
            else:
                session = lot.allocate(v, t)
                assert session.spot is want, (v, session.spot, want)
                open_tickets.append(session.ticket)
                compared += 1
        elif op < 0.8:
            if open_tickets:
                ticket = open_tickets.pop(rng.randrange(len(open_tickets)))
                lot.release(ticket, t)
        else:
            spot = rng.choice(lot.spots)
            if spot.status != OCCUPIED:
                new = rng.choice([AVAILABLE, SpotStatus.MAINTENANCE, SpotStatus.RESERVED])
                lot.set_status(spot.index, new, t)
    assert compared >= 30, "too few allocations compared to mean anything"


# --------------------------------------------------------------------- O(log n) evidence


class CountingList(list):
    """A spot list that counts how many spots are read, by index or by iteration."""

    reads = 0

    def __getitem__(self, i):
        item = super().__getitem__(i)
        self.reads += len(item) if isinstance(i, slice) else 1
        return item

    def __iter__(self):
        self.reads += len(self)
        return super().__iter__()


@pytest.mark.parametrize("strategy", ORDERED)
def test_allocation_reads_few_spots_on_a_big_lot(strategy):
    rng = random.Random(strategy)
    levels = [Level(i, f"L{i}", 50.0 * i) for i in range(4)]
    counts = {
        ST.HANDICAP: 50,
        ST.EV: 100,
        ST.MOTORCYCLE: 100,
        ST.COMPACT: 500,
        ST.REGULAR: 1500,
        ST.LARGE: 250,
    }
    spots = build_spots([(lv, counts) for lv in levels])
    assert len(spots) == 10_000
    lot = Lot(spots, levels, strategy=strategy, ev_open_to_all=True)

    def vehicle():
        return Vehicle("v", rng.choice(list(VC)), rng.random() < 0.05, rng.random() < 0.1)

    open_tickets: list[int] = []
    for _ in range(9_000):  # random traffic: more arrivals than departures, some maintenance
        r = rng.random()
        if r < 0.6 or not open_tickets:
            with contextlib.suppress(ParkingError):
                open_tickets.append(lot.allocate(vehicle(), 0.0).ticket)
        elif r < 0.97:
            lot.release(open_tickets.pop(rng.randrange(len(open_tickets))), 1.0)
        else:
            spot = rng.choice(lot.spots)
            if spot.status != OCCUPIED:
                lot.set_status(
                    spot.index,
                    rng.choice([AVAILABLE, SpotStatus.MAINTENANCE, SpotStatus.RESERVED]),
                    1.0,
                )
    assert 1_000 < lot.n_available < 9_000

    counting = CountingList(lot.strategy._by_rank)
    # the index reads spots through this sequence (by rank); the lot pops one-heap plans itself.
    # The one deliberate reach into private state in the tests: what is measured is how many
    # spots the hot path touches, which no public view can count without slowing that path.
    lot.strategy._by_rank = lot._by_rank = counting
    per_allocation = []
    for _ in range(1_000):
        before = counting.reads
        with contextlib.suppress(ParkingError):
            lot.allocate(vehicle(), 2.0)
        per_allocation.append(counting.reads - before)
    total = sum(per_allocation)
    assert total > 0, "the counting list was not used: the test no longer measures anything"
    assert max(per_allocation) < len(spots) // 100, max(per_allocation)
    assert total < 20 * len(per_allocation), total


# --------------------------------------------------------------------- random_free (contract)


class _Seed:
    """Stands in for the numpy Generator the simulator passes to ``seed``."""

    def __init__(self, value: int) -> None:
        self.value = value

    def integers(self, high: int) -> int:
        return self.value % high


@pytest.mark.parametrize("seed", range(6))
def test_random_free_takes_a_free_spot_of_the_best_tier_under_random_traffic(seed):
    """Under the same mixed traffic as the ordered strategies (holds, closures, releases),
    random_free always gives a free spot of the first tier that has one, and refuses exactly
    when the reference finds none."""
    rng = random.Random(f"random_free-{seed}")
    lot = random_lot(rng, "random_free", ev_open=seed % 2 == 1)
    lot.strategy.seed(_Seed(seed))
    open_tickets: list[int] = []
    chosen = 0
    t = 0.0
    for _ in range(400):
        t += 1.0
        op = rng.random()
        if op < 0.5:
            v = Vehicle("v", rng.choice(list(VC)), rng.random() < 0.25, rng.random() < 0.3)
            free = [s for s in lot.spots if s.status == AVAILABLE]
            tier = next(
                (c for tr in ref_tiers(v, lot.ev_open_to_all, False)
                 if (c := [s for s in free if s.type in tr])),
                None,
            )  # fmt: skip
            if tier is None:
                with pytest.raises(NoCompatibleSpot if free else LotFull):
                    lot.allocate(v, t)
            else:
                session = lot.allocate(v, t)
                assert session.spot in tier
                open_tickets.append(session.ticket)
                chosen += 1
        elif op < 0.8:
            if open_tickets:
                lot.release(open_tickets.pop(rng.randrange(len(open_tickets))), t)
        else:
            spot = rng.choice(lot.spots)
            if spot.status != OCCUPIED:
                new = rng.choice([AVAILABLE, SpotStatus.MAINTENANCE, SpotStatus.RESERVED])
                lot.set_status(spot.index, new, t)
        assert lot.strategy.index_entries() <= len(lot.spots)
    assert chosen >= 30


def test_random_free_is_seeded_reproducible_and_spreads_over_the_lot():
    def picks(seed: int) -> list[int]:
        lot = lot_of([(ST.REGULAR, float(i), 0) for i in range(20)], "random_free")
        lot.strategy.seed(_Seed(seed))
        return [lot.allocate(Vehicle(k), 0.0).spot.index for k in range(10)]

    assert picks(1) == picks(1)
    assert picks(1) != picks(2)
    assert picks(1) != list(range(10))  # not the nearest-first order
    # every spot is taken first by some seed: the choice is not tied to an order
    assert {picks(s)[0] for s in range(200)} == set(range(20))
