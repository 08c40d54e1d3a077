"""Allocation strategies over indexes of free spots.

Every strategy keeps binary heaps of *available* spots and deletes lazily: a heap entry whose
spot is no longer AVAILABLE is discarded when it reaches the top. Allocation therefore costs
O(log n) amortised in the number of spots, never a scan of the lot. Spread-across-levels also
reads each level's occupancy counter, O(levels), which does not grow with the number of spots.

A strategy answers one question: given preference *tiers* (tuples of spot types the vehicle may
use, most preferred first), which available spot should it get? Compatibility rules live in
:mod:`twin.core.lot`, which computes the tiers. Tiers are turned once into a *plan* (the heaps
to look at, in order), so the per-car work is only heap peeks and one pop.

The strategy contract (what :class:`twin.core.lot.Lot` relies on, and all it knows)
----------------------------------------------------------------------------------
A strategy is one subclass of :class:`AllocationStrategy` plus one entry in ``STRATEGIES``:

* **Bound to a lot**: ``bind(lot)`` once, when the lot is built. It builds the free-spot index
  from ``lot.spots`` (every spot whose status is AVAILABLE) and may keep references to the
  lot's live counters (``lot.occupied_by_level``, ``lot.capacity_by_level``); it must not
  change any spot's status, which only the lot changes.
* **Told about freed spots**: ``freed(spot)`` whenever a spot becomes AVAILABLE again (a car
  left, a hold ended, a closure was lifted). Spots that stop being AVAILABLE are *not*
  reported: an index deletes lazily, checking ``spot.status is AVAILABLE`` when it looks.
  ``spot.indexed`` says whether an entry for the spot may still be in the index (so
  ``freed`` never adds a second one).
* **Choosing**: ``plan(tiers)`` once per vehicle profile, then ``choose_plan(plan)`` per car:
  remove and return the chosen AVAILABLE spot (the lot marks it OCCUPIED) or None.
* **Seeded from the replication**: a strategy that draws random numbers sets
  ``random = True``; the simulator then calls ``seed(rng)`` with the replication's own
  numpy Generator (stream ``allocation[<lot>]``) before the run, so runs are reproducible
  and other streams are untouched. Without ``seed`` it uses a fixed default seed.
* **The index the lot writes to**: every spot has a ``rank`` (its entry; ``by_rank[rank]``
  is the spot) and a ``home`` list. When a car leaves, the lot appends the freed spot itself
  (``heappush(spot.home, spot.rank)``, the base class's ``freed`` written out: a call less
  per car), so a strategy keeps this shape; the base class keeps heaps, ``random_free``
  keeps the same lists as bags.
* **Fast path**: with ``fast_path = True`` the lot pops a plan that is a single heap itself
  (its smallest entry is the strategy's choice). A strategy whose choice is anything else
  sets ``fast_path = False``; its ``single_heap`` then answers None and every car goes
  through ``choose_plan``.
"""

from __future__ import annotations

import random as _random
from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any, ClassVar, Protocol

from twin.core.facility import Spot
from twin.core.types import SpotStatus, SpotType

_AVAILABLE = SpotStatus.AVAILABLE
Tiers = tuple[tuple[SpotType, ...], ...]
Heap = list[int]


def _best_of(heaps: Sequence[Heap], by_rank: Sequence[Spot]) -> Heap | None:
    """The heap whose top is the best available spot, discarding stale tops on the way."""
    best = None
    best_heap = None
    for heap in heaps:
        while heap:
            entry = heap[0]
            spot = by_rank[entry]
            if spot.status is _AVAILABLE:
                if best is None or entry < best:
                    best, best_heap = entry, heap
                break
            heappop(heap)
            spot.indexed = False
    return best_heap


class LotView(Protocol):
    """What a strategy may read of the lot it is bound to (see the module's contract)."""

    spots: list[Spot]
    occupied_by_level: list[int]
    capacity_by_level: list[int]


class RandomSource(Protocol):
    """A numpy Generator, as the simulator passes it (the core does not import numpy)."""

    def integers(self, high: int) -> Any: ...


class AllocationStrategy:
    """Base: one heap per group of spots, ordered by a strategy-specific key.

    Subclasses set ``by_size`` (whether general spot types form one tier or one tier per size,
    smallest first) and may override ``key``/``group``/``plan``/``choose_plan``; one that
    overrides ``choose_plan`` sets ``fast_path = False`` unless a single-heap plan still
    means "pop that heap's best spot". See the module docstring for the whole contract.
    """

    name: ClassVar[str] = ""
    by_size: ClassVar[bool] = False
    #: The lot may pop single-heap plans and push freed spots onto ``spot.home`` itself.
    fast_path: ClassVar[bool] = True
    #: The strategy draws random numbers: the simulator calls ``seed`` before each run.
    random: ClassVar[bool] = False

    def __init__(self) -> None:
        self._by_rank: Sequence[Spot] = ()
        self._heaps: dict[object, Heap] = {}
        self._plans: dict[Tiers, Any] = {}

    def seed(self, rng: RandomSource) -> None:
        """Take the replication's random stream (only strategies with ``random = True``)."""
        return None

    def key(self, spot: Spot) -> tuple:
        """Heap order inside a group: nearest first, ties by spot index (deterministic)."""
        return (spot.distance, spot.index)

    def group(self, spot: Spot) -> object:
        return spot.type

    def bind(self, lot: LotView | Sequence[Spot]) -> None:
        """Build the index from scratch (O(n log n)); called once when the lot is created.

        Takes the lot (or, for a strategy used on its own, just its spots)."""
        spots: Sequence[Spot] = getattr(lot, "spots", lot)  # type: ignore[arg-type]
        self._heaps = {}
        self._plans = {}
        # A spot's heap entry (``spot.rank``) is its rank in ``key`` order over the whole lot:
        # heaps of small ints compare several times faster than heaps of key tuples, and a rank
        # orders spots across heaps as the keys would. ``spot.home`` is the heap it belongs to;
        # both live on the spot so the lot can inline ``push`` on its hot path.
        keys = [self.key(spot) for spot in spots]
        order = sorted(range(len(spots)), key=keys.__getitem__)
        self._by_rank = [spots[i] for i in order]
        for rank, spot in enumerate(self._by_rank):
            spot.rank = rank
            spot.home = self._heap(self.group(spot))
            spot.indexed = spot.status == _AVAILABLE
            if spot.indexed:
                spot.home.append(rank)
        for heap in self._heaps.values():
            heap.sort()

    def freed(self, spot: Spot) -> None:
        """A spot became AVAILABLE. Pushed only if no entry for it is still in a heap."""
        if not spot.indexed:
            heappush(spot.home, spot.rank)  # type: ignore[arg-type]
            spot.indexed = True

    push = freed  # the older name

    def index_entries(self) -> int:
        """Entries in the free-spot index, stale ones included (never more than the spots:
        the ``indexed`` flag keeps a spot from having two)."""
        return sum(len(heap) for heap in self._heaps.values())

    def free_spots(self) -> list[Spot]:
        """The AVAILABLE spots the index holds, in heap-entry order (a public view for tests
        and displays; O(n))."""
        seen = {r for heap in self._heaps.values() for r in heap}
        return [s for s in self._by_rank if s.rank in seen and s.status is _AVAILABLE]

    def _heap(self, group: object) -> Heap:
        return self._heaps.setdefault(group, [])

    def plan(self, tiers: Tiers) -> Any:
        """Precompute what ``choose_plan`` looks at for these tiers (heaps per tier).

        Groups the lot has no spot of are left out: their heaps stay empty forever, and a
        tier of one heap takes the fast path.
        """
        heaps = self._heaps
        plan = (tuple(heaps[t] for t in tier if t in heaps) for tier in tiers)
        return tuple(tier for tier in plan if tier)

    @property
    def by_rank(self) -> Sequence[Spot]:
        """Spots in heap-entry order: a heap entry (a rank) is an index into this."""
        return self._by_rank

    def single_heap(self, plan: Any) -> Heap | None:
        """The heap a plan reduces to when choosing from it is just popping that heap's best
        available spot (one tier, one heap), else None. The lot then pops it itself, saving
        a call per car; strategies whose choice is anything else return None."""
        if self.fast_path and len(plan) == 1 and len(plan[0]) == 1:
            return plan[0][0]
        return None

    def choose_plan(self, plan: Any) -> Spot | None:
        """Remove and return the best available spot for a plan, or None if none is free."""
        by_rank = self._by_rank
        for heaps in plan:
            if len(heaps) == 1:  # the common case, written out: one heap, peek and pop
                heap = heaps[0]
                while heap:
                    spot = by_rank[heappop(heap)]
                    spot.indexed = False
                    if spot.status is _AVAILABLE:
                        return spot
                continue
            heap = _best_of(heaps, by_rank)
            if heap is not None:
                spot = by_rank[heappop(heap)]
                spot.indexed = False
                return spot
        return None

    def choose(self, tiers: Tiers) -> Spot | None:
        """Remove and return the best available spot, or None. The caller marks it occupied."""
        plan = self._plans.get(tiers)
        if plan is None:
            plan = self._plans[tiers] = self.plan(tiers)
        return self.choose_plan(plan)


class NearestToEntrance(AllocationStrategy):
    """Shortest driving/walking distance first: what drivers pick when left alone."""

    name = "nearest"


class FirstFit(AllocationStrategy):
    """Lowest spot number first: the order a sensorless lot fills in."""

    name = "first_fit"

    def key(self, spot: Spot) -> tuple:
        return (spot.index,)


class BestFit(AllocationStrategy):
    """Smallest compatible spot type first, keeping large bays for the vehicles that need them."""

    name = "best_fit"
    by_size = True


class SpreadAcrossLevels(AllocationStrategy):
    """Least occupied level first, nearest spot within it: evens out ramp traffic and wear.

    Heaps are per (level, type). Level occupancy comes from the lot's counters, so the choice
    costs O(levels · types) peeks plus one O(log n) pop.
    """

    name = "spread"
    fast_path = False

    def __init__(self) -> None:
        super().__init__()
        self.occupied: Sequence[int] = ()
        self.capacity: Sequence[int] = ()

    def bind(self, lot: LotView | Sequence[Spot]) -> None:
        """Read the lot's live per-level occupancy counters (not a copy)."""
        if hasattr(lot, "occupied_by_level"):
            self.occupied = lot.occupied_by_level  # type: ignore[union-attr]
            self.capacity = [max(c, 1) for c in lot.capacity_by_level]  # type: ignore[union-attr]
        super().bind(lot)

    def group(self, spot: Spot) -> object:
        return (spot.level, spot.type)

    def plan(self, tiers: Tiers) -> Any:
        levels = range(len(self.capacity))
        return tuple(
            tuple(tuple(self._heap((lv, t)) for t in tier) for lv in levels) for tier in tiers
        )

    def choose_plan(self, plan: Any) -> Spot | None:
        occupied, capacity, by_rank = self.occupied, self.capacity, self._by_rank
        order = sorted(range(len(capacity)), key=lambda lv: (occupied[lv] / capacity[lv], lv))
        for per_level in plan:
            for lv in order:
                heap = _best_of(per_level[lv], by_rank)
                if heap is not None:
                    spot = by_rank[heappop(heap)]
                    spot.indexed = False
                    return spot
        return None


class RandomFree(AllocationStrategy):
    """Any free compatible spot, uniformly at random (most preferred tier first).

    Drivers who take whatever bay they see first: a baseline for the other strategies. It
    keeps the base class's index (one list of spot entries per type, which the lot appends
    freed spots to) but treats each list as a bag, not a heap: it picks a uniformly random
    entry and removes it by swapping in the last one, so ``fast_path = False`` (the lot must
    not pop the list's smallest entry itself). Drawn from the replication's stream.
    """

    name = "random_free"
    fast_path = False
    random = True

    def __init__(self) -> None:
        super().__init__()
        self._rng = _random.Random(0)

    def seed(self, rng: RandomSource) -> None:
        self._rng = _random.Random(int(rng.integers(2**63)))

    def single_heap(self, plan: Any) -> Heap | None:
        return None

    def choose_plan(self, plan: Any) -> Spot | None:
        draw = self._rng.random
        by_rank = self._by_rank
        for bags in plan:
            while True:
                total = sum(len(bag) for bag in bags)
                if not total:
                    break
                k = int(draw() * total)
                for bag in bags:
                    if k < len(bag):
                        break
                    k -= len(bag)
                last = bag.pop()  # swap-remove entry k: O(1), order does not matter here
                entry = last if k == len(bag) else bag[k]
                if k < len(bag):
                    bag[k] = last
                spot = by_rank[entry]
                spot.indexed = False
                if spot.status is _AVAILABLE:
                    return spot
                # a stale entry (held, closed or taken by name since): dropped, draw again
        return None


#: The strategies by scenario-file name: a new strategy is one class and one line here.
STRATEGIES: dict[str, type[AllocationStrategy]] = {
    cls.name: cls
    for cls in (
        NearestToEntrance,
        FirstFit,
        BestFit,
        SpreadAcrossLevels,
        RandomFree,
    )
}


def make_strategy(name: str) -> AllocationStrategy:
    """Strategy by its scenario-file name."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        allowed = sorted(STRATEGIES)
        raise ValueError(f"unknown allocation strategy {name!r}; allowed: {allowed}") from None
