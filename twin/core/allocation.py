"""Allocation strategies over indexes of free spots.

Every strategy keeps binary heaps of *available* spots and deletes lazily: a heap entry whose
spot is no longer AVAILABLE is discarded when it reaches the top. Allocation therefore costs
O(log n) amortised in the number of spots, never a scan of the lot. Spread-across-levels also
reads each level's occupancy counter, O(levels), which does not grow with the number of spots.

A strategy answers one question: given preference *tiers* (tuples of spot types the vehicle may
use, most preferred first), which available spot should it get? Compatibility rules live in
:mod:`twin.core.lot`, which computes the tiers. Tiers are turned once into a *plan* (the heaps
to look at, in order), so the per-car work is only heap peeks and one pop.
"""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any, ClassVar

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


class AllocationStrategy:
    """Base: one heap per group of spots, ordered by a strategy-specific key.

    Subclasses set ``by_size`` (whether general spot types form one tier or one tier per size,
    smallest first) and may override ``key``/``group``/``plan``/``choose_plan``.
    """

    name: ClassVar[str] = ""
    by_size: ClassVar[bool] = False

    def __init__(self) -> None:
        self._by_rank: Sequence[Spot] = ()
        self._heaps: dict[object, Heap] = {}
        self._plans: dict[Tiers, Any] = {}

    def key(self, spot: Spot) -> tuple:
        """Heap order inside a group: nearest first, ties by spot index (deterministic)."""
        return (spot.distance, spot.index)

    def group(self, spot: Spot) -> object:
        return spot.type

    def bind(self, spots: Sequence[Spot]) -> None:
        """Build the index from scratch (O(n log n)); called once when the lot is created."""
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

    def push(self, spot: Spot) -> None:
        """A spot became AVAILABLE. Pushed only if no entry for it is still in a heap."""
        if not spot.indexed:
            heappush(spot.home, spot.rank)
            spot.indexed = True

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
        plain = type(self).choose_plan is AllocationStrategy.choose_plan
        if plain and len(plan) == 1 and len(plan[0]) == 1:
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

    def __init__(self) -> None:
        super().__init__()
        self.occupied: Sequence[int] = ()
        self.capacity: Sequence[int] = ()

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


STRATEGIES: dict[str, type[AllocationStrategy]] = {
    cls.name: cls for cls in (NearestToEntrance, FirstFit, BestFit, SpreadAcrossLevels)
}


def make_strategy(name: str) -> AllocationStrategy:
    """Strategy by its scenario-file name."""
    try:
        return STRATEGIES[name]()
    except KeyError:
        allowed = sorted(STRATEGIES)
        raise ValueError(f"unknown allocation strategy {name!r}; allowed: {allowed}") from None
